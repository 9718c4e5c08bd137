//! `WriteHistory`: what clients were told, to check against the cluster after faults.
//!
//! A write answered `200` is acknowledged and must be readable afterwards (unless a later
//! acknowledged write replaced it); a write with an unknown outcome (`504`, a broken
//! connection) may or may not be there; a `503` was definitely not applied.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Outcomes of writes of unique keys (each key written at most once, so the check is exact).
#[derive(Clone, Default)]
pub struct WriteHistory {
    inner: Arc<Mutex<BTreeMap<String, WriteOutcome>>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Acknowledged(Vec<u8>),
    Unknown(Vec<u8>),
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
