//! `ApplierActor`: applies committed entries to a [`StateMachine`] in index order, exactly
//! once, answers the clients waiting on them, and serves read queries.
//!
//! # Correctness
//!
//! - Batches must start at `last_applied + 1` and be contiguous; anything else is a bug in the
//!   consensus actor and stops the node (assert, kept in release) rather than apply out of order.
//! - `EntryPayload::Blank` (a leader's no-op) changes no state but counts as applied.
//! - `Applied { index }` is sent after the whole batch is applied, never before.
//! - Every responder handed over is answered exactly once: with the output of the entry whose
//!   `LogId` it names, or with `ClientError::Unavailable` when that entry is not in the batch
//!   (its index holds another term's entry, so the proposal was overwritten and never applies).
//! - Losing the consensus actor is fatal: the applied index could no longer be reported, so
//!   reads would stall forever; the actor logs and stops the system with exit code 1.
//! - Every applied entry, blank ones included, goes into the [`RunningHash`] in index order;
//!   the checkpoints due in a batch are published with the batch's last hash after the whole
//!   batch is applied, so a reader never sees a hash for an index not yet applied.

use crate::applied_checkpoints::{AppliedCheckpoints, Checkpoint, CheckpointPolicy};
use crate::running_hash::RunningHash;
use crate::state_machine::StateMachine;
use actix::{Actor, ActorContext, Context, Handler, System};
use raft_proto::applier::{Applied, ApplyEntries, Query};
use raft_proto::client::{ClientError, ClientResponder};
use raft_proto::ports::ApplierPorts;
use raft_types::{Entry, EntryPayload, LogId, LogIndex};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct ApplierActor<S: StateMachine> {
    state_machine: S,
    ports: ApplierPorts,
    /// The index of the last entry applied; the next batch must start right after it.
    last_applied: LogIndex,
    /// The hash of everything applied. `None` after [`ApplierActor::resume_after`]: the hash
    /// of the restored state is not known, and a hash started from there would differ from
    /// every peer's and raise a false alarm; no checkpoints are taken then.
    running_hash: Option<RunningHash>,
    /// Shared with the node's consistency check.
    checkpoints: Arc<AppliedCheckpoints>,
}

impl<S: StateMachine> ApplierActor<S> {
    /// An applier whose state machine holds nothing yet: the first batch starts at index 1.
    pub fn new(state_machine: S, ports: ApplierPorts) -> ApplierActor<S> {
        ApplierActor {
            state_machine,
            ports,
            last_applied: LogIndex::ZERO,
            running_hash: Some(RunningHash::new()),
            checkpoints: Arc::new(AppliedCheckpoints::new(CheckpointPolicy::default())),
        }
    }

    /// Takes checkpoints by `policy` instead of [`CheckpointPolicy::default`]. Call before
    /// handing out [`ApplierActor::checkpoints`].
    pub fn with_checkpoint_policy(mut self, policy: CheckpointPolicy) -> ApplierActor<S> {
        self.checkpoints = Arc::new(AppliedCheckpoints::new(policy));
        self
    }

    /// The checkpoints of the running hash, readable from any thread.
    pub fn checkpoints(&self) -> Arc<AppliedCheckpoints> {
        Arc::clone(&self.checkpoints)
    }

    /// Declares that `state_machine` already reflects every entry through `last_applied` (it
    /// was restored from a snapshot); the first batch must start right after it. The running
    /// hash of that state is not known, so this applier takes no checkpoints.
    pub fn resume_after(mut self, last_applied: LogIndex) -> ApplierActor<S> {
        self.last_applied = last_applied;
        self.running_hash = None;
        self
    }

    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }

    pub fn state_machine(&self) -> &S {
        &self.state_machine
    }

    /// Applies one entry; a checkpoint due at its index is added to `due`.
    fn apply_entry(
        &mut self,
        entry: &Entry,
        responders: &mut BTreeMap<LogId, ClientResponder>,
        due: &mut Vec<Checkpoint>,
    ) {
        let expected = self.last_applied.next();
        assert_eq!(
            entry.index(),
            expected,
            "entries are applied in index order exactly once: got {} after {}",
            entry.log_id,
            self.last_applied
        );
        let output = match &entry.payload {
            EntryPayload::Blank => None,
            EntryPayload::Command(command) => Some(self.state_machine.apply(entry.log_id, command)),
        };
        self.last_applied = entry.index();
        if let Some(running_hash) = &mut self.running_hash {
            running_hash.absorb(entry);
            if self.checkpoints.policy().is_due(entry.index()) {
                due.push(Checkpoint {
                    index: entry.index(),
                    hash: running_hash.hash(),
                });
            }
        }
        let Some(responder) = responders.remove(&entry.log_id) else {
            return;
        };
        let answer = match output {
            Some(output) => Ok(output),
            None => Err(ClientError::Unavailable {
                reason: format!(
                    "entry {} is a leader no-op, not a client command",
                    entry.log_id
                ),
            }),
        };
        // The client may have given up (timeout, disconnect); the entry is applied regardless.
        let _ = responder.send(answer);
    }

    fn report_applied(&self, ctx: &mut Context<Self>) {
        if !self.ports.applied.connected() {
            tracing::error!(
                last_applied = %self.last_applied,
                "the consensus actor is gone; the applier cannot report progress; stopping the node"
            );
            System::current().stop_with_code(1);
            ctx.stop();
            return;
        }
        self.ports.applied.do_send(Applied {
            index: self.last_applied,
        });
    }
}

impl<S: StateMachine> Actor for ApplierActor<S> {
    type Context = Context<Self>;
}

impl<S: StateMachine> Handler<ApplyEntries> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: ApplyEntries, ctx: &mut Context<Self>) {
        let mut responders: BTreeMap<LogId, ClientResponder> =
            message.responders.into_iter().collect();
        if message.entries.is_empty() {
            assert!(responders.is_empty(), "responders come with their entries");
            return;
        }
        let mut due = Vec::new();
        for entry in &message.entries {
            self.apply_entry(entry, &mut responders, &mut due);
        }
        if let Some(running_hash) = &self.running_hash {
            let latest = Checkpoint {
                index: running_hash.index(),
                hash: running_hash.hash(),
            };
            self.checkpoints.record(&due, latest);
        }
        for (log_id, responder) in responders {
            // Its index now holds another entry: the proposal was overwritten by a later
            // leader and can never be applied.
            let _ = responder.send(Err(ClientError::Unavailable {
                reason: format!("entry {log_id} was overwritten before it committed"),
            }));
        }
        self.report_applied(ctx);
    }
}

impl<S: StateMachine> Handler<Query> for ApplierActor<S> {
    type Result = ();

    fn handle(&mut self, message: Query, _ctx: &mut Context<Self>) {
        let output = self.state_machine.query(&message.query);
        // A client that stopped waiting is not an error.
        let _ = message.responder.send(Ok(output));
    }
}

#[cfg(test)]
mod tests {
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
}
