//! What a leader knows about one follower's log (Figure 2, "Volatile state on leaders"), and
//! how it paces replication to it.

use raft_types::{LogIndex, SnapshotMeta};
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
    /// The entries the follower needs next are purged: the leader sends it `transfer`'s
    /// snapshot in chunks. Appends pause; heartbeats go on (with an empty prefix, which every
    /// log holds), so the follower keeps following and ReadIndex keeps working.
    Snapshot(SnapshotTransfer),
}

/// One InstallSnapshot transfer to one follower (at most one per follower).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotTransfer {
    /// The snapshot being sent. It stays the same for the whole transfer, even when the leader
    /// takes a newer one meanwhile.
    pub snapshot: SnapshotMeta,
    /// The follower durably holds bytes `0 .. acknowledged_offset`.
    pub acknowledged_offset: u64,
    /// The next byte to send.
    pub next_offset: u64,
    /// Chunks sent and not acknowledged, oldest first: (sequence, offset, end offset).
    pub inflight: VecDeque<SentChunk>,
    /// Ticks since a chunk was last acknowledged; at `snapshot_chunk_timeout_ticks` the
    /// unacknowledged chunks are sent again.
    pub ticks_without_progress: u64,
}

/// A chunk in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentChunk {
    /// The request's sequence.
    pub sequence: u64,
    /// Where the chunk starts in the file.
    pub offset: u64,
    /// Where it ends.
    pub end_offset: u64,
}

impl SnapshotTransfer {
    /// A transfer of `snapshot` from its first byte.
    pub fn new(snapshot: SnapshotMeta) -> SnapshotTransfer {
        SnapshotTransfer {
            snapshot,
            acknowledged_offset: 0,
            next_offset: 0,
            inflight: VecDeque::new(),
            ticks_without_progress: 0,
        }
    }

    /// The follower holds `0 .. next_offset`: chunks ending there or before are done.
    /// Returns whether that was news.
    pub fn acknowledge(&mut self, next_offset: u64) -> bool {
        if next_offset <= self.acknowledged_offset {
            return false;
        }
        self.acknowledged_offset = next_offset;
        self.next_offset = self.next_offset.max(next_offset);
        while self
            .inflight
            .front()
            .is_some_and(|chunk| chunk.end_offset <= next_offset)
        {
            self.inflight.pop_front();
        }
        self.ticks_without_progress = 0;
        true
    }

    /// Sends again from `offset`, what the follower says it holds (less than before when it
    /// restarted and lost its partial file): every chunk in flight is forgotten; answers to
    /// them that still come match no chunk.
    pub fn resend_from(&mut self, offset: u64) {
        self.acknowledged_offset = offset;
        self.next_offset = offset;
        self.inflight.clear();
        self.ticks_without_progress = 0;
    }
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
    /// Leader ticks since the follower last answered; `None` while it never has in this term.
    /// Read by the strict reconfiguration check and shown to operators.
    pub ticks_since_contact: Option<u64>,
    /// The catch-up round a learner is in (thesis §4.2.1), read when it is to be promoted.
    pub catch_up: CatchUpRound,
}

/// A catch-up round (thesis §4.2.1): the follower is asked to reach `target`, the leader's last
/// index when the round began. A follower whose last round took less than an election
/// timeout is close enough behind to be made a voter without stalling commitment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUpRound {
    /// The index that ends the round.
    pub target: LogIndex,
    /// Ticks since the round began.
    pub elapsed_ticks: u64,
    /// How long the last completed round took, in ticks.
    pub last_round_ticks: Option<u64>,
}

impl CatchUpRound {
    /// The follower holds `match_index`; the leader's log ends at `last_index`. Ends the round
    /// when the target is reached and starts the next one toward `last_index`.
    pub fn observe(&mut self, match_index: LogIndex, last_index: LogIndex) {
        if match_index >= self.target {
            self.last_round_ticks = Some(self.elapsed_ticks);
            self.elapsed_ticks = 0;
            self.target = last_index;
        }
    }
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
            ticks_since_contact: None,
            catch_up: CatchUpRound {
                target: next_index.previous(),
                ..CatchUpRound::default()
            },
        }
    }

    /// The follower answered this leader (any answer of this term).
    pub fn heard_from(&mut self) {
        self.recently_active = true;
        self.ticks_since_contact = Some(0);
    }

    /// Whether the follower answered within the last `ticks` ticks.
    pub fn heard_within(&self, ticks: u64) -> bool {
        self.ticks_since_contact.is_some_and(|since| since < ticks)
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
            // A late answer to an AppendEntries sent before the transfer (or a heartbeat's,
            // which matches through 0): the transfer goes on; it ends when the follower
            // installs the snapshot or says it does not need it.
            ReplicationMode::Snapshot(_) => {}
        }
        advanced
    }

    /// The follower's log matches through `match_index` after installing a snapshot: stream
    /// entries from there.
    pub fn finish_snapshot(&mut self, match_index: LogIndex) {
        self.match_index = self.match_index.max(match_index);
        self.next_index = self.match_index.next();
        self.mode = ReplicationMode::Replicate {
            inflight: VecDeque::new(),
        };
    }

    /// The transfer in progress, if the follower is being sent a snapshot.
    pub fn snapshot_transfer(&self) -> Option<&SnapshotTransfer> {
        match &self.mode {
            ReplicationMode::Snapshot(transfer) => Some(transfer),
            ReplicationMode::Probe { .. } | ReplicationMode::Replicate { .. } => None,
        }
    }

    /// Falls back to probing from `next_index` (never below what is known to match).
    pub fn start_probing(&mut self, next_index: LogIndex) {
        self.next_index = next_index.max(self.match_index.next());
        self.mode = ReplicationMode::Probe {
            outstanding_sequence: None,
        };
    }
}
