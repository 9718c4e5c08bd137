//! The storage actor's snapshot requests: `ResetLog` answered like an append, and
//! `StoreSnapshotChunk` through the snapshot store (stored, out of order, complete, rejected,
//! no store, disk error), each chunk's event after the batch's other events.

mod support;

use actix::{Actor, Addr, System};
use raft_proto::snapshot::SnapshotStore;
use raft_proto::storage::{SnapshotReceiveOutcome, StorageEvent, StorageRequest};
use raft_types::{Bytes, IoSequence, LogId, LogIndex, NodeId, SnapshotMeta, Term};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storage_actor::conformance::sample_entries;
use storage_actor::file_system::FileSystem;
use storage_actor::sim_file_system::{SimFault, SimFileSystem};
use storage_actor::{
    FileLogStore, FileLogStoreConfig, FileSnapshotStore, FileSnapshotStoreConfig, LogStore,
    MemLogStore, MemSnapshotStore, StorageActor,
};
use support::start_collector;
use test_support::wait::wait_until_recorded;

type Events = Arc<Mutex<Vec<StorageEvent>>>;

async fn wait_for(events: &Events, count: usize) -> Vec<StorageEvent> {
    let condition = |events: &Vec<StorageEvent>| events.len() >= count;
    wait_until_recorded("the events", Duration::from_secs(5), events, condition).await;
    // Anything sent after the awaited events would show here too.
    actix::clock::sleep(Duration::from_millis(20)).await;
    events.lock().expect("collector lock").clone()
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(Term(term), LogIndex(index))
}

/// A snapshot written on a leader's store, and its raw file.
fn leader_snapshot(payload_length: usize) -> (SnapshotMeta, Bytes) {
    let leader = MemSnapshotStore::new();
    let mut writer = leader
        .begin(
            log_id(3, 40),
            raft_types::Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        )
        .expect("begins");
    let payload: Vec<u8> = (0..payload_length).map(|byte| byte as u8 | 1).collect();
    writer.write_all(&payload).expect("writes");
    let meta = writer.finish().expect("finishes");
    let raw = leader
        .open(&meta.id())
        .expect("opens")
        .read_at(0, meta.size_bytes as usize)
        .expect("reads");
    (meta, raw)
}

fn chunk(snapshot: &SnapshotMeta, raw: &Bytes, start: usize, end: usize) -> StorageRequest {
    StorageRequest::StoreSnapshotChunk {
        snapshot: snapshot.clone(),
        offset: start as u64,
        data: raw.slice(start..end),
    }
}

fn received(snapshot: &SnapshotMeta, outcome: SnapshotReceiveOutcome) -> StorageEvent {
    StorageEvent::SnapshotReceived {
        snapshot: snapshot.clone(),
        outcome,
    }
}

fn start_with_snapshots(
    snapshots: Arc<dyn SnapshotStore>,
) -> (Addr<StorageActor<MemLogStore>>, Events) {
    let (ports, events) = start_collector();
    let storage = StorageActor::new(MemLogStore::new(), ports)
        .with_snapshot_store(snapshots)
        .start();
    (storage, events)
}

#[test]
fn a_reset_is_reported_like_an_append_naming_the_snapshot_when_nothing_follows() {
    System::new().block_on(async {
        let (ports, events) = start_collector();
        let storage = StorageActor::new(MemLogStore::new(), ports).start();
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(1, 1, 3),
            io: IoSequence(1),
        });
        let seen = wait_for(&events, 1).await;
        assert_eq!(
            seen,
            vec![StorageEvent::Persisted {
                io: IoSequence(1),
                last: log_id(1, 3)
            }]
        );
        storage.do_send(StorageRequest::ResetLog {
            last_log_id: log_id(2, 50),
            io: IoSequence(2),
        });
        let seen = wait_for(&events, 2).await;
        assert_eq!(
            seen[1],
            StorageEvent::Persisted {
                io: IoSequence(2),
                last: log_id(2, 50)
            },
            "a reset log ends at the snapshot's last entry"
        );
        // A reset and appends after it in one batch: the last append wins.
        storage.do_send(StorageRequest::ResetLog {
            last_log_id: log_id(3, 80),
            io: IoSequence(3),
        });
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(3, 81, 82),
            io: IoSequence(4),
        });
        let seen = wait_for(&events, 3).await;
        assert_eq!(
            seen[2..],
            [StorageEvent::Persisted {
                io: IoSequence(4),
                last: log_id(3, 82)
            }]
        );
        // A truncation back to the reset point: the log ends at the reset again.
        storage.do_send(StorageRequest::Truncate {
            since: LogIndex(81),
            io: IoSequence(5),
        });
        storage.do_send(StorageRequest::Append {
            entries: Vec::new(),
            io: IoSequence(6),
        });
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(4, 81, 81),
            io: IoSequence(7),
        });
        let seen = wait_for(&events, 4).await;
        assert_eq!(
            seen[3..],
            [StorageEvent::Persisted {
                io: IoSequence(7),
                last: log_id(4, 81)
            }]
        );
    });
}

#[test]
fn a_reset_through_the_actor_is_durable_in_the_write_ahead_log() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let config = FileLogStoreConfig::new(directory.path());
    System::new().block_on(async {
        let (store, _) = FileLogStore::open(config.clone()).expect("opens");
        let (ports, events) = start_collector();
        let storage = StorageActor::new(store, ports).start();
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(1, 1, 5),
            io: IoSequence(1),
        });
        storage.do_send(StorageRequest::ResetLog {
            last_log_id: log_id(2, 30),
            io: IoSequence(2),
        });
        let seen = wait_for(&events, 1).await;
        assert_eq!(
            seen,
            vec![StorageEvent::Persisted {
                io: IoSequence(2),
                last: log_id(2, 30)
            }]
        );
        drop(storage);
    });
    let (store, recovered) = FileLogStore::open(config).expect("reopens");
    assert_eq!(recovered.first_index, LogIndex(31));
    assert!(recovered.entries.is_empty());
    assert_eq!(recovered.prev_log_id, Some(log_id(2, 30)));
    assert_eq!(store.next_index(), LogIndex(31));
}

#[test]
fn chunks_are_stored_in_order_and_the_last_one_installs_the_snapshot() {
    System::new().block_on(async {
        let (meta, raw) = leader_snapshot(5000);
        let follower = Arc::new(MemSnapshotStore::new());
        let (storage, events) = start_with_snapshots(follower.clone());
        let size = raw.len();
        storage.do_send(chunk(&meta, &raw, 0, 2000));
        let seen = wait_for(&events, 1).await;
        assert_eq!(
            seen,
            vec![received(
                &meta,
                SnapshotReceiveOutcome::Stored { next_offset: 2000 }
            )]
        );
        // A chunk lost in flight: the next one is refused, naming where to resume.
        storage.do_send(chunk(&meta, &raw, 3000, 4000));
        let seen = wait_for(&events, 2).await;
        assert_eq!(
            seen[1],
            received(&meta, SnapshotReceiveOutcome::Stored { next_offset: 2000 })
        );
        storage.do_send(chunk(&meta, &raw, 2000, size));
        let seen = wait_for(&events, 3).await;
        assert_eq!(seen[2], received(&meta, SnapshotReceiveOutcome::Complete));
        assert_eq!(follower.newest(), Some(meta));
    });
}

#[test]
fn a_received_file_that_fails_verification_is_rejected() {
    System::new().block_on(async {
        let (meta, raw) = leader_snapshot(3000);
        let follower = Arc::new(MemSnapshotStore::new());
        let (storage, events) = start_with_snapshots(follower.clone());
        let mut damaged = raw.to_vec();
        damaged[100] ^= 0x08;
        let damaged = Bytes::from(damaged);
        storage.do_send(chunk(&meta, &damaged, 0, damaged.len()));
        let seen = wait_for(&events, 1).await;
        match &seen[..] {
            [StorageEvent::SnapshotReceived {
                snapshot,
                outcome: SnapshotReceiveOutcome::Rejected { reason },
            }] => {
                assert_eq!(snapshot, &meta);
                assert!(reason.contains("corrupt snapshot"), "{reason}");
            }
            other => panic!("expected one Rejected, got {other:?}"),
        }
        assert_eq!(follower.newest(), None);
        // The transfer starts over and succeeds.
        storage.do_send(chunk(&meta, &raw, 0, raw.len()));
        let seen = wait_for(&events, 2).await;
        assert_eq!(seen[1], received(&meta, SnapshotReceiveOutcome::Complete));
    });
}

#[test]
fn chunk_events_follow_the_batch_events_after_its_sync() {
    System::new().block_on(async {
        let (meta, raw) = leader_snapshot(1000);
        let (storage, events) = start_with_snapshots(Arc::new(MemSnapshotStore::new()));
        // One batch: all of it is in the mailbox before the actor runs.
        storage.do_send(chunk(&meta, &raw, 0, 500));
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(1, 1, 2),
            io: IoSequence(1),
        });
        storage.do_send(StorageRequest::SaveHardState {
            hard_state: raft_types::HardState::new(Term(1), Some(NodeId(1))),
            io: IoSequence(2),
        });
        storage.do_send(chunk(&meta, &raw, 500, raw.len()));
        let seen = wait_for(&events, 4).await;
        assert_eq!(
            seen,
            vec![
                StorageEvent::HardStateSaved { io: IoSequence(2) },
                StorageEvent::Persisted {
                    io: IoSequence(2),
                    last: log_id(1, 2)
                },
                received(&meta, SnapshotReceiveOutcome::Stored { next_offset: 500 }),
                received(&meta, SnapshotReceiveOutcome::Complete),
            ]
        );
    });
}

#[test]
fn a_chunk_without_a_snapshot_store_is_fatal() {
    System::new().block_on(async {
        let (meta, raw) = leader_snapshot(100);
        let (ports, events) = start_collector();
        let storage = StorageActor::new(MemLogStore::new(), ports).start();
        storage.do_send(chunk(&meta, &raw, 0, raw.len()));
        storage.do_send(StorageRequest::Append {
            entries: sample_entries(1, 1, 1),
            io: IoSequence(1),
        });
        let seen = wait_for(&events, 1).await;
        match &seen[..] {
            [StorageEvent::Failed { error }] => {
                assert!(error.contains("no snapshot store"), "{error}")
            }
            other => panic!("expected one Failed, got {other:?}"),
        }
    });
}

#[test]
fn a_disk_error_while_storing_a_chunk_is_fatal() {
    System::new().block_on(async {
        let (meta, raw) = leader_snapshot(2000);
        let disk = SimFileSystem::new(5);
        disk.create_dir_all(Path::new("/data"))
            .expect("the disk is on");
        let snapshots = FileSnapshotStore::open_on(
            Arc::new(disk.clone()),
            FileSnapshotStoreConfig::new("/data/snapshots"),
        )
        .expect("opens");
        let (storage, events) = start_with_snapshots(Arc::new(snapshots));
        disk.arm_fault(SimFault::SyncError, 0);
        storage.do_send(chunk(&meta, &raw, 0, 1000));
        let seen = wait_for(&events, 1).await;
        match &seen[..] {
            [StorageEvent::Failed { error }] => {
                assert!(error.contains("fdatasync"), "{error}")
            }
            other => panic!("expected one Failed, got {other:?}"),
        }
        // Refused from now on: nothing more is sent.
        storage.do_send(chunk(&meta, &raw, 0, 1000));
        let seen = wait_for(&events, 1).await;
        assert_eq!(seen.len(), 1, "{seen:?}");
    });
}
