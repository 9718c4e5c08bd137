//! `KvStore` snapshots of seeded random states: each restores to an equal store, which writes
//! the same bytes again. (The format's fixed bytes and every refused payload are unit tests in
//! `kv_store.rs`.)

use applier_actor::{KvCommand, KvStore, StateMachine};
use raft_types::{LogId, LogIndex, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use test_support::report::SeedReport;
use test_support::{seed, this_test};

fn bytes_of(store: &KvStore) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .snapshot()
        .write_to(&mut bytes)
        .expect("writing to a Vec succeeds");
    bytes
}

/// A store after `operations` seeded random commands over a small key space (so keys are
/// overwritten, deleted and swapped), with binary, empty and non-ASCII keys and values.
fn random_store(random: &mut ChaCha8Rng, operations: u64) -> KvStore {
    const KEYS: [&str; 7] = ["", "a", "a/b", "b", "é", "z\u{0}z", "日本"];
    let mut store = KvStore::new();
    for index in 1..=operations {
        let key = KEYS[random.gen_range(0..KEYS.len())].to_string();
        let length = random.gen_range(0..40);
        let value: Vec<u8> = (0..length).map(|_| random.gen()).collect();
        let command = match random.gen_range(0..4) {
            0 => KvCommand::Delete { key },
            1 => KvCommand::CompareAndSwap {
                key: key.clone(),
                expect: store.get(&key).cloned(),
                value,
            },
            _ => KvCommand::Put { key, value },
        };
        store.apply(LogId::new(Term(1), LogIndex(index)), &command.encode());
    }
    store
}

#[test]
fn a_snapshot_restores_to_an_equal_store_and_writes_the_same_bytes_again() {
    for seed in seed::seeds(1, 20) {
        let _report = SeedReport::new(this_test!(), seed);
        let mut random = ChaCha8Rng::seed_from_u64(seed);
        let operations = random.gen_range(0..200);
        let store = random_store(&mut random, operations);
        let bytes = bytes_of(&store);
        let mut restored = random_store(&mut random, 20);
        restored
            .restore(&mut &bytes[..])
            .expect("a snapshot restores");
        assert_eq!(restored, store);
        assert_eq!(bytes_of(&restored), bytes);
    }
}
