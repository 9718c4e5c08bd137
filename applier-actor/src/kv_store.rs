//! `KvStore`: the default state machine, an ordered map from UTF-8 keys to byte values.
//!
//! The map is persistent (structurally shared, `rpds::RedBlackTreeMapSync`): cloning it is
//! O(1) and later writes copy only the O(log n) nodes on their path. That is what lets the
//! applier capture the state at an index for a snapshot and serialize it on another thread
//! while apply goes on: the capture keeps the old nodes alive, the store moves on with new ones.

use crate::kv::{KvCommand, KvOutput, KvQuery, ListedEntry};
use crate::kv_snapshot::{self, KvSnapshot};
use crate::state_machine::{StateMachine, StateMachineSnapshot};
use raft_types::LogId;
use rpds::RedBlackTreeMapSync;
use std::io;

/// The map the store keeps: ordered, so iteration (in tests, in snapshots) is the same on every
/// replica; `Sync` (atomically counted nodes), so a captured copy can be read on another thread.
pub(crate) type KvMap = RedBlackTreeMapSync<String, Vec<u8>>;

/// An in-memory key-value store. Its state reaches the disk only through snapshots
/// ([`StateMachine::snapshot`]); otherwise it is rebuilt on restart by re-applying the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStore {
    /// An ordered map, not a `HashMap`: iteration order (in tests, in snapshots) must be the
    /// same on every replica.
    entries: KvMap,
}

impl Default for KvStore {
    fn default() -> KvStore {
        KvStore {
            entries: KvMap::new_sync(),
        }
    }
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.size()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One page of the keys under `prefix`, in key order, after `start_after` when given:
    /// a range scan from the later of the two bounds that stops at the first key outside the
    /// prefix, so a page costs O(log n + limit) whatever the map's size. It reads one entry
    /// past `limit` to tell whether more remain, without a second scan.
    pub fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> KvOutput {
        use std::ops::Bound;
        let lower = match start_after {
            // A `start_after` before the prefix starts the scan at the prefix itself.
            Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut entries = Vec::new();
        let mut more = false;
        for (key, value) in self
            .entries
            .range::<String, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
        {
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(ListedEntry {
                key: key.clone(),
                value: value.clone(),
            });
        }
        KvOutput::Listed { entries, more }
    }

    fn apply_command(&mut self, log_id: LogId, command: KvCommand) -> KvOutput {
        let index = log_id.index;
        match command {
            KvCommand::Put { key, value } => {
                self.entries.insert_mut(key, value);
                KvOutput::Put { index }
            }
            KvCommand::Delete { key } => {
                let existed = self.entries.remove_mut(&key);
                KvOutput::Deleted { index, existed }
            }
            KvCommand::CompareAndSwap { key, expect, value } => {
                let current = self.entries.get(&key);
                if current == expect.as_ref() {
                    self.entries.insert_mut(key, value);
                    KvOutput::Swapped { index }
                } else {
                    KvOutput::CasFailed {
                        current: current.cloned(),
                    }
                }
            }
        }
    }
}

impl StateMachine for KvStore {
    fn apply(&mut self, log_id: LogId, command: &[u8]) -> Vec<u8> {
        let output = match KvCommand::decode(command) {
            Ok(command) => self.apply_command(log_id, command),
            Err(error) => {
                tracing::warn!(%log_id, %error, "malformed key-value command; state unchanged");
                KvOutput::Invalid {
                    reason: format!("malformed command: {error}"),
                }
            }
        };
        output.encode()
    }

    fn query(&self, query: &[u8]) -> Vec<u8> {
        let output = match KvQuery::decode(query) {
            Ok(KvQuery::Get { key }) => KvOutput::Value(self.entries.get(&key).cloned()),
            Ok(KvQuery::List {
                prefix,
                start_after,
                limit,
            }) => self.list(&prefix, start_after.as_deref(), limit as usize),
            Err(error) => KvOutput::Invalid {
                reason: format!("malformed query: {error}"),
            },
        };
        output.encode()
    }

    /// O(1): the snapshot shares the map's nodes; writes after it copy the nodes they change.
    fn snapshot(&self) -> Box<dyn StateMachineSnapshot> {
        Box::new(KvSnapshot {
            entries: self.entries.clone(),
        })
    }

    /// Reads the whole payload into a new map first and swaps it in only if all of it is
    /// valid, so a bad payload leaves the store as it was. The format is in [`kv_snapshot`].
    fn restore(&mut self, payload: &mut dyn io::Read) -> Result<(), String> {
        self.entries = kv_snapshot::read_map(payload)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::{LogIndex, Term};

    fn apply(store: &mut KvStore, index: u64, command: KvCommand) -> KvOutput {
        let log_id = LogId::new(Term(1), LogIndex(index));
        KvOutput::decode(&store.apply(log_id, &command.encode())).expect("output decodes")
    }

    fn get(store: &KvStore, key: &str) -> KvOutput {
        let query = KvQuery::Get {
            key: key.to_string(),
        };
        KvOutput::decode(&store.query(&query.encode())).expect("output decodes")
    }

    fn put(key: &str, value: &[u8]) -> KvCommand {
        KvCommand::Put {
            key: key.to_string(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn put_get_delete() {
        let mut store = KvStore::new();
        assert_eq!(get(&store, "a"), KvOutput::Value(None));
        assert_eq!(
            apply(&mut store, 1, put("a", b"1")),
            KvOutput::Put { index: LogIndex(1) }
        );
        assert_eq!(get(&store, "a"), KvOutput::Value(Some(b"1".to_vec())));
        let delete = KvCommand::Delete {
            key: "a".to_string(),
        };
        assert_eq!(
            apply(&mut store, 2, delete.clone()),
            KvOutput::Deleted {
                index: LogIndex(2),
                existed: true
            }
        );
        assert_eq!(
            apply(&mut store, 3, delete),
            KvOutput::Deleted {
                index: LogIndex(3),
                existed: false
            }
        );
        assert!(store.is_empty());
    }

    #[test]
    fn compare_and_swap() {
        let mut store = KvStore::new();
        let swap_if_absent = KvCommand::CompareAndSwap {
            key: "k".to_string(),
            expect: None,
            value: b"first".to_vec(),
        };
        assert_eq!(
            apply(&mut store, 1, swap_if_absent.clone()),
            KvOutput::Swapped { index: LogIndex(1) }
        );
        assert_eq!(
            apply(&mut store, 2, swap_if_absent),
            KvOutput::CasFailed {
                current: Some(b"first".to_vec())
            }
        );
        let swap_matching = KvCommand::CompareAndSwap {
            key: "k".to_string(),
            expect: Some(b"first".to_vec()),
            value: b"second".to_vec(),
        };
        assert_eq!(
            apply(&mut store, 3, swap_matching),
            KvOutput::Swapped { index: LogIndex(3) }
        );
        assert_eq!(get(&store, "k"), KvOutput::Value(Some(b"second".to_vec())));
    }

    fn list(store: &KvStore, prefix: &str, start_after: Option<&str>, limit: u32) -> KvOutput {
        let query = KvQuery::List {
            prefix: prefix.to_string(),
            start_after: start_after.map(str::to_string),
            limit,
        };
        KvOutput::decode(&store.query(&query.encode())).expect("output decodes")
    }

    fn listed_keys(output: &KvOutput) -> (Vec<&str>, bool) {
        match output {
            KvOutput::Listed { entries, more } => (
                entries.iter().map(|entry| entry.key.as_str()).collect(),
                *more,
            ),
            other => panic!("not a listing: {other:?}"),
        }
    }

    #[test]
    fn list_pages_through_a_prefix_in_key_order() {
        let mut store = KvStore::new();
        // Keys just outside the prefix on both sides, and a binary value.
        for (index, key) in ["a", "a/", "a/1", "a/2", "a/3", "a0", "b/1"]
            .iter()
            .enumerate()
        {
            apply(
                &mut store,
                index as u64 + 1,
                put(key, &[0, 255, index as u8]),
            );
        }
        let first = list(&store, "a/", None, 2);
        assert_eq!(listed_keys(&first), (vec!["a/", "a/1"], true));
        let KvOutput::Listed { entries, .. } = &first else {
            unreachable!()
        };
        assert_eq!(
            entries[1].value,
            vec![0, 255, 2],
            "values are bytes as written"
        );
        let second = list(&store, "a/", Some("a/1"), 2);
        assert_eq!(listed_keys(&second), (vec!["a/2", "a/3"], false));
        // Exactly `limit` left: `more` is false, so a client never fetches an empty page.
        assert_eq!(
            listed_keys(&list(&store, "a/", Some("a/3"), 2)),
            (vec![], false)
        );
        // A start_after before the prefix starts at the prefix; an empty prefix lists all.
        assert_eq!(
            listed_keys(&list(&store, "a/", Some("0"), 1)),
            (vec!["a/"], true)
        );
        assert_eq!(listed_keys(&list(&store, "", None, 100)).0.len(), 7);
        assert_eq!(listed_keys(&list(&store, "c", None, 100)), (vec![], false));
        assert_eq!(listed_keys(&list(&store, "a/", None, 0)), (vec![], true));
    }

    #[test]
    fn malformed_bytes_give_the_same_error_output_and_change_nothing() {
        let mut first = KvStore::new();
        let mut second = KvStore::new();
        let log_id = LogId::new(Term(1), LogIndex(1));
        for garbage in [&b""[..], &[1, 0xc1][..], &[9, 1, 2][..], b"put a 1"] {
            let first_output = first.apply(log_id, garbage);
            assert_eq!(first_output, second.apply(log_id, garbage));
            assert!(matches!(
                KvOutput::decode(&first_output).expect("output decodes"),
                KvOutput::Invalid { .. }
            ));
            assert!(matches!(
                KvOutput::decode(&first.query(garbage)).expect("output decodes"),
                KvOutput::Invalid { .. }
            ));
        }
        assert!(first.is_empty());
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use raft_types::{LogIndex, Term};

    fn apply(store: &mut KvStore, index: u64, command: KvCommand) {
        store.apply(LogId::new(Term(1), LogIndex(index)), &command.encode());
    }

    fn put(key: &str, value: &[u8]) -> KvCommand {
        KvCommand::Put {
            key: key.to_string(),
            value: value.to_vec(),
        }
    }

    fn bytes_of(store: &KvStore) -> Vec<u8> {
        let mut bytes = Vec::new();
        store
            .snapshot()
            .write_to(&mut bytes)
            .expect("writing to a Vec succeeds");
        bytes
    }

    fn restored(bytes: &[u8]) -> Result<KvStore, String> {
        let mut store = KvStore::new();
        store.restore(&mut &bytes[..])?;
        Ok(store)
    }

    /// The format is read by other versions: this encoding must never change (version 1).
    #[test]
    fn a_fixed_store_has_fixed_bytes() {
        let mut store = KvStore::new();
        apply(&mut store, 1, put("b", &[0xff, 0]));
        apply(&mut store, 2, put("a", b""));
        let mut expected = b"KVSN\x01".to_vec();
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(b"a");
        expected.extend_from_slice(&0u32.to_le_bytes());
        expected.extend_from_slice(&1u32.to_le_bytes());
        expected.extend_from_slice(b"b");
        expected.extend_from_slice(&2u32.to_le_bytes());
        expected.extend_from_slice(&[0xff, 0]);
        assert_eq!(bytes_of(&store), expected);
        assert_eq!(restored(&expected), Ok(store));
        assert_eq!(bytes_of(&KvStore::new()), b"KVSN\x01\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn replicas_with_equal_state_write_identical_bytes_whatever_their_history() {
        let mut first = KvStore::new();
        apply(&mut first, 1, put("x", b"1"));
        apply(&mut first, 2, put("y", b"2"));
        apply(&mut first, 3, put("z", b"3"));
        let mut second = KvStore::new();
        apply(&mut second, 1, put("z", b"3"));
        apply(&mut second, 2, put("w", b"gone"));
        apply(&mut second, 3, put("y", b"old"));
        apply(
            &mut second,
            4,
            KvCommand::Delete {
                key: "w".to_string(),
            },
        );
        apply(&mut second, 5, put("x", b"1"));
        apply(&mut second, 6, put("y", b"2"));
        assert_eq!(first, second);
        assert_eq!(bytes_of(&first), bytes_of(&second));
    }

    #[test]
    fn a_snapshot_is_the_state_at_its_capture_not_after() {
        let mut store = KvStore::new();
        apply(&mut store, 1, put("a", b"1"));
        let before = bytes_of(&store);
        let captured = store.snapshot();
        apply(&mut store, 2, put("a", b"2"));
        apply(&mut store, 3, put("b", b"3"));
        let mut written = Vec::new();
        captured.write_to(&mut written).expect("writes");
        assert_eq!(written, before);
        assert_eq!(store.get("a"), Some(&b"2".to_vec()));
    }

    #[test]
    fn restore_replaces_the_whole_state_and_never_merges() {
        let mut source = KvStore::new();
        apply(&mut source, 1, put("kept", b"new"));
        let mut target = KvStore::new();
        apply(&mut target, 1, put("kept", b"old"));
        apply(&mut target, 2, put("stale", b"only here"));
        target
            .restore(&mut &bytes_of(&source)[..])
            .expect("restores");
        assert_eq!(target, source);
        assert_eq!(target.get("stale"), None);
    }

    /// Every way a payload can be bad: each is refused with an error naming it, never a panic,
    /// and the store keeps exactly the state it had.
    #[test]
    fn garbage_or_truncated_payloads_are_refused_and_change_nothing() {
        let mut source = KvStore::new();
        apply(&mut source, 1, put("a", b"first"));
        apply(&mut source, 2, put("b", &[0, 1, 2]));
        let valid = bytes_of(&source);
        let mut bad: Vec<(String, Vec<u8>)> = (0..valid.len())
            .map(|length| (format!("cut to {length} bytes"), valid[..length].to_vec()))
            .collect();
        let with = |position: usize, byte: u8| {
            let mut changed = valid.clone();
            changed[position] = byte;
            changed
        };
        bad.push(("wrong magic".to_string(), with(0, b'X')));
        bad.push(("unknown version".to_string(), with(4, 2)));
        bad.push(("one entry more than held".to_string(), with(5, 3)));
        bad.push(("one entry fewer than held".to_string(), with(5, 1)));
        // Key "a" is at bytes 17..18 (after the 13-byte header and its 4-byte length).
        bad.push(("key not UTF-8".to_string(), with(17, 0xff)));
        bad.push(("keys out of order".to_string(), with(17, b'c')));
        bad.push(("repeated key".to_string(), with(17, b'b')));
        let mut huge_length = valid.clone();
        huge_length[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        bad.push(("a length past the end".to_string(), huge_length));
        let mut trailing = valid.clone();
        trailing.push(0);
        bad.push(("a byte after the last entry".to_string(), trailing));
        bad.push(("a WAL record".to_string(), b"\x01\x93\xa3put".to_vec()));
        let mut huge_count = b"KVSN\x01".to_vec();
        huge_count.extend_from_slice(&u64::MAX.to_le_bytes());
        bad.push(("a count past the end".to_string(), huge_count));

        let mut target = KvStore::new();
        apply(&mut target, 1, put("mine", b"untouched"));
        let before = target.clone();
        let bytes_before = bytes_of(&target);
        for (what, payload) in bad {
            let error = target
                .restore(&mut &payload[..])
                .expect_err(&format!("{what}: refused"));
            assert!(!error.is_empty(), "{what}: the error says something");
            assert_eq!(target, before, "{what}: the state is unchanged");
            assert_eq!(bytes_of(&target), bytes_before, "{what}");
        }
    }

    /// A reader that fails partway, as a snapshot store does on a checksum mismatch.
    struct FailingReader {
        bytes: Vec<u8>,
        position: usize,
    }

    impl io::Read for FailingReader {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            if self.position >= self.bytes.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "checksum mismatch",
                ));
            }
            let length = buffer.len().min(self.bytes.len() - self.position).min(3);
            buffer[..length].copy_from_slice(&self.bytes[self.position..][..length]);
            self.position += length;
            Ok(length)
        }
    }

    #[test]
    fn a_read_error_is_reported_with_its_cause_and_changes_nothing() {
        let mut source = KvStore::new();
        apply(&mut source, 1, put("a", b"0123456789"));
        let valid = bytes_of(&source);
        let mut target = KvStore::new();
        apply(&mut target, 1, put("mine", b"untouched"));
        let before = target.clone();
        let mut reader = FailingReader {
            bytes: valid[..valid.len() - 4].to_vec(),
            position: 0,
        };
        let error = target.restore(&mut reader).expect_err("refused");
        assert!(error.contains("checksum mismatch"), "{error}");
        assert_eq!(target, before);
    }
}
