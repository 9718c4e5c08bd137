//! `ApiState`: what every request handler holds.

use crate::consistency::ConsistencyState;
use crate::http_api::api_error::ApiError;
use crate::http_api::forwarder::Forwarder;
use actix::Recipient;
use applier_actor::SnapshotMetrics;
use raft_actor::RaftMetrics;
use raft_proto::applier::{Query, TakeSnapshot};
use raft_proto::client::{GetStatus, Propose, Read};
use raft_proto::network::GetNetworkStats;
use raft_proto::snapshot::SnapshotStore;
use raft_types::NodeId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The recipients the API sends to. Any actor handling these messages will do, which is how
/// the tests serve the API against fakes.
#[derive(Clone)]
pub struct ApiPorts {
    /// Writes, to the consensus actor.
    pub propose: Recipient<Propose>,
    /// Linearizable reads, to the consensus actor.
    pub read: Recipient<Read>,
    /// `/v1/status` and `/health`, to the consensus actor.
    pub status: Recipient<GetStatus>,
    /// `?consistency=local` reads, straight to the applier.
    pub local_query: Recipient<Query>,
    /// Peer traffic counters for `/metrics`, from the network actor (optional).
    pub network_stats: Option<Recipient<GetNetworkStats>>,
    /// `POST /v1/snapshot`, straight to the applier: a snapshot is this node's own, so the
    /// request is never forwarded to the leader.
    pub take_snapshot: Recipient<TakeSnapshot>,
}

/// The API's live metrics (responses, request latency), shared by every worker.
pub use crate::metrics::http::ApiCounters;

/// One per HTTP worker (the forwarder's connection pool lives on the worker's runtime).
#[derive(Clone)]
pub struct ApiState {
    pub node_id: NodeId,
    pub ports: ApiPorts,
    pub forwarder: Forwarder,
    /// A write not seen committed within this time is answered `504`.
    pub request_timeout: Duration,
    /// Values (and CAS values) above this size are refused with `413`.
    pub max_value_bytes: usize,
    /// The consensus actor's live metrics, when wired to a real `RaftActor`.
    pub raft_metrics: Option<Arc<RaftMetrics>>,
    /// The storage actor's live metrics (fsync latency, group sizes), when wired.
    pub storage_metrics: Option<Arc<storage_actor::StorageMetrics>>,
    pub counters: ApiCounters,
    /// The applier's checkpoints (served to peers) and the node's alarms (which refuse
    /// writes and linearizable reads while raised).
    pub consistency: ConsistencyState,
    /// This node's snapshots: `GET /v1/snapshot` streams the newest, `/v1/status` describes it.
    pub snapshot_store: Arc<dyn SnapshotStore>,
    /// The applier's snapshot counters (taken, restored, last write duration), when wired.
    pub snapshot_metrics: Option<Arc<SnapshotMetrics>>,
    /// The write-ahead log's directory, whose segment files' sizes are the log's size in
    /// bytes; `None` for the memory engine (nothing on disk).
    pub wal_directory: Option<PathBuf>,
}

impl ApiState {
    /// The `413` for a value (or a body holding one) over `max_value_bytes`.
    pub fn payload_too_large(&self) -> ApiError {
        ApiError::PayloadTooLarge {
            limit_bytes: self.max_value_bytes,
        }
    }

    /// `503` while an alarm is raised: a node that knows its state differs from a peer's must
    /// not take writes into it nor answer for it as linearizable.
    pub fn refuse_when_alarmed(&self) -> Result<(), ApiError> {
        match self.consistency.alarms.corruption() {
            Some(alarm) => Err(ApiError::CorruptionAlarm { alarm }),
            None => Ok(()),
        }
    }
}
