//! `AppliedCheckpoints`: the running hash at a fixed cadence of applied indexes, kept for the
//! last few of them, readable from any thread without a message (as metrics are), and the
//! comparison of two replicas' checkpoints.
//!
//! Replicas apply at different speeds, so their latest hashes are rarely at the same index.
//! A checkpoint is taken at every applied index that is a multiple of
//! [`CheckpointPolicy::interval_entries`]: the same indexes on every replica, so two replicas
//! that keep the last [`CheckpointPolicy::kept`] of them share some index unless one lags more
//! than `interval_entries * kept` entries behind. Because each hash covers the whole history
//! before it, one shared index is enough to compare everything up to it.
//!
//! # Correctness
//!
//! - Checkpoints are recorded in strictly increasing index order, each at an index the applier
//!   has applied; an index is checkpointed at most once per applier lifetime.
//! - Only committed entries are applied, and a committed entry is the same on every correct
//!   replica, so two correct replicas never disagree at an index both checkpointed.

use crate::running_hash::HistoryHash;
use raft_types::LogIndex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

/// The running hash at one applied index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub index: LogIndex,
    pub hash: HistoryHash,
}

/// Which indexes are checkpointed and how many are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// A checkpoint is taken at every applied index that is a multiple of this (>= 1).
    pub interval_entries: u64,
    /// How many of the newest checkpoints are kept (>= 1).
    pub kept: usize,
}

impl Default for CheckpointPolicy {
    /// Every 10th index, the last 256 of them: replicas up to 2,560 entries apart still share a
    /// checkpoint, and the whole list is about 12 KiB of JSON.
    fn default() -> CheckpointPolicy {
        CheckpointPolicy {
            interval_entries: 10,
            kept: 256,
        }
    }
}

impl CheckpointPolicy {
    pub fn is_due(&self, index: LogIndex) -> bool {
        index.0 > 0 && index.0.is_multiple_of(self.interval_entries)
    }
}

/// What the applier has recorded, as a copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointsSnapshot {
    pub interval_entries: u64,
    /// The last applied index and the hash there, whether or not it is a checkpoint; `None`
    /// before the first batch, or when the hash is unknown (the applier resumed from a state
    /// whose hash it was not given).
    pub latest: Option<Checkpoint>,
    /// Oldest first.
    pub checkpoints: Vec<Checkpoint>,
}

/// The applier's checkpoints, shared with whoever compares them (the node's consistency
/// check, `/v1/internal/checkpoints`).
#[derive(Debug)]
pub struct AppliedCheckpoints {
    policy: CheckpointPolicy,
    recorded: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    latest: Option<Checkpoint>,
    checkpoints: VecDeque<Checkpoint>,
}

impl AppliedCheckpoints {
    pub fn new(policy: CheckpointPolicy) -> AppliedCheckpoints {
        assert!(
            policy.interval_entries >= 1 && policy.kept >= 1,
            "a checkpoint policy takes and keeps at least one checkpoint: {policy:?}"
        );
        AppliedCheckpoints {
            policy,
            recorded: Mutex::new(Recorded::default()),
        }
    }

    pub fn policy(&self) -> CheckpointPolicy {
        self.policy
    }

    /// Records what one batch applied: the checkpoints due in it (`due`, index order) and
    /// where it ended (`latest`). One lock per batch, not per entry.
    pub fn record(&self, due: &[Checkpoint], latest: Checkpoint) {
        let mut recorded = self.lock();
        for checkpoint in due {
            assert!(
                self.policy.is_due(checkpoint.index),
                "checkpoint at {} is off the cadence of every {} entries",
                checkpoint.index,
                self.policy.interval_entries
            );
            if let Some(last) = recorded.checkpoints.back() {
                assert!(
                    last.index < checkpoint.index,
                    "checkpoints are recorded in increasing index order: {} after {}",
                    checkpoint.index,
                    last.index
                );
            }
            recorded.checkpoints.push_back(*checkpoint);
            if recorded.checkpoints.len() > self.policy.kept {
                recorded.checkpoints.pop_front();
            }
        }
        recorded.latest = Some(latest);
    }

    pub fn snapshot(&self) -> CheckpointsSnapshot {
        let recorded = self.lock();
        CheckpointsSnapshot {
            interval_entries: self.policy.interval_entries,
            latest: recorded.latest,
            checkpoints: recorded.checkpoints.iter().copied().collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A failed assert in `record` (the only panic under the lock) leaves a shorter but
        // still ordered list, and stops the node anyway: a poisoned lock's data is usable.
        self.recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Two replicas' hashes differ at `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointMismatch {
    pub index: LogIndex,
    pub local_hash: HistoryHash,
    pub peer_hash: HistoryHash,
    /// The highest shared index below `index` where the hashes agreed, if any: the histories
    /// part somewhere in `(last_matching_index, index]`.
    pub last_matching_index: Option<LogIndex>,
}

/// The outcome of comparing two replicas' checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointComparison {
    /// Indexes both replicas had a checkpoint at.
    pub shared_indexes: usize,
    /// The lowest shared index where the hashes differ.
    pub mismatch: Option<CheckpointMismatch>,
}

/// Compares `local` and `peer` at every index both hold. Both lists are in increasing index
/// order, as [`AppliedCheckpoints::snapshot`] gives them; the replicas' cadences may differ
/// (only the indexes they share are compared).
pub fn compare_checkpoints(local: &[Checkpoint], peer: &[Checkpoint]) -> CheckpointComparison {
    let mut comparison = CheckpointComparison::default();
    let mut last_matching_index = None;
    let (mut local_position, mut peer_position) = (0, 0);
    while let (Some(ours), Some(theirs)) = (local.get(local_position), peer.get(peer_position)) {
        match ours.index.cmp(&theirs.index) {
            std::cmp::Ordering::Less => local_position += 1,
            std::cmp::Ordering::Greater => peer_position += 1,
            std::cmp::Ordering::Equal => {
                comparison.shared_indexes += 1;
                if ours.hash != theirs.hash && comparison.mismatch.is_none() {
                    comparison.mismatch = Some(CheckpointMismatch {
                        index: ours.index,
                        local_hash: ours.hash,
                        peer_hash: theirs.hash,
                        last_matching_index,
                    });
                }
                if comparison.mismatch.is_none() {
                    last_matching_index = Some(ours.index);
                }
                local_position += 1;
                peer_position += 1;
            }
        }
    }
    comparison
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(index: u64, hash: u64) -> Checkpoint {
        Checkpoint {
            index: LogIndex(index),
            hash: HistoryHash(hash),
        }
    }

    #[test]
    fn keeps_the_newest_checkpoints_on_the_cadence() {
        let checkpoints = AppliedCheckpoints::new(CheckpointPolicy {
            interval_entries: 5,
            kept: 2,
        });
        assert_eq!(checkpoints.snapshot().latest, None);
        let policy = checkpoints.policy();
        assert!(!policy.is_due(LogIndex(0)));
        assert!(!policy.is_due(LogIndex(4)));
        assert!(policy.is_due(LogIndex(5)));
        checkpoints.record(&[checkpoint(5, 50)], checkpoint(7, 70));
        checkpoints.record(
            &[checkpoint(10, 100), checkpoint(15, 150)],
            checkpoint(15, 150),
        );
        assert_eq!(
            checkpoints.snapshot(),
            CheckpointsSnapshot {
                interval_entries: 5,
                latest: Some(checkpoint(15, 150)),
                checkpoints: vec![checkpoint(10, 100), checkpoint(15, 150)],
            }
        );
    }

    #[test]
    #[should_panic(expected = "off the cadence")]
    fn a_checkpoint_off_the_cadence_is_a_bug() {
        let checkpoints = AppliedCheckpoints::new(CheckpointPolicy {
            interval_entries: 5,
            kept: 2,
        });
        checkpoints.record(&[checkpoint(6, 60)], checkpoint(6, 60));
    }

    #[test]
    fn a_snapshot_is_json_with_hex_hashes() {
        let checkpoints = AppliedCheckpoints::new(CheckpointPolicy::default());
        checkpoints.record(&[checkpoint(10, 0xabc)], checkpoint(12, 0xdef));
        let json = serde_json::to_value(checkpoints.snapshot()).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "interval_entries": 10,
                "latest": { "index": 12, "hash": "0000000000000def" },
                "checkpoints": [{ "index": 10, "hash": "0000000000000abc" }],
            })
        );
        let back: CheckpointsSnapshot = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, checkpoints.snapshot());
    }

    #[test]
    fn agreeing_replicas_compare_at_their_shared_indexes() {
        let local = [checkpoint(10, 1), checkpoint(20, 2), checkpoint(30, 3)];
        let peer = [checkpoint(20, 2), checkpoint(30, 3), checkpoint(40, 4)];
        assert_eq!(
            compare_checkpoints(&local, &peer),
            CheckpointComparison {
                shared_indexes: 2,
                mismatch: None
            }
        );
        // Different cadences: only index 30 is shared.
        let sparse = [checkpoint(15, 9), checkpoint(30, 3)];
        assert_eq!(compare_checkpoints(&local, &sparse).shared_indexes, 1);
        assert_eq!(
            compare_checkpoints(&local, &[]),
            CheckpointComparison::default()
        );
    }

    #[test]
    fn the_lowest_differing_index_is_reported_with_the_last_agreeing_one() {
        let local = [checkpoint(10, 1), checkpoint(20, 2), checkpoint(30, 3)];
        let peer = [checkpoint(10, 1), checkpoint(20, 7), checkpoint(30, 8)];
        assert_eq!(
            compare_checkpoints(&local, &peer),
            CheckpointComparison {
                shared_indexes: 3,
                mismatch: Some(CheckpointMismatch {
                    index: LogIndex(20),
                    local_hash: HistoryHash(2),
                    peer_hash: HistoryHash(7),
                    last_matching_index: Some(LogIndex(10)),
                }),
            }
        );
        let mismatch = compare_checkpoints(&local[2..], &peer[2..]).mismatch;
        assert_eq!(
            mismatch.map(|mismatch| mismatch.last_matching_index),
            Some(None)
        );
    }
}
