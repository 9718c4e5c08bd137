//! Client requests to the consensus actor, and the errors a client can see.
//!
//! The error variants map one-to-one onto the HTTP contract: `NotLeader` and `Unavailable`
//! mean *definitely not applied* (HTTP 503); `OutcomeUnknown` means the command entered the log
//! and may still be applied (HTTP 504).

use actix::Message;
pub use raft_types::Role;
use raft_types::{LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

/// Where the answer to a client request goes: the state machine's output bytes, or an error.
pub type ClientResponder = tokio::sync::oneshot::Sender<Result<Vec<u8>, ClientError>>;

/// Why a client request got no result; each variant says whether the command may still be
/// applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ClientError {
    /// This node is not the leader; nothing was done. `leader_hint` is the leader it knows of.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node knows of, if any, for the client to retry at.
        leader_hint: Option<NodeId>,
    },
    /// Refused before entering the log (shutting down, overloaded); nothing was done.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Why, in words, for the client and the log.
        reason: String,
    },
    /// The command entered the log but this node lost track of it (leadership lost, timeout);
    /// it may or may not be applied.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown {
        /// Why, in words, for the client and the log.
        reason: String,
    },
}

/// Propose a state-machine command. Answered through `responder` once the entry is committed
/// and applied (with the state machine's output) or with a `ClientError`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Propose {
    /// The command, opaque to everything but the state machine.
    pub command: Vec<u8>,
    /// Where the state machine's output (or the error) goes.
    pub responder: ClientResponder,
}

/// A linearizable read (ReadIndex, thesis §6.4). The query is run by the applier once this
/// node has confirmed its leadership and applied through the read index.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Read {
    /// The read-only query, opaque to everything but the state machine.
    pub query: Vec<u8>,
    /// Where the query's result (or the error) goes.
    pub responder: ClientResponder,
}

/// Ask the consensus actor for its current status.
#[derive(Debug, Message)]
#[rtype(result = "RaftStatus")]
pub struct GetStatus;

/// A snapshot of the consensus state, as served by `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// This node's id.
    pub id: NodeId,
    /// The role this node plays in its current term.
    pub role: Role,
    /// The latest term this node has seen.
    pub term: Term,
    /// The leader of the current term as far as this node knows (itself when leader).
    pub leader_id: Option<NodeId>,
    /// The highest index this node knows to be committed.
    pub commit_index: LogIndex,
    /// The highest index the applier reported applied.
    pub last_applied: LogIndex,
    /// The index of the last entry in this node's log, durable or not.
    pub last_log_index: LogIndex,
    /// The voting members of the configuration in force (both halves of a joint one), in
    /// ascending id order.
    pub members: Vec<NodeId>,
    /// Whether this node was removed from the cluster: it serves no writes and no
    /// linearizable reads, and never campaigns.
    pub removed: bool,
}

/// Ask the consensus actor to stop taking requests and finish in-flight durable work.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;
