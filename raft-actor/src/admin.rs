//! The consensus actor's admin requests: membership change, leadership transfer, and the
//! configuration in force ([`raft_proto::admin`]).
//!
//! The core appends a change and hands over leadership; this module keeps the client waiting
//! until the outcome is known, checking after every flush:
//!
//! - a change is complete once the committed configuration is at or after the change's first
//!   entry and not joint (the leader leaves the joint configuration on its own). If another
//!   entry replaced the change's first entry, the change did not happen. A node that stops
//!   leading keeps waiting as a follower (the next leader finishes a joint change), up to
//!   [`ADMIN_TIMEOUT`], after which the outcome is unknown.
//! - a transfer is complete once the target leads; it failed once this node leads with no
//!   transfer in progress (the core gave up after an election timeout) or another node leads.
//!
//! The configuration in force is also published on a `watch` channel after every flush that
//! changed it, so the node can point its network and its request forwarding at the members.

use crate::raft_actor::RaftActor;
use actix::{Context, Handler, MessageResult};
use raft_core::RequestError;
use raft_proto::admin::{
    AdminError, AdminResponder, ChangeMembership, GetMembership, MemberProgressRow,
    MembershipStatus, TransferLeadership,
};
use raft_types::{LogId, LogIndex, Membership, NodeId, Role};
use std::time::Duration;

/// How long a client waits for a change or a transfer before its outcome is reported unknown.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A change this node started, whose client waits for it to complete.
pub(crate) struct PendingChange {
    started: LogId,
    responder: AdminResponder<LogIndex>,
    deadline_tick: u64,
}

/// A transfer this node started, whose client waits for the target to lead.
pub(crate) struct PendingTransfer {
    target: NodeId,
    responder: AdminResponder<NodeId>,
    deadline_tick: u64,
}

/// The configuration in force with the `LogId` it came from, as published to the node.
pub type MembershipInForce = (LogId, Membership);

/// What an admin client is told when the core refuses its request (nothing was done).
fn admin_error(error: RequestError) -> AdminError {
    match error {
        RequestError::NotLeader { leader_hint } => AdminError::NotLeader { leader_hint },
        RequestError::Halted => AdminError::Unavailable {
            reason: "the node stopped on a divergence".to_string(),
        },
        RequestError::LeadershipTransferInProgress { target } => {
            AdminError::TransferInProgress { target }
        }
        RequestError::NotAVoter { id } => AdminError::NotAVoter { id },
        RequestError::NoTransferTarget => AdminError::NoTransferTarget,
        RequestError::Membership(refusal) => AdminError::Refused(refusal),
    }
}

impl RaftActor {
    fn deadline_tick(&self) -> u64 {
        let ticks = ADMIN_TIMEOUT.as_nanos() / self.config.tick_interval.as_nanos().max(1);
        self.ticks + ticks as u64
    }

    /// Refusal shared by every admin request before the core sees it.
    fn admin_refusal(&self) -> Option<AdminError> {
        if self.shutting_down() {
            return Some(AdminError::Unavailable {
                reason: "the node is shutting down".to_string(),
            });
        }
        if self.raft.is_removed() {
            return Some(AdminError::Unavailable {
                reason: "this node was removed from the cluster".to_string(),
            });
        }
        None
    }

    /// After every flush: answers the admin requests whose outcome is now known, and
    /// publishes the configuration in force if it changed.
    pub(crate) fn settle_admin_requests(&mut self) {
        if let Some(pending) = self.pending_change.take() {
            match self.change_outcome(&pending) {
                Some(outcome) => {
                    let _ = pending.responder.send(outcome);
                }
                None => self.pending_change = Some(pending),
            }
        }
        if let Some(pending) = self.pending_transfer.take() {
            match self.transfer_outcome(&pending) {
                Some(outcome) => {
                    let _ = pending.responder.send(outcome);
                }
                None => self.pending_transfer = Some(pending),
            }
        }
        let in_force = self.raft.membership_with_log_id();
        if self.membership_watch.borrow().0 != in_force.0 {
            let in_force = in_force.clone();
            tracing::info!(id = %self.raft.id(), config_index = %in_force.0.index,
                membership = %in_force.1, "configuration in force changed");
            self.membership_watch.send_replace(in_force);
        }
    }

    fn change_outcome(&self, pending: &PendingChange) -> Option<Result<LogIndex, AdminError>> {
        let started = pending.started;
        let (committed_id, committed) = self.raft.committed_membership();
        if committed_id.index >= started.index && !committed.is_joint() {
            return Some(Ok(committed_id.index));
        }
        if let Some(held) = self.raft.log().log_id_at(started.index) {
            if held != started {
                return Some(Err(AdminError::Unavailable {
                    reason: format!(
                        "the change's entry {started} was replaced by {held} from a new leader: \
                         the change did not happen"
                    ),
                }));
            }
        }
        if self.ticks >= pending.deadline_tick {
            return Some(Err(AdminError::OutcomeUnknown {
                reason: format!(
                    "the change starting at {started} did not complete within {ADMIN_TIMEOUT:?}"
                ),
            }));
        }
        None
    }

    fn transfer_outcome(&self, pending: &PendingTransfer) -> Option<Result<NodeId, AdminError>> {
        let target = pending.target;
        match (self.raft.role(), self.raft.leader_id()) {
            (Role::Leader, _) if self.raft.leadership_transfer_target() == Some(target) => {}
            (Role::Leader, _) => {
                return Some(Err(AdminError::TransferFailed {
                    target,
                    reason: "the target did not win an election within an election timeout; \
                             this node still leads"
                        .to_string(),
                }))
            }
            (_, Some(leader)) if leader == target => return Some(Ok(target)),
            (_, Some(leader)) => {
                return Some(Err(AdminError::TransferFailed {
                    target,
                    reason: format!("node {leader} leads instead"),
                }))
            }
            (_, None) => {}
        }
        if self.ticks >= pending.deadline_tick {
            return Some(Err(AdminError::TransferFailed {
                target,
                reason: format!("no leader within {ADMIN_TIMEOUT:?}"),
            }));
        }
        None
    }

    /// Answers every waiting admin request: the node is stopping.
    pub(crate) fn abandon_admin_requests(&mut self) {
        if let Some(pending) = self.pending_change.take() {
            let _ = pending.responder.send(Err(AdminError::OutcomeUnknown {
                reason: "the node stopped before the change completed".to_string(),
            }));
        }
        if let Some(pending) = self.pending_transfer.take() {
            let _ = pending.responder.send(Err(AdminError::TransferFailed {
                target: pending.target,
                reason: "the node stopped".to_string(),
            }));
        }
    }

    fn membership_status(&self) -> MembershipStatus {
        let (log_id, membership) = self.raft.membership_with_log_id().clone();
        let tick_interval = self.config.tick_interval;
        let progress = self.raft.member_progress().map(|rows| {
            rows.into_iter()
                .map(|row| MemberProgressRow {
                    id: row.id,
                    voter: row.voter,
                    match_index: row.match_index,
                    last_contact: row
                        .ticks_since_contact
                        .map(|ticks| tick_interval.saturating_mul(ticks as u32)),
                })
                .collect()
        });
        MembershipStatus {
            config_index: log_id.index,
            committed: log_id.index <= self.raft.commit_index(),
            membership,
            leader_id: self.raft.leader_id(),
            leader_last_index: (self.raft.role() == Role::Leader)
                .then(|| self.raft.last_log_id().index),
            progress,
            removed: self.raft.is_removed(),
        }
    }
}

impl Handler<ChangeMembership> for RaftActor {
    type Result = ();

    fn handle(&mut self, message: ChangeMembership, ctx: &mut Context<Self>) {
        if let Some(refusal) = self.admin_refusal() {
            let _ = message.responder.send(Err(refusal));
            return;
        }
        match self.raft.change_membership(message.change) {
            Ok(started) => {
                // The core takes one change at a time, so no other change waits here.
                if let Some(previous) = self.pending_change.take() {
                    let _ = previous.responder.send(Err(AdminError::OutcomeUnknown {
                        reason: "a later change replaced this one's wait".to_string(),
                    }));
                }
                self.pending_change = Some(PendingChange {
                    started,
                    responder: message.responder,
                    deadline_tick: self.deadline_tick(),
                });
                self.input_handled(ctx);
            }
            Err(error) => {
                let _ = message.responder.send(Err(admin_error(error)));
            }
        }
    }
}

impl Handler<TransferLeadership> for RaftActor {
    type Result = ();

    fn handle(&mut self, message: TransferLeadership, ctx: &mut Context<Self>) {
        if let Some(refusal) = self.admin_refusal() {
            let _ = message.responder.send(Err(refusal));
            return;
        }
        match self.raft.transfer_leadership(message.to) {
            Ok(target) if target == self.raft.id() => {
                let _ = message.responder.send(Ok(target));
            }
            Ok(target) => {
                self.pending_transfer = Some(PendingTransfer {
                    target,
                    responder: message.responder,
                    deadline_tick: self.deadline_tick(),
                });
                self.input_handled(ctx);
            }
            Err(error) => {
                let _ = message.responder.send(Err(admin_error(error)));
            }
        }
    }
}

impl Handler<GetMembership> for RaftActor {
    type Result = MessageResult<GetMembership>;

    fn handle(&mut self, _message: GetMembership, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.membership_status())
    }
}
