//! Power loss under the real write-ahead log: `FileLogStore` runs, unchanged, on a
//! `SimFileSystem`; the power goes off at a seeded operation (in an append, a truncation, a
//! hard-state save, a segment roll, a purge or a sync) and the disk keeps what was synced plus a
//! seeded part of the rest. Then recovery must succeed, with every acknowledged (synced and
//! reported) entry and vote, and the log must be one the store passed through. With a bit
//! flipped on top, recovery may also refuse, with a corruption error. Injected faults (EIO on
//! write or sync, ENOSPC, short writes) must fail the store, never lose what was acknowledged,
//! and never bring back as durable what a failed fsync covered.
//!
//! Each crash point has its own seed, derived from the run's seed (`RAFT_TEST_SEED`, default
//! fixed); a failure prints it with the command that replays that one point.
//! `RAFT_CRASH_POINTS` sets how many points a test runs (default 300).

mod support;

use actix::{Actor, System};
use raft_proto::storage::{StorageEvent, StorageRequest};
use raft_types::{Entry, EntryPayload, HardState, IoSequence, LogIndex, NodeId, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage_actor::sim_file_system::{SimFault, SimFileSystem};
use storage_actor::{
    FileLogStore, FileLogStoreConfig, LogStore, StorageActor, StorageError, StoredLog,
};
use support::start_collector;
use test_support::report::{run_seeds, TestId};
use test_support::seed::seed_range;
use test_support::this_test;
use test_support::wait::wait_until_recorded;

const WAL_DIRECTORY: &str = "/data/node-1/wal";
/// Operations per workload: enough to roll a few 1 KiB segments.
const WORKLOAD_STEPS: usize = 60;
const DEFAULT_CRASH_POINTS: u64 = 300;
const DEFAULT_SEED: u64 = 20_261_201;

fn config() -> FileLogStoreConfig {
    let mut config = FileLogStoreConfig::new(WAL_DIRECTORY);
    config.segment_size_bytes = 1024;
    config
}

/// Runs `point(seed)` for every crash point's seed: `RAFT_CRASH_POINTS` (default
/// [`DEFAULT_CRASH_POINTS`]) consecutive seeds from `RAFT_TEST_SEED` (default
/// [`DEFAULT_SEED`]); a panic names the seed and the replay.
fn for_each_crash_point(test: TestId, point: impl FnMut(u64)) {
    let seeds = seed_range(DEFAULT_SEED, "RAFT_CRASH_POINTS", DEFAULT_CRASH_POINTS);
    println!(
        "{}: {} crash points from RAFT_TEST_SEED={}",
        test.name,
        seeds.len(),
        seeds.first().copied().unwrap_or(DEFAULT_SEED)
    );
    run_seeds(&test.with_env("RAFT_CRASH_POINTS", 1), seeds, point);
}

/// A fresh simulated disk on which the node's data directory `/data/node-1` exists durably (the
/// node records its identity there first), and `wal` under it was created but never synced (as
/// a start that crashed early would leave it): the store's own directory fsyncs at open are all
/// that make it durable.
fn fresh_disk(seed: u64) -> SimFileSystem {
    use storage_actor::file_system::FileSystem;
    let disk = SimFileSystem::new(seed);
    disk.create_dir_all(Path::new("/data/node-1"))
        .expect("the disk is on");
    for directory in ["/", "/data"] {
        disk.sync_directory(Path::new(directory))
            .expect("the disk is on");
    }
    disk.create_dir_all(Path::new(WAL_DIRECTORY))
        .expect("the disk is on");
    disk
}

fn open(disk: &SimFileSystem) -> Result<(FileLogStore, StoredLog), StorageError> {
    FileLogStore::open_on(Arc::new(disk.clone()), config())
}

/// The payload of the entry at (`term`, `index`): derived from both, 0..=299 bytes, never a
/// long run of zeros, so an intact entry is told from a damaged or misplaced one.
fn entry(term: u64, index: u64) -> Entry {
    let length = ((term * 7919 + index * 104_729) % 300) as usize;
    let payload: Vec<u8> = (0..length)
        .map(|position| (term * 31 + index * 17 + position as u64) as u8 | 1)
        .collect();
    Entry::new(Term(term), LogIndex(index), EntryPayload::command(payload))
}

/// A state the store may be in: the whole log as issued (purging aside) and the hard state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LogState {
    hard_state: HardState,
    /// The index of `entries[0]`: 1, or the index after the last reset's `last_log_id`.
    base: u64,
    /// Entries from index `base`.
    entries: Vec<Entry>,
}

impl LogState {
    fn empty() -> LogState {
        LogState {
            hard_state: HardState::default(),
            base: 1,
            entries: Vec::new(),
        }
    }
}

/// What the test knows the store must hold after a crash.
#[derive(Debug)]
struct Model {
    /// The state the last successful sync covered: acknowledged.
    acknowledged: LogState,
    /// The state after every record issued since (an operation's records are added before it
    /// runs: a crash inside it may keep some of them).
    issued_since: Vec<LogState>,
    current: LogState,
    /// The highest `before` of any purge: entries below it may be gone.
    purged_before: LogIndex,
}

impl Model {
    fn new(recovered: &StoredLog) -> Model {
        assert_eq!(recovered.first_index, LogIndex(1), "workloads start fresh");
        let state = LogState {
            hard_state: recovered.hard_state,
            base: 1,
            entries: recovered.entries.clone(),
        };
        Model {
            acknowledged: state.clone(),
            issued_since: Vec::new(),
            current: state,
            purged_before: LogIndex(1),
        }
    }

    fn next_index(&self) -> u64 {
        self.current.base + self.current.entries.len() as u64
    }

    fn record(&mut self) {
        self.issued_since.push(self.current.clone());
    }

    fn synced(&mut self) {
        self.acknowledged = self.current.clone();
        self.issued_since.clear();
    }

    /// Panics unless `recovered` is the acknowledged state or one issued after it.
    fn check(&self, recovered: &StoredLog, context: &str) {
        let first = recovered.first_index;
        // Purges may have deleted entries below the highest `before`; nothing else goes.
        let matches = |state: &LogState| {
            let Some(skipped) = first.0.checked_sub(state.base) else {
                return false;
            };
            let skipped = skipped as usize;
            first.0 <= self.purged_before.0.max(state.base)
                && state.hard_state == recovered.hard_state
                && state.entries.len() >= skipped
                && state.entries[skipped..] == recovered.entries[..]
        };
        if matches(&self.acknowledged) || self.issued_since.iter().any(matches) {
            return;
        }
        panic!(
            "{context}: recovered a state the store never passed through since its last sync.\n\
             recovered: hard state {:?}, first index {first}, last {:?}\n\
             acknowledged: hard state {:?}, last {:?}\n\
             issued since: {:?}",
            recovered.hard_state,
            recovered.last_log_id(),
            self.acknowledged.hard_state,
            self.acknowledged.entries.last().map(|entry| entry.log_id),
            self.issued_since
                .iter()
                .map(|state| (state.hard_state, state.entries.last().map(|e| e.log_id)))
                .collect::<Vec<_>>()
        );
    }
}

/// The kind of operation a workload step runs, for the statistics of where crashes hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Append,
    Truncate,
    Reset,
    SaveHardState,
    Purge,
    Sync,
    /// Any step during which a new segment file appeared.
    SegmentRoll,
    Open,
}

/// Runs seeded steps on `store` until the workload ends or an operation fails; returns the
/// failing step, if one failed.
fn run_workload(
    store: &mut FileLogStore,
    model: &mut Model,
    random: &mut ChaCha8Rng,
    disk: &SimFileSystem,
) -> Option<(Step, StorageError)> {
    for _ in 0..WORKLOAD_STEPS {
        let files_before = disk.list_files(Path::new(WAL_DIRECTORY)).len();
        let (step, result) = run_step(store, model, random);
        if let Err(error) = result {
            let grew = disk.list_files(Path::new(WAL_DIRECTORY)).len() > files_before;
            return Some((if grew { Step::SegmentRoll } else { step }, error));
        }
    }
    None
}

fn run_step(
    store: &mut FileLogStore,
    model: &mut Model,
    random: &mut ChaCha8Rng,
) -> (Step, Result<(), StorageError>) {
    let roll = random.gen_range(0..100);
    let term = model.current.hard_state.current_term.0.max(1);
    match roll {
        0..=44 => {
            let first = model.next_index();
            let count = random.gen_range(1..=4);
            let entries: Vec<Entry> = (first..first + count)
                .map(|index| entry(term, index))
                .collect();
            for entry in &entries {
                model.current.entries.push(entry.clone());
                model.record();
            }
            (Step::Append, store.append(&entries))
        }
        45..=54 if model.next_index() > model.current.base + 1 => {
            // Never below a purge or a reset: the core truncates only uncommitted entries.
            let lowest = model.purged_before.0.max(model.current.base + 1);
            let since = random.gen_range(lowest..=model.next_index().max(lowest));
            let keep = (since - model.current.base).min(model.current.entries.len() as u64);
            model.current.entries.truncate(keep as usize);
            model.record();
            (Step::Truncate, store.truncate(LogIndex(since)))
        }
        55..=57 => {
            // A snapshot installed at or beyond the end of the log replaces it.
            let last_index = model.next_index() - 1 + random.gen_range(0..=5);
            let last_log_id = raft_types::LogId::new(Term(term), LogIndex(last_index));
            model.current.base = last_index + 1;
            model.current.entries.clear();
            model.record();
            (Step::Reset, store.reset(last_log_id))
        }
        58..=64 => {
            let next_term = term + random.gen_range(0..=1);
            let voted_for = if next_term == term {
                model.current.hard_state.voted_for
            } else {
                Some(NodeId(random.gen_range(1..=3)))
            };
            model.current.hard_state = HardState::new(Term(next_term), voted_for);
            model.record();
            (
                Step::SaveHardState,
                store.save_hard_state(&model.current.hard_state),
            )
        }
        65..=69 => {
            let before = LogIndex(random.gen_range(model.current.base..=model.next_index()));
            model.purged_before = model.purged_before.max(before);
            (Step::Purge, store.purge(before))
        }
        _ => {
            let result = store.sync();
            if result.is_ok() {
                model.synced();
            }
            (Step::Sync, result)
        }
    }
}

/// How crash points went, printed at the end of a run.
#[derive(Debug, Default)]
struct Figures {
    crash_points: u64,
    by_step: BTreeMap<String, u64>,
    crashes_during_recovery: u64,
    acknowledged_entries_checked: u64,
    acknowledged_hard_states_checked: u64,
    refusals: u64,
}

impl Figures {
    fn count_step(&mut self, step: Option<Step>) {
        let name = step.map_or("after the last step".to_string(), |step| {
            format!("{step:?}")
        });
        *self.by_step.entry(name).or_default() += 1;
    }
}

/// One crash point: a workload on a fresh disk, the power cut at a seeded operation, maybe a
/// second cut during recovery, then recovery and the checks. Returns the step the cut hit.
fn power_loss_point(seed: u64, figures: &mut Figures) {
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0xC0FF_EE00);
    // How many disk operations the workload makes without a crash, to place the cut among them.
    let total_operations = {
        let disk = fresh_disk(seed);
        let (mut store, recovered) = open(&disk).expect("a fresh disk opens");
        let mut model = Model::new(&recovered);
        let mut dry_random = ChaCha8Rng::seed_from_u64(seed);
        let _ = run_workload(&mut store, &mut model, &mut dry_random, &disk);
        disk.statistics().operations
    };
    let disk = fresh_disk(seed);
    let cut_after = random.gen_range(0..=total_operations);
    disk.power_off_after(cut_after);
    let mut model = Model {
        acknowledged: LogState::empty(),
        issued_since: Vec::new(),
        current: LogState::empty(),
        purged_before: LogIndex(1),
    };
    let crashed_in = match open(&disk) {
        Ok((mut store, recovered)) => {
            model = Model::new(&recovered);
            // The workload draws from its own generator, as the dry run did.
            let mut workload_random = ChaCha8Rng::seed_from_u64(seed);
            let failure = run_workload(&mut store, &mut model, &mut workload_random, &disk);
            if let Some((_, error)) = &failure {
                assert!(
                    disk.is_powered_off(),
                    "seed {seed}: only the power cut fails an operation here: {error}"
                );
            }
            failure.map(|(step, _)| step)
        }
        Err(error) => {
            assert!(disk.is_powered_off(), "seed {seed}: open failed: {error}");
            Some(Step::Open)
        }
    };
    figures.crash_points += 1;
    figures.count_step(crashed_in);
    disk.power_loss();

    if random.gen_ratio(1, 4) {
        // The power goes again while the node recovers.
        disk.power_off_after(random.gen_range(0..6));
        match open(&disk) {
            Ok((store, recovered)) => {
                model.check(&recovered, &format!("seed {seed}, recovery cut short"));
                drop(store);
            }
            Err(error) => assert!(
                disk.is_powered_off(),
                "seed {seed}: a power loss must never make recovery refuse: {error}"
            ),
        }
        figures.crashes_during_recovery += 1;
        disk.power_loss();
    }

    let (mut store, recovered) = open(&disk).unwrap_or_else(|error| {
        panic!(
            "seed {seed}: a pure power loss must never make recovery refuse: {error}\nfiles: {:?}",
            disk.list_files(Path::new(WAL_DIRECTORY))
        )
    });
    model.check(&recovered, &format!("seed {seed}"));
    figures.acknowledged_entries_checked += model.acknowledged.entries.len() as u64;
    figures.acknowledged_hard_states_checked += 1;
    // The repaired log takes new writes and opens again.
    let next = recovered.next_index();
    let term = recovered.hard_state.current_term.0.max(1);
    store
        .append(&[entry(term, next.0)])
        .and_then(|()| store.sync())
        .unwrap_or_else(|error| panic!("seed {seed}: the recovered log must append: {error}"));
    drop(store);
    let (_, reopened) = open(&disk).expect("the repaired log reopens");
    assert_eq!(reopened.next_index(), next.next(), "seed {seed}");
}

#[test]
fn every_acknowledged_entry_and_vote_survives_power_loss() {
    let mut figures = Figures::default();
    for_each_crash_point(this_test!(), |seed| power_loss_point(seed, &mut figures));
    println!("{figures:#?}");
    // With the default number of points the cuts hit every kind of step; a replay of one point
    // hits one.
    assert!(
        figures.crash_points < 100 || figures.by_step.len() >= 5,
        "the cuts hit few kinds of step: {:?}",
        figures.by_step
    );
}

/// A bit flipped somewhere in the log on top of a power loss: recovery either succeeds with
/// everything acknowledged, or refuses with a corruption error. It never silently loses data.
#[test]
fn a_flipped_bit_after_power_loss_is_refused_or_harmless() {
    let mut figures = Figures::default();
    for_each_crash_point(this_test!(), |seed| {
        let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0xF11F);
        let disk = fresh_disk(seed);
        let (mut store, recovered) = open(&disk).expect("a fresh disk opens");
        let mut model = Model::new(&recovered);
        let mut workload_random = ChaCha8Rng::seed_from_u64(seed);
        assert!(run_workload(&mut store, &mut model, &mut workload_random, &disk).is_none());
        drop(store);
        disk.power_loss();
        let files = disk.list_files(Path::new(WAL_DIRECTORY));
        let (name, length) = &files[random.gen_range(0..files.len())];
        if *length > 0 {
            let offset = random.gen_range(0..*length);
            disk.flip_bit(
                &Path::new(WAL_DIRECTORY).join(name),
                offset,
                random.gen_range(0..8),
            );
        }
        figures.crash_points += 1;
        match open(&disk) {
            Ok((_, recovered)) => {
                model.check(&recovered, &format!("seed {seed}, a bit flipped in {name}"));
                figures.acknowledged_entries_checked += model.acknowledged.entries.len() as u64;
            }
            Err(
                StorageError::Corruption { .. } | StorageError::UnsupportedFormatVersion { .. },
            ) => figures.refusals += 1,
            Err(other) => panic!("seed {seed}: expected a corruption error, got {other}"),
        }
    });
    println!("{figures:#?}");
}

/// Injected faults: the store fails at the first one and refuses all work after it; a restart
/// of the process, or a power loss, then recovers every acknowledged entry and vote.
#[test]
fn injected_faults_fail_the_store_and_lose_nothing_acknowledged() {
    let mut figures = Figures::default();
    for_each_crash_point(this_test!(), |seed| {
        let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
        let disk = fresh_disk(seed);
        let (mut store, recovered) = open(&disk).expect("a fresh disk opens");
        let mut model = Model::new(&recovered);
        let fault = [
            SimFault::WriteError,
            SimFault::NoSpace,
            SimFault::ShortWrite,
            SimFault::SyncError,
        ][random.gen_range(0..4)];
        disk.arm_fault(fault, random.gen_range(0..40));
        let mut workload_random = ChaCha8Rng::seed_from_u64(seed);
        let failure = run_workload(&mut store, &mut model, &mut workload_random, &disk);
        match (&failure, fault) {
            (None, SimFault::ShortWrite) | (None, _) => {}
            (Some((_, error)), _) => {
                assert!(fault != SimFault::ShortWrite, "seed {seed}: {error}");
                assert!(
                    matches!(store.sync(), Err(StorageError::Poisoned)),
                    "seed {seed}: after {error} the store refuses all work"
                );
            }
        }
        *figures.by_step.entry(format!("{fault:?}")).or_default() += 1;
        figures.crash_points += 1;
        drop(store);
        if random.gen_ratio(1, 2) {
            disk.process_crash();
        } else {
            disk.power_loss();
        }
        let (_, recovered) = open(&disk)
            .unwrap_or_else(|error| panic!("seed {seed}: a fault is not corruption: {error}"));
        model.check(&recovered, &format!("seed {seed}, {fault:?}"));
        // And the entries a failed sync covered were never made durable behind our back.
        disk.power_loss();
        let (_, after_power_loss) = open(&disk).expect("reopens");
        model.check(
            &after_power_loss,
            &format!("seed {seed}, {fault:?}, then power loss"),
        );
        figures.acknowledged_entries_checked += model.acknowledged.entries.len() as u64;
    });
    println!("{figures:#?}");
}

/// EIO on fsync: the sync fails, and neither a restart of the process nor a power loss brings
/// the entries it covered back as durable (Linux drops the dirty pages of a failed fsync; the
/// store cuts the segment back so a restart cannot read them from the page cache either).
#[test]
fn a_failed_fsync_never_lets_its_entries_come_back_as_durable() {
    let disk = fresh_disk(7);
    let (mut store, _) = open(&disk).expect("a fresh disk opens");
    store
        .save_hard_state(&HardState::new(Term(1), Some(NodeId(1))))
        .expect("save");
    store
        .append(&(1..=5).map(|index| entry(1, index)).collect::<Vec<_>>())
        .expect("append");
    store.sync().expect("sync");
    store
        .append(&(6..=8).map(|index| entry(1, index)).collect::<Vec<_>>())
        .expect("append");
    disk.arm_fault(SimFault::SyncError, 0);
    let error = store.sync().expect_err("the fsync fails");
    assert!(error.to_string().contains("fdatasync"), "{error}");
    assert!(matches!(
        store.append(&[entry(1, 9)]),
        Err(StorageError::Poisoned)
    ));
    drop(store);

    // A restart of the process, page cache intact.
    disk.process_crash();
    let (mut store, recovered) = open(&disk).expect("reopens after the failed fsync");
    assert_eq!(
        recovered.last_log_id().map(|id| id.index),
        Some(LogIndex(5)),
        "entries 6..=8 were never durable and must not be recovered from the page cache"
    );
    store.append(&[entry(2, 6)]).expect("append");
    store.sync().expect("sync");
    drop(store);
    for _ in 0..4 {
        disk.power_loss();
        let (_, recovered) = open(&disk).expect("reopens after a power loss");
        assert_eq!(recovered.entries.len(), 6);
        assert_eq!(recovered.entries[5], entry(2, 6));
    }
}

/// A pure power loss right after a store created its directory and synced one entry: the
/// directory fsyncs at open are what keep the log (without them the unsynced `wal` directory
/// entry would vanish with everything in it).
#[test]
fn the_directory_created_before_open_survives_power_loss() {
    for seed in 0..16 {
        let disk = fresh_disk(seed);
        let (mut store, _) = open(&disk).expect("a fresh disk opens");
        store.append(&[entry(1, 1)]).expect("append");
        store.sync().expect("sync");
        drop(store);
        disk.power_loss();
        let (_, recovered) = open(&disk).expect("reopens");
        assert_eq!(recovered.entries, vec![entry(1, 1)], "seed {seed}");
    }
}

/// Through the storage actor: EIO on fsync is reported as `StorageEvent::Failed`, and the
/// entries of that batch are never reported persisted.
#[test]
fn eio_on_fsync_fails_the_storage_actor() {
    System::new().block_on(async {
        let disk = fresh_disk(11);
        let (store, _) = open(&disk).expect("a fresh disk opens");
        let (ports, events) = start_collector();
        let storage = StorageActor::new(store, ports).start();
        storage.do_send(StorageRequest::Append {
            entries: vec![entry(1, 1)],
            io: IoSequence(1),
        });
        wait_until(&events, |events| !events.is_empty()).await;
        disk.arm_fault(SimFault::SyncError, 0);
        storage.do_send(StorageRequest::Append {
            entries: vec![entry(1, 2)],
            io: IoSequence(2),
        });
        wait_until(&events, |events| events.len() >= 2).await;
        let events = events.lock().expect("collector lock").clone();
        assert!(
            matches!(&events[0], StorageEvent::Persisted { last, .. } if last.index == LogIndex(1)),
            "{events:?}"
        );
        assert!(
            matches!(&events[1], StorageEvent::Failed { error, .. } if error.contains("fdatasync")),
            "{events:?}"
        );
        assert_eq!(
            events.len(),
            2,
            "entry 2 is never reported persisted: {events:?}"
        );
    });
}

async fn wait_until(
    events: &Arc<Mutex<Vec<StorageEvent>>>,
    condition: impl Fn(&[StorageEvent]) -> bool,
) {
    let condition = |events: &Vec<StorageEvent>| condition(events);
    wait_until_recorded("such events", Duration::from_secs(5), events, condition).await;
}

/// One step of a scripted workload, ending with a sync.
type WorkloadStep<'a> = dyn Fn(&mut FileLogStore) -> Result<(), StorageError> + 'a;

/// A reset (installing a snapshot) with the power cut at a seeded disk operation: after
/// recovery the log is the one before the reset or the one after it (with a prefix of what was
/// appended after it), never a mix, and nothing acknowledged is lost. The workload: entries
/// 1..=30 (rolling 1 KiB segments), sync, reset to 2-100, entries 101..=104, sync, purge of what
/// the reset replaced, entry 105, sync.
#[test]
fn a_reset_is_all_or_nothing_across_power_loss() {
    let hard_state = HardState::new(Term(2), Some(NodeId(1)));
    let snapshot = raft_types::LogId::new(Term(2), LogIndex(100));
    let old_log: Vec<Entry> = (1..=30).map(|index| entry(1, index)).collect();
    let new_log: Vec<Entry> = (101..=105).map(|index| entry(2, index)).collect();
    // Runs the workload; returns how many syncs succeeded.
    let workload = |disk: &SimFileSystem| -> u32 {
        let Ok((mut store, _)) = open(disk) else {
            return 0;
        };
        let mut synced = 0;
        let steps: [&WorkloadStep<'_>; 3] = [
            &|store| {
                store.save_hard_state(&hard_state)?;
                for batch in old_log.chunks(3) {
                    store.append(batch)?;
                }
                store.sync()
            },
            &|store| {
                store.reset(snapshot)?;
                store.append(&new_log[..4])?;
                store.sync()
            },
            &|store| {
                store.purge(LogIndex(101))?;
                store.append(&new_log[4..])?;
                store.sync()
            },
        ];
        for step in steps {
            if step(&mut store).is_err() {
                break;
            }
            synced += 1;
        }
        synced
    };
    let mut outcomes = BTreeMap::new();
    for_each_crash_point(this_test!(), |seed| {
        let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0x5E5E7);
        let total = {
            let disk = fresh_disk(seed);
            assert_eq!(
                workload(&disk),
                3,
                "seed {seed}: without a cut every step succeeds"
            );
            disk.statistics().operations
        };
        let disk = fresh_disk(seed);
        disk.power_off_after(random.gen_range(0..=total));
        let synced = workload(&disk);
        disk.power_loss();
        let (_, recovered) = open(&disk)
            .unwrap_or_else(|error| panic!("seed {seed}: a power loss is not corruption: {error}"));
        let is_old = recovered.first_index == LogIndex(1)
            && old_log.starts_with(&recovered.entries)
            && recovered.prev_log_id == Some(raft_types::LogId::ZERO);
        let is_new = recovered.first_index == LogIndex(101)
            && new_log.starts_with(&recovered.entries)
            && recovered.prev_log_id.is_none_or(|prev| prev == snapshot)
            && recovered.hard_state == hard_state;
        let context = format!(
            "seed {seed}, {synced} syncs done: first index {}, {} entries, prev {:?}",
            recovered.first_index,
            recovered.entries.len(),
            recovered.prev_log_id
        );
        match synced {
            0 => assert!(is_old, "{context}: a prefix of the log before the reset"),
            1 => assert!(
                (is_old && recovered.entries == old_log && recovered.hard_state == hard_state)
                    || is_new,
                "{context}: the whole log before the reset, or the log after it"
            ),
            2 => assert!(is_new && recovered.entries.len() >= 4, "{context}"),
            _ => assert!(is_new && recovered.entries == new_log, "{context}"),
        }
        *outcomes
            .entry(if is_new {
                "after the reset"
            } else {
                "before the reset"
            })
            .or_insert(0u64) += 1;
    });
    println!("{outcomes:?}");
}
