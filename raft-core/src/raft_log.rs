//! The in-memory copy of the replicated log.
//!
//! The log may start after index 0: `last_purged_log_id` names the last entry dropped from
//! memory because a snapshot covers it (or `LogId::ZERO` when none was), and `entries` holds
//! everything after it. Its term stays known, so an AppendEntries can still follow it. The
//! newest snapshot may lie after it: entries behind the snapshot are kept for a while for
//! followers that lag a little (`Config::snapshot_trailing_entries`).
//! Nothing here touches disk; the core emits commands that make the same changes durable.
//!
//! The log also keeps the configurations it holds (thesis §4.1: a server uses the latest
//! configuration in its log, committed or not). Every append, truncation, purge and reset
//! updates them with the entries, so the configuration in force can never disagree with the
//! log.

use raft_types::{Entry, EntryPayload, LogId, LogIndex, Membership, Term};

/// The replicated log as this server holds it in memory: the entries after the last purged
/// one, contiguous, with terms that never decrease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftLog {
    /// The last entry dropped from memory (covered by a snapshot); entries at or before it are
    /// gone, its own `LogId` is kept.
    last_purged_log_id: LogId,
    /// Entries `last_purged_log_id.index + 1 ..= last_index()`, contiguous.
    entries: Vec<Entry>,
    /// The configurations in force along the log, oldest first, never empty. The first is the
    /// base: the snapshot's (at its last entry) or the bootstrap one (at `LogId::ZERO`); each
    /// later one is a membership entry of the log after it.
    configurations: Vec<(LogId, Membership)>,
}

impl RaftLog {
    /// A log recovered from storage: `entries` must directly follow `last_purged_log_id`.
    /// `base` is the configuration in force at `base.0` (the snapshot's last entry, or
    /// `LogId::ZERO` for the bootstrap configuration); the membership entries after it are
    /// found in `entries`.
    pub(crate) fn new(
        last_purged_log_id: LogId,
        entries: Vec<Entry>,
        base: (LogId, Membership),
    ) -> RaftLog {
        let base_index = base.0.index;
        let mut configurations = vec![base];
        for entry in &entries {
            if let EntryPayload::Membership(membership) = &entry.payload {
                if entry.index() > base_index {
                    configurations.push((entry.log_id, membership.clone()));
                }
            }
        }
        let log = RaftLog {
            last_purged_log_id,
            entries,
            configurations,
        };
        log.check_invariants();
        log
    }

    /// The configuration in force: the latest in the log, committed or not, with the
    /// `LogId` of its entry (or of the snapshot or bootstrap it came from).
    pub fn membership(&self) -> &(LogId, Membership) {
        self.configurations
            .last()
            .expect("the log always knows a configuration")
    }

    /// The configuration before the one in force, while the log still holds it.
    pub fn previous_membership(&self) -> Option<&(LogId, Membership)> {
        let count = self.configurations.len();
        (count >= 2).then(|| &self.configurations[count - 2])
    }

    /// The latest configuration at or before `index` (the committed one, given the commit
    /// index).
    pub fn membership_at(&self, index: LogIndex) -> &(LogId, Membership) {
        self.configurations
            .iter()
            .rev()
            .find(|(log_id, _)| log_id.index <= index)
            .unwrap_or(&self.configurations[0])
    }

    /// The last entry dropped from memory, or `LogId::ZERO` when none was.
    pub fn last_purged_log_id(&self) -> LogId {
        self.last_purged_log_id
    }

    /// The index of the first entry held in memory (one past the last purged one).
    pub fn first_index(&self) -> LogIndex {
        self.last_purged_log_id.index.next()
    }

    /// The number of entries held in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held in memory (the log may still have a last purged entry).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index of the last entry; the last purged index when no entry follows it (0 for an
    /// empty log).
    pub fn last_index(&self) -> LogIndex {
        self.last_purged_log_id
            .index
            .plus(self.entries.len() as u64)
    }

    /// The last entry's `LogId`; the last purged entry when none follows it (`LogId::ZERO`
    /// for an empty log).
    pub fn last_log_id(&self) -> LogId {
        self.entries
            .last()
            .map(|entry| entry.log_id)
            .unwrap_or(self.last_purged_log_id)
    }

    /// The term of the entry at `index`; `Some(Term(0))` for index 0 and the purged entry's
    /// term for its index; `None` when the index is past the end or purged.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.last_purged_log_id.index {
            return Some(self.last_purged_log_id.term);
        }
        self.entry(index).map(Entry::term)
    }

    /// The LogId at `index`, when known.
    pub fn log_id_at(&self, index: LogIndex) -> Option<LogId> {
        self.term_at(index).map(|term| LogId::new(term, index))
    }

    /// Whether this log holds `log_id` (the AppendEntries consistency check, §5.3).
    pub fn matches(&self, log_id: LogId) -> bool {
        self.term_at(log_id.index) == Some(log_id.term)
    }

    /// The entry at `index`; `None` when the index is past the end or purged.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let offset = self.offset_of(index)?;
        self.entries.get(offset)
    }

    /// Entries in `from ..= to`, at most `max_count` of them and about `max_bytes` of payload
    /// (always at least one entry when the range is not empty).
    pub(crate) fn entries_between(
        &self,
        from: LogIndex,
        to: LogIndex,
        max_count: usize,
        max_bytes: usize,
    ) -> Vec<Entry> {
        let Some(start) = self.offset_of(from) else {
            return Vec::new();
        };
        let Some(end) = self.offset_of(to) else {
            return Vec::new();
        };
        let mut selected = Vec::new();
        let mut bytes = 0usize;
        for entry in self.entries[start..=end].iter().take(max_count) {
            bytes += entry.payload_len();
            if !selected.is_empty() && bytes > max_bytes {
                break;
            }
            selected.push(entry.clone());
        }
        selected
    }

    /// The first index whose entry has `term`, searching backwards from `from`: used to build
    /// and to follow the conflict hint of a rejected AppendEntries.
    pub(crate) fn first_index_of_term_at_or_before(&self, term: Term, from: LogIndex) -> LogIndex {
        let mut index = from;
        while index > self.first_index() && self.term_at(index.previous()) == Some(term) {
            index = index.previous();
        }
        index
    }

    /// The last index whose entry has `term` at or below `at_or_below`, if any: the leader's
    /// side of the conflict hint (§5.3).
    pub(crate) fn last_index_of_term(&self, term: Term, at_or_below: LogIndex) -> Option<LogIndex> {
        let mut index = at_or_below.min(self.last_index());
        loop {
            match self.term_at(index) {
                Some(found) if found == term => return Some(index),
                Some(found) if found < term => return None,
                _ => {}
            }
            if index <= self.last_purged_log_id.index {
                return None;
            }
            index = index.previous();
        }
    }

    /// Appends `entry`, which must directly follow the last entry and have no lower term
    /// (panics otherwise).
    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.index(),
            self.last_index().next(),
            "log entries must be appended contiguously"
        );
        assert!(
            entry.term() >= self.last_log_id().term,
            "terms never decrease along the log"
        );
        if let EntryPayload::Membership(membership) = &entry.payload {
            self.configurations.push((entry.log_id, membership.clone()));
        }
        self.entries.push(entry);
    }

    /// Removes every entry with index >= `since`.
    pub(crate) fn truncate_from(&mut self, since: LogIndex) {
        assert!(
            since > self.last_purged_log_id.index,
            "cannot truncate into the purged prefix: purged entries are committed"
        );
        let keep = (since.0 - self.first_index().0) as usize;
        self.entries.truncate(keep);
        // A truncated membership entry takes its configuration with it: the one before it is
        // in force again (thesis §4.1). The base is never truncated: it is at or before the
        // snapshot, which is committed.
        while self.configurations.len() > 1
            && self.configurations.last().expect("not empty").0.index >= since
        {
            self.configurations.pop();
        }
    }

    /// Drops every entry through `through` from memory (a snapshot covers them), keeping its
    /// `LogId`. `through` must be held (or already purged: then nothing changes).
    pub(crate) fn purge_through(&mut self, through: LogIndex) {
        if through <= self.last_purged_log_id.index {
            return;
        }
        let last_purged = self
            .log_id_at(through)
            .expect("only entries the log holds are purged");
        let count = (through.0 - self.last_purged_log_id.index.0) as usize;
        self.entries.drain(..count);
        self.last_purged_log_id = last_purged;
        // Configurations superseded by one at or before the purged entry are history now.
        while self.configurations.len() > 1 && self.configurations[1].0.index <= through {
            self.configurations.remove(0);
        }
    }

    /// Discards every entry: the log continues right after `last_log_id` (an installed
    /// snapshot's last entry, §7: "discard the entire log"), in the snapshot's configuration.
    pub(crate) fn reset_to(&mut self, last_log_id: LogId, membership: Membership) {
        self.entries.clear();
        self.last_purged_log_id = last_log_id;
        self.configurations = vec![(last_log_id, membership)];
    }

    fn offset_of(&self, index: LogIndex) -> Option<usize> {
        if index < self.first_index() || index > self.last_index() {
            return None;
        }
        Some((index.0 - self.first_index().0) as usize)
    }

    /// Indexes contiguous from the last purged entry, terms non-decreasing.
    pub fn check_invariants(&self) {
        let mut previous = self.last_purged_log_id;
        for entry in &self.entries {
            assert_eq!(
                entry.index(),
                previous.index.next(),
                "log indexes must be contiguous"
            );
            assert!(
                entry.term() >= previous.term,
                "terms must not decrease along the log"
            );
            previous = entry.log_id;
        }
        assert!(
            self.configurations
                .windows(2)
                .all(|pair| pair[0].0.index < pair[1].0.index),
            "configurations are in log order"
        );
        for (log_id, membership) in &self.configurations[1..] {
            if log_id.index > self.last_purged_log_id.index {
                assert_eq!(
                    self.entry(log_id.index).map(|entry| &entry.payload),
                    Some(&EntryPayload::Membership(membership.clone())),
                    "a configuration is the membership entry it names"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::EntryPayload;

    fn log_with_terms(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(offset, term)| {
                Entry::new(
                    Term(*term),
                    LogIndex(offset as u64 + 1),
                    EntryPayload::Blank,
                )
            })
            .collect();
        RaftLog::new(LogId::ZERO, entries, (LogId::ZERO, Membership::default()))
    }

    #[test]
    fn index_zero_matches_the_empty_prefix() {
        let log = log_with_terms(&[]);
        assert!(log.matches(LogId::ZERO));
        assert_eq!(log.last_log_id(), LogId::ZERO);
        assert_eq!(log.term_at(LogIndex(1)), None);
    }

    #[test]
    fn term_searches_for_conflict_hints() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(
            log.first_index_of_term_at_or_before(Term(2), LogIndex(5)),
            LogIndex(3)
        );
        assert_eq!(
            log.last_index_of_term(Term(2), LogIndex(6)),
            Some(LogIndex(5))
        );
        assert_eq!(log.last_index_of_term(Term(3), LogIndex(6)), None);
    }

    #[test]
    fn truncate_then_append() {
        let mut log = log_with_terms(&[1, 1, 1]);
        log.truncate_from(LogIndex(2));
        log.append(Entry::new(Term(2), LogIndex(2), EntryPayload::Blank));
        assert_eq!(log.last_log_id(), LogId::new(Term(2), LogIndex(2)));
    }

    #[test]
    fn a_log_can_start_after_a_snapshot() {
        let snapshot = LogId::new(Term(3), LogIndex(10));
        let log = RaftLog::new(
            snapshot,
            vec![Entry::new(Term(3), LogIndex(11), EntryPayload::Blank)],
            (snapshot, Membership::default()),
        );
        assert_eq!(log.first_index(), LogIndex(11));
        assert_eq!(log.term_at(LogIndex(10)), Some(Term(3)));
        assert_eq!(log.term_at(LogIndex(9)), None);
        assert_eq!(log.last_index(), LogIndex(11));
    }

    #[test]
    fn purging_keeps_the_last_purged_term_and_reset_discards_everything() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 3]);
        log.purge_through(LogIndex(3));
        assert_eq!(log.last_purged_log_id(), LogId::new(Term(2), LogIndex(3)));
        assert_eq!(log.first_index(), LogIndex(4));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(2)), None);
        assert_eq!(log.last_log_id(), LogId::new(Term(3), LogIndex(5)));
        // Purging what is already gone changes nothing.
        log.purge_through(LogIndex(2));
        assert_eq!(log.first_index(), LogIndex(4));
        log.reset_to(LogId::new(Term(4), LogIndex(9)), Membership::default());
        assert!(log.is_empty());
        assert_eq!(log.last_log_id(), LogId::new(Term(4), LogIndex(9)));
        assert_eq!(log.first_index(), LogIndex(10));
        log.check_invariants();
    }

    #[test]
    fn the_configuration_in_force_follows_appends_truncations_and_purges() {
        let voters =
            |ids: &[u64]| Membership::with_voters(ids.iter().map(|id| raft_types::NodeId(*id)));
        let membership_entry = |term, index, ids: &[u64]| {
            Entry::new(
                Term(term),
                LogIndex(index),
                EntryPayload::Membership(voters(ids)),
            )
        };
        let mut log = RaftLog::new(
            LogId::ZERO,
            vec![
                Entry::new(Term(1), LogIndex(1), EntryPayload::Blank),
                membership_entry(1, 2, &[1, 2]),
            ],
            (LogId::ZERO, voters(&[1])),
        );
        assert_eq!(log.membership().1, voters(&[1, 2]));
        assert_eq!(log.membership_at(LogIndex(1)).1, voters(&[1]));
        log.append(membership_entry(2, 3, &[1, 2, 3]));
        assert_eq!(log.membership().0, LogId::new(Term(2), LogIndex(3)));
        // Truncating the newest configuration puts the one before it back in force.
        log.truncate_from(LogIndex(3));
        assert_eq!(log.membership().1, voters(&[1, 2]));
        log.append(Entry::new(Term(3), LogIndex(3), EntryPayload::Blank));
        log.purge_through(LogIndex(3));
        assert_eq!(log.membership().1, voters(&[1, 2]));
        assert_eq!(log.membership_at(LogIndex::ZERO).1, voters(&[1, 2]));
        log.check_invariants();
    }
}
