//! Log entries.

use crate::ids::{LogId, LogIndex, Term};
use crate::membership::Membership;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One slot of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry and its position in the log.
    pub log_id: LogId,
    /// What the entry carries.
    pub payload: EntryPayload,
}

/// What an entry carries. New variants (membership changes) are added at the end so stored
/// logs and older peers keep decoding the ones they know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// The no-op a new leader appends at the start of its term, so that entries of earlier
    /// terms become committed through it (§5.4.2, §8) and ReadIndex has a current-term commit.
    Blank,
    /// An opaque client command for the state machine. Encoded as one MessagePack binary
    /// (not an array of integers), so large values cost a copy, not a per-byte loop. Held as
    /// shared `Bytes`, so the copies of an entry a leader keeps in its log, hands to storage
    /// and sends to every follower share one buffer instead of copying it each time.
    Command(Bytes),
    /// A new cluster configuration (thesis §4.1): every server uses it as soon as it appends
    /// it. The state machine sees it only to record the membership its snapshots carry.
    Membership(Membership),
}

impl EntryPayload {
    /// A command payload from anything that converts to `Bytes` without copying (a `Vec<u8>`,
    /// a `&'static [u8]`, `Bytes`).
    pub fn command(bytes: impl Into<Bytes>) -> EntryPayload {
        EntryPayload::Command(bytes.into())
    }
}

impl Entry {
    /// The entry at `index` created in `term`.
    pub fn new(term: Term, index: LogIndex, payload: EntryPayload) -> Entry {
        Entry {
            log_id: LogId::new(term, index),
            payload,
        }
    }

    /// The term of the leader that created the entry.
    pub fn term(&self) -> Term {
        self.log_id.term
    }

    /// The entry's position in the log.
    pub fn index(&self) -> LogIndex {
        self.log_id.index
    }

    /// Bytes of payload, used for batching limits and throughput figures.
    pub fn payload_len(&self) -> usize {
        match &self.payload {
            EntryPayload::Blank | EntryPayload::Membership(_) => 0,
            EntryPayload::Command(bytes) => bytes.len(),
        }
    }
}
