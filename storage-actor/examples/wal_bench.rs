//! WAL benchmark: prints figures, asserts nothing.
//!
//! ```text
//! cargo run --release -p storage-actor --example wal_bench [-- DIRECTORY [SECONDS]]
//! ```
//!
//! Measures, on the disk holding DIRECTORY (default: a temporary directory):
//!
//! 1. the raw fdatasync rate: append 128 bytes to a plain file, fdatasync, repeat;
//! 2. `FileLogStore` with fsync on, batches of 1, 16 and 256 entries of 100 bytes, one sync per
//!    batch: entries/s, MB/s, and each batch's cost in raw fdatasyncs;
//! 3. group commit through the `StorageActor`: 1-entry `Append` requests kept 1 and 64 in
//!    flight (as a leader's proposals arrive), entries/s and entries per fdatasync;
//! 4. the time to reopen (recover) a log of 1,000,000 entries of 100 bytes.
//!
//! Issue 3's targets: a 1-entry batch costs at most 1.2 raw fdatasyncs; batches of 16 or more
//! reach at least 10 x the raw fdatasync rate in entries/s; reopening 1,000,000 entries < 3 s.

use actix::{Actor, Arbiter, AsyncContext, Context, Handler, Recipient, System};
use raft_proto::ports::StoragePorts;
use raft_proto::storage::{StorageEvent, StorageRequest};
use raft_types::{Entry, EntryPayload, LogIndex, Term};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use storage_actor::{FileLogStore, FileLogStoreConfig, LogStore, StorageActor};

const PAYLOAD_BYTES: usize = 100;
const REOPEN_ENTRY_COUNT: u64 = 1_000_000;

fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let temporary = tempfile::tempdir()?;
    let directory = arguments
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let seconds: f64 = arguments.get(1).map_or(Ok(2.0), |text| text.parse())?;
    let duration = Duration::from_secs_f64(seconds);
    std::fs::create_dir_all(&directory)?;
    println!(
        "wal_bench: directory {}, {seconds} s per measurement",
        directory.display()
    );

    let raw_syncs_per_second = raw_fdatasync_rate(&directory.join("raw-fdatasync"), duration)?;
    println!(
        "raw fdatasync (append 128 B + fdatasync): {raw_syncs_per_second:>10.0} syncs/s  ({:.1} us each)",
        1e6 / raw_syncs_per_second
    );
    println!();
    println!(
        "{:>6} {:>12} {:>9} {:>11} {:>14} {:>14}",
        "batch", "entries/s", "MB/s", "batches/s", "fdatasyncs", "x raw rate"
    );
    println!(
        "{:>6} {:>12} {:>9} {:>11} {:>14} {:>14}",
        "", "", "payload", "", "per batch", "(entries/s)"
    );
    for batch_size in [1usize, 16, 256] {
        let figures = append_rate(
            &directory.join(format!("batch-{batch_size}")),
            batch_size,
            duration,
        )?;
        println!(
            "{batch_size:>6} {:>12.0} {:>9.2} {:>11.0} {:>14.2} {:>14.1}",
            figures.entries_per_second,
            figures.entries_per_second * PAYLOAD_BYTES as f64 / 1e6,
            figures.batches_per_second,
            raw_syncs_per_second / figures.batches_per_second,
            figures.entries_per_second / raw_syncs_per_second,
        );
    }
    println!();
    for in_flight in [1u64, 64] {
        let directory = directory.join(format!("actor-{in_flight}"));
        let figures = actor_rate(&directory, in_flight, duration)?;
        println!(
            "StorageActor, 1-entry requests, {in_flight:>2} in flight: {:>8.0} entries/s, {:>6.0} fdatasyncs/s, {:>6.1} entries per fdatasync",
            figures.entries_per_second,
            figures.batches_per_second,
            figures.entries_per_second / figures.batches_per_second,
        );
        std::fs::remove_dir_all(&directory)?;
    }
    println!();
    reopen_time(&directory.join("reopen"))?;
    Ok(())
}

fn raw_fdatasync_rate(path: &Path, duration: Duration) -> anyhow::Result<f64> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let record = [0x5au8; 128];
    let started = Instant::now();
    let mut syncs = 0u64;
    while started.elapsed() < duration {
        file.write_all(&record)?;
        file.sync_data()?;
        syncs += 1;
    }
    let rate = syncs as f64 / started.elapsed().as_secs_f64();
    std::fs::remove_file(path)?;
    Ok(rate)
}

struct AppendFigures {
    entries_per_second: f64,
    batches_per_second: f64,
}

fn entry(index: u64) -> Entry {
    let mut payload = vec![0u8; PAYLOAD_BYTES];
    payload[..8].copy_from_slice(&index.to_le_bytes());
    Entry::new(Term(1), LogIndex(index), EntryPayload::command(payload))
}

fn append_rate(
    directory: &Path,
    batch_size: usize,
    duration: Duration,
) -> anyhow::Result<AppendFigures> {
    let (mut store, _) = FileLogStore::open(FileLogStoreConfig::new(directory))?;
    let mut next_index = 1u64;
    let mut batches = 0u64;
    let started = Instant::now();
    while started.elapsed() < duration {
        let batch: Vec<Entry> = (next_index..next_index + batch_size as u64)
            .map(entry)
            .collect();
        store.append(&batch)?;
        store.sync()?;
        next_index += batch_size as u64;
        batches += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(store);
    std::fs::remove_dir_all(directory)?;
    Ok(AppendFigures {
        entries_per_second: (next_index - 1) as f64 / elapsed,
        batches_per_second: batches as f64 / elapsed,
    })
}

/// Plays a leader: keeps `in_flight` single-entry appends outstanding, sending more as
/// `Persisted` events come back, until `duration` has passed.
struct Proposer {
    storage: Recipient<StorageRequest>,
    in_flight: u64,
    duration: Duration,
    started: Instant,
    next_index: u64,
    persisted_index: u64,
    persisted_events: u64,
    result: std::sync::Arc<std::sync::Mutex<Option<AppendFigures>>>,
}

impl Proposer {
    fn top_up(&mut self) {
        let sending = self.started.elapsed() < self.duration;
        while sending && self.next_index - 1 - self.persisted_index < self.in_flight {
            self.storage.do_send(StorageRequest::Append {
                entries: vec![entry(self.next_index)],
                // One request per entry, numbered as the consensus core numbers them.
                io: raft_types::IoSequence(self.next_index),
            });
            self.next_index += 1;
        }
        if !sending && self.persisted_index == self.next_index - 1 {
            let elapsed = self.started.elapsed().as_secs_f64();
            *self.result.lock().expect("result lock") = Some(AppendFigures {
                entries_per_second: self.persisted_index as f64 / elapsed,
                batches_per_second: self.persisted_events as f64 / elapsed,
            });
            System::current().stop();
        }
    }
}

impl Actor for Proposer {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.started = Instant::now();
        self.top_up();
    }
}

impl Handler<StorageEvent> for Proposer {
    type Result = ();
    fn handle(&mut self, event: StorageEvent, _: &mut Context<Self>) {
        match event {
            StorageEvent::Persisted { last, .. } => {
                self.persisted_index = last.index.0;
                self.persisted_events += 1;
                self.top_up();
            }
            StorageEvent::HardStateSaved { .. } | StorageEvent::SnapshotReceived { .. } => {}
            StorageEvent::Failed { error } => panic!("storage failed: {error}"),
        }
    }
}

fn actor_rate(
    directory: &Path,
    in_flight: u64,
    duration: Duration,
) -> anyhow::Result<AppendFigures> {
    let (store, _) = FileLogStore::open(FileLogStoreConfig::new(directory))?;
    let result = std::sync::Arc::new(std::sync::Mutex::new(None));
    let system = System::new();
    system.block_on(async {
        let storage_arbiter = Arbiter::new();
        let result = result.clone();
        Proposer::create(move |context| {
            let storage = StorageActor::start_on_arbiter(
                &storage_arbiter.handle(),
                store,
                StoragePorts {
                    events: context.address().recipient(),
                },
            );
            Proposer {
                storage: storage.recipient(),
                in_flight,
                duration,
                started: Instant::now(),
                next_index: 1,
                persisted_index: 0,
                persisted_events: 0,
                result,
            }
        });
    });
    system.run()?;
    let figures = result
        .lock()
        .expect("result lock")
        .take()
        .ok_or_else(|| anyhow::anyhow!("the proposer stopped without figures"))?;
    Ok(figures)
}

fn reopen_time(directory: &Path) -> anyhow::Result<()> {
    let build_started = Instant::now();
    let (mut store, _) = FileLogStore::open(FileLogStoreConfig::new(directory))?;
    let batch_size = 1000;
    let mut next_index = 1;
    while next_index <= REOPEN_ENTRY_COUNT {
        let batch: Vec<Entry> = (next_index..next_index + batch_size).map(entry).collect();
        store.append(&batch)?;
        store.sync()?;
        next_index += batch_size;
    }
    let segments = store.segment_count();
    drop(store);
    let bytes_on_disk: u64 = std::fs::read_dir(directory)?
        .map(|item| {
            item.and_then(|item| item.metadata())
                .map(|metadata| metadata.len())
        })
        .sum::<Result<u64, _>>()?;
    println!(
        "built a log of {REOPEN_ENTRY_COUNT} entries x {PAYLOAD_BYTES} B: {:.1} MB in {segments} segments, in {:.2} s",
        bytes_on_disk as f64 / 1e6,
        build_started.elapsed().as_secs_f64()
    );
    let reopen_started = Instant::now();
    let (store, recovered) = FileLogStore::open(FileLogStoreConfig::new(directory))?;
    let reopen_seconds = reopen_started.elapsed().as_secs_f64();
    assert_eq!(
        recovered.entries.len() as u64,
        REOPEN_ENTRY_COUNT,
        "every entry is recovered"
    );
    println!(
        "reopen (recover) {REOPEN_ENTRY_COUNT} entries: {reopen_seconds:.3} s ({:.0} entries/s; page cache warm)",
        REOPEN_ENTRY_COUNT as f64 / reopen_seconds
    );
    drop(store);
    drop(recovered);
    std::fs::remove_dir_all(directory)?;
    Ok(())
}
