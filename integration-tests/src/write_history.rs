//! `WriteHistory`: what clients were told, to check against the cluster after faults.
//!
//! A write answered `200` is acknowledged and must be readable afterwards (unless a later
//! acknowledged write replaced it); a write with an unknown outcome (`504`, a broken
//! connection) may or may not be there; a `503` was definitely not applied.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What clients were told about their writes of unique keys (each key written at most once, so
/// the check is exact): it models the promise the cluster made to its clients, against which
/// the state after faults is checked. Cheap to clone; the clones share one history.
#[derive(Clone, Default)]
pub struct WriteHistory {
    inner: Arc<Mutex<BTreeMap<String, WriteOutcome>>>,
}

/// What one client was told about one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Success with this value: it must be in the final state.
    Acknowledged(Vec<u8>),
    /// No definite answer (a timeout, a dropped connection): either outcome is allowed.
    Unknown(Vec<u8>),
    /// Definitely not applied: it must not be in the final state.
    Refused,
}

impl WriteHistory {
    pub fn record(&self, key: &str, outcome: WriteOutcome) {
        let previous = self
            .inner
            .lock()
            .expect("history lock")
            .insert(key.to_string(), outcome);
        assert!(previous.is_none(), "each key is written once: {key}");
    }

    pub fn acknowledged(&self) -> BTreeMap<String, Vec<u8>> {
        self.inner
            .lock()
            .expect("history lock")
            .iter()
            .filter_map(|(key, outcome)| match outcome {
                WriteOutcome::Acknowledged(value) => Some((key.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().expect("history lock").len()
    }
}
