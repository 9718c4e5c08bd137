//! Membership change (thesis chapter 4) and leadership transfer (thesis §3.10).
//!
//! - The configuration in force is the last one in the log, committed or not (§4.1); the log
//!   keeps it ([`RaftLog::membership`](crate::RaftLog::membership)), so appends, truncations
//!   and snapshot installs move it with the entries.
//! - A leader accepts one change at a time, and only once it has committed an entry of its own
//!   term (before that it cannot know whether its predecessor left a change unfinished:
//!   `LeaderNotReady`).
//! - A change of voters enters the joint configuration C_old,new; once that commits the
//!   leader appends C_new on its own, and so does any later leader that finds the joint
//!   configuration committed in its log (§4.3).
//! - Learners receive the log and vote in nothing. A learner is promoted only once caught up:
//!   within `learner_catch_up_max_lag` entries of the leader, its last catch-up round
//!   shorter than an election timeout, and heard from within one (§4.2.1).
//! - A server the configuration removed is refused and told so ([`RaftMessage::MemberRemoved`]),
//!   which stops it campaigning. A leader that is no longer a voter once C_new commits hands
//!   leadership to the most up-to-date voter and steps down.
//! - Leadership transfer: the leader stops taking proposals, brings the target up to date,
//!   sends it TimeoutNow (the target campaigns at once, and voters grant it despite the
//!   leader lease), and gives up after an election timeout.

use crate::error::RequestError;
use crate::raft::{LeadershipTransfer, Raft, RoleState};
use raft_types::{
    EntryPayload, LogId, LogIndex, MemberRemovedNotice, Membership, MembershipChange,
    MembershipChangeError, NodeId, RaftMessage, Role, TimeoutNowRequest,
};

/// What a leader knows about one member, for operators (`GET /v1/members`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberProgress {
    /// The member.
    pub id: NodeId,
    /// Whether it votes (in either half of a joint configuration).
    pub voter: bool,
    /// The highest index known replicated on it (the leader's own durable index for itself).
    pub match_index: LogIndex,
    /// Ticks since it last answered; `Some(0)` for the leader itself, `None` when it has not
    /// answered in this term.
    pub ticks_since_contact: Option<u64>,
}

impl Raft {
    // ----- inputs -------------------------------------------------------------------------

    /// Asks the leader to change the configuration. Returns the `LogId` of the entry that
    /// starts the change: the new configuration, or the joint one for a change of voters,
    /// which the leader leaves on its own once it commits. The change is complete when
    /// [`Raft::committed_membership`] is at or after that entry and not joint.
    pub fn change_membership(&mut self, change: MembershipChange) -> Result<LogId, RequestError> {
        self.check_leader_for_admin()?;
        let (in_force_id, in_force) = self.log.membership().clone();
        if !self.committed_in_current_term() {
            return Err(MembershipChangeError::LeaderNotReady.into());
        }
        if in_force_id.index > self.commit_index || in_force.is_joint() {
            return Err(MembershipChangeError::ChangeInProgress.into());
        }
        let next = in_force.apply(&change)?;
        if let MembershipChange::PromoteLearner { id } = change {
            self.check_learner_caught_up(id)?;
        }
        if self.config.strict_reconfiguration_check && next.voters != in_force.voters {
            self.check_reachable_voters(&next)?;
        }
        tracing::info!(id = %self.config.id, change = %change_summary(&change), from = %in_force,
            to = %next, "membership change");
        let log_id = self.append_membership(next);
        Ok(log_id)
    }

    /// Asks the leader to hand leadership to `to`, or to the most up-to-date other voter.
    /// Returns the target. Proposals are refused until the transfer ends: when the target
    /// wins (this server then follows it) or after an election timeout (it stays leader).
    pub fn transfer_leadership(&mut self, to: Option<NodeId>) -> Result<NodeId, RequestError> {
        self.check_leader_for_admin()?;
        let own_id = self.config.id;
        let target = match to {
            Some(id) if id == own_id => return Ok(own_id),
            Some(id) if self.membership().is_voter(id) => id,
            Some(id) => return Err(RequestError::NotAVoter { id }),
            None => self
                .most_up_to_date_voter()
                .ok_or(RequestError::NoTransferTarget)?,
        };
        self.start_leadership_transfer(target, false);
        Ok(target)
    }

    // ----- queries ------------------------------------------------------------------------

    /// The configuration in force (the last in the log, committed or not).
    pub fn membership(&self) -> &Membership {
        &self.log.membership().1
    }

    /// The configuration in force with the `LogId` of the entry (or snapshot) it came from.
    pub fn membership_with_log_id(&self) -> &(LogId, Membership) {
        self.log.membership()
    }

    /// The latest committed configuration with the `LogId` it came from.
    pub fn committed_membership(&self) -> &(LogId, Membership) {
        self.log.membership_at(self.commit_index)
    }

    /// Whether this server was removed from the cluster: its configuration says so, or a
    /// member told it and no leader has replicated to it since.
    pub fn is_removed(&self) -> bool {
        self.told_removed || self.membership().removed.contains(&self.config.id)
    }

    /// The server leadership is being handed to, while a transfer is in progress.
    pub fn leadership_transfer_target(&self) -> Option<NodeId> {
        self.leader_state()
            .and_then(|leader_state| leader_state.transfer.as_ref())
            .map(|transfer| transfer.target)
    }

    /// One row per member of the configuration in force, when this server leads.
    pub fn member_progress(&self) -> Option<Vec<MemberProgress>> {
        let leader_state = self.leader_state()?;
        let membership = self.membership();
        let rows = membership
            .all_members()
            .into_iter()
            .map(|id| {
                let (match_index, ticks_since_contact) = if id == self.config.id {
                    (self.persisted_index, Some(0))
                } else {
                    leader_state
                        .progress
                        .get(&id)
                        .map_or((LogIndex::ZERO, None), |progress| {
                            (progress.match_index, progress.ticks_since_contact)
                        })
                };
                MemberProgress {
                    id,
                    voter: membership.is_voter(id),
                    match_index,
                    ticks_since_contact,
                }
            })
            .collect();
        Some(rows)
    }

    // ----- the rules ----------------------------------------------------------------------

    /// Whether this server may start an election: nobody told it it was removed, and it is a
    /// voter of the configuration in force, or of the one before it while the one in force is
    /// not known committed.
    ///
    /// The second case is a leader that removed itself and crashed before its removal
    /// committed: its log may be ahead of every remaining voter's, and one of them may need its
    /// vote (removing one server of two), which it refuses to a less up-to-date candidate. If
    /// it could not campaign either, no leader could ever be elected. It campaigns under the
    /// configuration in force (majorities of the others), commits its removal and hands over.
    pub(crate) fn may_campaign(&self) -> bool {
        if self.told_removed {
            return false;
        }
        let own_id = self.config.id;
        let (in_force_id, in_force) = self.log.membership();
        in_force.is_voter(own_id)
            || (in_force_id.index > self.commit_index
                && self
                    .log
                    .previous_membership()
                    .is_some_and(|(_, previous)| previous.is_voter(own_id)))
    }

    /// Every voter of the configuration in force but this server: whom to ask for votes.
    pub(crate) fn other_voters(&self) -> Vec<NodeId> {
        let own_id = self.config.id;
        self.membership()
            .all_voters()
            .into_iter()
            .filter(|id| *id != own_id)
            .collect()
    }

    fn check_leader_for_admin(&self) -> Result<(), RequestError> {
        if self.halted.is_some() {
            return Err(RequestError::Halted);
        }
        if self.role() != Role::Leader {
            return Err(RequestError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        if let Some(target) = self.leadership_transfer_target() {
            return Err(RequestError::LeadershipTransferInProgress { target });
        }
        Ok(())
    }

    fn check_learner_caught_up(&self, id: NodeId) -> Result<(), MembershipChangeError> {
        let last_index = self.log.last_index();
        let progress = self.progress(id);
        let within_lag =
            progress.match_index.0 + self.config.learner_catch_up_max_lag >= last_index.0;
        let timeout = self.config.election_timeout_min_ticks;
        let quick_round = progress
            .catch_up
            .last_round_ticks
            .is_some_and(|ticks| ticks < timeout);
        if within_lag && quick_round && progress.heard_within(timeout) {
            return Ok(());
        }
        Err(MembershipChangeError::LearnerNotReady {
            id,
            match_index: progress.match_index.0,
            last_index: last_index.0,
        })
    }

    /// The strict reconfiguration check: the new configuration's voters this leader heard
    /// from within an election timeout (itself included) must be a majority of them.
    fn check_reachable_voters(&self, next: &Membership) -> Result<(), MembershipChangeError> {
        let timeout = self.config.election_timeout_min_ticks;
        let reachable = next
            .voters
            .iter()
            .filter(|id| {
                **id == self.config.id
                    || self
                        .leader_state()
                        .and_then(|leader_state| leader_state.progress.get(id))
                        .is_some_and(|progress| progress.heard_within(timeout))
            })
            .count();
        let quorum = next.voters.len() / 2 + 1;
        if reachable >= quorum {
            return Ok(());
        }
        Err(MembershipChangeError::NotEnoughReachableVoters {
            reachable,
            voters: next.voters.len(),
            quorum,
        })
    }

    /// Leader: appends a configuration entry; it is in force from now on (§4.1), so the
    /// leader starts (or stops) replicating to the members it adds (or drops).
    fn append_membership(&mut self, membership: Membership) -> LogId {
        let log_id = self.append_to_own_log(EntryPayload::Membership(membership));
        self.track_members_in_force();
        log_id
    }

    /// Leader: one `Progress` per member of the configuration in force but itself. A new
    /// member is probed from the end of the log; a dropped one that the configuration
    /// removed is told so once the removal commits.
    fn track_members_in_force(&mut self) {
        let own_id = self.config.id;
        let members = self.membership().all_members();
        let removed = self.membership().removed.clone();
        let next_index = self.log.last_index().next();
        let leader_state = self.leader_state_mut();
        leader_state.progress.retain(|id, _| {
            let keep = members.contains(id);
            if !keep && removed.contains(id) {
                leader_state.removal_notices.insert(*id);
            }
            keep
        });
        for id in members {
            if id != own_id {
                leader_state
                    .progress
                    .entry(id)
                    .or_insert_with(|| crate::progress::Progress::new(next_index));
            }
        }
    }

    /// Leader, after its commit index advanced: leave a committed joint configuration, tell
    /// removed servers, and hand over leadership when it is no longer a voter.
    pub(crate) fn after_leader_commit(&mut self) {
        if self.role() != Role::Leader {
            return;
        }
        let (committed_id, committed) = self.committed_membership().clone();
        let in_force_id = self.log.membership().0;
        if committed.is_joint() && committed_id == in_force_id {
            let next = committed.leave_joint().expect("joint");
            tracing::info!(id = %self.config.id, to = %next, "leaving the joint configuration");
            self.append_membership(next);
        }
        let term = self.current_term;
        let leader_state = self.leader_state_mut();
        let notices: Vec<NodeId> = leader_state
            .removal_notices
            .iter()
            .copied()
            .filter(|id| committed.removed.contains(id))
            .collect();
        for id in &notices {
            leader_state.removal_notices.remove(id);
        }
        for id in notices {
            self.send(id, RaftMessage::MemberRemoved(MemberRemovedNotice { term }));
        }
        if !committed.is_joint()
            && !committed.is_voter(self.config.id)
            && self
                .leader_state()
                .is_some_and(|leader_state| leader_state.transfer.is_none())
        {
            match self.most_up_to_date_voter() {
                Some(target) => {
                    tracing::info!(id = %self.config.id, %target,
                        "no longer a voter: handing leadership over");
                    self.start_leadership_transfer(target, true);
                }
                None => self.become_follower(self.current_term, None),
            }
        }
    }

    /// The voter other than this server with the highest match index (among those heard from
    /// recently, when any are).
    fn most_up_to_date_voter(&self) -> Option<NodeId> {
        let leader_state = self.leader_state()?;
        let timeout = self.config.election_timeout_min_ticks;
        let own_id = self.config.id;
        self.membership()
            .voters
            .iter()
            .filter(|id| **id != own_id)
            .filter_map(|id| {
                leader_state
                    .progress
                    .get(id)
                    .map(|progress| (*id, progress))
            })
            .max_by_key(|(id, progress)| {
                (
                    progress.heard_within(timeout),
                    progress.match_index,
                    std::cmp::Reverse(*id),
                )
            })
            .map(|(id, _)| id)
    }

    fn start_leadership_transfer(&mut self, target: NodeId, stepping_down: bool) {
        tracing::info!(id = %self.config.id, term = %self.current_term, %target,
            "transferring leadership");
        self.leader_state_mut().transfer = Some(LeadershipTransfer {
            target,
            elapsed_ticks: 0,
            timeout_now_sent: false,
            stepping_down,
        });
        self.maybe_send_timeout_now();
    }

    /// Sends TimeoutNow once the transfer's target holds the whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self) {
        let last_index = self.log.last_index();
        let persisted_index = self.persisted_index;
        let Some(leader_state) = self.leader_state() else {
            return;
        };
        let Some(transfer) = &leader_state.transfer else {
            return;
        };
        let target = transfer.target;
        let caught_up = leader_state
            .progress
            .get(&target)
            .is_some_and(|progress| progress.match_index == last_index);
        // The leader's own copy must be durable too: the target's election needs voters whose
        // logs are no more up to date than its own, and this leader is one of them.
        if transfer.timeout_now_sent || !caught_up || persisted_index < last_index {
            return;
        }
        let term = self.current_term;
        let stepping_down = transfer.stepping_down;
        if let Some(transfer) = &mut self.leader_state_mut().transfer {
            transfer.timeout_now_sent = true;
        }
        self.send(target, RaftMessage::TimeoutNow(TimeoutNowRequest { term }));
        if stepping_down {
            // No longer a voter: the new leader will not replicate to this server, so it would
            // never hear the new term. It steps down now (thesis §4.2.2); if the TimeoutNow is
            // lost, the voters elect a leader after an election timeout.
            tracing::info!(id = %self.config.id, %target, "handed leadership over; stepping down");
            self.become_follower(self.current_term, None);
        }
    }

    /// Leader tick: a transfer that has not produced a new leader within an election timeout
    /// is abandoned; a leader that is no longer a voter steps down then anyway.
    pub(crate) fn tick_leadership_transfer(&mut self) {
        let timeout = self.config.election_timeout_max_ticks;
        let RoleState::Leader(leader_state) = &mut self.role_state else {
            return;
        };
        let Some(transfer) = &mut leader_state.transfer else {
            return;
        };
        transfer.elapsed_ticks += 1;
        if transfer.elapsed_ticks < timeout {
            return;
        }
        let transfer = leader_state.transfer.take().expect("checked above");
        tracing::warn!(id = %self.config.id, target = %transfer.target,
            "leadership transfer timed out");
        if transfer.stepping_down {
            self.become_follower(self.current_term, None);
        }
    }

    /// Thesis §3.10: the leader of this term asks this server to campaign now.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId, request: TimeoutNowRequest) {
        if request.term != self.current_term
            || self.role() != Role::Follower
            || self.leader_id != Some(from)
            || !self.may_campaign()
        {
            tracing::debug!(id = %self.config.id, %from, "ignoring TimeoutNow");
            return;
        }
        tracing::info!(id = %self.config.id, %from, "leadership handed over: campaigning now");
        self.campaign(true);
    }

    /// A member says this server was removed: stop campaigning (and leading) until a leader
    /// replicates to it again.
    pub(crate) fn handle_member_removed(&mut self, from: NodeId, _notice: MemberRemovedNotice) {
        if !self.told_removed {
            tracing::warn!(id = %self.config.id, %from,
                "told this server was removed from the cluster; it no longer campaigns");
        }
        self.told_removed = true;
        if self.role() != Role::Follower {
            self.become_follower(self.current_term, None);
        }
    }
}

fn change_summary(change: &MembershipChange) -> String {
    match change {
        MembershipChange::AddLearner { id, .. } => format!("add learner {id}"),
        MembershipChange::PromoteLearner { id } => format!("promote learner {id}"),
        MembershipChange::RemoveMember { id } => format!("remove {id}"),
    }
}
