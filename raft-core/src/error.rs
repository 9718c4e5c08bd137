//! Errors a client-facing call into the core can return. All mean "nothing was done": the
//! shell may tell the client to retry elsewhere.

use raft_types::NodeId;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    /// The server stopped on a divergence (see `Divergence`) and takes nothing new.
    #[error("stopped: a committed entry differs from a peer's")]
    Halted,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    /// The server stopped on a divergence (see `Divergence`) and serves nothing.
    #[error("stopped: a committed entry differs from a peer's")]
    Halted,
}
