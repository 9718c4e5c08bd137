//! The storage actor: group commit (one sync per drained batch, proven by counting syncs),
//! events in order, failure reported once and everything after it refused.

mod support;

use actix::{Actor, Arbiter, System};
use raft_proto::storage::{StorageEvent, StorageRequest};
use raft_types::{Entry, HardState, IoSequence, LogId, LogIndex, NodeId, Term};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage_actor::conformance::{sample_entries, sample_entry};
use storage_actor::{
    FileLogStore, FileLogStoreConfig, LogStore, MemLogStore, StorageActor, StorageError,
};
use support::start_collector;
use test_support::wait::wait_until_recorded;

/// Wraps a store to count syncs and make each one take `sync_delay`, like a real fdatasync.
struct CountingStore<S: LogStore> {
    inner: S,
    syncs: Arc<AtomicU64>,
    sync_delay: Duration,
}

impl CountingStore<MemLogStore> {
    /// An empty in-memory store, and the count of its syncs.
    fn new(sync_delay: Duration) -> (CountingStore<MemLogStore>, Arc<AtomicU64>) {
        let syncs = Arc::new(AtomicU64::new(0));
        let store = CountingStore {
            inner: MemLogStore::new(),
            syncs: Arc::clone(&syncs),
            sync_delay,
        };
        (store, syncs)
    }
}

impl<S: LogStore> LogStore for CountingStore<S> {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.inner.append(entries)
    }
    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        self.inner.truncate(since)
    }
    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        self.inner.save_hard_state(hard_state)
    }
    fn purge(&mut self, before: LogIndex) -> Result<(), StorageError> {
        self.inner.purge(before)
    }
    fn reset(&mut self, last_log_id: LogId) -> Result<(), StorageError> {
        self.inner.reset(last_log_id)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.sync_delay);
        self.inner.sync()
    }
    fn hard_state(&self) -> HardState {
        self.inner.hard_state()
    }
    fn first_index(&self) -> LogIndex {
        self.inner.first_index()
    }
    fn next_index(&self) -> LogIndex {
        self.inner.next_index()
    }
    fn last_log_id(&self) -> Option<LogId> {
        self.inner.last_log_id()
    }
    fn entries(&self, range: Range<LogIndex>) -> Result<Vec<Entry>, StorageError> {
        self.inner.entries(range)
    }
}

/// Polls until `condition` holds on the events, or panics after `deadline`.
async fn wait_for_events(
    events: &Arc<Mutex<Vec<StorageEvent>>>,
    deadline: Duration,
    condition: impl Fn(&[StorageEvent]) -> bool,
) {
    let condition = |events: &Vec<StorageEvent>| condition(events);
    wait_until_recorded("the events", deadline, events, condition).await;
}

fn persisted_up_to(events: &[StorageEvent], index: u64) -> bool {
    events.iter().any(
        |event| matches!(event, StorageEvent::Persisted { last, .. } if last.index == LogIndex(index)),
    )
}

#[test]
fn one_sync_covers_every_request_already_in_the_mailbox() {
    System::new().block_on(async {
        let (ports, events) = start_collector();
        let (store, syncs) = CountingStore::new(Duration::ZERO);
        let actor = StorageActor::new(store, ports);
        let metrics = actor.metrics();
        let storage = actor.start();
        let voted = HardState::new(Term(2), Some(NodeId(1)));
        // Sent without yielding: all of it is in the mailbox when the actor first runs.
        // Requests are numbered 1..=101 as the consensus core numbers them.
        for index in 1..=50 {
            storage.do_send(StorageRequest::Append {
                entries: vec![sample_entry(2, index)],
                io: IoSequence(index),
            });
        }
        storage.do_send(StorageRequest::SaveHardState {
            hard_state: voted,
            io: IoSequence(51),
        });
        for index in 51..=100 {
            storage.do_send(StorageRequest::Append {
                entries: vec![sample_entry(2, index)],
                io: IoSequence(index + 1),
            });
        }
        wait_for_events(&events, Duration::from_secs(5), |events| {
            persisted_up_to(events, 100)
        })
        .await;
        assert_eq!(
            syncs.load(Ordering::SeqCst),
            1,
            "101 requests, one fdatasync"
        );
        assert_eq!(
            *events.lock().expect("collector lock"),
            vec![
                StorageEvent::HardStateSaved {
                    io: IoSequence(101)
                },
                StorageEvent::Persisted {
                    io: IoSequence(101),
                    last: LogId::new(Term(2), LogIndex(100))
                },
            ],
            "one HardStateSaved and one Persisted for the whole batch, naming its last request"
        );
        let snapshot = metrics.snapshot();
        assert_eq!(
            (
                snapshot.batches_total,
                snapshot.requests_total,
                snapshot.entries_total,
                snapshot.sync_latency.count
            ),
            (1, 101, 100, 1),
            "the metrics count one batch of 101 requests and one timed sync"
        );
    });
}

#[test]
fn requests_arriving_during_a_sync_share_the_next_one() {
    System::new().block_on(async {
        let (ports, events) = start_collector();
        let (store, syncs) = CountingStore::new(Duration::from_millis(2));
        let storage_arbiter = Arbiter::new();
        let storage = StorageActor::start_on_arbiter(&storage_arbiter.handle(), store, ports);
        let request_count: u64 = 2000;
        let sender = std::thread::spawn(move || {
            for index in 1..=request_count {
                storage.do_send(StorageRequest::Append {
                    entries: vec![sample_entry(1, index)],
                    io: IoSequence(index),
                });
                // Pauses let syncs start while more requests keep arriving; few enough that a
                // loaded machine (long sleeps) still leaves the bound below far away.
                if index % 50 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            // Handed back, as the consensus actor keeps its address for as long as it runs:
            // actix stops an actor whose last address is dropped, and would discard requests
            // still queued in its mailbox (see the storage_actor module documentation).
            storage
        });
        wait_for_events(&events, Duration::from_secs(20), |events| {
            persisted_up_to(events, request_count)
        })
        .await;
        let _storage = sender.join().expect("the sender thread does not panic");
        let sync_count = syncs.load(Ordering::SeqCst);
        let events = events.lock().expect("collector lock").clone();
        let persisted: Vec<u64> = events
            .iter()
            .map(|event| match event {
                StorageEvent::Persisted { io, last } => {
                    assert_eq!(io.0, last.index.0, "request n appended entry n");
                    last.index.0
                }
                other => panic!("only Persisted expected, got {other:?}"),
            })
            .collect();
        println!("{request_count} appends under load: {sync_count} syncs");
        assert_eq!(persisted.len() as u64, sync_count, "one Persisted per sync");
        assert!(
            persisted.windows(2).all(|pair| pair[0] < pair[1]),
            "Persisted only moves forward: {persisted:?}"
        );
        assert!(
            sync_count * 10 <= request_count,
            "group commit: {request_count} requests took {sync_count} syncs"
        );
        storage_arbiter.stop();
    });
}

#[test]
fn a_failure_is_reported_once_and_later_requests_are_refused() {
    System::new().block_on(async {
        let (ports, events) = start_collector();
        let storage = StorageActor::new(MemLogStore::new(), ports).start();
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(1, 1, 2),
            io: IoSequence(1),
        });
        wait_for_events(&events, Duration::from_secs(5), |events| {
            persisted_up_to(events, 2)
        })
        .await;
        // Index 5 leaves a gap: the store refuses it and the actor reports the failure.
        storage.do_send(StorageRequest::Append {
            entries: vec![sample_entry(1, 5)],
            io: IoSequence(2),
        });
        wait_for_events(&events, Duration::from_secs(5), |events| events.len() == 2).await;
        storage.do_send(StorageRequest::Append {
            entries: vec![sample_entry(1, 3)],
            io: IoSequence(3),
        });
        storage.do_send(StorageRequest::SaveHardState {
            hard_state: HardState::new(Term(9), None),
            io: IoSequence(4),
        });
        // A sleep proves that nothing more happens.
        actix::clock::sleep(Duration::from_millis(50)).await;
        let events = events.lock().expect("collector lock").clone();
        assert_eq!(events.len(), 2, "nothing after the failure: {events:?}");
        match &events[1] {
            StorageEvent::Failed { error } => {
                assert!(error.contains("out of order"), "{error}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    });
}

#[test]
fn entries_persisted_through_the_actor_survive_a_restart() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let config = FileLogStoreConfig::new(directory.path());
    System::new().block_on(async {
        let (ports, events) = start_collector();
        let (store, recovered) = FileLogStore::open(config.clone()).expect("fresh directory opens");
        assert!(recovered.entries.is_empty());
        let storage_arbiter = Arbiter::new();
        let storage = StorageActor::start_on_arbiter(&storage_arbiter.handle(), store, ports);
        storage.do_send(StorageRequest::SaveHardState {
            hard_state: HardState::new(Term(3), Some(NodeId(2))),
            io: IoSequence(1),
        });
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(3, 1, 10),
            io: IoSequence(2),
        });
        storage.do_send(StorageRequest::Truncate {
            since: LogIndex(8),
            io: IoSequence(3),
        });
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(4, 8, 12),
            io: IoSequence(4),
        });
        wait_for_events(&events, Duration::from_secs(10), |events| {
            persisted_up_to(events, 12)
        })
        .await;
        storage_arbiter.stop();
        storage_arbiter
            .join()
            .expect("the storage arbiter stops cleanly");
    });
    let (_, recovered) = FileLogStore::open(config).expect("the directory reopens");
    let mut expected = sample_entries(3, 1, 7);
    expected.extend(sample_entries(4, 8, 12));
    assert_eq!(recovered.entries, expected);
    assert_eq!(
        recovered.hard_state,
        HardState::new(Term(3), Some(NodeId(2)))
    );
}
