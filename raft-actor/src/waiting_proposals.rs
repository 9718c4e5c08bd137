//! `WaitingProposals`: the clients waiting on entries proposed through this node, until the
//! entry at their index is handed to the applier.

use raft_proto::client::{ClientError, ClientResponder};
use raft_types::{Entry, LogId, LogIndex, Term};
use std::collections::BTreeMap;

/// Responders keyed by `(index, term)` of the entry their proposal created.
///
/// Ordered by index first so that a committed batch `first..=last` takes every proposal at or
/// below `last` with one `split_off`. The term is part of the key because a node can propose
/// at the same index twice: as leader of term 2, then (after a later leader cut its log back)
/// as leader of term 4.
#[derive(Debug, Default)]
pub struct WaitingProposals {
    responders: BTreeMap<(LogIndex, Term), ClientResponder>,
}

/// What to do with the proposals due at one committed batch.
#[derive(Debug, Default)]
pub struct DueProposals {
    /// The batch holds exactly their entry: the applier answers them with its output.
    pub to_applier: Vec<(LogId, ClientResponder)>,
    /// Their index holds another term's entry: overwritten by a later leader, so never applied
    /// (by Log Matching only one entry per index ever commits). Answered `Unavailable`.
    pub overwritten: Vec<(LogId, ClientResponder)>,
}

impl WaitingProposals {
    pub fn insert(&mut self, log_id: LogId, responder: ClientResponder) {
        let previous = self
            .responders
            .insert((log_id.index, log_id.term), responder);
        assert!(
            previous.is_none(),
            "a leader proposes at most one entry per LogId ({log_id})"
        );
    }

    pub fn len(&self) -> usize {
        self.responders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.responders.is_empty()
    }

    /// Removes every proposal whose index lies in the committed, contiguous `entries` and sorts
    /// it by whether the committed entry is the one it proposed.
    pub fn take_due(&mut self, entries: &[Entry]) -> DueProposals {
        let mut due = DueProposals::default();
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return due;
        };
        let later = self
            .responders
            .split_off(&(last.index().next(), Term::ZERO));
        let taken = std::mem::replace(&mut self.responders, later);
        for ((index, term), responder) in taken {
            let proposed = LogId::new(term, index);
            assert!(
                index >= first.index(),
                "proposal {proposed} lies before the first entry not yet applied ({})",
                first.log_id
            );
            let position =
                usize::try_from(index.0 - first.index().0).expect("a batch index fits in memory");
            if entries[position].log_id == proposed {
                due.to_applier.push((proposed, responder));
            } else {
                due.overwritten.push((proposed, responder));
            }
        }
        due
    }

    /// Removes every proposal at or below `index`: their entries are covered by a snapshot
    /// installed from the leader, so this node never applies them one by one and cannot tell
    /// whether each committed or was overwritten.
    pub fn take_through(&mut self, index: LogIndex) -> Vec<(LogId, ClientResponder)> {
        let later = self.responders.split_off(&(index.next(), Term::ZERO));
        std::mem::replace(&mut self.responders, later)
            .into_iter()
            .map(|((index, term), responder)| (LogId::new(term, index), responder))
            .collect()
    }

    /// Forgets the clients that stopped waiting (timed out, disconnected). Their entries still
    /// apply; there is just no one left to answer.
    pub fn forget_abandoned(&mut self) {
        self.responders
            .retain(|_, responder| !responder.is_closed());
    }

    /// Answers every waiting client with `error` (used when the node stops).
    pub fn answer_all(&mut self, error: ClientError) {
        for (_, responder) in std::mem::take(&mut self.responders) {
            let _ = responder.send(Err(error.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::EntryPayload;
    use tokio::sync::oneshot;

    fn entry(term: u64, index: u64) -> Entry {
        Entry::new(Term(term), LogIndex(index), EntryPayload::Blank)
    }

    #[test]
    fn sorts_due_proposals_by_matching_term_and_keeps_later_ones() {
        let mut waiting = WaitingProposals::default();
        let mut receivers = Vec::new();
        for (term, index) in [(1, 2), (1, 3), (2, 3), (2, 5)] {
            let (responder, receiver) = oneshot::channel();
            waiting.insert(LogId::new(Term(term), LogIndex(index)), responder);
            receivers.push(receiver);
        }
        let due = waiting.take_due(&[entry(1, 2), entry(2, 3), entry(2, 4)]);
        let to_applier: Vec<LogId> = due.to_applier.iter().map(|(id, _)| *id).collect();
        let overwritten: Vec<LogId> = due.overwritten.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            to_applier,
            vec![
                LogId::new(Term(1), LogIndex(2)),
                LogId::new(Term(2), LogIndex(3))
            ]
        );
        assert_eq!(overwritten, vec![LogId::new(Term(1), LogIndex(3))]);
        assert_eq!(waiting.len(), 1, "the proposal at index 5 still waits");
    }

    #[test]
    fn a_snapshot_takes_every_proposal_it_covers_and_later_batches_start_after_it() {
        let mut waiting = WaitingProposals::default();
        let mut receivers = Vec::new();
        for (term, index) in [(1, 46), (1, 47), (2, 130)] {
            let (responder, receiver) = oneshot::channel();
            waiting.insert(LogId::new(Term(term), LogIndex(index)), responder);
            receivers.push(receiver);
        }
        let covered: Vec<LogId> = waiting
            .take_through(LogIndex(128))
            .into_iter()
            .map(|(log_id, _)| log_id)
            .collect();
        assert_eq!(
            covered,
            vec![
                LogId::new(Term(1), LogIndex(46)),
                LogId::new(Term(1), LogIndex(47))
            ]
        );
        // The next batch starts after the snapshot: no proposal lies before it any more (the
        // soak found a node panicking here before the snapshot took its proposals).
        let due = waiting.take_due(&[entry(2, 129), entry(2, 130)]);
        assert_eq!(due.to_applier.len(), 1);
        assert!(waiting.is_empty());
    }

    #[test]
    fn forgets_abandoned_clients() {
        let mut waiting = WaitingProposals::default();
        let (responder, receiver) = oneshot::channel();
        waiting.insert(LogId::new(Term(1), LogIndex(1)), responder);
        drop(receiver);
        waiting.forget_abandoned();
        assert!(waiting.is_empty());
    }
}
