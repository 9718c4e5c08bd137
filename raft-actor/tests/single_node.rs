//! One consensus actor with in-memory storage and the real applier: election, writes, reads,
//! batching, shutdown and fatal storage failure.

mod common;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, System};
use applier_actor::KvOutput;
use common::*;
use raft_actor::GetDrainState;
use raft_core::{Raft, RecoveredState};
use raft_proto::client::{ClientError, Role, Shutdown};
use raft_proto::network::PeerEvent;
use raft_proto::storage::StorageRequest;
use raft_types::{LogIndex, NodeId, Term};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[actix::test]
async fn single_node_elects_itself_applies_a_put_and_reads_it_back() {
    let node = start_single_node();
    assert_eq!(wait_for_leader(&[&node]).await, NodeId(1));

    let output = put(&node.raft, "a", b"1")
        .await
        .expect("the leader accepts writes");
    // Index 1 is the leader's no-op (§8); the put is the first command after it.
    assert_eq!(output, KvOutput::Put { index: LogIndex(2) });
    let read = linearizable_get(&node.raft, "a")
        .await
        .expect("the leader serves reads");
    assert_eq!(read, KvOutput::Value(Some(b"1".to_vec())));
    let missing = linearizable_get(&node.raft, "missing")
        .await
        .expect("served");
    assert_eq!(missing, KvOutput::Value(None));

    let status = status(&node.raft).await;
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.leader_id, Some(NodeId(1)));
    assert_eq!(status.commit_index, LogIndex(2));
    assert_eq!(status.last_log_index, LogIndex(2));
    assert_eq!(status.members, vec![NodeId(1)]);

    let metrics = node.metrics.snapshot();
    assert_eq!(metrics.role, Role::Leader);
    assert_eq!(metrics.current_term, Term(1));
    assert_eq!(metrics.proposals_total, 1);
    assert_eq!(metrics.reads_total, 2);
    assert_eq!(metrics.elections_started_total, 1);
    assert_eq!(metrics.leader_changes_total, 1);
    assert!(metrics.append_latency.count >= 2, "{metrics:?}");

    // Peer events only feed the metrics.
    node.raft.do_send(PeerEvent::Connected { peer: NodeId(2) });
    node.raft.do_send(PeerEvent::Connected { peer: NodeId(3) });
    node.raft
        .do_send(PeerEvent::Disconnected { peer: NodeId(2) });
    // The mailbox is FIFO: once this answers, the three events were handled.
    common::status(&node.raft).await;
    assert_eq!(node.metrics.snapshot().peers_connected, 1);
}

#[actix::test]
async fn proposals_arriving_together_share_one_append() {
    let node = start_single_node();
    wait_for_leader(&[&node]).await;
    put(&node.raft, "warm-up", b"0").await.expect("accepted");
    let appends_before = node.storage_probe.appends.load(Ordering::SeqCst);

    // All 100 are queued before the actor runs again: one flush takes them all.
    let receivers: Vec<_> = (0..100)
        .map(|number| propose(&node.raft, put_command(&format!("key-{number}"), b"v")))
        .collect();
    let mut indexes = Vec::new();
    for receiver in receivers {
        let output = receiver.await.expect("answered").expect("applied");
        match KvOutput::decode(&output).expect("a KvOutput") {
            KvOutput::Put { index } => indexes.push(index),
            other => panic!("unexpected output {other:?}"),
        }
    }
    let appends = node.storage_probe.appends.load(Ordering::SeqCst) - appends_before;
    assert!(
        appends <= 2,
        "100 proposals sent at once took {appends} appends, expected one batch"
    );
    // Each client got the output of its own entry, in proposal order.
    let expected: Vec<LogIndex> = (3..103).map(LogIndex).collect();
    assert_eq!(indexes, expected);
}

#[actix::test]
async fn shutdown_refuses_new_requests_and_reports_drained() {
    let node = start_single_node();
    wait_for_leader(&[&node]).await;
    put(&node.raft, "a", b"1").await.expect("accepted");
    node.raft.do_send(Shutdown);
    let refused = put(&node.raft, "b", b"2").await;
    assert!(
        matches!(refused, Err(ClientError::Unavailable { .. })),
        "{refused:?}"
    );
    let read = linearizable_get(&node.raft, "a").await;
    assert!(
        matches!(read, Err(ClientError::Unavailable { .. })),
        "{read:?}"
    );
    wait_until("drained", || {
        let raft = node.raft.clone();
        async move { raft.send(GetDrainState).await.expect("alive").is_drained() }
    })
    .await;
}

#[actix::test]
async fn a_restarted_node_recovers_every_acknowledged_write() {
    let node = start_single_node();
    wait_for_leader(&[&node]).await;
    for number in 0..20 {
        put(
            &node.raft,
            &format!("key-{number}"),
            format!("value-{number}").as_bytes(),
        )
        .await
        .expect("accepted");
    }
    node.raft.do_send(Shutdown);
    wait_until("drained", || {
        let raft = node.raft.clone();
        async move { raft.send(GetDrainState).await.expect("alive").is_drained() }
    })
    .await;
    let recovered = node
        .storage
        .send(GetRecoveredState)
        .await
        .expect("storage alive");
    assert_eq!(recovered.hard_state.current_term, Term(1));
    assert_eq!(recovered.entries.len(), 21, "the no-op and 20 puts");

    let restarted = start_recovered_node(
        NodeId(1),
        &[NodeId(1)],
        NullNetwork.start().recipient(),
        recovered,
    );
    wait_for_leader(&[&restarted]).await;
    assert_eq!(status(&restarted.raft).await.term, Term(2));
    for number in 0..20 {
        let read = linearizable_get(&restarted.raft, &format!("key-{number}"))
            .await
            .expect("served");
        assert_eq!(
            read,
            KvOutput::Value(Some(format!("value-{number}").into_bytes()))
        );
    }
}

#[test]
fn a_storage_failure_stops_the_system_with_exit_code_one() {
    let system = System::new();
    let probe = system.block_on(async {
        let node = start_single_node();
        wait_for_leader(&[&node]).await;
        node.storage_probe
            .fail_next_request
            .store(true, Ordering::SeqCst);
        // The next append (this proposal's) makes the storage report `Failed`.
        let _receiver = propose(&node.raft, put_command("a", b"1"));
        Arc::clone(&node.storage_probe)
    });
    let exit_code = system.run_with_code().expect("the system runs");
    assert_eq!(exit_code, 1);
    assert!(probe.fail_next_request.load(Ordering::SeqCst));
}

/// A storage actor that stops as soon as it starts: its recipient reports `connected() == false`.
struct VanishedStorage;

impl Actor for VanishedStorage {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<StorageRequest> for VanishedStorage {
    type Result = ();
    fn handle(&mut self, _request: StorageRequest, _ctx: &mut Context<Self>) {}
}

#[test]
fn a_lost_storage_actor_stops_the_system_with_exit_code_one() {
    let system = System::new();
    system.block_on(async {
        let storage = VanishedStorage.start();
        wait_until("the storage actor stopped", || {
            let connected = storage.connected();
            async move { !connected }
        })
        .await;
        let raft = Raft::new(
            core_config(NodeId(1), &[NodeId(1)]),
            RecoveredState::default(),
        )
        .expect("valid");
        // Its first election needs a hard state save, which finds storage gone.
        run_raft_with_applier(
            Context::new(),
            raft,
            storage.recipient(),
            NullNetwork.start().recipient(),
        );
    });
    assert_eq!(system.run_with_code().expect("the system runs"), 1);
}

/// Issue 10: the write path is bounded. With storage not reporting appends durable, a leader
/// accepts proposals up to `max_unpersisted_entries` entries not yet durable and refuses the
/// rest at once as `Unavailable` (HTTP 503, definitely not applied), never queueing them.
#[actix::test]
async fn proposals_beyond_the_unpersisted_bound_are_refused_as_unavailable() {
    let raft_context: Context<raft_actor::RaftActor> = Context::new();
    let probe = Arc::new(StorageProbe::default());
    let storage = MemoryStorage {
        events: raft_context.address().recipient(),
        entries: Vec::new(),
        hard_state: Default::default(),
        probe: Arc::clone(&probe),
    }
    .start();
    let raft = Raft::new(
        core_config(NodeId(1), &[NodeId(1)]),
        RecoveredState::default(),
    )
    .expect("valid");
    let mut actor_config = raft_actor::RaftActorConfig::new(TICK_INTERVAL);
    actor_config.check_invariants = true;
    actor_config.max_unpersisted_entries = 8;
    let (raft, _applier, metrics) = run_raft_with_applier_and_config(
        raft_context,
        raft,
        storage.recipient(),
        NullNetwork.start().recipient(),
        actor_config,
    );
    let node_status = || status(&raft);
    wait_until("a leader", || async {
        node_status().await.role == Role::Leader
    })
    .await;
    probe.withhold_persisted.store(true, Ordering::SeqCst);
    let mut pending = Vec::new();
    let mut refused = Vec::new();
    for number in 0..20 {
        let receiver = propose(&raft, put_command(&format!("key-{number}"), b"v"));
        // One at a time, so each sees the previous ones in the log.
        status(&raft).await;
        pending.push(receiver);
    }
    for receiver in pending {
        match tokio::time::timeout(std::time::Duration::from_millis(200), receiver).await {
            Ok(answer) => match answer.expect("answered") {
                Err(ClientError::Unavailable { reason }) => refused.push(reason),
                other => panic!("unexpected answer {other:?}"),
            },
            // Accepted, waiting for a durability that never comes.
            Err(_elapsed) => {}
        }
    }
    // The no-op was durable before storage stalled; 8 proposals then fill the bound.
    assert_eq!(refused.len(), 12, "{refused:?}");
    assert!(
        refused[0].contains("not yet durable (limit 8)"),
        "{}",
        refused[0]
    );
    assert_eq!(metrics.snapshot().proposals_total, 8);
}
