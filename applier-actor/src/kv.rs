//! The key-value vocabulary: the commands that go through the log, the queries served by reads,
//! and the outputs that come back. All three travel as `raft_types::codec` bytes (version byte
//! + named rmp-serde), so a newer node can add a variant or field without breaking older ones.
//!
//! A client API builds a request with [`KvCommand::encode`] / [`KvQuery::encode`], hands the
//! bytes to the consensus actor (`Propose` / `Read`) and reads the answer with
//! [`KvOutput::decode`].

use raft_types::{CodecError, LogIndex};
use serde::{Deserialize, Serialize};

/// A state-changing command, replicated through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Set `key` to `value`, creating or replacing it.
    Put {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Remove `key` if present.
    Delete { key: String },
    /// Set `key` to `value` only if its current value is `expect` (`None`: only if absent).
    CompareAndSwap {
        key: String,
        #[serde(with = "serde_bytes")]
        expect: Option<Vec<u8>>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
}

/// A read-only query, served by ReadIndex reads or local reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvQuery {
    /// The current value of `key`, if any.
    Get { key: String },
    /// Up to `limit` entries whose keys start with `prefix`, in key order, beginning after
    /// `start_after` (exclusive) when given: one page of a listing. A client pages through a
    /// large prefix by passing the last key of one page as the next page's `start_after`.
    List {
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    },
}

/// One entry of a [`KvOutput::Listed`] page: a key and its value (any bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedEntry {
    pub key: String,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// What the store answers. Outputs of commands carry the log index the command was applied
/// at, so the client API can report it (`{"index": N}`) without another round trip; the index
/// is the same on every replica, so outputs stay deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutput {
    /// `Put` applied at `index`.
    Put { index: LogIndex },
    /// `Delete` applied at `index`; `existed` tells whether the key was there.
    Deleted { index: LogIndex, existed: bool },
    /// `CompareAndSwap` matched and wrote its value at `index`.
    Swapped { index: LogIndex },
    /// `CompareAndSwap` did not match; nothing changed. `current` is the value it found.
    CasFailed {
        #[serde(with = "serde_bytes")]
        current: Option<Vec<u8>>,
    },
    /// The answer to `Get`.
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// The answer to `List`: entries in key order; `more` tells whether further keys under
    /// the prefix follow the last one (the store looked one entry past the limit to know).
    Listed {
        entries: Vec<ListedEntry>,
        more: bool,
    },
    /// The command or query bytes could not be decoded; nothing changed. Every replica
    /// produces the same output for the same bytes.
    Invalid { reason: String },
}

impl KvCommand {
    /// The bytes to put in a `Propose`.
    pub fn encode(&self) -> Vec<u8> {
        raft_types::encode(self).expect("a KvCommand (strings and bytes) always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<KvCommand, CodecError> {
        raft_types::decode(bytes)
    }
}

impl KvQuery {
    /// The bytes to put in a `Read` or `Query`.
    pub fn encode(&self) -> Vec<u8> {
        raft_types::encode(self).expect("a KvQuery (strings) always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<KvQuery, CodecError> {
        raft_types::decode(bytes)
    }
}

impl KvOutput {
    pub fn encode(&self) -> Vec<u8> {
        raft_types::encode(self).expect("a KvOutput (strings, bytes, integers) always encodes")
    }

    /// Reads the bytes a `Propose` or `Read` was answered with.
    pub fn decode(bytes: &[u8]) -> Result<KvOutput, CodecError> {
        raft_types::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_queries_and_outputs_round_trip() {
        let commands = [
            KvCommand::Put {
                key: "a/b".to_string(),
                value: vec![0, 1, 255],
            },
            KvCommand::Delete {
                key: "a".to_string(),
            },
            KvCommand::CompareAndSwap {
                key: "a".to_string(),
                expect: None,
                value: b"new".to_vec(),
            },
        ];
        for command in commands {
            assert_eq!(
                KvCommand::decode(&command.encode()).expect("decodes"),
                command
            );
        }
        for query in [
            KvQuery::Get {
                key: "k".to_string(),
            },
            KvQuery::List {
                prefix: "a/".to_string(),
                start_after: Some("a/b".to_string()),
                limit: 10,
            },
        ] {
            assert_eq!(KvQuery::decode(&query.encode()).expect("decodes"), query);
        }
        let outputs = [
            KvOutput::Put { index: LogIndex(7) },
            KvOutput::Deleted {
                index: LogIndex(8),
                existed: true,
            },
            KvOutput::Swapped { index: LogIndex(9) },
            KvOutput::CasFailed {
                current: Some(b"old".to_vec()),
            },
            KvOutput::Value(None),
            KvOutput::Listed {
                entries: vec![ListedEntry {
                    key: "a/b".to_string(),
                    value: vec![0, 255],
                }],
                more: true,
            },
            KvOutput::Invalid {
                reason: "bad".to_string(),
            },
        ];
        for output in outputs {
            assert_eq!(KvOutput::decode(&output.encode()).expect("decodes"), output);
        }
    }
}
