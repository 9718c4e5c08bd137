//! Client requests to the consensus actor, and the errors a client can see.
//!
//! The error variants map one-to-one onto the HTTP contract: `NotLeader` and `Unavailable`
//! mean *definitely not applied* (HTTP 503); `OutcomeUnknown` means the command entered the log
//! and may still be applied (HTTP 504).

use actix::Message;
use raft_types::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

/// Where the answer to a client request goes: the state machine's output bytes, or an error.
pub type ClientResponder = tokio::sync::oneshot::Sender<Result<Vec<u8>, ClientError>>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ClientError {
    /// This node is not the leader; nothing was done. `leader_hint` is the leader it knows of.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    /// Refused before entering the log (shutting down, overloaded); nothing was done.
    #[error("unavailable: {reason}")]
    Unavailable { reason: String },
    /// The command entered the log but this node lost track of it (leadership lost, timeout);
    /// it may or may not be applied.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown { reason: String },
}

/// Propose a state-machine command. Answered through `responder` once the entry is committed
/// and applied (with the state machine's output) or with a `ClientError`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Propose {
    pub command: Vec<u8>,
    pub responder: ClientResponder,
}

/// A linearizable read (ReadIndex, thesis §6.4). The query is run by the applier once this
/// node has confirmed its leadership and applied through the read index.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Read {
    pub query: Vec<u8>,
    pub responder: ClientResponder,
}

/// Ask the consensus actor for its current status.
#[derive(Debug, Message)]
#[rtype(result = "RaftStatus")]
pub struct GetStatus;

/// A snapshot of the consensus state, as served by `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader_id: Option<NodeId>,
    pub commit_index: LogIndex,
    pub last_applied: LogIndex,
    pub last_log_index: LogIndex,
    pub members: Vec<NodeId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Ask the consensus actor to stop taking requests and finish in-flight durable work.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
