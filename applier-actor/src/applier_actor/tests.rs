//! Tests of `applier_actor`.

use super::*;
use crate::kv::{KvCommand, KvOutput, KvQuery};
use crate::kv_store::KvStore;
use actix::{Addr, Message};
use raft_types::Term;
use std::time::Duration;
use tokio::sync::oneshot;

/// Stands in for the consensus actor: records every `Applied`.
#[derive(Default)]
struct AppliedRecorder {
    applied: Vec<LogIndex>,
}

impl Actor for AppliedRecorder {
    type Context = Context<Self>;
}

impl Handler<Applied> for AppliedRecorder {
    type Result = ();
    fn handle(&mut self, message: Applied, _ctx: &mut Context<Self>) {
        self.applied.push(message.index);
    }
}

#[derive(Message)]
#[rtype(result = "Vec<LogIndex>")]
struct TakeApplied;

impl Handler<TakeApplied> for AppliedRecorder {
    type Result = Vec<LogIndex>;
    fn handle(&mut self, _message: TakeApplied, _ctx: &mut Context<Self>) -> Vec<LogIndex> {
        std::mem::take(&mut self.applied)
    }
}

fn start() -> (Addr<ApplierActor<KvStore>>, Addr<AppliedRecorder>) {
    let recorder = AppliedRecorder::default().start();
    let ports = ApplierPorts {
        applied: recorder.clone().recipient(),
    };
    (ApplierActor::new(KvStore::new(), ports).start(), recorder)
}

fn put_entry(term: u64, index: u64, key: &str, value: &[u8]) -> Entry {
    let command = KvCommand::Put {
        key: key.to_string(),
        value: value.to_vec(),
    };
    Entry::new(
        Term(term),
        LogIndex(index),
        EntryPayload::command(command.encode()),
    )
}

async fn get(applier: &Addr<ApplierActor<KvStore>>, key: &str) -> KvOutput {
    let (responder, receiver) = oneshot::channel();
    let query = KvQuery::Get {
        key: key.to_string(),
    }
    .encode();
    applier.do_send(Query { query, responder });
    let output = receiver.await.expect("answered").expect("queries succeed");
    KvOutput::decode(&output).expect("decodes")
}

#[actix::test]
async fn applies_in_order_answers_responders_and_reports_applied() {
    let (applier, recorder) = start();
    let (first_responder, first_receiver) = oneshot::channel();
    let (overwritten_responder, overwritten_receiver) = oneshot::channel();
    let entries = vec![
        Entry::new(Term(1), LogIndex(1), EntryPayload::Blank),
        put_entry(1, 2, "a", b"1"),
        put_entry(2, 3, "a", b"2"),
    ];
    let responders = vec![
        (LogId::new(Term(1), LogIndex(2)), first_responder),
        // Proposed at index 3 in term 1, but index 3 holds a term-2 entry.
        (LogId::new(Term(1), LogIndex(3)), overwritten_responder),
    ];
    applier.do_send(ApplyEntries {
        entries,
        responders,
    });
    let first = first_receiver.await.expect("answered").expect("applied");
    assert_eq!(
        KvOutput::decode(&first).expect("decodes"),
        KvOutput::Put { index: LogIndex(2) }
    );
    assert!(matches!(
        overwritten_receiver.await.expect("answered"),
        Err(ClientError::Unavailable { .. })
    ));
    applier.do_send(ApplyEntries {
        entries: vec![put_entry(2, 4, "b", b"3")],
        responders: Vec::new(),
    });
    assert_eq!(
        get(&applier, "a").await,
        KvOutput::Value(Some(b"2".to_vec()))
    );
    assert_eq!(
        get(&applier, "b").await,
        KvOutput::Value(Some(b"3".to_vec()))
    );
    let applied = recorder.send(TakeApplied).await.expect("recorder alive");
    assert_eq!(applied, vec![LogIndex(3), LogIndex(4)]);
}

#[actix::test]
async fn a_malformed_command_is_answered_with_an_error_output() {
    let (applier, recorder) = start();
    let (responder, receiver) = oneshot::channel();
    let log_id = LogId::new(Term(1), LogIndex(1));
    applier.do_send(ApplyEntries {
        entries: vec![Entry {
            log_id,
            payload: EntryPayload::command(b"not a command".to_vec()),
        }],
        responders: vec![(log_id, responder)],
    });
    let output = receiver.await.expect("answered").expect("applied");
    assert!(matches!(
        KvOutput::decode(&output).expect("decodes"),
        KvOutput::Invalid { .. }
    ));
    // Still serving after the bad entry.
    assert_eq!(get(&applier, "a").await, KvOutput::Value(None));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let applied = recorder.send(TakeApplied).await.expect("recorder alive");
        if applied == vec![LogIndex(1)] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Applied never arrived"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An applier over an empty store whose `Applied` reports nobody reads.
fn unstarted_applier() -> ApplierActor<KvStore> {
    let ports = ApplierPorts {
        applied: AppliedRecorder::default().start().recipient(),
    };
    ApplierActor::new(KvStore::new(), ports)
}

#[actix::test]
async fn checkpoints_the_running_hash_of_every_applied_entry_blank_ones_too() {
    let policy = CheckpointPolicy {
        interval_entries: 2,
        kept: 2,
    };
    let applier = unstarted_applier().with_checkpoint_policy(policy);
    let checkpoints = applier.checkpoints();
    let applier = applier.start();
    let entries = vec![
        Entry::new(Term(1), LogIndex(1), EntryPayload::Blank),
        put_entry(1, 2, "a", b"1"),
        put_entry(1, 3, "b", b"2"),
        Entry::new(Term(2), LogIndex(4), EntryPayload::Blank),
        put_entry(2, 5, "c", b"3"),
    ];
    let mut expected = RunningHash::new();
    let mut expected_checkpoints = Vec::new();
    for entry in &entries {
        expected.absorb(entry);
        if entry.index().0 % 2 == 0 {
            expected_checkpoints.push(Checkpoint {
                index: entry.index(),
                hash: expected.hash(),
            });
        }
    }
    applier.do_send(ApplyEntries {
        entries: entries[..3].to_vec(),
        responders: Vec::new(),
    });
    applier.do_send(ApplyEntries {
        entries: entries[3..].to_vec(),
        responders: Vec::new(),
    });
    // A query is answered after both batches (one mailbox, in order).
    get(&applier, "a").await;
    let snapshot = checkpoints.snapshot();
    assert_eq!(snapshot.checkpoints, expected_checkpoints);
    assert_eq!(
        snapshot.latest,
        Some(Checkpoint {
            index: LogIndex(5),
            hash: expected.hash()
        })
    );
}

#[actix::test]
async fn a_resumed_applier_takes_no_checkpoints_of_an_unknown_hash() {
    let applier = unstarted_applier()
        .with_checkpoint_policy(CheckpointPolicy {
            interval_entries: 1,
            kept: 8,
        })
        .resume_after(LogIndex(10));
    let checkpoints = applier.checkpoints();
    let applier = applier.start();
    applier.do_send(ApplyEntries {
        entries: vec![put_entry(3, 11, "a", b"1")],
        responders: Vec::new(),
    });
    assert_eq!(
        get(&applier, "a").await,
        KvOutput::Value(Some(b"1".to_vec()))
    );
    assert_eq!(
        checkpoints.snapshot(),
        crate::applied_checkpoints::CheckpointsSnapshot {
            interval_entries: 1,
            ..Default::default()
        }
    );
}

/// A consensus actor that stops as soon as it starts.
struct VanishedRaft;

impl Actor for VanishedRaft {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Applied> for VanishedRaft {
    type Result = ();
    fn handle(&mut self, _message: Applied, _ctx: &mut Context<Self>) {}
}

#[test]
fn losing_the_consensus_actor_stops_the_system_with_exit_code_one() {
    let system = System::new();
    system.block_on(async {
        let raft = VanishedRaft.start();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while raft.connected() {
            assert!(tokio::time::Instant::now() < deadline, "never stopped");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ports = ApplierPorts {
            applied: raft.recipient(),
        };
        let applier = ApplierActor::new(KvStore::new(), ports).start();
        applier.do_send(ApplyEntries {
            entries: vec![put_entry(1, 1, "a", b"1")],
            responders: Vec::new(),
        });
    });
    assert_eq!(system.run_with_code().expect("the system runs"), 1);
}
