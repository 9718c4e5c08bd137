//! Identifier newtypes. One type per concept so that a term can never be passed where an index
//! is expected; all are `Copy`, ordered and serialize as plain integers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A server's identity in the cluster. Ids are chosen by the operator and are never 0, so that
/// 0 can never be mistaken for a real server in a log or a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

/// A Raft term: a logical clock that increases with every election (§5.1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Term(pub u64);

/// The position of one request on a server's ordered path to disk (`PersistHardState`,
/// `TruncateLog`, `AppendLog`). The core numbers its storage requests 1, 2, 3, ... in the order
/// it emits them, and storage completions name the last request their sync covered, so a
/// completion can always be placed before or after a given truncation. Never sent to another
/// server and never stored: numbering restarts with each incarnation of a server.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct IoSequence(pub u64);

/// A position in the replicated log. The first real entry has index 1; index 0 names the empty
/// prefix, whose term is 0, so the consistency check needs no special case for an empty log.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LogIndex(pub u64);

/// The identity of a log entry. By the Log Matching property (§5.3) two logs holding the same
/// `LogId` are identical up to and including it, so a `LogId` stands for a whole log prefix.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogId {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
}

impl Term {
    /// The term before the first election, and the term of the empty prefix (index 0).
    pub const ZERO: Term = Term(0);

    /// The term a candidate moves to when it starts an election.
    pub fn next(self) -> Term {
        Term(
            self.0
                .checked_add(1)
                .expect("term overflow: 2^64 elections"),
        )
    }
}

impl LogIndex {
    /// The empty prefix: no entry has this index.
    pub const ZERO: LogIndex = LogIndex(0);

    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.checked_add(1).expect("log index overflow"))
    }

    /// The index before this one; 0 stays 0 (there is nothing before the empty prefix).
    pub fn previous(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// The index `count` places after this one.
    pub fn plus(self, count: u64) -> LogIndex {
        LogIndex(self.0.checked_add(count).expect("log index overflow"))
    }
}

impl IoSequence {
    /// Before the first request of an incarnation.
    pub const ZERO: IoSequence = IoSequence(0);

    /// The sequence of the request emitted after this one.
    pub fn next(self) -> IoSequence {
        IoSequence(self.0.checked_add(1).expect("IO sequence overflow"))
    }
}

impl LogId {
    /// The empty prefix (term 0, index 0), which every log holds.
    pub const ZERO: LogId = LogId {
        term: Term::ZERO,
        index: LogIndex::ZERO,
    };

    /// The entry at `index` created in `term`.
    pub fn new(term: Term, index: LogIndex) -> LogId {
        LogId { term, index }
    }

    /// §5.4.1: a log is at least as up-to-date as another if its last term is higher, or the
    /// terms are equal and it is at least as long. The derived `Ord` (term, then index) is
    /// exactly that comparison; this name says so at the call site.
    pub fn is_at_least_as_up_to_date_as(&self, other: &LogId) -> bool {
        self >= other
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Display for IoSequence {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "io#{}", self.0)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.term, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_date_compares_term_before_index() {
        let short_newer = LogId::new(Term(3), LogIndex(1));
        let long_older = LogId::new(Term(2), LogIndex(9));
        assert!(short_newer.is_at_least_as_up_to_date_as(&long_older));
        assert!(!long_older.is_at_least_as_up_to_date_as(&short_newer));
        assert!(long_older.is_at_least_as_up_to_date_as(&long_older));
    }
}
