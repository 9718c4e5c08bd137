//! The applier's snapshots, end to end through the actor: taken at a threshold on a thread of
//! their own while apply goes on, reported once durable, restored (replacing the state, with
//! the checkpoints going on), and every way a restore fails being fatal.

mod support;

use actix::{Actor, Addr, System};
use applier_actor::{
    AppliedCheckpoints, ApplierActor, Checkpoint, CheckpointPolicy, CheckpointsSnapshot, KvStore,
    SnapshotMetricsValues, SnapshotPolicy,
};
use raft_proto::applier::{ApplyEntries, RestoreSnapshot};
use raft_proto::snapshot::SnapshotStore;
use raft_types::{Entry, EntryPayload, LogId, LogIndex, Membership, NodeId, SnapshotMeta, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};
use support::{
    get, put_entry, puts, raft_stand_in, take_snapshot, MemSnapshotStore, Received, PROMPTLY,
};
use test_support::report::SeedReport;
use test_support::wait::{poll_until, wait_until_recorded};
use test_support::{seed, this_test};

/// Thresholds no test reaches unless it means to.
const NEVER: SnapshotPolicy = SnapshotPolicy {
    threshold_entries: u64::MAX,
    threshold_bytes: u64::MAX,
};

struct Started {
    applier: Addr<ApplierActor<KvStore>>,
    received: Arc<Mutex<Received>>,
    store: MemSnapshotStore,
    metrics: Arc<applier_actor::SnapshotMetrics>,
    checkpoints: Arc<AppliedCheckpoints>,
}

/// An applier over an empty `KvStore` taking snapshots by `policy` into a fresh store.
fn start(policy: SnapshotPolicy) -> Started {
    start_with(MemSnapshotStore::default(), policy, |applier| applier)
}

fn start_with(
    store: MemSnapshotStore,
    policy: SnapshotPolicy,
    build: impl FnOnce(ApplierActor<KvStore>) -> ApplierActor<KvStore>,
) -> Started {
    let (raft, ports, received) = raft_stand_in();
    let applier = build(ApplierActor::new(KvStore::new(), ports)).with_snapshots(
        Arc::new(store.clone()),
        policy,
        Membership::with_voters([NodeId(3), NodeId(1), NodeId(2)]),
        raft.recipient(),
    );
    let metrics = applier.snapshot_metrics();
    let checkpoints = applier.checkpoints();
    Started {
        applier: applier.start(),
        received,
        store,
        metrics,
        checkpoints,
    }
}

fn apply(applier: &Addr<ApplierActor<KvStore>>, entries: Vec<Entry>) {
    applier.do_send(ApplyEntries {
        entries,
        responders: Vec::new(),
    });
}

async fn wait_for_applied(received: &Mutex<Received>, index: u64) {
    wait_until_recorded(
        &format!("Applied {{ index: {index} }}"),
        PROMPTLY,
        received,
        |seen| seen.applied.last() == Some(&LogIndex(index)),
    )
    .await;
}

async fn wait_for_taken(received: &Mutex<Received>, count: usize) -> Vec<SnapshotMeta> {
    wait_until_recorded(
        &format!("{count} SnapshotTaken"),
        PROMPTLY,
        received,
        |seen| seen.taken.len() >= count,
    )
    .await;
    received.lock().expect("lock").taken.clone()
}

#[actix::test]
async fn a_snapshot_is_taken_at_the_entry_threshold_and_reported_once_durable() {
    let started = start(SnapshotPolicy {
        threshold_entries: 5,
        ..NEVER
    });
    apply(&started.applier, puts(1, 1..=3));
    apply(
        &started.applier,
        vec![Entry::new(Term(2), LogIndex(4), EntryPayload::Blank)],
    );
    // A query is answered after both batches: below the threshold, nothing was begun.
    get(&started.applier, "key1").await;
    assert_eq!(started.store.begun(), 0);
    apply(&started.applier, puts(2, 5..=6));
    let taken = wait_for_taken(&started.received, 1).await;
    let snapshot = &taken[0];
    // Checked after the batch, so at its end (6), not at the entry that reached 5.
    assert_eq!(snapshot.last_log_id, LogId::new(Term(2), LogIndex(6)));
    assert_eq!(
        snapshot.membership,
        Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)])
    );
    assert_eq!(started.store.newest().as_ref(), Some(snapshot));
    poll_until("the metrics count it", PROMPTLY, || {
        started.metrics.read().taken == 1
    })
    .await;
    let metrics = started.metrics.read();
    assert_eq!(
        metrics,
        SnapshotMetricsValues {
            taken: 1,
            last_index: LogIndex(6),
            last_size_bytes: snapshot.size_bytes,
            last_write_duration_ms: metrics.last_write_duration_ms,
            ..SnapshotMetricsValues::default()
        }
    );

    // What it holds restores to the same state.
    let (_raft, ports, _received) = raft_stand_in();
    let restored = ApplierActor::restored_from(KvStore::new(), ports, &started.store, snapshot)
        .expect("the snapshot restores");
    assert_eq!(
        restored.last_applied_log_id(),
        Some(LogId::new(Term(2), LogIndex(6)))
    );
    for index in [1, 2, 3, 5, 6] {
        let key = format!("key{index}");
        assert_eq!(
            restored.state_machine().get(&key).cloned(),
            get(&started.applier, &key).await
        );
    }
    assert_eq!(restored.state_machine().len(), 5);
}

#[actix::test]
async fn the_byte_threshold_takes_a_snapshot_too() {
    let started = start(SnapshotPolicy {
        threshold_bytes: 1_000,
        ..NEVER
    });
    apply(&started.applier, vec![put_entry(1, 1, "small", b"x")]);
    get(&started.applier, "small").await;
    assert_eq!(started.store.begun(), 0);
    apply(
        &started.applier,
        vec![put_entry(1, 2, "large", &[7; 1_000])],
    );
    let taken = wait_for_taken(&started.received, 1).await;
    assert_eq!(taken[0].last_log_id.index, LogIndex(2));
}

#[actix::test]
async fn apply_goes_on_while_a_slow_store_writes_and_one_snapshot_at_most_is_in_progress() {
    let store = MemSnapshotStore::default();
    store.close_gate();
    let started = start_with(
        store,
        SnapshotPolicy {
            threshold_entries: 2,
            ..NEVER
        },
        |applier| applier,
    );
    apply(&started.applier, puts(1, 1..=2));
    poll_until("the writer holds at the gate", PROMPTLY, || {
        started.store.held() == 1
    })
    .await;
    assert!(started.metrics.read().write_in_progress);
    // Every one of these batches reaches the threshold again; none starts a second write.
    for first in (3..=9).step_by(3) {
        apply(&started.applier, puts(1, first..=first + 2));
    }
    wait_for_applied(&started.received, 11).await;
    assert_eq!(
        get(&started.applier, "key11").await,
        Some(b"value11".to_vec())
    );
    assert_eq!(started.store.begun(), 1, "one write at a time");
    assert!(started.received.lock().expect("lock").taken.is_empty());

    started.store.open_gate();
    let taken = wait_for_taken(&started.received, 1).await;
    assert_eq!(taken[0].last_log_id.index, LogIndex(2));
    // Told that the write ended, the applier starts the next one at once: 9 entries were
    // applied since the first began.
    let taken = wait_for_taken(&started.received, 2).await;
    assert_eq!(taken[1].last_log_id.index, LogIndex(11));
    assert_eq!(started.store.begun(), 2);
}

#[actix::test]
async fn a_failed_write_is_counted_and_retried_at_the_next_threshold() {
    let store = MemSnapshotStore::default();
    store.fail_next_begins(1);
    let started = start_with(
        store,
        SnapshotPolicy {
            threshold_entries: 3,
            ..NEVER
        },
        |applier| applier,
    );
    apply(&started.applier, puts(1, 1..=3));
    poll_until("the failure is counted", PROMPTLY, || {
        started.metrics.read().failures == 1
    })
    .await;
    // Not retried after every batch: the next attempt is one threshold later.
    apply(&started.applier, puts(1, 4..=5));
    get(&started.applier, "key5").await;
    assert_eq!(started.store.begun(), 1);
    apply(&started.applier, puts(1, 6..=6));
    let taken = wait_for_taken(&started.received, 1).await;
    assert_eq!(taken[0].last_log_id.index, LogIndex(6));
    let metrics = started.metrics.read();
    assert_eq!((metrics.taken, metrics.failures), (1, 1));
    assert!(!metrics.write_in_progress);
}

/// A snapshot at index 6 of `key1..key6`, written by an applier that took it.
async fn snapshot_of_six_puts() -> (MemSnapshotStore, SnapshotMeta) {
    let started = start(NEVER);
    apply(&started.applier, puts(2, 1..=6));
    let snapshot = take_snapshot(&started.applier)
        .await
        .expect("answered")
        .expect("taken");
    (started.store, snapshot)
}

#[actix::test]
async fn restore_snapshot_replaces_the_state_and_the_next_batch_starts_after_it() {
    let (store, snapshot) = snapshot_of_six_puts().await;
    let target = start_with(store, NEVER, |applier| applier);
    apply(
        &target.applier,
        vec![
            put_entry(1, 1, "stale", b"only here"),
            put_entry(1, 2, "key1", b"old"),
        ],
    );
    target.applier.do_send(RestoreSnapshot {
        snapshot: snapshot.clone(),
    });
    wait_for_applied(&target.received, 6).await;
    assert_eq!(get(&target.applier, "stale").await, None, "never merged");
    assert_eq!(get(&target.applier, "key1").await, Some(b"value1".to_vec()));
    assert_eq!(get(&target.applier, "key6").await, Some(b"value6".to_vec()));
    apply(&target.applier, vec![put_entry(3, 7, "after", b"restore")]);
    wait_for_applied(&target.received, 7).await;
    assert_eq!(
        get(&target.applier, "after").await,
        Some(b"restore".to_vec())
    );
    let metrics = target.metrics.read();
    assert_eq!((metrics.restored, metrics.last_index), (1, LogIndex(6)));
    // Nothing applied since the restored snapshot but entry 7: a TakeSnapshot takes a new one.
    let newer = take_snapshot(&target.applier)
        .await
        .expect("answered")
        .expect("taken");
    assert_eq!(newer.last_log_id, LogId::new(Term(3), LogIndex(7)));
}

#[actix::test]
async fn a_snapshot_at_or_below_last_applied_is_ignored_and_answered_with_applied() {
    let (store, snapshot) = snapshot_of_six_puts().await;
    let target = start_with(store, NEVER, |applier| applier);
    apply(&target.applier, puts(5, 1..=8));
    wait_for_applied(&target.received, 8).await;
    for _ in 0..2 {
        target.applier.do_send(RestoreSnapshot {
            snapshot: snapshot.clone(),
        });
    }
    wait_until_recorded(
        "two more Applied at 8",
        PROMPTLY,
        &target.received,
        |seen| seen.applied == [LogIndex(8); 3],
    )
    .await;
    assert_eq!(get(&target.applier, "key8").await, Some(b"value8".to_vec()));
    assert_eq!(target.metrics.read().restored, 0);
    // Still at 8: the next batch starts at 9.
    apply(&target.applier, puts(5, 9..=9));
    wait_for_applied(&target.received, 9).await;
}

/// Runs an applier that is sent `RestoreSnapshot { snapshot }` from `store`, and returns the
/// exit code its System stops with.
fn exit_code_of_restoring(store: MemSnapshotStore, snapshot: SnapshotMeta) -> i32 {
    let system = System::new();
    system.block_on(async move {
        let started = start_with(store, NEVER, |applier| applier);
        started.applier.do_send(RestoreSnapshot { snapshot });
    });
    system.run_with_code().expect("the system runs")
}

#[test]
fn a_corrupt_snapshot_payload_stops_the_system_with_exit_code_one() {
    let store = MemSnapshotStore::default();
    let garbage = store.insert_raw(
        LogId::new(Term(1), LogIndex(5)),
        b"this is not a snapshot".to_vec(),
    );
    assert_eq!(exit_code_of_restoring(store, garbage), 1);
}

#[test]
fn a_truncated_state_in_a_valid_envelope_stops_the_system_with_exit_code_one() {
    let (store, snapshot) = System::new().block_on(snapshot_of_six_puts());
    let mut payload = store.payload(&snapshot);
    payload.truncate(payload.len() - 3);
    let truncated = store.insert_raw(snapshot.last_log_id, payload);
    assert_eq!(exit_code_of_restoring(store, truncated), 1);
}

#[test]
fn an_envelope_of_another_index_stops_the_system_with_exit_code_one() {
    let (store, snapshot) = System::new().block_on(snapshot_of_six_puts());
    let elsewhere = store.insert_raw(LogId::new(Term(2), LogIndex(9)), store.payload(&snapshot));
    assert_eq!(exit_code_of_restoring(store, elsewhere), 1);
}

#[test]
fn a_snapshot_missing_from_the_store_stops_the_system_with_exit_code_one() {
    let missing = SnapshotMeta {
        last_log_id: LogId::new(Term(1), LogIndex(5)),
        membership: Membership::with_voters([NodeId(1)]),
        size_bytes: 10,
        file_checksum: 0,
    };
    assert_eq!(
        exit_code_of_restoring(MemSnapshotStore::default(), missing),
        1
    );
}

#[test]
fn restoring_at_startup_refuses_a_corrupt_snapshot_with_an_error() {
    System::new().block_on(async {
        let store = MemSnapshotStore::default();
        let garbage = store.insert_raw(LogId::new(Term(1), LogIndex(5)), b"RAPS".to_vec());
        let (_raft, ports, _received) = raft_stand_in();
        let error = ApplierActor::restored_from(KvStore::new(), ports, &store, &garbage)
            .err()
            .expect("refused");
        assert!(error.to_string().contains("header"), "{error}");
    });
}

/// A random committed log: terms that only grow, leader no-ops at each new term, puts and
/// deletes over a few keys.
fn random_log(random: &mut ChaCha8Rng, length: u64) -> Vec<Entry> {
    let mut term = 1;
    (1..=length)
        .map(|index| {
            if random.gen_ratio(1, 8) {
                term += 1;
                return Entry::new(Term(term), LogIndex(index), EntryPayload::Blank);
            }
            let key = format!("k{}", random.gen_range(0..6));
            let value: Vec<u8> = (0..random.gen_range(0..20)).map(|_| random.gen()).collect();
            let command = if random.gen_ratio(1, 5) {
                applier_actor::KvCommand::Delete { key }
            } else {
                applier_actor::KvCommand::Put { key, value }
            };
            Entry::new(
                Term(term),
                LogIndex(index),
                EntryPayload::command(command.encode()),
            )
        })
        .collect()
}

/// Applies `entries` in random batches.
fn apply_in_batches(
    applier: &Addr<ApplierActor<KvStore>>,
    random: &mut ChaCha8Rng,
    entries: &[Entry],
) {
    let mut rest = entries;
    while !rest.is_empty() {
        let length = random.gen_range(1..=rest.len().min(7));
        apply(applier, rest[..length].to_vec());
        rest = &rest[length..];
    }
}

const CHECKPOINTS: CheckpointPolicy = CheckpointPolicy {
    interval_entries: 3,
    kept: 1_000,
};

/// The checkpoints of `checkpoints` at the indexes `keep` accepts.
fn only(checkpoints: &CheckpointsSnapshot, keep: impl Fn(LogIndex) -> bool) -> Vec<Checkpoint> {
    checkpoints
        .checkpoints
        .iter()
        .copied()
        .filter(|checkpoint| keep(checkpoint.index))
        .collect()
}

/// A restored applier, at startup (`restored_from`) or while running (`RestoreSnapshot`),
/// goes on with the running hash of the snapshot: its checkpoints after it, and its final
/// snapshot's bytes, are those of an applier that applied the whole log.
#[actix::test]
async fn checkpoints_after_a_restore_equal_those_of_an_applier_that_applied_the_whole_log() {
    for seed in seed::seeds(100, 8) {
        let _report = SeedReport::new(this_test!(), seed);
        let mut random = ChaCha8Rng::seed_from_u64(seed);
        let length = random.gen_range(10..60);
        let log = random_log(&mut random, length);
        let at = random.gen_range(2..length - 1) as usize;
        let at_index = LogIndex(at as u64);

        // The reference applies everything, with a snapshot at `at` on the way.
        let whole = start_with(MemSnapshotStore::default(), NEVER, |applier| {
            applier.with_checkpoint_policy(CHECKPOINTS)
        });
        apply_in_batches(&whole.applier, &mut random, &log[..at]);
        let snapshot = take_snapshot(&whole.applier)
            .await
            .expect("answered")
            .expect("taken");
        assert_eq!(snapshot.last_log_id, log[at - 1].log_id);
        apply_in_batches(&whole.applier, &mut random, &log[at..]);
        wait_for_applied(&whole.received, length).await;
        let whole_final = take_snapshot(&whole.applier)
            .await
            .expect("answered")
            .expect("taken");
        let whole_checkpoints = whole.checkpoints.snapshot();
        assert!(whole_checkpoints.checkpoints.len() >= 3);

        // Restored before it starts, then the rest of the log.
        let (raft, ports, at_startup_received) = raft_stand_in();
        let at_startup_store = MemSnapshotStore::default();
        let at_startup =
            ApplierActor::restored_from(KvStore::new(), ports, &whole.store, &snapshot)
                .expect("restores")
                .with_checkpoint_policy(CHECKPOINTS)
                .with_snapshots(
                    Arc::new(at_startup_store.clone()),
                    NEVER,
                    Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
                    raft.recipient(),
                );
        assert_eq!(at_startup.last_applied(), at_index);
        let at_startup_checkpoints = at_startup.checkpoints();
        let at_startup = at_startup.start();
        apply_in_batches(&at_startup, &mut random, &log[at..]);
        wait_for_applied(&at_startup_received, length).await;
        let at_startup_final = take_snapshot(&at_startup)
            .await
            .expect("answered")
            .expect("taken");
        let restored_checkpoints = at_startup_checkpoints.snapshot();
        assert_eq!(restored_checkpoints.latest, whole_checkpoints.latest);
        assert_eq!(
            restored_checkpoints.checkpoints,
            only(&whole_checkpoints, |index| index >= at_index)
        );
        assert_eq!(
            at_startup_store.payload(&at_startup_final),
            whole.store.payload(&whole_final),
            "the same state, LogId and running hash make the same bytes"
        );

        // Running with a prefix of the log applied when the snapshot arrives.
        let prefix = random.gen_range(0..at);
        let running = start_with(whole.store.clone(), NEVER, |applier| {
            applier.with_checkpoint_policy(CHECKPOINTS)
        });
        apply_in_batches(&running.applier, &mut random, &log[..prefix]);
        running.applier.do_send(RestoreSnapshot {
            snapshot: snapshot.clone(),
        });
        apply_in_batches(&running.applier, &mut random, &log[at..]);
        wait_for_applied(&running.received, length).await;
        let running_checkpoints = running.checkpoints.snapshot();
        assert_eq!(running_checkpoints.latest, whole_checkpoints.latest);
        assert_eq!(
            running_checkpoints.checkpoints,
            only(&whole_checkpoints, |index| index.0 <= prefix as u64
                || index >= at_index)
        );
        let running_final = take_snapshot(&running.applier)
            .await
            .expect("answered")
            .expect("taken");
        assert_eq!(
            running.store.payload(&running_final),
            whole.store.payload(&whole_final)
        );
    }
}

#[actix::test]
async fn take_snapshot_answers_once_durable_and_with_the_newest_when_nothing_was_applied_since() {
    let started = start(NEVER);
    let refused = take_snapshot(&started.applier).await.expect("answered");
    assert!(refused.is_err(), "nothing applied: {refused:?}");
    apply(&started.applier, puts(1, 1..=3));
    let first = take_snapshot(&started.applier)
        .await
        .expect("answered")
        .expect("taken");
    assert_eq!(first.last_log_id, LogId::new(Term(1), LogIndex(3)));
    // Durable when answered: in the store already.
    assert_eq!(started.store.newest().as_ref(), Some(&first));
    let again = take_snapshot(&started.applier)
        .await
        .expect("answered")
        .expect("the same");
    assert_eq!(again, first);
    assert_eq!(
        started.store.begun(),
        1,
        "nothing applied since: no new write"
    );
    apply(&started.applier, puts(1, 4..=4));
    let second = take_snapshot(&started.applier)
        .await
        .expect("answered")
        .expect("taken");
    assert_eq!(second.last_log_id.index, LogIndex(4));
    let taken = wait_for_taken(&started.received, 2).await;
    assert_eq!(taken, vec![first, second]);
}

#[actix::test]
async fn take_snapshot_waits_for_the_one_in_progress() {
    let store = MemSnapshotStore::default();
    store.close_gate();
    let started = start_with(
        store,
        SnapshotPolicy {
            threshold_entries: 2,
            ..NEVER
        },
        |applier| applier,
    );
    apply(&started.applier, puts(1, 1..=2));
    poll_until("the writer holds at the gate", PROMPTLY, || {
        started.store.held() == 1
    })
    .await;
    apply(&started.applier, puts(1, 3..=3));
    let mut first = take_snapshot(&started.applier);
    let second = take_snapshot(&started.applier);
    // Both requests are handled by the time a query behind them is answered.
    get(&started.applier, "key3").await;
    assert!(
        first.try_recv().is_err(),
        "not answered before it is durable"
    );
    started.store.open_gate();
    let first = first.await.expect("answered").expect("taken");
    let second = second.await.expect("answered").expect("taken");
    assert_eq!(first.last_log_id.index, LogIndex(2));
    assert_eq!(second, first);
    assert_eq!(started.store.begun(), 1);
}

#[actix::test]
async fn take_snapshot_is_refused_without_a_snapshot_store() {
    let (_raft, ports, _received) = raft_stand_in();
    let applier = ApplierActor::new(KvStore::new(), ports).start();
    apply(&applier, puts(1, 1..=1));
    let answer = take_snapshot(&applier).await.expect("answered");
    assert!(answer.expect_err("refused").contains("not configured"));
}
