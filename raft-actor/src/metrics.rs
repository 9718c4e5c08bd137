//! `RaftMetrics`: counters and gauges the consensus actor keeps for `/metrics` and `/v1/status`.
//!
//! The actor owns the only writer; the node reads through an `Arc` taken with
//! [`crate::RaftActor::metrics`] before the actor is started, at any time and from any thread,
//! without sending a message. Values are relaxed atomics: each one is exact, but a
//! [`RaftMetrics::snapshot`] taken while the actor runs may mix values from two consecutive
//! steps (fine for monitoring, not for correctness decisions).
//!
//! Counters (`*_total`) only grow; gauges are the latest value.

use crate::peer_round_trip::{AppendKind, PeerRoundTripSnapshot, PeerRoundTrips};
use raft_proto::client::Role;
pub use raft_proto::metrics::{
    HistogramSnapshot, LatencyHistogram, LATENCY_BUCKET_BOUNDS_MICROSECONDS,
};
use raft_types::{LogIndex, NodeId, Term};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The live metrics of one consensus actor.
#[derive(Debug, Default)]
pub struct RaftMetrics {
    current_term: AtomicU64,
    /// 0 follower, 1 candidate, 2 leader.
    role: AtomicU64,
    /// 0 when no leader is known (node ids are never 0).
    leader_id: AtomicU64,
    commit_index: AtomicU64,
    last_applied: AtomicU64,
    last_log_index: AtomicU64,
    persisted_index: AtomicU64,
    proposals_total: AtomicU64,
    proposals_rejected_total: AtomicU64,
    reads_total: AtomicU64,
    reads_rejected_total: AtomicU64,
    elections_started_total: AtomicU64,
    leader_changes_total: AtomicU64,
    messages_sent_total: AtomicU64,
    messages_received_total: AtomicU64,
    storage_appends_total: AtomicU64,
    snapshot_index: AtomicU64,
    first_log_index: AtomicU64,
    snapshot_receiving_index: AtomicU64,
    snapshot_received_bytes: AtomicU64,
    snapshots_taken_total: AtomicU64,
    snapshots_restored_total: AtomicU64,
    snapshot_chunks_sent_total: AtomicU64,
    peers_connected: AtomicU64,
    pending_proposals: AtomicU64,
    pending_reads: AtomicU64,
    append_latency: LatencyHistogram,
    peer_round_trips: PeerRoundTrips,
}

/// A plain copy of [`RaftMetrics`] at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMetricsSnapshot {
    pub current_term: Term,
    pub role: Role,
    pub leader_id: Option<NodeId>,
    pub commit_index: LogIndex,
    pub last_applied: LogIndex,
    pub last_log_index: LogIndex,
    /// Highest index this node knows durable in its own log.
    pub persisted_index: LogIndex,
    /// Proposals accepted into the leader's log.
    pub proposals_total: u64,
    /// Proposals refused before entering the log (not leader, shutting down).
    pub proposals_rejected_total: u64,
    /// Linearizable reads started on this node as leader.
    pub reads_total: u64,
    /// Reads refused (not leader, shutting down) or rejected after leadership was lost.
    pub reads_rejected_total: u64,
    /// Elections this node started (each new candidacy, including retries after a split vote).
    pub elections_started_total: u64,
    /// Times this node saw the leader change to a different known node.
    pub leader_changes_total: u64,
    /// Raft messages handed to the network port.
    pub messages_sent_total: u64,
    /// Raft messages received from peers and stepped into the core.
    pub messages_received_total: u64,
    /// `StorageRequest::Append`s sent (one per batch of entries, not per entry).
    pub storage_appends_total: u64,
    /// The last index of this node's newest snapshot (0 without one).
    pub snapshot_index: LogIndex,
    /// The first index of the log held in memory: the log holds
    /// `last_log_index - first_log_index + 1` entries.
    pub first_log_index: LogIndex,
    /// The last index of the snapshot this follower is receiving from a leader (0: none).
    pub snapshot_receiving_index: LogIndex,
    /// How many bytes of it are durable here: where a broken transfer resumes.
    pub snapshot_received_bytes: u64,
    /// Snapshots this node's state machine took (reported to the core).
    pub snapshots_taken_total: u64,
    /// Snapshots received from a leader and restored into the state machine.
    pub snapshots_restored_total: u64,
    /// InstallSnapshot chunks sent to followers.
    pub snapshot_chunks_sent_total: u64,
    /// Peers whose outgoing connection the network reported up.
    pub peers_connected: u64,
    /// Time from sending an `Append` to storage to the `Persisted` event covering it: the
    /// storage mailbox wait, the write and the fsync together.
    pub append_latency: HistogramSnapshot,
    /// Proposals accepted into this leader's log whose clients still wait for the outcome.
    pub pending_proposals: u64,
    /// Linearizable reads waiting for their read index to be confirmed and applied.
    pub pending_reads: u64,
    /// Round-trip time of AppendEntries per peer and kind (see [`crate::peer_round_trip`]).
    pub peer_round_trips: Vec<PeerRoundTripSnapshot>,
}

fn role_code(role: Role) -> u64 {
    match role {
        Role::Follower => 0,
        Role::Candidate => 1,
        Role::Leader => 2,
    }
}

fn role_from_code(code: u64) -> Role {
    match code {
        1 => Role::Candidate,
        2 => Role::Leader,
        _ => Role::Follower,
    }
}

/// What the actor reports after every step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gauges {
    pub current_term: Term,
    pub role: Role,
    pub leader_id: Option<NodeId>,
    pub commit_index: LogIndex,
    pub last_applied: LogIndex,
    pub last_log_index: LogIndex,
    pub persisted_index: LogIndex,
    pub snapshot_index: LogIndex,
    pub first_log_index: LogIndex,
    pub snapshot_receiving_index: LogIndex,
    pub snapshot_received_bytes: u64,
    pub pending_proposals: u64,
    pub pending_reads: u64,
}

/// The counters the actor increments.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Proposals,
    ProposalsRejected,
    Reads,
    ReadsRejected,
    ElectionsStarted,
    LeaderChanges,
    MessagesSent,
    MessagesReceived,
    StorageAppends,
    SnapshotsTaken,
    SnapshotsRestored,
    SnapshotChunksSent,
}

impl RaftMetrics {
    pub fn snapshot(&self) -> RaftMetricsSnapshot {
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        let leader_id = load(&self.leader_id);
        RaftMetricsSnapshot {
            current_term: Term(load(&self.current_term)),
            role: role_from_code(load(&self.role)),
            leader_id: (leader_id != 0).then_some(NodeId(leader_id)),
            commit_index: LogIndex(load(&self.commit_index)),
            last_applied: LogIndex(load(&self.last_applied)),
            last_log_index: LogIndex(load(&self.last_log_index)),
            persisted_index: LogIndex(load(&self.persisted_index)),
            proposals_total: load(&self.proposals_total),
            proposals_rejected_total: load(&self.proposals_rejected_total),
            reads_total: load(&self.reads_total),
            reads_rejected_total: load(&self.reads_rejected_total),
            elections_started_total: load(&self.elections_started_total),
            leader_changes_total: load(&self.leader_changes_total),
            messages_sent_total: load(&self.messages_sent_total),
            messages_received_total: load(&self.messages_received_total),
            storage_appends_total: load(&self.storage_appends_total),
            snapshot_index: LogIndex(load(&self.snapshot_index)),
            first_log_index: LogIndex(load(&self.first_log_index)),
            snapshot_receiving_index: LogIndex(load(&self.snapshot_receiving_index)),
            snapshot_received_bytes: load(&self.snapshot_received_bytes),
            snapshots_taken_total: load(&self.snapshots_taken_total),
            snapshots_restored_total: load(&self.snapshots_restored_total),
            snapshot_chunks_sent_total: load(&self.snapshot_chunks_sent_total),
            peers_connected: load(&self.peers_connected),
            append_latency: self.append_latency.snapshot(),
            pending_proposals: load(&self.pending_proposals),
            pending_reads: load(&self.pending_reads),
            peer_round_trips: self.peer_round_trips.snapshot(),
        }
    }

    pub(crate) fn set_gauges(&self, gauges: Gauges) {
        let store = |target: &AtomicU64, value: u64| target.store(value, Ordering::Relaxed);
        store(&self.current_term, gauges.current_term.0);
        store(&self.role, role_code(gauges.role));
        store(
            &self.leader_id,
            gauges.leader_id.map_or(0, |leader| leader.0),
        );
        store(&self.commit_index, gauges.commit_index.0);
        store(&self.last_applied, gauges.last_applied.0);
        store(&self.last_log_index, gauges.last_log_index.0);
        store(&self.persisted_index, gauges.persisted_index.0);
        store(&self.snapshot_index, gauges.snapshot_index.0);
        store(&self.first_log_index, gauges.first_log_index.0);
        store(
            &self.snapshot_receiving_index,
            gauges.snapshot_receiving_index.0,
        );
        store(
            &self.snapshot_received_bytes,
            gauges.snapshot_received_bytes,
        );
        store(&self.pending_proposals, gauges.pending_proposals);
        store(&self.pending_reads, gauges.pending_reads);
    }

    pub(crate) fn set_peers_connected(&self, count: usize) {
        self.peers_connected.store(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn increment(&self, counter: Counter) {
        let target = match counter {
            Counter::Proposals => &self.proposals_total,
            Counter::ProposalsRejected => &self.proposals_rejected_total,
            Counter::Reads => &self.reads_total,
            Counter::ReadsRejected => &self.reads_rejected_total,
            Counter::ElectionsStarted => &self.elections_started_total,
            Counter::LeaderChanges => &self.leader_changes_total,
            Counter::MessagesSent => &self.messages_sent_total,
            Counter::MessagesReceived => &self.messages_received_total,
            Counter::StorageAppends => &self.storage_appends_total,
            Counter::SnapshotsTaken => &self.snapshots_taken_total,
            Counter::SnapshotsRestored => &self.snapshots_restored_total,
            Counter::SnapshotChunksSent => &self.snapshot_chunks_sent_total,
        };
        target.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn observe_append_latency(&self, latency: Duration) {
        self.append_latency.observe(latency);
    }

    pub(crate) fn observe_peer_round_trip(
        &self,
        peer: NodeId,
        kind: AppendKind,
        elapsed: Duration,
    ) {
        self.peer_round_trips.observe(peer, kind, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(50));
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_secs(5));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.sum_microseconds, 5_000_350);
        assert_eq!(snapshot.cumulative_buckets[0], (100, 1));
        assert_eq!(snapshot.cumulative_buckets[1], (250, 1));
        assert_eq!(snapshot.cumulative_buckets[2], (500, 2));
        assert_eq!(snapshot.cumulative_buckets.last(), Some(&(1_000_000, 2)));
    }

    #[test]
    fn gauges_round_trip_through_the_snapshot() {
        let metrics = RaftMetrics::default();
        assert_eq!(metrics.snapshot().leader_id, None);
        metrics.set_gauges(Gauges {
            current_term: Term(3),
            role: Role::Leader,
            leader_id: Some(NodeId(2)),
            commit_index: LogIndex(5),
            last_applied: LogIndex(4),
            last_log_index: LogIndex(6),
            persisted_index: LogIndex(6),
            snapshot_index: LogIndex(2),
            first_log_index: LogIndex(1),
            snapshot_receiving_index: LogIndex::ZERO,
            snapshot_received_bytes: 0,
            pending_proposals: 2,
            pending_reads: 1,
        });
        metrics.increment(Counter::Proposals);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.role, Role::Leader);
        assert_eq!(snapshot.leader_id, Some(NodeId(2)));
        assert_eq!(snapshot.current_term, Term(3));
        assert_eq!(snapshot.proposals_total, 1);
        assert_eq!((snapshot.pending_proposals, snapshot.pending_reads), (2, 1));
    }
}
