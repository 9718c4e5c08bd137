//! `SnapshotMetrics`: what the applier's snapshots have done, readable from any thread without
//! a message (the node shows it on `/metrics` and `/v1/status`).

use raft_types::{LogIndex, SnapshotMeta};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Counters and gauges of the applier's snapshots, shared as `Arc<SnapshotMetrics>`. Only the
/// applier (and the thread writing its snapshot) changes them. Each value is read on its own,
/// so a reader racing a completion may see the new count with the previous size; every value
/// it sees was true at some moment.
#[derive(Debug, Default)]
pub struct SnapshotMetrics {
    taken: AtomicU64,
    failures: AtomicU64,
    restored: AtomicU64,
    last_index: AtomicU64,
    last_size_bytes: AtomicU64,
    last_write_duration_ms: AtomicU64,
    write_in_progress: AtomicBool,
}

/// The values of [`SnapshotMetrics`] at one read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetricsValues {
    /// Snapshots this applier wrote and made durable.
    pub taken: u64,
    /// Snapshot writes that failed (each retried at the next threshold).
    pub failures: u64,
    /// Snapshots this applier restored its state from (at startup or from the leader).
    pub restored: u64,
    /// The last applied index of the newest snapshot this applier wrote or restored (0: none).
    pub last_index: LogIndex,
    /// Its size in bytes, as the snapshot store reports it.
    pub last_size_bytes: u64,
    /// How long the last successful write took, from `begin` to durable, in milliseconds.
    pub last_write_duration_ms: u64,
    /// A snapshot is being written now.
    pub write_in_progress: bool,
}

impl SnapshotMetrics {
    pub fn new() -> SnapshotMetrics {
        SnapshotMetrics::default()
    }

    pub fn read(&self) -> SnapshotMetricsValues {
        SnapshotMetricsValues {
            taken: self.taken.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            restored: self.restored.load(Ordering::Relaxed),
            last_index: LogIndex(self.last_index.load(Ordering::Relaxed)),
            last_size_bytes: self.last_size_bytes.load(Ordering::Relaxed),
            last_write_duration_ms: self.last_write_duration_ms.load(Ordering::Relaxed),
            write_in_progress: self.write_in_progress.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn record_started(&self) {
        self.write_in_progress.store(true, Ordering::Relaxed);
    }

    pub(crate) fn record_taken(&self, snapshot: &SnapshotMeta, duration: Duration) {
        self.record_newest(snapshot);
        let milliseconds = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.last_write_duration_ms
            .store(milliseconds, Ordering::Relaxed);
        self.taken.fetch_add(1, Ordering::Relaxed);
        self.write_in_progress.store(false, Ordering::Relaxed);
    }

    pub(crate) fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.write_in_progress.store(false, Ordering::Relaxed);
    }

    pub(crate) fn record_restored(&self, snapshot: &SnapshotMeta) {
        self.record_newest(snapshot);
        self.restored.fetch_add(1, Ordering::Relaxed);
    }

    /// A write that finishes after a newer snapshot was restored does not move the index back.
    fn record_newest(&self, snapshot: &SnapshotMeta) {
        let index = snapshot.last_log_id.index.0;
        if self.last_index.fetch_max(index, Ordering::Relaxed) <= index {
            self.last_size_bytes
                .store(snapshot.size_bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::{LogId, NodeId, Term};

    fn snapshot(index: u64, size_bytes: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: LogId::new(Term(1), LogIndex(index)),
            membership: raft_types::Membership::with_voters([NodeId(1)]),
            size_bytes,
            file_checksum: 0,
        }
    }

    #[test]
    fn counts_writes_failures_and_restores_and_keeps_the_newest_snapshot() {
        let metrics = SnapshotMetrics::new();
        assert_eq!(metrics.read(), SnapshotMetricsValues::default());
        metrics.record_started();
        assert!(metrics.read().write_in_progress);
        metrics.record_failure();
        metrics.record_started();
        metrics.record_taken(&snapshot(5, 50), Duration::from_millis(12));
        metrics.record_restored(&snapshot(9, 90));
        // A write of index 7 that ends after the restore of 9 counts, but 9 stays the newest.
        metrics.record_started();
        metrics.record_taken(&snapshot(7, 70), Duration::from_millis(3));
        assert_eq!(
            metrics.read(),
            SnapshotMetricsValues {
                taken: 2,
                failures: 1,
                restored: 1,
                last_index: LogIndex(9),
                last_size_bytes: 90,
                last_write_duration_ms: 3,
                write_in_progress: false,
            }
        );
    }
}
