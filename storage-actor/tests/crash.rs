//! Crash test: a child process appends to a `FileLogStore` with fsync on and reports each
//! batch on stdout only after its fsync; the parent SIGKILLs it at a random moment, reopens the
//! log, and checks that every entry reported persisted is present and intact.
//!
//! The child is this test binary run again with `STORAGE_ACTOR_CRASH_CHILD_DIRECTORY` set.
//! Each run is seeded: the seed of a failing run is printed with the command that replays it.
//! `RAFT_TEST_SEED` sets the first run's seed (otherwise it comes from the clock);
//! `RAFT_CRASH_RUNS` sets how many runs there are (default 50, two crashes each).

use raft_types::{Entry, EntryPayload, HardState, LogIndex, NodeId, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use storage_actor::{FileLogStore, FileLogStoreConfig, LogStore};

const CHILD_DIRECTORY: &str = "STORAGE_ACTOR_CRASH_CHILD_DIRECTORY";
const CHILD_SEED: &str = "STORAGE_ACTOR_CRASH_CHILD_SEED";
const LINE_PREFIX: &str = "crash-child";
const CRASHES_PER_RUN: u64 = 2;

/// The payload of the entry at (`term`, `index`): derived from both, so the parent can tell an
/// intact entry from a damaged or misplaced one. Lengths vary from 0 to 699 bytes.
fn payload(term: u64, index: u64) -> Vec<u8> {
    let length = ((term * 7919 + index * 104_729) % 700) as usize;
    (0..length)
        .map(|position| (term * 31 + index * 17 + position as u64) as u8)
        .collect()
}

fn child_config(directory: &Path) -> FileLogStoreConfig {
    let mut config = FileLogStoreConfig::new(directory);
    config.segment_size_bytes = 16 * 1024;
    config
}

#[test]
fn crash_child_process() {
    let Some(directory) = std::env::var_os(CHILD_DIRECTORY) else {
        return; // Only meaningful when the parent runs this binary as its child.
    };
    let seed: u64 = std::env::var(CHILD_SEED)
        .expect("the parent sets the child's seed")
        .parse()
        .expect("the child's seed is a number");
    run_child(Path::new(&directory), seed);
}

/// Appends batches forever (until killed, or 20 s), now and then truncating a suffix or moving
/// to a new term. Prints `begin <first changed index>` before each batch and
/// `synced <first> <last> <term> <hard state term>` after its fsync.
fn run_child(directory: &Path, seed: u64) {
    let mut random = ChaCha8Rng::seed_from_u64(seed);
    let (mut store, recovered) = FileLogStore::open(child_config(directory))
        .expect("the child opens the log the parent verified");
    let mut out = std::io::stdout().lock();
    let mut term = recovered.hard_state.current_term.0 + 1;
    let mut hard_state_term = recovered.hard_state.current_term.0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let mut first = store.next_index().0;
        let truncate = first > 4 && random.gen_ratio(1, 8);
        if truncate {
            first -= random.gen_range(1..=3);
        }
        writeln!(out, "{LINE_PREFIX} begin {first}").expect("stdout is open");
        if hard_state_term < term {
            store
                .save_hard_state(&HardState::new(Term(term), Some(NodeId(1))))
                .expect("save succeeds");
            hard_state_term = term;
        }
        if truncate {
            store.truncate(LogIndex(first)).expect("truncate succeeds");
        }
        let count = random.gen_range(1..=8);
        let entries: Vec<Entry> = (first..first + count)
            .map(|index| {
                Entry::new(
                    Term(term),
                    LogIndex(index),
                    EntryPayload::Command(payload(term, index)),
                )
            })
            .collect();
        store.append(&entries).expect("append succeeds");
        store.sync().expect("sync succeeds");
        writeln!(
            out,
            "{LINE_PREFIX} synced {first} {} {term} {hard_state_term}",
            first + count - 1
        )
        .expect("stdout is open");
        if random.gen_ratio(1, 16) {
            term += 1;
        }
    }
}

/// What the parent knows is durable: the term of every index, from the child's reports.
#[derive(Debug, Default, Clone)]
struct DurableModel {
    terms: BTreeMap<u64, u64>,
    hard_state_term: u64,
    /// First index a begun-but-unreported batch may have changed.
    pending_first: Option<u64>,
}

impl DurableModel {
    fn next_index(&self) -> u64 {
        self.terms.keys().next_back().map_or(1, |last| last + 1)
    }

    fn apply_line(&mut self, line: &str) {
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(2)
            .map(|field| field.parse().expect("the child prints numbers"))
            .collect();
        match line.split_whitespace().nth(1) {
            Some("begin") => self.pending_first = Some(fields[0]),
            Some("synced") => {
                let (first, last, term, hard_state_term) =
                    (fields[0], fields[1], fields[2], fields[3]);
                self.terms.split_off(&first);
                for index in first..=last {
                    self.terms.insert(index, term);
                }
                self.hard_state_term = hard_state_term;
                self.pending_first = None;
            }
            _ => panic!("unexpected child line {line:?}"),
        }
    }
}

fn crash_once(directory: &Path, child_seed: u64, kill_after: Duration) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().expect("the test binary knows its path"))
        .args([
            "--exact",
            "crash_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIRECTORY, directory)
        .env(CHILD_SEED, child_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child process starts");
    let stdout = child.stdout.take().expect("stdout was piped");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|line| line.starts_with(LINE_PREFIX))
            .collect::<Vec<String>>()
    });
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL is delivered"); // Child::kill sends SIGKILL on Unix.
    child.wait().expect("the killed child is reaped");
    // A line cut short by the kill has no newline and fails to parse, so drop any such line:
    // `lines()` returns it without telling, hence the field-count check.
    reader
        .join()
        .expect("the reader thread does not panic")
        .into_iter()
        .filter(|line| {
            let fields = line.split_whitespace().count();
            (line.contains(" begin ") && fields == 3) || (line.contains(" synced ") && fields == 6)
        })
        .collect()
}

/// Counts across all runs, printed at the end so a run that never killed mid-write shows.
#[derive(Debug, Default)]
struct CrashStatistics {
    batches_reported: usize,
    kills_with_a_batch_in_flight: usize,
}

fn run_seed(seed: u64, statistics: &mut CrashStatistics) {
    let mut random = ChaCha8Rng::seed_from_u64(seed);
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let mut model = DurableModel::default();
    for crash in 0..CRASHES_PER_RUN {
        let kill_after = Duration::from_micros(random.gen_range(0..80_000));
        let lines = crash_once(directory.path(), seed * 16 + crash, kill_after);
        for line in &lines {
            model.apply_line(line);
        }
        statistics.batches_reported += lines
            .iter()
            .filter(|line| line.contains(" synced "))
            .count();
        statistics.kills_with_a_batch_in_flight += usize::from(model.pending_first.is_some());
        let (store, recovered) = FileLogStore::open(child_config(directory.path()))
            .unwrap_or_else(|error| panic!("reopen after SIGKILL #{crash} failed: {error}"));
        assert_eq!(recovered.first_index, LogIndex(1));
        for entry in &recovered.entries {
            // The child saves the hard state of a new term before that term's first entries,
            // in the same stream: an entry can never survive without it.
            assert!(
                entry.term() <= recovered.hard_state.current_term,
                "entry {} survived but the hard state of its term did not: {:?}",
                entry.log_id,
                recovered.hard_state
            );
            assert_eq!(
                entry.payload,
                EntryPayload::Command(payload(entry.term().0, entry.index().0)),
                "entry {} is intact",
                entry.log_id
            );
        }
        let cut = model.pending_first.unwrap_or(model.next_index());
        for (&index, &term) in model.terms.range(..cut) {
            let held = recovered
                .entries
                .get((index - 1) as usize)
                .unwrap_or_else(|| panic!("entry {index} was reported persisted but is missing"));
            assert_eq!(
                held.term(),
                Term(term),
                "entry {index} has its persisted term"
            );
        }
        if model.pending_first.is_none() {
            assert!(recovered.next_index().0 >= model.next_index());
        }
        assert!(
            recovered.hard_state.current_term.0 >= model.hard_state_term,
            "the hard state reported saved survives: {:?} < term {}",
            recovered.hard_state,
            model.hard_state_term
        );
        assert_eq!(
            recovered.entries,
            store
                .entries(store.first_index()..store.next_index())
                .expect("recovered entries are readable")
        );
        model = DurableModel {
            terms: recovered
                .entries
                .iter()
                .map(|entry| (entry.index().0, entry.term().0))
                .collect(),
            hard_state_term: recovered.hard_state.current_term.0,
            pending_first: None,
        };
    }
}

#[test]
fn every_entry_reported_persisted_survives_sigkill() {
    if std::env::var_os(CHILD_DIRECTORY).is_some() {
        return;
    }
    let first_seed: u64 = match std::env::var("RAFT_TEST_SEED") {
        Ok(seed) => seed.parse().expect("RAFT_TEST_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs(),
    };
    let runs: u64 = std::env::var("RAFT_CRASH_RUNS")
        .map(|runs| runs.parse().expect("RAFT_CRASH_RUNS is a number"))
        .unwrap_or(50);
    let started = Instant::now();
    let mut statistics = CrashStatistics::default();
    for seed in first_seed..first_seed + runs {
        let run = std::panic::AssertUnwindSafe(|| run_seed(seed, &mut statistics));
        if let Err(panic) = std::panic::catch_unwind(run) {
            eprintln!(
                "crash test failed with seed {seed}; replay it with:\n  \
                 RAFT_TEST_SEED={seed} RAFT_CRASH_RUNS=1 cargo test -p storage-actor --test crash"
            );
            std::panic::resume_unwind(panic);
        }
    }
    println!(
        "{runs} seeded runs from seed {first_seed}, {} SIGKILLs, in {:?}: {statistics:?}",
        runs * CRASHES_PER_RUN,
        started.elapsed()
    );
}
