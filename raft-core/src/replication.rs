//! The leader's side of log replication (§5.3) and commitment (§5.4.2), with heartbeats,
//! pipelining and check-quorum.

use crate::config::Config;
use crate::divergence::{Divergence, DivergenceSide};
use crate::progress::{Progress, ReplicationMode};
use crate::raft::{LeaderState, Raft};
use raft_types::{
    AppendEntriesRequest, AppendEntriesResponse, AppendOutcome, LogIndex, Membership, NodeId,
    RaftMessage, Role,
};

impl Raft {
    /// Check-quorum's verdict (thesis §6.2): a leader cut off from a majority steps down
    /// rather than keep accepting requests it can never commit.
    pub(crate) fn step_down_without_quorum(&mut self) {
        tracing::warn!(id = %self.config.id, term = %self.current_term,
            "stepping down: no contact with a majority for an election timeout");
        self.become_follower(self.current_term, None);
    }

    /// Sends what the leader owes: new entries to storage, then to every follower whose
    /// window allows, and a heartbeat to every follower when one is due.
    pub(crate) fn flush_leader(&mut self) {
        self.hand_new_entries_to_storage();
        let broadcast = std::mem::take(&mut self.leader_state_mut().broadcast_pending);
        // Every member but this server: voters of both halves of a joint configuration, and
        // learners, which receive the log like any follower.
        let peers: Vec<NodeId> = self.leader_state_mut().progress.keys().copied().collect();
        for peer in peers {
            self.replicate_to(peer, broadcast);
        }
    }

    /// Sends AppendEntries to `peer` as its mode allows; with `force`, sends at least one
    /// (a heartbeat when there is nothing new).
    fn replicate_to(&mut self, peer: NodeId, force: bool) {
        if self.needs_snapshot(peer) || self.has_a_newer_snapshot_to_send(peer) {
            self.start_snapshot_transfer(peer);
        }
        if self.progress(peer).snapshot_transfer().is_some() {
            self.send_snapshot_chunks(peer, force);
            return;
        }
        let last_index = self.log.last_index();
        let max_inflight = self.config.max_inflight_appends;
        let progress = self.progress(peer);
        let next_index = progress.next_index;
        let mut sent_any = false;
        match progress.mode {
            ReplicationMode::Probe {
                outstanding_sequence,
            } => {
                if outstanding_sequence.is_none() || force {
                    // A heartbeat while a probe is unanswered carries no entries: the follower
                    // may be down, and re-sending a full batch every interval would only fill
                    // its queue. Its answer restarts the flow.
                    let to = if outstanding_sequence.is_none() {
                        last_index
                    } else {
                        next_index.previous()
                    };
                    let (sequence, _) = self.send_append_entries(peer, next_index, to);
                    self.progress_mut(peer).mode = ReplicationMode::Probe {
                        outstanding_sequence: Some(sequence),
                    };
                    sent_any = true;
                }
            }
            ReplicationMode::Snapshot(_) => unreachable!("handled above"),
            ReplicationMode::Replicate { ref inflight } => {
                let mut inflight_count = inflight.len();
                let mut next_index = next_index;
                while inflight_count < max_inflight && next_index <= last_index {
                    let (_, sent_last) = self.send_append_entries(peer, next_index, last_index);
                    let progress = self.progress_mut(peer);
                    if let ReplicationMode::Replicate { inflight } = &mut progress.mode {
                        inflight.push_back(sent_last);
                    }
                    progress.next_index = sent_last.next();
                    next_index = sent_last.next();
                    inflight_count += 1;
                    sent_any = true;
                }
            }
        }
        if force && !sent_any {
            let next_index = self.progress(peer).next_index;
            self.send_append_entries(peer, next_index, next_index.previous());
        }
    }

    /// Sends entries `from ..= to` (bounded by the batch limits) after `from - 1`, or a
    /// heartbeat when `to < from`; returns the request's sequence and the last index sent.
    fn send_append_entries(
        &mut self,
        peer: NodeId,
        from: LogIndex,
        to: LogIndex,
    ) -> (u64, LogIndex) {
        let prev_log_id = self
            .log
            .log_id_at(from.previous())
            .expect("a follower's next index stays within the leader's log");
        let entries = if from <= to {
            self.log.entries_between(
                from,
                to,
                self.config.max_entries_per_append,
                self.config.max_append_bytes,
            )
        } else {
            Vec::new()
        };
        let last_sent = entries
            .last()
            .map(|entry| entry.index())
            .unwrap_or(prev_log_id.index);
        let leader_state = self.leader_state_mut();
        let sequence = leader_state.next_sequence;
        leader_state.next_sequence += 1;
        let request = AppendEntriesRequest {
            term: self.current_term,
            leader_id: self.config.id,
            prev_log_id,
            entries,
            leader_commit: self.commit_index,
            sequence,
        };
        self.send(peer, RaftMessage::AppendEntries(request));
        (sequence, last_sent)
    }

    pub(crate) fn handle_append_entries_response(
        &mut self,
        from: NodeId,
        response: AppendEntriesResponse,
    ) {
        if self.role() != Role::Leader
            || response.term != self.current_term
            || !self.is_tracked_peer(from)
        {
            // (A server that is no longer a member answering late is not tracked.)
            return;
        }
        match response.outcome {
            // Its sequence echoes a request of an older term (sequences restart every term),
            // or one not from this leader: no evidence that the follower follows this leader
            // now, so it counts neither for ReadIndex nor for check-quorum (docs/CORE.md).
            AppendOutcome::StaleTerm => return,
            AppendOutcome::Diverged {
                index,
                committed_term,
            } => {
                let local_term = self.log.term_at(index);
                if local_term != Some(committed_term) {
                    self.halt(Divergence {
                        index,
                        local_term,
                        peer: from,
                        peer_term: committed_term,
                        side: DivergenceSide::CommittedOnFollower,
                    });
                }
                return;
            }
            AppendOutcome::Success { .. } | AppendOutcome::Conflict { .. } => {}
        }
        // A Success or Conflict is only ever sent for a request of the responder's current
        // term, which is this term: it proves the follower accepted this leader after the
        // request with this sequence was sent.
        {
            let progress = self.progress_mut(from);
            progress.heard_from();
            progress.acknowledged_sequence = progress.acknowledged_sequence.max(response.sequence);
        }
        match response.outcome {
            AppendOutcome::Success { match_index } => {
                assert!(
                    match_index <= self.log.last_index(),
                    "follower {from} acknowledged index {match_index} beyond the leader's log"
                );
                let last_index = self.log.last_index();
                let progress = self.progress_mut(from);
                progress.catch_up.observe(match_index, last_index);
                if progress.acknowledge(match_index) {
                    self.maybe_advance_commit_index();
                }
                self.maybe_send_timeout_now();
            }
            AppendOutcome::Conflict {
                conflict_term,
                conflict_index,
            } => self.handle_conflict(from, response.sequence, conflict_term, conflict_index),
            AppendOutcome::StaleTerm | AppendOutcome::Diverged { .. } => {
                unreachable!("handled above")
            }
        }
        self.serve_ready_reads();
    }

    /// §5.3: after a rejection the leader decrements next_index and retries. With the hint it
    /// skips the follower's whole conflicting term (or its missing tail) in one step.
    fn handle_conflict(
        &mut self,
        from: NodeId,
        sequence: u64,
        conflict_term: Option<raft_types::Term>,
        conflict_index: LogIndex,
    ) {
        let progress = self.progress(from);
        if progress.snapshot_transfer().is_some() {
            // An answer to an AppendEntries sent before the transfer began: the follower's log
            // is behind, which is why it is being sent a snapshot.
            return;
        }
        if let ReplicationMode::Probe {
            outstanding_sequence: Some(outstanding),
        } = progress.mode
        {
            if sequence < outstanding {
                // Answer to an older probe; the newer one is still in flight.
                return;
            }
        }
        let probe_from = progress.next_index.previous();
        let next_index = match conflict_term {
            Some(term) => match self.log.last_index_of_term(term, probe_from) {
                Some(last_of_term) => last_of_term.next(),
                None => conflict_index,
            },
            None => conflict_index,
        };
        let next_index = next_index.min(self.log.last_index().next());
        self.progress_mut(from).start_probing(next_index);
    }

    /// §5.3, §5.4.2: the leader commits the highest index stored on a majority, but only if
    /// that entry is from its current term (Figure 8); earlier entries commit with it.
    pub(crate) fn maybe_advance_commit_index(&mut self) {
        let Some(leader_state) = self.leader_state() else {
            return;
        };
        // The configuration in force, committed or not (thesis §4.1); while joint, a majority
        // of each half. This server counts only in the halves it belongs to.
        let own_id = self.config.id;
        let persisted_index = self.persisted_index;
        let Some(majority_index) = self.log.membership().1.quorum_value(|id| {
            if id == own_id {
                persisted_index
            } else {
                leader_state
                    .progress
                    .get(&id)
                    .map_or(LogIndex::ZERO, |progress| progress.match_index)
            }
        }) else {
            return;
        };
        if majority_index > self.commit_index
            && self.log.term_at(majority_index) == Some(self.current_term)
        {
            self.commit_index = majority_index;
            self.on_commit_advanced();
            self.after_leader_commit();
        }
    }

    /// Whether this leader tracks `peer` (a member of the configuration in force).
    pub(crate) fn is_tracked_peer(&self, peer: NodeId) -> bool {
        self.leader_state()
            .is_some_and(|leader_state| leader_state.progress.contains_key(&peer))
    }

    pub(crate) fn progress(&self, peer: NodeId) -> &Progress {
        self.leader_state()
            .and_then(|leader_state| leader_state.progress.get(&peer))
            .expect("the leader tracks progress for every peer")
    }

    pub(crate) fn progress_mut(&mut self, peer: NodeId) -> &mut Progress {
        self.leader_state_mut()
            .progress
            .get_mut(&peer)
            .expect("the leader tracks progress for every peer")
    }
}

impl LeaderState {
    /// One tick of the leader's clocks: a heartbeat round when one is due, and check-quorum
    /// (thesis §6.2) every minimum election timeout. Returns whether the leader heard from
    /// less than a majority (itself included) since the last check and must step down.
    pub(crate) fn tick(&mut self, config: &Config, membership: &Membership) -> bool {
        self.heartbeat_elapsed += 1;
        for progress in self.progress.values_mut() {
            if let Some(since) = &mut progress.ticks_since_contact {
                *since = since.saturating_add(1);
            }
            progress.catch_up.elapsed_ticks += 1;
        }
        if self.heartbeat_elapsed >= config.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_pending = true;
        }
        for progress in self.progress.values_mut() {
            if let ReplicationMode::Snapshot(transfer) = &mut progress.mode {
                transfer.ticks_without_progress += 1;
                if transfer.ticks_without_progress >= config.snapshot_chunk_timeout_ticks
                    && !transfer.inflight.is_empty()
                {
                    // No chunk acknowledged for a while: they, or their answers, were lost.
                    let from = transfer.acknowledged_offset;
                    transfer.resend_from(from);
                }
            }
        }
        self.quorum_check_elapsed += 1;
        if !config.check_quorum || self.quorum_check_elapsed < config.election_timeout_min_ticks {
            return false;
        }
        self.quorum_check_elapsed = 0;
        let active: std::collections::BTreeSet<NodeId> = self
            .progress
            .iter_mut()
            .filter_map(|(peer, progress)| {
                std::mem::take(&mut progress.recently_active).then_some(*peer)
            })
            .collect();
        !membership.is_quorum(|id| id == config.id || active.contains(&id))
    }
}
