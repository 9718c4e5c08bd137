//! The one error a client-facing call into the core returns. It always means "nothing was
//! done": the shell may tell the client to retry elsewhere.

use raft_types::NodeId;

/// Why [`Raft::propose`](crate::Raft::propose) or [`Raft::read_index`](crate::Raft::read_index)
/// refused a request; nothing was appended or registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
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
