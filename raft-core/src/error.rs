//! The one error a client-facing call into the core returns. It always means "nothing was
//! done": the shell may tell the client to retry (elsewhere, later, or not at all for a
//! refused membership change).

use raft_types::{MembershipChangeError, NodeId};

/// Why [`Raft::propose`](crate::Raft::propose), [`Raft::read_index`](crate::Raft::read_index),
/// [`Raft::change_membership`](crate::Raft::change_membership) or
/// [`Raft::transfer_leadership`](crate::Raft::transfer_leadership) refused a request; nothing
/// was appended or registered.
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
    /// The leader is handing leadership over (thesis §3.10) and takes no proposal meanwhile;
    /// retry shortly, at the new leader.
    #[error("leadership is being transferred to node {target}")]
    LeadershipTransferInProgress {
        /// The server leadership is being handed to.
        target: NodeId,
    },
    /// Leadership can only be handed to a voter of the configuration in force.
    #[error("node {id} is not a voter")]
    NotAVoter {
        /// The id asked for.
        id: NodeId,
    },
    /// There is no other voter to hand leadership to.
    #[error("no other voter to hand leadership to")]
    NoTransferTarget,
    /// The membership change was refused.
    #[error(transparent)]
    Membership(#[from] MembershipChangeError),
}
