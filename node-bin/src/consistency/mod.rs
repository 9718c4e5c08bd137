//! The state-machine consistency check (issue 18, after etcd's corruption check): every node
//! periodically fetches its peers' applied-state checkpoints over their client API and compares
//! them with its own; a difference raises a sticky corruption alarm that `/v1/status`,
//! `/health` and `/metrics` report and that makes the node refuse writes and linearizable
//! reads.
//!
//! Raft alone cannot see an entry whose bytes changed but whose index and term did not: logs
//! are compared by `LogId` only. The applier's running hash (`applier_actor::RunningHash`)
//! covers the bytes too, so only this check notices.
//!
//! # Layout
//!
//! - [`consistency_config`]: the `[consistency]` configuration keys.
//! - [`corruption_alarm`]: `CorruptionAlarm` and the sticky `Alarms`.
//! - [`consistency_checker`]: `ConsistencyChecker`, the periodic fetch and comparison, and the
//!   JSON of `GET /v1/internal/checkpoints` (`CheckpointsReply`).

pub mod consistency_checker;
pub mod consistency_config;
pub mod corruption_alarm;

pub use consistency_checker::{CheckpointsReply, ConsistencyChecker, ConsistencyStats};
pub use corruption_alarm::{Alarms, CorruptionAlarm};

use applier_actor::AppliedCheckpoints;
use raft_types::NodeId;
use std::sync::Arc;

/// What the HTTP API and the checker share: this node's checkpoints, its alarms and the
/// check's counters.
#[derive(Clone, Debug)]
pub struct ConsistencyState {
    pub node_id: NodeId,
    /// Served with the checkpoints, so a checker reaching a node of another cluster (a
    /// misconfigured address) refuses to compare instead of raising a false alarm.
    pub cluster_id: String,
    pub checkpoints: Arc<AppliedCheckpoints>,
    pub alarms: Alarms,
    pub stats: Arc<ConsistencyStats>,
}

impl ConsistencyState {
    pub fn new(
        node_id: NodeId,
        cluster_id: String,
        checkpoints: Arc<AppliedCheckpoints>,
    ) -> ConsistencyState {
        ConsistencyState {
            node_id,
            cluster_id,
            checkpoints,
            alarms: Alarms::default(),
            stats: Arc::default(),
        }
    }

    /// What `GET /v1/internal/checkpoints` answers.
    pub fn reply(&self) -> CheckpointsReply {
        CheckpointsReply {
            node_id: self.node_id,
            cluster_id: self.cluster_id.clone(),
            snapshot: self.checkpoints.snapshot(),
        }
    }
}
