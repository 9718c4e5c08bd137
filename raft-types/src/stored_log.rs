//! `StoredLog`: what a log store holds when it is opened (the hard state and the surviving
//! log), the input from which a restarting server's state is built.

use crate::entry::Entry;
use crate::hard_state::HardState;
use crate::ids::{LogId, LogIndex};

/// The hard state and the log a log store recovered. Together with the newest snapshot it
/// makes the consensus core's restart state (`raft_core::reconcile`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLog {
    /// The last saved `current_term` and `voted_for` (Figure 2), or the default when none was.
    pub hard_state: HardState,
    /// The index of `entries[0]`, or of the next entry to append when `entries` is empty.
    /// Greater than 1 once a prefix was purged or the log was reset to a snapshot.
    pub first_index: LogIndex,
    /// The surviving log, contiguous from `first_index`.
    pub entries: Vec<Entry>,
    /// The id of the entry just before `first_index`, when the store knows it: `LogId::ZERO`
    /// for a log that starts at index 1, the `last_log_id` of a reset when nothing was purged
    /// since, `None` when a purge deleted it and its term is not known.
    pub prev_log_id: Option<LogId>,
}

impl Default for StoredLog {
    /// A store that never held anything: the log starts at index 1.
    fn default() -> StoredLog {
        StoredLog {
            hard_state: HardState::default(),
            first_index: LogIndex(1),
            entries: Vec::new(),
            prev_log_id: Some(LogId::ZERO),
        }
    }
}

impl StoredLog {
    /// The id of the last stored entry, if any.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.entries.last().map(|entry| entry.log_id)
    }

    /// Where the next append goes.
    pub fn next_index(&self) -> LogIndex {
        self.first_index.plus(self.entries.len() as u64)
    }
}
