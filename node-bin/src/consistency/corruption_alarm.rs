//! `CorruptionAlarm` and `Alarms`: what this node knows is wrong with its state, kept until
//! the process restarts (etcd's `CORRUPT` alarm is the model).
//!
//! # Correctness
//!
//! - An alarm, once raised, stays raised for the life of the process: a node that has seen its
//!   state differ from a peer's cannot later prove the difference gone, and an alarm that
//!   flickers would let a client read diverged data between two checks.
//! - The first alarm wins and is logged once, at error level, as one line; later mismatches
//!   (every check finds the same divergence again) are not logged again.

use applier_actor::{CheckpointMismatch, HistoryHash};
use raft_types::{LogIndex, NodeId};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

/// This node's applied state differs from `peer_id`'s at `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CorruptionAlarm {
    /// The node that raised the alarm (this one).
    pub node_id: NodeId,
    /// The lowest index both nodes had a checkpoint at where their hashes differ.
    pub index: LogIndex,
    pub local_hash: HistoryHash,
    pub peer_id: NodeId,
    pub peer_hash: HistoryHash,
    /// The highest shared checkpoint below `index` where the hashes agreed, if any: the
    /// histories part somewhere after it, at or before `index`.
    pub last_matching_index: Option<LogIndex>,
}

impl CorruptionAlarm {
    pub fn new(node_id: NodeId, peer_id: NodeId, mismatch: CheckpointMismatch) -> CorruptionAlarm {
        CorruptionAlarm {
            node_id,
            index: mismatch.index,
            local_hash: mismatch.local_hash,
            peer_id,
            peer_hash: mismatch.peer_hash,
            last_matching_index: mismatch.last_matching_index,
        }
    }

    /// The one line an operator reads: where, both hashes, and what the node now refuses.
    pub fn describe(&self) -> String {
        let agreed = match self.last_matching_index {
            Some(index) => format!("; they agreed at index {index}"),
            None => String::new(),
        };
        format!(
            "corruption alarm: the applied state of node {} differs from node {}'s at index {} \
             (node {} hash {}, node {} hash {}{agreed}); this node refuses writes and \
             linearizable reads until it is restarted",
            self.node_id,
            self.peer_id,
            self.index,
            self.node_id,
            self.local_hash,
            self.peer_id,
            self.peer_hash,
        )
    }

    /// As listed in `/v1/status` `alarms` and in the body of a refused request.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "corruption",
            "index": self.index.0,
            "local_hash": self.local_hash.to_string(),
            "peer_id": self.peer_id.0,
            "peer_hash": self.peer_hash.to_string(),
            "last_matching_index": self.last_matching_index.map(|index| index.0),
        })
    }
}

/// The node's alarms, shared by the consistency check (which raises them) and every HTTP
/// worker (which reports them and refuses requests while one is raised).
#[derive(Clone, Debug, Default)]
pub struct Alarms {
    corruption: Arc<OnceLock<CorruptionAlarm>>,
}

impl Alarms {
    /// Raises `alarm` unless a corruption alarm is already raised; returns whether this call
    /// raised it. The first raise logs the alarm at error level.
    pub fn raise_corruption(&self, alarm: CorruptionAlarm) -> bool {
        let raised = self.corruption.set(alarm).is_ok();
        if raised {
            tracing::error!(
                index = alarm.index.0,
                local_hash = %alarm.local_hash,
                peer = alarm.peer_id.0,
                peer_hash = %alarm.peer_hash,
                "{}",
                alarm.describe()
            );
        }
        raised
    }

    pub fn corruption(&self) -> Option<CorruptionAlarm> {
        self.corruption.get().copied()
    }

    /// Every raised alarm, as `/v1/status` lists them.
    pub fn to_json(&self) -> Vec<Value> {
        self.corruption()
            .iter()
            .map(CorruptionAlarm::to_json)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(index: u64, peer: u64) -> CorruptionAlarm {
        CorruptionAlarm {
            node_id: NodeId(1),
            index: LogIndex(index),
            local_hash: HistoryHash(0xa),
            peer_id: NodeId(peer),
            peer_hash: HistoryHash(0xb),
            last_matching_index: Some(LogIndex(10)),
        }
    }

    #[test]
    fn the_first_alarm_sticks() {
        let alarms = Alarms::default();
        assert_eq!(alarms.corruption(), None);
        assert!(alarms.to_json().is_empty());
        assert!(alarms.raise_corruption(alarm(20, 2)));
        assert!(!alarms.clone().raise_corruption(alarm(30, 3)));
        assert_eq!(alarms.corruption(), Some(alarm(20, 2)));
        assert_eq!(
            alarms.to_json(),
            vec![json!({
                "kind": "corruption",
                "index": 20,
                "local_hash": "000000000000000a",
                "peer_id": 2,
                "peer_hash": "000000000000000b",
                "last_matching_index": 10,
            })]
        );
        let line = alarm(20, 2).describe();
        for part in [
            "node 1",
            "node 2",
            "index 20",
            "000000000000000a",
            "000000000000000b",
        ] {
            assert!(line.contains(part), "{part} missing from: {line}");
        }
    }
}
