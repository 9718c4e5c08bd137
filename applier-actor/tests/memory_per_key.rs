//! What the persistent map costs: the resident memory of a `KvStore` holding 100,000 keys with
//! 100-byte values, printed per key and bounded by 3 x the live data + 50 MiB.
//!
//! Resident memory is a process-wide number, so this is its own test binary with one test:
//! no other test allocates while it measures. Linux only (it reads `/proc/self/statm`).

use applier_actor::{KvCommand, KvStore, StateMachine};
use raft_types::{LogId, LogIndex, Term};

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 100;

/// The resident set size of this process in bytes, or `None` where `/proc` is missing.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // Every Linux target this project runs on uses 4 KiB pages.
    Some(resident_pages * 4096)
}

#[test]
fn a_hundred_thousand_keys_stay_within_three_times_their_data_plus_fifty_mib() {
    let Some(before) = resident_bytes() else {
        eprintln!("no /proc/self/statm; skipping the memory measurement");
        return;
    };
    // Encode all commands first, and measure after them, so only the store is counted.
    let mut store = KvStore::new();
    let mut live_bytes = 0u64;
    let mut before_store = before;
    let mut commands = Vec::with_capacity(KEYS as usize);
    for key_number in 0..KEYS {
        let key = format!("key/{key_number:08}");
        let value = vec![(key_number % 251) as u8; VALUE_BYTES];
        live_bytes += (key.len() + value.len()) as u64;
        commands.push(KvCommand::Put { key, value }.encode());
    }
    if let Some(now) = resident_bytes() {
        before_store = now;
    }
    for (position, command) in commands.iter().enumerate() {
        let log_id = LogId::new(Term(1), LogIndex(position as u64 + 1));
        store.apply(log_id, command);
    }
    drop(commands);
    let after = resident_bytes().expect("statm was readable a moment ago");
    assert_eq!(store.len() as u64, KEYS);
    let store_bytes = after.saturating_sub(before_store);
    let bound = 3 * live_bytes + 50 * 1024 * 1024;
    println!(
        "KvStore: {KEYS} keys, {live_bytes} live bytes, {store_bytes} resident bytes for the \
         store ({} per key, {:.2} x the live data); whole process {after} bytes; bound {bound}",
        store_bytes / KEYS,
        store_bytes as f64 / live_bytes as f64,
    );
    assert!(
        after.saturating_sub(before) < bound,
        "resident memory grew {} bytes for {live_bytes} live bytes (bound {bound})",
        after.saturating_sub(before)
    );
}
