//! Errors a client-facing call into the core can return. All mean "nothing was done": the
//! shell may tell the client to retry elsewhere.

use raft_types::NodeId;

/// Why [`Raft::propose`](crate::Raft::propose) refused a command; nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This server is not the leader.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this server knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// The server stopped on a divergence (see `Divergence`) and takes nothing new.
    #[error("stopped: a committed entry differs from a peer's")]
    Halted,
}

/// Why [`Raft::read_index`](crate::Raft::read_index) refused a read; nothing was registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// This server is not the leader.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this server knows of, if any.
        leader_hint: Option<NodeId>,
    },
    /// The server stopped on a divergence (see `Divergence`) and serves nothing.
    #[error("stopped: a committed entry differs from a peer's")]
    Halted,
}
