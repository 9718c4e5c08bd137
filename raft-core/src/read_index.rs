//! Linearizable reads without writing to the log: ReadIndex (Raft thesis §6.4).
//!
//! 1. The leader waits until it has committed an entry of its own term (its no-op), so its
//!    commit index is at least that of any earlier leader; the read index is its commit index.
//! 2. It confirms it is still leader: a majority answers an AppendEntries sent after the read
//!    arrived. Reads that arrive together share one round: they all wait for the same
//!    sequence, and one broadcast serves them all.
//! 3. Once the state machine has applied through the read index, the read is served.

use crate::command::{Command, ReadRequestId};
use crate::raft::{Raft, RoleState};
use raft_types::LogIndex;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingRead {
    pub request_id: ReadRequestId,
    /// The commit index when the read could first be ordered (None while this term's no-op
    /// is not committed yet).
    pub read_index: Option<LogIndex>,
    /// Leadership is confirmed once a majority acknowledged a sequence >= this one.
    pub required_sequence: u64,
}

impl Raft {
    pub(crate) fn register_read(&mut self, request_id: ReadRequestId) {
        let read_index = self
            .committed_in_current_term()
            .then_some(self.commit_index);
        let leader_state = self.leader_state_mut();
        let required_sequence = leader_state.next_sequence;
        leader_state.pending_reads.push(PendingRead {
            request_id,
            read_index,
            required_sequence,
        });
        leader_state.broadcast_pending = true;
        // A single-server cluster is its own majority.
        self.serve_ready_reads();
    }

    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.leader_state()
            .is_some_and(|leader_state| self.commit_index >= leader_state.term_start_index)
    }

    /// Called whenever the commit index advances, on any role.
    pub(crate) fn on_commit_advanced(&mut self) {
        if self.committed_in_current_term() {
            let commit_index = self.commit_index;
            if let RoleState::Leader(leader_state) = &mut self.role_state {
                for read in &mut leader_state.pending_reads {
                    read.read_index.get_or_insert(commit_index);
                }
            }
            self.serve_ready_reads();
        }
    }

    /// Emits `ReadReady` for every read whose leadership round is confirmed and whose read
    /// index is applied, in arrival order.
    pub(crate) fn serve_ready_reads(&mut self) {
        let last_applied = self.last_applied;
        let RoleState::Leader(leader_state) = &mut self.role_state else {
            return;
        };
        if leader_state.pending_reads.is_empty() {
            return;
        }
        // The highest sequence acknowledged by a majority of every voter set (the leader
        // counts as having acknowledged everything it sent, in the halves it belongs to).
        let own_id = self.config.id;
        let Some(majority_sequence) = self.log.membership().1.quorum_value(|id| {
            if id == own_id {
                u64::MAX
            } else {
                leader_state
                    .progress
                    .get(&id)
                    .map_or(0, |progress| progress.acknowledged_sequence)
            }
        }) else {
            return;
        };
        let mut ready = Vec::new();
        leader_state.pending_reads.retain(|read| {
            let serve = read.required_sequence <= majority_sequence
                && read.read_index.is_some_and(|index| index <= last_applied);
            if serve {
                ready.push(Command::ReadReady {
                    request_id: read.request_id,
                    read_index: read.read_index.expect("checked just above"),
                });
            }
            !serve
        });
        self.commands.extend(ready);
    }
}
