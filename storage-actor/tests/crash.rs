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
use test_support::report::run_seeds;
use test_support::seed::{env_u64, seed_or_else};
use test_support::this_test;

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
        // The parent must see `begin` before the store is touched: a batch whose lines were
        // still buffered when the kill came would otherwise rewrite entries unannounced.
        // (`Stdout` is line-buffered, so this only makes that independent of its buffering;
        // the parent must also find the report mid-line: see `report_in`.)
        out.flush().expect("stdout is open");
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
                    EntryPayload::command(payload(term, index)),
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
        out.flush().expect("stdout is open");
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

    fn apply(&mut self, report: Report) {
        match report {
            Report::Begin { first } => self.pending_first = Some(first),
            Report::Synced {
                first,
                last,
                term,
                hard_state_term,
            } => {
                self.terms.split_off(&first);
                for index in first..=last {
                    self.terms.insert(index, term);
                }
                self.hard_state_term = hard_state_term;
                self.pending_first = None;
            }
        }
    }
}

/// What one child wrote to stdout before the kill: every line (the test harness's own output
/// included, for diagnostics) and the child's reports, in order.
struct ChildOutput {
    lines: Vec<String>,
    reports: Vec<Report>,
}

/// The child's report in `line`, if it holds one. The report need not start the line: libtest
/// prints `test crash_child_process ... ` (flushed, no newline) before it runs the child's test
/// function, so the child's first report shares a line with it.
fn report_in(line: &str) -> Option<&str> {
    line.find(LINE_PREFIX).map(|start| &line[start..])
}

fn crash_once(directory: &Path, child_seed: u64, kill_after: Duration) -> ChildOutput {
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
    // Each line with whether it ended in a newline: only the last one can lack it.
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break lines,
                Ok(_) => {
                    let complete = line.last() == Some(&b'\n');
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    lines.push((text, complete));
                }
            }
        }
    });
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL is delivered"); // Child::kill sends SIGKILL on Unix.
    child.wait().expect("the killed child is reaped");
    let received = reader.join().expect("the reader thread does not panic");
    // A report cut short by the kill has no newline: the child was killed inside the write of
    // that line, before it touched the store for that batch (a `begin`) or after its sync (a
    // `synced`), so dropping it is safe. Every complete report must parse: a report dropped
    // silently would make the model wrong (a lost `begin` makes it expect entries the child
    // was rewriting when it died).
    let mut reports = Vec::new();
    for (line, complete) in &received {
        match report_in(line) {
            Some(report) if *complete => reports.push(parse_report(report).unwrap_or_else(|| {
                panic!("the child printed a report the parent cannot parse: {line:?}")
            })),
            Some(_) | None => {}
        }
    }
    // The child prints `begin` then `synced` for each batch, with the same first index: a
    // report the parent missed shows as a break in that alternation.
    let mut in_flight = None;
    for report in &reports {
        in_flight = match (in_flight, *report) {
            (None, Report::Begin { first }) => Some(first),
            (Some(begun), Report::Synced { first, .. }) if first == begun => None,
            _ => panic!(
                "the child's reports do not alternate begin/synced at {report:?}, so the \
                 parent missed one; all lines: {received:#?}"
            ),
        };
    }
    ChildOutput {
        lines: received.into_iter().map(|(line, _)| line).collect(),
        reports,
    }
}

/// A child report, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Begin {
        first: u64,
    },
    Synced {
        first: u64,
        last: u64,
        term: u64,
        hard_state_term: u64,
    },
}

fn parse_report(report: &str) -> Option<Report> {
    let mut words = report.split_whitespace();
    if words.next() != Some(LINE_PREFIX) {
        return None;
    }
    let kind = words.next()?;
    let fields: Vec<u64> = words.map(|word| word.parse().ok()).collect::<Option<_>>()?;
    match (kind, fields.as_slice()) {
        ("begin", &[first]) => Some(Report::Begin { first }),
        ("synced", &[first, last, term, hard_state_term]) if first <= last => {
            Some(Report::Synced {
                first,
                last,
                term,
                hard_state_term,
            })
        }
        _ => None,
    }
}

/// What a failed check shows besides its message: the child's last lines, the model's and the
/// recovered terms around the index in question, and the segment files.
fn diagnostics(
    directory: &Path,
    output: &ChildOutput,
    model: &DurableModel,
    recovered: &[Entry],
    around: u64,
) -> String {
    let mut text = String::new();
    let from = output.lines.len().saturating_sub(12);
    text.push_str(&format!(
        "last {} of {} lines from the child:\n",
        output.lines.len() - from,
        output.lines.len()
    ));
    for line in &output.lines[from..] {
        text.push_str(&format!("  {line:?}\n"));
    }
    text.push_str(&format!(
        "model: next index {}, pending batch from {:?}, hard state term {}\n",
        model.next_index(),
        model.pending_first,
        model.hard_state_term
    ));
    let window = around.saturating_sub(5).max(1)..around + 6;
    let model_terms: Vec<String> = window
        .clone()
        .map(|index| format!("{index}:{:?}", model.terms.get(&index)))
        .collect();
    let recovered_terms: Vec<String> = window
        .map(|index| {
            let term = recovered
                .get((index - 1) as usize)
                .map(|entry| entry.term().0);
            format!("{index}:{term:?}")
        })
        .collect();
    text.push_str(&format!("model terms:     {}\n", model_terms.join(" ")));
    text.push_str(&format!("recovered terms: {}\n", recovered_terms.join(" ")));
    let mut segments: Vec<String> = std::fs::read_dir(directory)
        .map(|listing| {
            listing
                .filter_map(Result::ok)
                .map(|item| {
                    let length = item.metadata().map(|metadata| metadata.len()).unwrap_or(0);
                    format!("{} ({length} B)", item.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    segments.sort();
    text.push_str(&format!("files: {}", segments.join(", ")));
    text
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
        let output = crash_once(directory.path(), seed * 16 + crash, kill_after);
        for &report in &output.reports {
            model.apply(report);
        }
        statistics.batches_reported += output
            .reports
            .iter()
            .filter(|report| matches!(report, Report::Synced { .. }))
            .count();
        statistics.kills_with_a_batch_in_flight += usize::from(model.pending_first.is_some());
        let (store, recovered) = FileLogStore::open(child_config(directory.path()))
            .unwrap_or_else(|error| panic!("reopen after SIGKILL #{crash} failed: {error}"));
        let fail = |message: String, around: u64| -> ! {
            panic!(
                "after SIGKILL #{crash}: {message}\n{}",
                diagnostics(
                    directory.path(),
                    &output,
                    &model,
                    &recovered.entries,
                    around
                )
            )
        };
        if recovered.first_index != LogIndex(1) {
            fail(
                format!("the log starts at {}, not 1", recovered.first_index),
                1,
            );
        }
        for entry in &recovered.entries {
            // The child saves the hard state of a new term before that term's first entries,
            // in the same stream: an entry can never survive without it.
            if entry.term() > recovered.hard_state.current_term {
                fail(
                    format!(
                        "entry {} survived but the hard state of its term did not: {:?}",
                        entry.log_id, recovered.hard_state
                    ),
                    entry.index().0,
                );
            }
            if entry.payload != EntryPayload::command(payload(entry.term().0, entry.index().0)) {
                fail(
                    format!("entry {} is damaged: its payload differs", entry.log_id),
                    entry.index().0,
                );
            }
        }
        let cut = model.pending_first.unwrap_or(model.next_index());
        for (&index, &term) in model.terms.range(..cut) {
            match recovered.entries.get((index - 1) as usize) {
                None => fail(
                    format!("entry {index} was reported persisted but is missing"),
                    index,
                ),
                Some(held) if held.term() != Term(term) => fail(
                    format!(
                        "entry {index} has term {} after recovery, but the child reported it \
                         persisted with term {term}",
                        held.term()
                    ),
                    index,
                ),
                Some(_) => {}
            }
        }
        if model.pending_first.is_none() && recovered.next_index().0 < model.next_index() {
            fail(
                format!(
                    "the log ends before {} though no batch was in flight",
                    model.next_index()
                ),
                recovered.next_index().0,
            );
        }
        if recovered.hard_state.current_term.0 < model.hard_state_term {
            fail(
                format!(
                    "the hard state reported saved did not survive: {:?} < term {}",
                    recovered.hard_state, model.hard_state_term
                ),
                model.next_index(),
            );
        }
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
    let first_seed = seed_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs()
    });
    let runs = env_u64("RAFT_CRASH_RUNS", 50);
    let started = Instant::now();
    let mut statistics = CrashStatistics::default();
    run_seeds(
        &this_test!().with_env("RAFT_CRASH_RUNS", 1),
        (first_seed..first_seed + runs).collect(),
        |seed| run_seed(seed, &mut statistics),
    );
    println!(
        "{runs} seeded runs from seed {first_seed}, {} SIGKILLs, in {:?}: {statistics:?}",
        runs * CRASHES_PER_RUN,
        started.elapsed()
    );
}

/// libtest prints `test crash_child_process ... ` without a newline before the child's test
/// function runs, so the child's first report shares that line: it must still be read.
#[test]
fn reports_are_read_even_after_the_harness_test_name() {
    let glued = "test crash_child_process ... crash-child begin 124";
    assert_eq!(
        report_in(glued).and_then(parse_report),
        Some(Report::Begin { first: 124 })
    );
    assert_eq!(
        report_in("crash-child synced 124 126 3 3").and_then(parse_report),
        Some(Report::Synced {
            first: 124,
            last: 126,
            term: 3,
            hard_state_term: 3
        })
    );
    assert_eq!(report_in("running 1 test"), None);
    assert_eq!(parse_report("crash-child synced 124 126 3"), None);
}
