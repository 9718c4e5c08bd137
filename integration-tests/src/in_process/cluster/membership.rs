//! Membership change on an [`InProcessCluster`]: servers that join after the start, and the
//! admin requests (`ChangeMembership`, `TransferLeadership`, `GetMembership`) sent to a node's
//! consensus actor as the node's admin API sends them.

use super::*;
use raft_proto::admin::{
    AdminError, ChangeMembership, GetMembership, MembershipStatus, TransferLeadership,
};
use raft_types::{MemberAddress, MembershipChange};

impl InProcessCluster {
    /// Every node of the cluster, those that joined later included, crashed or not.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.borrow().keys().copied().collect()
    }

    /// Starts a new node with the next unused id, empty disks and no configuration: it waits
    /// for a leader to add it (`MembershipChange::AddLearner`) and never campaigns until it is
    /// a voter. Returns its id.
    pub fn add_joining_node(&self) -> NodeId {
        let id = NodeId(self.node_ids().last().map_or(0, |last| last.0) + 1);
        self.nodes
            .borrow_mut()
            .insert(id, NodeSlot::fresh(id, self.seed, self.disk_model));
        self.joined.borrow_mut().insert(id);
        self.boot(id);
        id
    }

    /// An address for `id` (the simulated network routes by id; the address only travels in
    /// the configuration).
    pub fn address_of(id: NodeId) -> MemberAddress {
        MemberAddress {
            peer_addr: format!("127.0.0.{}:7000", 10 + id.0),
            client_addr: format!("127.0.0.{}:8000", 10 + id.0),
        }
    }

    /// Asks `node` for `change`; answered once complete (or refused), within
    /// [`raft_actor::ADMIN_TIMEOUT`] of virtual time and a little more.
    pub async fn change_membership(
        &self,
        node: NodeId,
        change: MembershipChange,
    ) -> Result<LogIndex, AdminError> {
        let Some(raft) = self.slot_running(node, |running| running.raft.clone()) else {
            return Err(AdminError::Unavailable {
                reason: format!("node {node} is crashed"),
            });
        };
        let (responder, answer) = oneshot::channel();
        raft.do_send(ChangeMembership { change, responder });
        answer.await.unwrap_or_else(|_| {
            Err(AdminError::OutcomeUnknown {
                reason: format!("node {node} stopped before answering"),
            })
        })
    }

    /// Asks `node` to hand leadership to `to` (or the most up-to-date voter).
    pub async fn transfer_leadership(
        &self,
        node: NodeId,
        to: Option<NodeId>,
    ) -> Result<NodeId, AdminError> {
        let Some(raft) = self.slot_running(node, |running| running.raft.clone()) else {
            return Err(AdminError::Unavailable {
                reason: format!("node {node} is crashed"),
            });
        };
        let (responder, answer) = oneshot::channel();
        raft.do_send(TransferLeadership { to, responder });
        answer.await.unwrap_or_else(|_| {
            Err(AdminError::TransferFailed {
                target: to.unwrap_or(node),
                reason: format!("node {node} stopped before answering"),
            })
        })
    }

    /// The configuration in force on `node`, or `None` while it is crashed.
    pub async fn membership(&self, node: NodeId) -> Option<MembershipStatus> {
        let raft = self.slot_running(node, |running| running.raft.clone())?;
        raft.send(GetMembership).await.ok()
    }
}
