//! Power loss under the snapshot store: `FileSnapshotStore` runs, unchanged, on a
//! `SimFileSystem`, and the power goes off after every possible number of disk operations while
//! a snapshot is written (`begin`, writes, `finish`: temporary file, chunks, trailer, fdatasync,
//! rename, directory fsync, retention) or received (`receive` of each chunk, `finish_receive`).
//! After the power loss (and, at some points, a second one during recovery) the reopened store
//! must report as newest either the snapshot that was newest before or the new one, never a
//! partial file; its payload must read back intact; and no temporary or partial file may be
//! left in the directory.
//!
//! Each run goes through every cut point once per seed (the seed drives what the simulated
//! disk keeps of unsynced data): `RAFT_POWER_LOSS_SEEDS` seeds (default 16) from
//! `RAFT_TEST_SEED` (default fixed). A failure prints the seed, the cut point and the replay.

use raft_proto::snapshot::{SnapshotStore, SnapshotWriter};
use raft_types::{LogId, LogIndex, NodeId, SnapshotMeta, Term};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use storage_actor::file_system::FileSystem;
use storage_actor::sim_file_system::SimFileSystem;
use storage_actor::{FileSnapshotStore, FileSnapshotStoreConfig, MemSnapshotStore};
use test_support::report::run_seeds;
use test_support::seed::seed_range;
use test_support::this_test;

const SNAPSHOT_DIRECTORY: &str = "/data/node-1/snapshots";
const CHUNK_BYTES: usize = 700;
const DEFAULT_SEED: u64 = 20_261_202;
const DEFAULT_SEEDS: u64 = 16;

fn config() -> FileSnapshotStoreConfig {
    let mut config = FileSnapshotStoreConfig::new(SNAPSHOT_DIRECTORY);
    config.chunk_bytes = CHUNK_BYTES;
    config
}

fn open(disk: &SimFileSystem) -> Result<FileSnapshotStore, raft_proto::snapshot::SnapshotError> {
    FileSnapshotStore::open_on(Arc::new(disk.clone()), config())
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(Term(term), LogIndex(index))
}

/// `length` bytes derived from `seed`, never a long run of zeros.
fn payload(seed: u64, length: usize) -> Vec<u8> {
    (0..length)
        .map(|position| ((seed * 131 + position as u64 * 7) % 251) as u8 | 1)
        .collect()
}

fn write(
    store: &dyn SnapshotStore,
    last_log_id: LogId,
    bytes: &[u8],
) -> Result<SnapshotMeta, String> {
    let mut writer: Box<dyn SnapshotWriter> = store
        .begin(
            last_log_id,
            raft_types::Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        )
        .map_err(|error| error.to_string())?;
    for piece in bytes.chunks(500) {
        writer.write_all(piece).map_err(|error| error.to_string())?;
    }
    writer.finish().map_err(|error| error.to_string())
}

fn read_payload(store: &dyn SnapshotStore, meta: &SnapshotMeta) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .read_payload(&meta.id())
        .expect("the newest snapshot opens")
        .read_to_end(&mut bytes)
        .expect("the newest snapshot verifies");
    bytes
}

/// A disk whose data directory is durable and holds one complete, durable snapshot (and,
/// with `two_old`, a second one, so that a new one makes retention delete the oldest).
fn disk_with_old_snapshots(seed: u64, two_old: bool) -> (SimFileSystem, SnapshotMeta, Vec<u8>) {
    let disk = SimFileSystem::new(seed);
    disk.create_dir_all(Path::new("/data/node-1"))
        .expect("the disk is on");
    for directory in ["/", "/data"] {
        disk.sync_directory(Path::new(directory))
            .expect("the disk is on");
    }
    let store = open(&disk).expect("a fresh disk opens");
    let mut newest = None;
    let count = if two_old { 2 } else { 1 };
    for index in 1..=count {
        let bytes = payload(index, 1500);
        let meta = write(&store, log_id(1, index * 10), &bytes).expect("the disk is on");
        newest = Some((meta, bytes));
    }
    drop(store);
    let (meta, bytes) = newest.expect("at least one snapshot was written");
    (disk, meta, bytes)
}

/// Checks the store reopened after a crash: the newest is `old` or `new` (with its payload
/// intact), and nothing unfinished is left.
fn check_recovered(
    disk: &SimFileSystem,
    old: &(SnapshotMeta, Vec<u8>),
    new: &(SnapshotMeta, Vec<u8>),
    context: &str,
) -> bool {
    let store = open(disk).unwrap_or_else(|error| {
        panic!("{context}: a power loss must never make open fail: {error}")
    });
    let newest = store.newest().expect("the old snapshot at least survives");
    let expected = if newest == old.0 {
        &old.1
    } else if newest == new.0 {
        &new.1
    } else {
        panic!(
            "{context}: newest is {newest}, neither the old {} nor the new {}",
            old.0, new.0
        )
    };
    assert_eq!(&read_payload(&store, &newest), expected, "{context}");
    assert!(store.list().len() <= 2, "{context}: {:?}", store.list());
    let leftovers: Vec<String> = disk
        .list_files(Path::new(SNAPSHOT_DIRECTORY))
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| {
            name.ends_with(".tmp") || name.ends_with(".partial") || name.ends_with(".corrupt")
        })
        .collect();
    assert!(leftovers.is_empty(), "{context}: left behind {leftovers:?}");
    newest == new.0
}

/// Counts the disk operations `scenario` makes when nothing fails.
fn operations_of(seed: u64, two_old: bool, scenario: &dyn Fn(&SimFileSystem)) -> u64 {
    let (disk, _, _) = disk_with_old_snapshots(seed, two_old);
    let before = disk.statistics().operations;
    scenario(&disk);
    disk.statistics().operations - before
}

/// Runs `scenario` with the power cut after every possible number of operations, for each seed.
fn every_cut_point(
    test: test_support::TestId,
    new: (SnapshotMeta, Vec<u8>),
    scenario: impl Fn(&SimFileSystem),
) {
    let seeds = seed_range(DEFAULT_SEED, "RAFT_POWER_LOSS_SEEDS", DEFAULT_SEEDS);
    println!(
        "{}: {} seeds from RAFT_TEST_SEED={}",
        test.name,
        seeds.len(),
        seeds[0]
    );
    let mut new_won = 0;
    let mut old_won = 0;
    run_seeds(&test.with_env("RAFT_POWER_LOSS_SEEDS", 1), seeds, |seed| {
        let two_old = seed % 2 == 1;
        let total = operations_of(seed, two_old, &scenario);
        assert!(total > 10, "the scenario makes {total} disk operations");
        for cut in 0..=total {
            let (disk, old_meta, old_bytes) = disk_with_old_snapshots(seed, two_old);
            let old = (old_meta, old_bytes);
            disk.power_off_after(cut);
            scenario(&disk);
            disk.power_loss();
            let context = format!("seed {seed}, power cut after {cut} of {total} operations");
            if cut % 3 == 0 {
                // The power goes again while the store recovers.
                disk.power_off_after(cut % 7);
                if let Ok(store) = open(&disk) {
                    drop(store);
                }
                disk.power_loss();
            }
            if check_recovered(&disk, &old, &new, &context) {
                new_won += 1;
            } else {
                old_won += 1;
            }
            if cut == total {
                assert!(
                    check_recovered(&disk, &old, &new, &context),
                    "{context}: with no cut the new snapshot is the newest"
                );
            }
        }
    });
    println!("new snapshot newest after {new_won} cuts, old one after {old_won}");
    assert!(new_won > 0 && old_won > 0, "both outcomes occur");
}

/// The snapshot the writer scenario writes: made once on a scratch store, so its meta (checksum
/// included) is known before the crash.
fn new_snapshot() -> (SnapshotMeta, Vec<u8>) {
    let bytes = payload(99, 5 * CHUNK_BYTES + 321);
    let scratch =
        FileSnapshotStore::open_on(Arc::new(SimFileSystem::new(0)), config()).expect("opens");
    let meta = write(&scratch, log_id(2, 50), &bytes).expect("writes");
    (meta, bytes)
}

#[test]
fn a_snapshot_being_written_is_all_or_nothing_across_power_loss() {
    let new = new_snapshot();
    let bytes = new.1.clone();
    every_cut_point(this_test!(), new, move |disk| {
        if let Ok(store) = open(disk) {
            let _ = write(&store, log_id(2, 50), &bytes);
        }
    });
}

#[test]
fn a_snapshot_being_received_is_all_or_nothing_across_power_loss() {
    let leader = MemSnapshotStore::new();
    let bytes = payload(77, 5 * CHUNK_BYTES + 99);
    let meta = write(&leader, log_id(3, 60), &bytes).expect("writes");
    let raw = leader
        .open(&meta.id())
        .expect("opens")
        .read_at(0, meta.size_bytes as usize)
        .expect("reads");
    let transferred = meta.clone();
    every_cut_point(this_test!(), (meta, bytes), move |disk| {
        let Ok(store) = open(disk) else { return };
        let mut offset = 0;
        while offset < transferred.size_bytes {
            let end = (offset + 1000).min(transferred.size_bytes);
            match store.receive(&transferred, offset, &raw[offset as usize..end as usize]) {
                Ok(stored) => offset = stored,
                Err(_) => return,
            }
        }
        let _ = store.finish_receive(&transferred);
    });
}

/// A bit flipped anywhere in a snapshot file: the store never hands out a wrong byte. Open
/// either sets the file aside (the newest is verified in full) or keeps it, and then every read
/// of any listed snapshot returns its payload intact or fails with an error.
#[test]
fn a_flipped_bit_is_never_read_back() {
    let seeds = seed_range(DEFAULT_SEED, "RAFT_POWER_LOSS_SEEDS", 64);
    run_seeds(
        &this_test!().with_env("RAFT_POWER_LOSS_SEEDS", 1),
        seeds,
        |seed| {
            let (disk, newest, newest_bytes) = disk_with_old_snapshots(seed, true);
            let older_bytes = payload(1, 1500);
            let files = disk.list_files(Path::new(SNAPSHOT_DIRECTORY));
            let snapshots: Vec<&(String, usize)> = files
                .iter()
                .filter(|(name, _)| name.ends_with(".snap"))
                .collect();
            assert_eq!(snapshots.len(), 2, "seed {seed}: {files:?}");
            let (name, length) = snapshots[(seed % 2) as usize];
            let offset = ((seed.wrapping_mul(0x9E37_79B9)) % *length as u64) as usize;
            disk.flip_bit(
                &Path::new(SNAPSHOT_DIRECTORY).join(name),
                offset,
                (seed % 8) as u8,
            );
            let store = open(&disk).expect("a damaged snapshot never makes open fail");
            let listed = store.list();
            assert!(
                !listed.is_empty(),
                "seed {seed}: one file was damaged, the other one is still there"
            );
            for meta in &listed {
                let expected = if *meta == newest {
                    &newest_bytes
                } else {
                    &older_bytes
                };
                let mut bytes = Vec::new();
                let read = store.read_payload(&meta.id()).and_then(|mut reader| {
                    reader.read_to_end(&mut bytes).map_err(|error| {
                        raft_proto::snapshot::SnapshotError::StateMachine(error.to_string())
                    })
                });
                if read.is_ok() {
                    assert_eq!(&bytes, expected, "seed {seed}: flip in {name} at {offset}");
                }
            }
            if let Some(chosen) = store.newest() {
                let expected = if chosen == newest {
                    &newest_bytes
                } else {
                    &older_bytes
                };
                assert_eq!(
                    &read_payload(&store, &chosen),
                    expected,
                    "seed {seed}: the newest is verified in full at open"
                );
            }
        },
    );
}
