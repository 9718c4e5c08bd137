//! The follower's side of AppendEntries (Figure 2, "AppendEntries RPC, receiver
//! implementation"), with acknowledgements held until the entries are durable.

use crate::command::Command;
use crate::divergence::{Divergence, DivergenceSide};
use crate::raft::{PendingAcknowledgement, Raft};
use raft_types::{
    AppendEntriesRequest, AppendEntriesResponse, AppendOutcome, LogId, LogIndex, NodeId,
    RaftMessage, Role, Term,
};

impl Raft {
    pub(crate) fn handle_append_entries(&mut self, from: NodeId, request: AppendEntriesRequest) {
        // Rule 1: reply false if term < currentTerm, telling the stale leader the newer term.
        if request.term < self.current_term || request.leader_id != from {
            let response = AppendEntriesResponse {
                term: self.current_term,
                sequence: request.sequence,
                outcome: AppendOutcome::StaleTerm,
            };
            self.send(from, RaftMessage::AppendEntriesResponse(response));
            return;
        }
        self.follow_leader_of_this_term(from, request.term);

        // Rule 2: reply false if the log does not contain an entry at prevLogIndex whose term
        // matches prevLogTerm. Checked at every index, at or below the commit index too: a
        // mismatch there is not a conflict to repair but proof that a committed entry differs
        // (Leader Completeness rules it out for an honest leader), so it stops this server.
        let prev_log_id = request.prev_log_id;
        if !self.holds_or_compacted(prev_log_id) {
            if prev_log_id.index <= self.commit_index {
                let divergence = Divergence {
                    index: prev_log_id.index,
                    local_term: self.log.term_at(prev_log_id.index),
                    peer: from,
                    peer_term: prev_log_id.term,
                    side: DivergenceSide::CommittedHere,
                };
                self.answer_diverged_and_halt(from, request.sequence, divergence);
                return;
            }
            let outcome = self.conflict_hint(prev_log_id.index);
            let response = AppendEntriesResponse {
                term: self.current_term,
                sequence: request.sequence,
                outcome,
            };
            self.send(from, RaftMessage::AppendEntriesResponse(response));
            return;
        }

        let last_new_index = prev_log_id.index.plus(request.entries.len() as u64);
        if let Err(divergence) = self.append_new_entries(from, request.entries) {
            self.answer_diverged_and_halt(from, request.sequence, divergence);
            return;
        }

        // Rule 5: if leaderCommit > commitIndex, commitIndex = min(leaderCommit, index of last
        // new entry). Our log matches the leader's only through last_new_index.
        let new_commit_index = request.leader_commit.min(last_new_index);
        if new_commit_index > self.commit_index {
            self.commit_index = new_commit_index;
        }

        self.pending_acknowledgements.push(PendingAcknowledgement {
            leader: from,
            sequence: request.sequence,
            match_index: last_new_index,
        });
        self.release_acknowledgements();
    }

    /// `leader` sent a request of this server's current term: follow it (§5.2: a candidate
    /// that hears from a leader of its term returns to follower) and restart the election
    /// timer.
    pub(crate) fn follow_leader_of_this_term(&mut self, leader: NodeId, term: Term) {
        assert_eq!(term, self.current_term, "a newer term was adopted in step");
        assert_ne!(
            self.role(),
            Role::Leader,
            "Election Safety: two leaders in term {}",
            self.current_term
        );
        if self.role() == Role::Candidate || self.leader_id != Some(leader) {
            if let Some(known) = self.leader_id {
                assert_eq!(known, leader, "Election Safety: two leaders in one term");
            }
            self.become_follower(term, Some(leader));
        }
        self.election_elapsed = 0;
        // A leader replicates to this server: it is a member after all.
        self.told_removed = false;
    }

    /// Whether the log holds `log_id`, or `log_id` lies before the purged prefix (covered by a
    /// snapshot: committed, and beyond checking entry by entry).
    fn holds_or_compacted(&self, log_id: LogId) -> bool {
        self.log.matches(log_id) || log_id.index < self.log.last_purged_log_id().index
    }

    /// Tells the leader why this follower stops (directly, not held behind a hard state save:
    /// nothing durable is claimed), then stops.
    fn answer_diverged_and_halt(&mut self, leader: NodeId, sequence: u64, divergence: Divergence) {
        let response = AppendEntriesResponse {
            term: self.current_term,
            sequence,
            outcome: AppendOutcome::Diverged {
                index: divergence.index,
                committed_term: divergence.local_term.unwrap_or(Term::ZERO),
            },
        };
        self.commands.push(Command::Send {
            to: leader,
            message: RaftMessage::AppendEntriesResponse(response),
        });
        self.halt(divergence);
    }

    /// Rules 3 and 4: delete a conflicting suffix (and only a conflicting one: a stale or
    /// duplicated request whose entries we already hold removes nothing), then append the
    /// entries not already in the log. A conflict at or below the commit index would replace
    /// a committed entry: that is a divergence, and nothing is changed.
    fn append_new_entries(
        &mut self,
        leader: NodeId,
        entries: Vec<raft_types::Entry>,
    ) -> Result<(), Divergence> {
        let last_purged_index = self.log.last_purged_log_id().index;
        let mut first_new = None;
        for (position, entry) in entries.iter().enumerate() {
            if entry.index() < last_purged_index {
                // Covered by a snapshot: committed, held.
                continue;
            }
            match self.log.term_at(entry.index()) {
                Some(term) if term == entry.term() => continue,
                Some(local_term) => {
                    if entry.index() <= self.commit_index {
                        return Err(Divergence {
                            index: entry.index(),
                            local_term: Some(local_term),
                            peer: leader,
                            peer_term: entry.term(),
                            side: DivergenceSide::CommittedHere,
                        });
                    }
                    self.truncate_log_from(entry.index());
                    first_new = Some(position);
                    break;
                }
                None => {
                    first_new = Some(position);
                    break;
                }
            }
        }
        let Some(first_new) = first_new else {
            return Ok(());
        };
        for entry in entries.into_iter().skip(first_new) {
            self.log.append(entry);
        }
        self.hand_new_entries_to_storage();
        Ok(())
    }

    /// The hint a follower returns when it lacks `prev_log_index`'s entry: its term there and
    /// the first index it holds of that term, or its log end when the log is shorter.
    fn conflict_hint(&self, prev_log_index: LogIndex) -> AppendOutcome {
        match self.log.term_at(prev_log_index) {
            Some(term) => AppendOutcome::Conflict {
                conflict_term: Some(term),
                conflict_index: self
                    .log
                    .first_index_of_term_at_or_before(term, prev_log_index)
                    .max(self.commit_index.next()),
            },
            None => AppendOutcome::Conflict {
                conflict_term: None,
                conflict_index: self.log.last_index().next().min(prev_log_index),
            },
        }
    }

    /// Sends the acknowledgements whose entries are now durable, one message per leader
    /// covering all of them (the highest match index and the newest sequence).
    pub(crate) fn release_acknowledgements(&mut self) {
        let persisted_index = self.persisted_index;
        let mut released: Option<PendingAcknowledgement> = None;
        self.pending_acknowledgements.retain(|acknowledgement| {
            if acknowledgement.match_index > persisted_index {
                return true;
            }
            released = Some(match released {
                None => *acknowledgement,
                Some(merged) => {
                    assert_eq!(
                        merged.leader, acknowledgement.leader,
                        "acknowledgements pending for two leaders of one term"
                    );
                    PendingAcknowledgement {
                        leader: merged.leader,
                        sequence: merged.sequence.max(acknowledgement.sequence),
                        match_index: merged.match_index.max(acknowledgement.match_index),
                    }
                }
            });
            false
        });
        let Some(released) = released else {
            return;
        };
        let response = AppendEntriesResponse {
            term: self.current_term,
            sequence: released.sequence,
            outcome: AppendOutcome::Success {
                match_index: released.match_index,
            },
        };
        self.send(
            released.leader,
            RaftMessage::AppendEntriesResponse(response),
        );
    }
}
