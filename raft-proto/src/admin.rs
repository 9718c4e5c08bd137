//! Cluster administration through the consensus actor: membership change, leadership
//! transfer, and what the configuration in force is. The node's admin API (`/v1/members`,
//! `/v1/leader/transfer`) sends these; so can a test or a tool.
//!
//! A change is answered once it is complete: its entry committed and, for a change of voters,
//! the joint configuration it entered left (the leader appends that entry on its own). A
//! transfer is answered once the target leads.

use actix::Message;
use raft_types::{LogIndex, Membership, MembershipChange, MembershipChangeError, NodeId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where the answer to an admin request goes.
pub type AdminResponder<T> = tokio::sync::oneshot::Sender<Result<T, AdminError>>;

/// Change the configuration. Answered with the index of the entry that completed the change
/// (the new configuration, committed), or why it was refused or may not have happened.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ChangeMembership {
    /// The change.
    pub change: MembershipChange,
    /// Where the answer goes.
    pub responder: AdminResponder<LogIndex>,
}

/// Hand leadership to `to`, or to the most up-to-date other voter when `None`. Answered with
/// the new leader once it leads.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TransferLeadership {
    /// The voter to hand leadership to.
    pub to: Option<NodeId>,
    /// Where the answer goes.
    pub responder: AdminResponder<NodeId>,
}

/// Ask for the configuration in force and, on the leader, each member's replication progress.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "MembershipStatus")]
pub struct GetMembership;

/// The answer to [`GetMembership`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipStatus {
    /// The index of the entry (or snapshot) the configuration in force came from.
    pub config_index: LogIndex,
    /// The configuration in force (the last in this node's log, committed or not).
    pub membership: Membership,
    /// Whether that configuration is committed.
    pub committed: bool,
    /// The leader as this node knows it.
    pub leader_id: Option<NodeId>,
    /// The leader's last log index, when this node leads (what lag is measured against).
    pub leader_last_index: Option<LogIndex>,
    /// One row per member, when this node leads.
    pub progress: Option<Vec<MemberProgressRow>>,
    /// Whether this node was removed from the cluster.
    pub removed: bool,
}

/// What the leader knows about one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberProgressRow {
    /// The member.
    pub id: NodeId,
    /// Whether it votes.
    pub voter: bool,
    /// The highest index known replicated on it.
    pub match_index: LogIndex,
    /// How long since it last answered the leader (zero for the leader); `None` when it has not
    /// answered this leader.
    pub last_contact: Option<Duration>,
}

/// Why an admin request got no result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AdminError {
    /// This node is not the leader; nothing was done.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node knows of, for the client to retry at.
        leader_hint: Option<NodeId>,
    },
    /// The change was refused; nothing was done.
    #[error(transparent)]
    Refused(#[from] MembershipChangeError),
    /// A leadership transfer is in progress; nothing was done. Retry once it ends.
    #[error("leadership is being transferred to node {target}")]
    TransferInProgress {
        /// The transfer's target.
        target: NodeId,
    },
    /// Leadership can only go to a voter; nothing was done.
    #[error("node {id} is not a voter")]
    NotAVoter {
        /// The id asked for.
        id: NodeId,
    },
    /// There is no other voter to hand leadership to; nothing was done.
    #[error("no other voter to hand leadership to")]
    NoTransferTarget,
    /// The transfer ended without the target leading (it did not win within an election
    /// timeout, or another node won).
    #[error("leadership transfer to node {target} did not complete: {reason}")]
    TransferFailed {
        /// The transfer's target.
        target: NodeId,
        /// What happened instead.
        reason: String,
    },
    /// Refused before anything was done (shutting down, stopped, removed).
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The change entered the log, but this node lost track of it (leadership lost, stopped,
    /// timed out): it may or may not complete.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown {
        /// Why.
        reason: String,
    },
}
