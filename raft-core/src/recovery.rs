//! What a restarting server's log is, given its newest snapshot and what its log store
//! recovered: Figure 13's installation rule, applied again at start.
//!
//! A crash can leave the two stores at different points of one installation: the snapshot
//! file complete and durable, the log's reset not yet (or not at all) on disk. And compaction
//! keeps trailing entries behind the snapshot, so the stored log may begin before it.
//! [`reconcile`] sorts this out the same way every time:
//!
//! - If the stored log holds the snapshot's last entry (same index and term), the entries
//!   after it are the log; those before it are covered by the snapshot.
//! - If it starts right after the snapshot (its first index is the snapshot's index + 1, and
//!   the entry before is the snapshot's or unknown because purged), the same.
//! - Otherwise the stored log cannot continue the snapshot: it is shorter, or it conflicts
//!   (entries that were being replaced by the snapshot an installation delivered). It is
//!   discarded, and the log store must be reset to the snapshot before anything is appended.
//!   Its entries are not committed beyond the snapshot, which is committed, so nothing
//!   committed is lost... unless the stored log starts after the snapshot with a gap: then
//!   entries between them are gone (a newest snapshot lost to corruption, with the log
//!   purged behind it), and the server must not start ([`RecoveryError::Gap`]).

use crate::raft::RecoveredState;
use raft_types::{LogId, LogIndex, SnapshotMeta, StoredLog};

/// Why a server cannot restart from what its stores hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// The stored log starts after the snapshot's last entry + 1: the entries between them
    /// exist nowhere on this server.
    #[error(
        "the log starts at index {first_index} but the newest usable snapshot ends at {snapshot_last_log_id}: \
         entries {} ..= {} are missing (a newer snapshot was lost?); restore this node from a \
         backup or remove its data directory so it is sent a snapshot by the leader",
        snapshot_last_log_id.index.next(),
        first_index.previous()
    )]
    Gap {
        /// The snapshot's last entry (`LogId::ZERO` without a snapshot).
        snapshot_last_log_id: LogId,
        /// The stored log's first index.
        first_index: LogIndex,
    },
}

/// Builds the state a server restarts from, given its newest snapshot and what its log store
/// recovered. Returns it, and `Some(log_id)` when the log store must first be reset to
/// continue after `log_id` (its log was discarded).
pub fn reconcile(
    snapshot: Option<SnapshotMeta>,
    stored: StoredLog,
) -> Result<(RecoveredState, Option<LogId>), RecoveryError> {
    let snapshot_last_log_id = snapshot
        .as_ref()
        .map(|snapshot| snapshot.last_log_id)
        .unwrap_or(LogId::ZERO);
    let index = snapshot_last_log_id.index;
    let StoredLog {
        hard_state,
        first_index,
        prev_log_id,
        entries,
    } = stored;
    let last_index = first_index.plus(entries.len() as u64).previous();
    let continues_snapshot = if index.next() == first_index {
        // The log starts right after the snapshot. It continues it unless the store knows the
        // entry before its start and that is another one. When the store does not know it (a
        // purge removed it), it continues it too: entries are purged only behind a snapshot
        // the log matched, and a snapshot at this index is that one (snapshots hold only
        // committed entries, so two at one index are equal). A conflicting log left by an
        // interrupted installation starts at or before the snapshot instead, because its
        // purges followed older snapshots.
        prev_log_id.is_none_or(|prev| prev == snapshot_last_log_id)
    } else if first_index <= index && index <= last_index {
        entries[(index.0 - first_index.0) as usize].log_id == snapshot_last_log_id
    } else if index.next() < first_index {
        return Err(RecoveryError::Gap {
            snapshot_last_log_id,
            first_index,
        });
    } else {
        // The log ends before the snapshot.
        false
    };
    if !continues_snapshot {
        let recovered = RecoveredState {
            hard_state,
            snapshot,
            entries: Vec::new(),
        };
        return Ok((recovered, Some(snapshot_last_log_id)));
    }
    let skip = (index.next().0 - first_index.0) as usize;
    let entries = entries.into_iter().skip(skip).collect();
    let recovered = RecoveredState {
        hard_state,
        snapshot,
        entries,
    };
    Ok((recovered, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::{Entry, EntryPayload, HardState, NodeId, Term};

    fn entries(first: u64, terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(offset, term)| {
                Entry::new(
                    Term(*term),
                    LogIndex(first + offset as u64),
                    EntryPayload::Blank,
                )
            })
            .collect()
    }

    fn snapshot(term: u64, index: u64) -> Option<SnapshotMeta> {
        Some(SnapshotMeta {
            last_log_id: LogId::new(Term(term), LogIndex(index)),
            membership: raft_types::Membership::with_voters([NodeId(1)]),
            size_bytes: 100,
            file_checksum: 7,
        })
    }

    fn stored(first: u64, prev: Option<LogId>, terms: &[u64]) -> StoredLog {
        StoredLog {
            hard_state: HardState::default(),
            first_index: LogIndex(first),
            prev_log_id: prev,
            entries: entries(first, terms),
        }
    }

    #[test]
    fn without_a_snapshot_the_stored_log_is_the_log() {
        let (state, reset) =
            reconcile(None, stored(1, Some(LogId::ZERO), &[1, 1, 2])).expect("recovers");
        assert_eq!(reset, None);
        assert_eq!(state.entries, entries(1, &[1, 1, 2]));
    }

    #[test]
    fn entries_behind_the_snapshot_are_dropped_and_the_rest_kept() {
        let (state, reset) =
            reconcile(snapshot(2, 4), stored(3, None, &[1, 2, 2, 3])).expect("recovers");
        assert_eq!(reset, None);
        assert_eq!(state.entries, entries(5, &[2, 3]));
    }

    #[test]
    fn a_log_conflicting_with_the_snapshot_is_discarded() {
        // The entry at 4 has term 1 here, the snapshot says term 2: an installation was
        // replacing this log when the server crashed.
        let (state, reset) = reconcile(
            snapshot(2, 4),
            stored(1, Some(LogId::ZERO), &[1, 1, 1, 1, 1]),
        )
        .expect("recovers");
        assert_eq!(reset, Some(LogId::new(Term(2), LogIndex(4))));
        assert!(state.entries.is_empty());
    }

    #[test]
    fn a_log_shorter_than_the_snapshot_is_discarded() {
        let (state, reset) =
            reconcile(snapshot(2, 9), stored(1, Some(LogId::ZERO), &[1, 2])).expect("recovers");
        assert_eq!(reset, Some(LogId::new(Term(2), LogIndex(9))));
        assert!(state.entries.is_empty());
    }

    #[test]
    fn a_log_reset_to_the_snapshot_continues_it() {
        let last = LogId::new(Term(2), LogIndex(9));
        let (state, reset) =
            reconcile(snapshot(2, 9), stored(10, Some(last), &[3])).expect("recovers");
        assert_eq!(reset, None);
        assert_eq!(state.entries, entries(10, &[3]));
        // Reset to another snapshot's point (an older file was lost): not a continuation.
        let other = LogId::new(Term(1), LogIndex(9));
        let (_, reset) =
            reconcile(snapshot(2, 9), stored(10, Some(other), &[3])).expect("recovers");
        assert_eq!(reset, Some(last));
    }

    #[test]
    fn a_gap_between_snapshot_and_log_refuses_to_start() {
        let error = reconcile(snapshot(2, 4), stored(8, None, &[3])).expect_err("a gap");
        assert_eq!(
            error,
            RecoveryError::Gap {
                snapshot_last_log_id: LogId::new(Term(2), LogIndex(4)),
                first_index: LogIndex(8)
            }
        );
        assert!(error.to_string().contains("entries 5 ..= 7 are missing"));
        // A purged log with no snapshot at all.
        assert!(reconcile(None, stored(3, None, &[1])).is_err());
    }
}
