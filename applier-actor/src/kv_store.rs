//! `KvStore`: the default state machine, an ordered map from UTF-8 keys to byte values.

use crate::kv::{KvCommand, KvOutput, KvQuery};
use crate::state_machine::StateMachine;
use raft_types::LogId;
use std::collections::BTreeMap;

/// An in-memory key-value store. It is rebuilt on restart by re-applying the log (there are
/// no snapshots yet), so it holds no state of its own on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStore {
    /// `BTreeMap`, not `HashMap`: iteration order (in tests, in future snapshots) must be the
    /// same on every replica.
    entries: BTreeMap<String, Vec<u8>>,
}

impl KvStore {
    pub fn new() -> KvStore {
        KvStore::default()
    }

    pub fn get(&self, key: &str) -> Option<&Vec<u8>> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn apply_command(&mut self, log_id: LogId, command: KvCommand) -> KvOutput {
        let index = log_id.index;
        match command {
            KvCommand::Put { key, value } => {
                self.entries.insert(key, value);
                KvOutput::Put { index }
            }
            KvCommand::Delete { key } => {
                let existed = self.entries.remove(&key).is_some();
                KvOutput::Deleted { index, existed }
            }
            KvCommand::CompareAndSwap { key, expect, value } => {
                let current = self.entries.get(&key);
                if current == expect.as_ref() {
                    self.entries.insert(key, value);
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
