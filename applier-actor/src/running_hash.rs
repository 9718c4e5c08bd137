//! `RunningHash`: a fingerprint of everything a state machine has applied, so that replicas
//! can prove to each other that they went through the same history (issue 18; etcd's
//! corruption check is the model).
//!
//! Raft compares logs only by `LogId` (§5.3 Log Matching). An entry whose bytes changed on one
//! disk but kept its index and term (a bit flip the CRC missed, a bad restore, a hand edit)
//! is invisible to it; replicas then apply different commands and serve different answers
//! forever. Hashing what is actually applied makes that visible.
//!
//! # Format
//!
//! Peers of different versions and machines compare these values, so the format is fixed:
//! changing it is a wire change (the known-value test below guards it). Before anything is
//! applied (index 0) the hash is 0. Applying the entry at index `i` sets `hash(i)` to the
//! XXH3-64 (seed 0, default secret; xxHash 0.8 specification) of these bytes:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | `hash(i - 1)`, little-endian |
//! | 8 | 8 | index `i`, little-endian |
//! | 16 | 8 | the entry's term, little-endian |
//! | 24 | 1 | payload kind: `0` blank (a leader's no-op), `1` command, `2` configuration (the payload is its `raft_types::codec` encoding) |
//! | 25 | 8 | payload length `n` in bytes, little-endian (`0` for a blank entry) |
//! | 33 | `n` | the payload bytes |
//!
//! Chaining each hash into the next means one value at one index stands for the whole history
//! up to it: two replicas agreeing at index 100 agree on entries 1..=100. Blank entries are
//! hashed too, because a replica that applied a command where another applied a no-op has a
//! different history. The length keeps a payload's end from being ambiguous, and the kind
//! keeps a blank entry apart from an empty command.
//!
//! XXH3-64 is not cryptographic: it detects accidents (corruption, bugs, mistakes), not an
//! adversary who controls a replica's disk, which no replica-side check could stop anyway.

use raft_types::{Entry, EntryPayload, LogIndex};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use xxhash_rust::xxh3::Xxh3Default;

/// The running hash after some index: see the module's `# Format`. Written as 16 lowercase
/// hex digits (in JSON too: a JSON number would lose bits above 2^53 in many clients).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistoryHash(pub u64);

/// Payload kinds, as hashed (the `kind` byte of the format).
const KIND_BLANK: u8 = 0;
const KIND_COMMAND: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

impl HistoryHash {
    /// The hash of the empty history (nothing applied, index 0).
    pub const EMPTY: HistoryHash = HistoryHash(0);

    /// The hash after applying `entry` to a history whose hash is `self`.
    pub fn chain(self, entry: &Entry) -> HistoryHash {
        let encoded_membership;
        let (kind, payload): (u8, &[u8]) = match &entry.payload {
            EntryPayload::Blank => (KIND_BLANK, &[]),
            EntryPayload::Command(bytes) => (KIND_COMMAND, bytes),
            EntryPayload::Membership(membership) => {
                // Ordered sets and maps: every replica encodes one configuration to the same
                // bytes.
                encoded_membership =
                    raft_types::encode(membership).expect("a configuration always encodes");
                (KIND_MEMBERSHIP, &encoded_membership)
            }
        };
        let mut hasher = Xxh3Default::new();
        hasher.update(&self.0.to_le_bytes());
        hasher.update(&entry.log_id.index.0.to_le_bytes());
        hasher.update(&entry.log_id.term.0.to_le_bytes());
        hasher.update(&[kind]);
        hasher.update(&(payload.len() as u64).to_le_bytes());
        hasher.update(payload);
        HistoryHash(hasher.digest())
    }
}

impl fmt::Display for HistoryHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:016x}", self.0)
    }
}

/// A hash that is not 16 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a history hash (16 hex digits)")]
pub struct HistoryHashParseError {
    pub text: String,
}

impl FromStr for HistoryHash {
    type Err = HistoryHashParseError;

    fn from_str(text: &str) -> Result<HistoryHash, HistoryHashParseError> {
        let error = || HistoryHashParseError {
            text: text.to_string(),
        };
        if text.len() != 16 {
            return Err(error());
        }
        u64::from_str_radix(text, 16)
            .map(HistoryHash)
            .map_err(|_| error())
    }
}

impl Serialize for HistoryHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HistoryHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HistoryHash, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The hash of the history applied so far, and the index it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunningHash {
    index: LogIndex,
    hash: HistoryHash,
}

impl RunningHash {
    /// The hash of the empty history: the next entry to absorb is index 1.
    pub fn new() -> RunningHash {
        RunningHash::default()
    }

    /// The running hash of a history whose hash after `index` is `hash` (from a snapshot
    /// taken there): the next entry to absorb is `index + 1`, and the hashes after it are those
    /// of a replica that absorbed the whole history.
    pub fn resume(index: LogIndex, hash: HistoryHash) -> RunningHash {
        RunningHash { index, hash }
    }

    /// Adds the entry applied right after [`RunningHash::index`].
    pub fn absorb(&mut self, entry: &Entry) {
        assert_eq!(
            entry.log_id.index,
            self.index.next(),
            "the running hash covers a contiguous history: got {} after index {}",
            entry.log_id,
            self.index
        );
        self.hash = self.hash.chain(entry);
        self.index = entry.log_id.index;
    }

    /// The last index absorbed (0 before any).
    pub fn index(&self) -> LogIndex {
        self.index
    }

    pub fn hash(&self) -> HistoryHash {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::Term;

    fn command(term: u64, index: u64, bytes: &'static [u8]) -> Entry {
        Entry::new(Term(term), LogIndex(index), EntryPayload::command(bytes))
    }

    fn history() -> Vec<Entry> {
        vec![
            Entry::new(Term(1), LogIndex(1), EntryPayload::Blank),
            command(1, 2, b"put a 1"),
            command(2, 3, b""),
        ]
    }

    fn hash_of(entries: &[Entry]) -> RunningHash {
        let mut running = RunningHash::new();
        for entry in entries {
            running.absorb(entry);
        }
        running
    }

    /// The library itself: XXH3-64 of the empty input, from the xxHash reference.
    #[test]
    fn xxh3_64_matches_the_reference_value() {
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2d06_8005_38d3_94c2);
    }

    /// The format is a wire format between versions: this value must never change.
    #[test]
    fn a_fixed_history_has_a_fixed_hash() {
        let running = hash_of(&history());
        assert_eq!(running.index(), LogIndex(3));
        assert_eq!(running.hash().to_string(), KNOWN_HASH_OF_HISTORY);
        // One entry by hand, byte for byte as the format table says.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.push(KIND_BLANK);
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let first = Entry::new(Term(1), LogIndex(1), EntryPayload::Blank);
        assert_eq!(
            HistoryHash::EMPTY.chain(&first),
            HistoryHash(xxhash_rust::xxh3::xxh3_64(&bytes))
        );
    }

    const KNOWN_HASH_OF_HISTORY: &str = "101d667ae4ad789d";

    #[test]
    fn every_field_changes_the_hash() {
        let original = hash_of(&history()).hash();
        let changed_payload = vec![
            history()[0].clone(),
            command(1, 2, b"put a 2"),
            history()[2].clone(),
        ];
        let changed_term = vec![
            history()[0].clone(),
            command(2, 2, b"put a 1"),
            history()[2].clone(),
        ];
        // A blank entry and an empty command are different histories.
        let blank_for_empty = vec![
            history()[0].clone(),
            history()[1].clone(),
            Entry::new(Term(2), LogIndex(3), EntryPayload::Blank),
        ];
        for changed in [changed_payload, changed_term, blank_for_empty] {
            assert_ne!(hash_of(&changed).hash(), original, "{changed:?}");
        }
    }

    #[test]
    fn hashes_are_written_and_read_as_16_hex_digits() {
        let hash = HistoryHash(0x00ab_cdef_0123_4567);
        assert_eq!(hash.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse(), Ok(hash));
        assert!("abc".parse::<HistoryHash>().is_err());
        assert!("zzzzzzzzzzzzzzzz".parse::<HistoryHash>().is_err());
    }

    #[test]
    #[should_panic(expected = "contiguous history")]
    fn a_gap_in_the_history_is_a_bug() {
        let mut running = RunningHash::new();
        running.absorb(&command(1, 2, b"x"));
    }
}
