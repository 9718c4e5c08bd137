//! `KvStore`: the default state machine, an ordered map from UTF-8 keys to byte values.
//!
//! The map is persistent (structurally shared, `rpds::RedBlackTreeMapSync`): cloning it is
//! O(1) and later writes copy only the O(log n) nodes on their path. That is what lets the
//! applier capture the state at an index for a snapshot and serialize it on another thread
//! while apply goes on: the capture keeps the old nodes alive, the store moves on with new ones.

use crate::kv::{KvCommand, KvOutput, KvQuery};
use crate::state_machine::StateMachine;
use raft_types::LogId;
use rpds::RedBlackTreeMapSync;

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
            Err(error) => KvOutput::Invalid {
                reason: format!("malformed query: {error}"),
            },
        };
        output.encode()
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
