//! Leader election (§5.2) with the election restriction (§5.4.1).

use crate::progress::Progress;
use crate::raft::{CandidateState, FollowerState, LeaderState, PreVoteState, Raft, RoleState};
use raft_types::{
    EntryPayload, NodeId, RaftMessage, RequestVoteRequest, RequestVoteResponse, Role,
};
use rand_chacha::rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet};

impl Raft {
    /// Thesis §9.6: before disturbing anyone, ask whether a majority would vote for this
    /// server in the next term. Nothing is persisted and the term does not move.
    pub(crate) fn start_pre_vote(&mut self) {
        let term = self.current_term.next();
        // A candidate whose election failed goes back to asking first, as a follower; its
        // vote in the current term stays recorded.
        self.role_state = RoleState::Follower(FollowerState {
            pre_vote: Some(PreVoteState {
                term,
                votes_granted: BTreeSet::new(),
            }),
        });
        self.leader_id = None;
        self.reset_election_timer();
        tracing::debug!(id = %self.config.id, %term, "starting pre-vote");
        let request = RequestVoteRequest {
            term,
            candidate_id: self.config.id,
            last_log_id: self.log.last_log_id(),
            leadership_transfer: false,
        };
        for peer in self.other_voters() {
            self.send(peer, RaftMessage::PreVote(request.clone()));
        }
        // A single-server cluster is its own majority.
        self.maybe_win_pre_vote();
    }

    /// See [`Raft::peer_connection_lost`]. The delay is at least two ticks, so the other
    /// followers, who saw the same connections close, have dropped the lease too before the
    /// pre-vote reaches them. Every follower saw the loss at the same moment, so a random delay
    /// alone would often make two of them ask at once and split the vote: the delay is one
    /// heartbeat interval per voter of lower id (the lost leader aside), plus a random part
    /// within one interval. The lowest id asks first; if its log is behind, the next one's
    /// turn comes an interval later.
    pub(crate) fn leader_connection_lost(&mut self, peer: NodeId) {
        let RoleState::Follower(FollowerState { pre_vote: None }) = &self.role_state else {
            return;
        };
        if !self.config.pre_vote || self.leader_id != Some(peer) || !self.may_campaign() {
            return;
        }
        tracing::info!(id = %self.config.id, leader = %peer, term = %self.current_term,
            "lost the connection to the leader; asking for pre-votes soon");
        let lease_expired = self.config.election_timeout_min_ticks;
        let own_id = self.config.id;
        let rank = self
            .other_voters()
            .into_iter()
            .filter(|voter| *voter != peer && *voter < own_id)
            .count() as u64;
        let interval = self.config.heartbeat_interval_ticks.max(1);
        let delay = 2 + rank * interval + self.random.next_u64() % interval;
        // The schedule replaces the timer even where that was due sooner: keeping the sooner
        // one would bring back the simultaneous candidates the schedule is there to avoid.
        self.election_elapsed = self.election_elapsed.max(lease_expired);
        self.randomized_election_timeout = self.election_elapsed + delay;
    }

    /// Grants a pre-vote when this server would grant the real vote in that term: the term
    /// is newer, the candidate's log is at least as up-to-date (§5.4.1), and no leader has
    /// been heard from within the minimum election timeout. Nothing changes here.
    pub(crate) fn handle_pre_vote(&mut self, from: NodeId, request: RequestVoteRequest) {
        let vote_granted = request.term > self.current_term
            && request.candidate_id == from
            && !self.in_leader_lease()
            && request
                .last_log_id
                .is_at_least_as_up_to_date_as(&self.log.last_log_id());
        let response = RequestVoteResponse {
            term: if vote_granted {
                request.term
            } else {
                self.current_term
            },
            vote_granted,
        };
        self.send(from, RaftMessage::PreVoteResponse(response));
    }

    pub(crate) fn handle_pre_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        let RoleState::Follower(FollowerState {
            pre_vote: Some(pre_vote_state),
        }) = &mut self.role_state
        else {
            return;
        };
        if response.vote_granted && response.term == pre_vote_state.term {
            pre_vote_state.votes_granted.insert(from);
            self.maybe_win_pre_vote();
        }
    }

    fn maybe_win_pre_vote(&mut self) {
        let RoleState::Follower(FollowerState {
            pre_vote: Some(pre_vote_state),
        }) = &self.role_state
        else {
            return;
        };
        let own_id = self.config.id;
        if self
            .membership()
            .is_quorum(|id| id == own_id || pre_vote_state.votes_granted.contains(&id))
        {
            // The election replaces the follower state, pre-vote round and all.
            self.start_election();
        }
    }

    /// Whether a leader was heard from within the minimum election timeout (or this server
    /// is the leader): while it holds, vote requests are not honoured.
    pub(crate) fn in_leader_lease(&self) -> bool {
        if !self.config.pre_vote {
            return false;
        }
        match self.role() {
            Role::Leader => true,
            Role::Candidate => false,
            Role::Follower => {
                self.leader_id.is_some()
                    && self.election_elapsed < self.config.election_timeout_min_ticks
            }
        }
    }

    /// §5.2: a follower (or candidate) whose election timeout elapsed increments its term,
    /// votes for itself and asks every peer for a vote. The RequestVotes are held until the
    /// new term and self-vote are durable, so a restarted server can never vote twice.
    pub(crate) fn start_election(&mut self) {
        self.campaign(false);
    }

    /// Starts an election now; with `leadership_transfer`, because the leader asked for it
    /// (TimeoutNow), so voters grant it even while they hear from that leader.
    pub(crate) fn campaign(&mut self, leadership_transfer: bool) {
        self.current_term = self.current_term.next();
        self.voted_for = Some(self.config.id);
        self.role_state = RoleState::Candidate(CandidateState::default());
        self.leader_id = None;
        self.pending_acknowledgements.clear();
        self.reset_election_timer();
        tracing::debug!(id = %self.config.id, term = %self.current_term, "starting election");
        self.persist_hard_state();
        let request = RequestVoteRequest {
            term: self.current_term,
            candidate_id: self.config.id,
            last_log_id: self.log.last_log_id(),
            leadership_transfer,
        };
        for peer in self.other_voters() {
            self.send(peer, RaftMessage::RequestVote(request.clone()));
        }
    }

    pub(crate) fn handle_request_vote(&mut self, from: NodeId, request: RequestVoteRequest) {
        // (A newer term was already adopted by `step`.) Figure 2, RequestVote rule 1: reply
        // false if term < currentTerm. Rule 2: grant if we have not voted for someone else in
        // this term and the candidate's log is at least as up-to-date as ours (§5.4.1).
        let vote_granted = request.term == self.current_term
            && request.candidate_id == from
            && self.voted_for.is_none_or(|voted| voted == from)
            && request
                .last_log_id
                .is_at_least_as_up_to_date_as(&self.log.last_log_id());
        if vote_granted && self.voted_for.is_none() {
            self.voted_for = Some(from);
            // The response below is held until this vote is durable.
            self.persist_hard_state();
        }
        if vote_granted {
            // Figure 2, followers: granting a vote resets the election timer.
            self.reset_election_timer();
        }
        let response = RequestVoteResponse {
            term: self.current_term,
            vote_granted,
        };
        self.send(from, RaftMessage::RequestVoteResponse(response));
    }

    pub(crate) fn handle_request_vote_response(
        &mut self,
        from: NodeId,
        response: RequestVoteResponse,
    ) {
        if response.term != self.current_term || !response.vote_granted {
            return;
        }
        if let RoleState::Candidate(candidate_state) = &mut self.role_state {
            candidate_state.votes_granted.insert(from);
            self.maybe_win_election();
        }
    }

    /// §5.2: a candidate that holds votes from a majority (its own counted once durable)
    /// becomes leader.
    pub(crate) fn maybe_win_election(&mut self) {
        let RoleState::Candidate(candidate_state) = &self.role_state else {
            return;
        };
        let own_vote_durable = self.hard_state_in_flight.is_none();
        let own_id = self.config.id;
        if self.membership().is_quorum(|id| {
            (id == own_id && own_vote_durable) || candidate_state.votes_granted.contains(&id)
        }) {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role(),
            Role::Candidate,
            "only a candidate becomes leader"
        );
        tracing::info!(id = %self.config.id, term = %self.current_term, "became leader");
        self.leader_id = Some(self.config.id);
        // A leader holds every committed entry (Leader Completeness): a snapshot it was
        // receiving as a follower is of no use to it, and installing one would replace the
        // log a leader is the source of. Later reports about it find no receipt and are
        // ignored.
        self.take_receipt();
        let next_index = self.log.last_index().next();
        let own_id = self.config.id;
        let progress: BTreeMap<NodeId, Progress> = self
            .membership()
            .all_members()
            .into_iter()
            .filter(|member| *member != own_id)
            .map(|peer| (peer, Progress::new(next_index)))
            .collect();
        self.role_state = RoleState::Leader(LeaderState {
            progress,
            next_sequence: 1,
            term_start_index: next_index,
            heartbeat_elapsed: 0,
            quorum_check_elapsed: 0,
            broadcast_pending: true,
            pending_reads: Vec::new(),
            transfer: None,
            removal_notices: BTreeSet::new(),
        });
        // §5.4.2 / §8: a no-op of the new term lets earlier entries commit through it and
        // tells the leader the commit index it must serve reads at.
        self.append_to_own_log(EntryPayload::Blank);
        // A single-server cluster commits as soon as its own write is durable; nothing else
        // will ever call maybe_advance_commit_index for it otherwise.
        self.maybe_advance_commit_index();
    }
}
