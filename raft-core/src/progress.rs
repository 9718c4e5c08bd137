//! What a leader knows about one follower's log (Figure 2, "Volatile state on leaders"), and
//! how it paces replication to it.

use raft_types::LogIndex;
use std::collections::VecDeque;

/// How the leader sends to a follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicationMode {
    /// The leader does not know where the follower's log matches its own: one AppendEntries
    /// at a time, each answer moving `next_index` (back, using the conflict hint) until one
    /// succeeds. `outstanding_sequence` is the sequence of the probe in flight, if any;
    /// answers to older probes are stale and ignored.
    Probe {
        /// The sequence of the probe in flight, if any.
        outstanding_sequence: Option<u64>,
    },
    /// The follower's log matches through `match_index`: the leader streams entries,
    /// optimistically advancing `next_index`, with up to `max_inflight_appends` unacknowledged.
    /// `inflight` holds the last index of each unacknowledged AppendEntries, in send order.
    Replicate {
        /// The last index of each unacknowledged AppendEntries, oldest first.
        inflight: VecDeque<LogIndex>,
    },
}

/// The leader's replication state for one follower: Figure 2's `nextIndex` and `matchIndex`,
/// and how it paces sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Index of the next entry to send to this follower.
    pub next_index: LogIndex,
    /// Highest index known to be replicated (durably) on this follower.
    pub match_index: LogIndex,
    /// Whether the leader probes for the match point or streams entries.
    pub mode: ReplicationMode,
    /// Highest AppendEntries sequence this follower has answered in the current term: proof
    /// it accepted this leader after that message was sent (ReadIndex confirmation).
    pub acknowledged_sequence: u64,
    /// Whether the follower answered since the last check-quorum round.
    pub recently_active: bool,
}

impl Progress {
    /// A new leader knows nothing about its followers: it probes from just past its own log.
    pub fn new(next_index: LogIndex) -> Progress {
        Progress {
            next_index,
            match_index: LogIndex::ZERO,
            mode: ReplicationMode::Probe {
                outstanding_sequence: None,
            },
            acknowledged_sequence: 0,
            recently_active: false,
        }
    }

    /// Records that the follower holds everything through `match_index`. Returns whether that
    /// was news. Stale acknowledgements (lower than what is known) change nothing.
    pub fn acknowledge(&mut self, match_index: LogIndex) -> bool {
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
        }
        if self.next_index <= self.match_index {
            self.next_index = self.match_index.next();
        }
        match &mut self.mode {
            ReplicationMode::Replicate { inflight } => {
                while inflight.front().is_some_and(|last| *last <= match_index) {
                    inflight.pop_front();
                }
            }
            ReplicationMode::Probe { .. } => {
                // A success proves where the logs match: start streaming from there.
                self.next_index = self.match_index.next();
                self.mode = ReplicationMode::Replicate {
                    inflight: VecDeque::new(),
                };
            }
        }
        advanced
    }

    /// Falls back to probing from `next_index` (never below what is known to match).
    pub fn start_probing(&mut self, next_index: LogIndex) {
        self.next_index = next_index.max(self.match_index.next());
        self.mode = ReplicationMode::Probe {
            outstanding_sequence: None,
        };
    }
}
