//! In-process wiring for the consensus actor's single-node tests: an in-memory storage actor, a
//! network that drops everything, the real applier with a `KvStore`, and polling helpers (over
//! `test-support`). Multi-node tests run on the in-process cluster of `integration-tests`
//! (`integration-tests/tests/consensus_actor_cluster.rs`).

#![allow(dead_code)]

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, Recipient};
use applier_actor::{ApplierActor, KvCommand, KvOutput, KvQuery, KvStore};
use raft_actor::{RaftActor, RaftActorConfig};
use raft_core::{Config, Raft, RecoveredState};
use raft_proto::client::{ClientError, GetStatus, Propose, RaftStatus, Read, Role};
use raft_proto::network::SendMessages;
use raft_proto::ports::{ApplierPorts, RaftPorts};
use raft_proto::storage::{StorageEvent, StorageRequest};
use raft_types::{Entry, HardState, LogId, NodeId};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

pub const TICK_INTERVAL: Duration = Duration::from_millis(2);
pub const DEADLINE: Duration = Duration::from_secs(10);
/// How often the waits re-check their condition.
pub const POLL: Duration = Duration::from_millis(2);

/// Counts what the fake storage saw, and lets a test make it fail.
#[derive(Debug, Default)]
pub struct StorageProbe {
    pub appends: AtomicUsize,
    pub hard_state_saves: AtomicUsize,
    pub fail_next_request: AtomicBool,
    /// While set, appends are stored but not reported durable (a disk that does not keep up).
    pub withhold_persisted: AtomicBool,
}

/// Keeps the log in memory and reports every request durable at once (in order, like the real
/// storage actor).
pub struct MemoryStorage {
    pub events: Recipient<StorageEvent>,
    pub entries: Vec<Entry>,
    pub hard_state: HardState,
    pub probe: Arc<StorageProbe>,
}

/// Returns what a restart would recover from this storage.
#[derive(Message)]
#[rtype(result = "RecoveredState")]
pub struct GetRecoveredState;

impl Handler<GetRecoveredState> for MemoryStorage {
    type Result = MessageResult<GetRecoveredState>;
    fn handle(&mut self, _message: GetRecoveredState, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(RecoveredState {
            hard_state: self.hard_state,
            snapshot: None,
            entries: self.entries.clone(),
        })
    }
}

impl Actor for MemoryStorage {
    type Context = Context<Self>;
}

impl Handler<StorageRequest> for MemoryStorage {
    type Result = ();

    fn handle(&mut self, request: StorageRequest, _ctx: &mut Context<Self>) {
        if self.probe.fail_next_request.load(Ordering::SeqCst) {
            self.events.do_send(StorageEvent::Failed {
                error: "injected failure".to_string(),
            });
            return;
        }
        match request {
            StorageRequest::Append { entries, io } => {
                self.probe.appends.fetch_add(1, Ordering::SeqCst);
                let last = entries.last().expect("appends are never empty").log_id;
                assert_eq!(
                    entries[0].index().0,
                    self.entries.len() as u64 + 1,
                    "appends are contiguous"
                );
                self.entries.extend(entries);
                if !self.probe.withhold_persisted.load(Ordering::SeqCst) {
                    self.events.do_send(StorageEvent::Persisted { io, last });
                }
            }
            StorageRequest::Truncate { since, .. } => {
                self.entries.truncate(since.0 as usize - 1);
            }
            StorageRequest::SaveHardState { hard_state, io } => {
                self.probe.hard_state_saves.fetch_add(1, Ordering::SeqCst);
                self.hard_state = hard_state;
                self.events.do_send(StorageEvent::HardStateSaved { io });
            }
            StorageRequest::Purge { .. } => {}
            StorageRequest::ResetLog { .. } | StorageRequest::StoreSnapshotChunk { .. } => {
                panic!("these tests take no snapshots")
            }
        }
    }
}

/// Drops everything: the network of a single-node cluster.
pub struct NullNetwork;

impl Actor for NullNetwork {
    type Context = Context<Self>;
}

impl Handler<SendMessages> for NullNetwork {
    type Result = ();
    fn handle(&mut self, _messages: SendMessages, _ctx: &mut Context<Self>) {}
}

pub struct TestNode {
    pub id: NodeId,
    pub raft: Addr<RaftActor>,
    pub applier: Addr<ApplierActor<KvStore>>,
    pub storage: Addr<MemoryStorage>,
    pub storage_probe: Arc<StorageProbe>,
    pub metrics: Arc<raft_actor::RaftMetrics>,
}

/// Fast timings so tests elect a leader in tens of milliseconds.
pub fn core_config(id: NodeId, members: &[NodeId]) -> Config {
    let mut config = Config::new(id, members.iter().copied());
    config.election_timeout_min_ticks = 10;
    config.election_timeout_max_ticks = 20;
    config.heartbeat_interval_ticks = 3;
    config
}

/// Starts one node's raft, storage and applier actors; `network` is its outgoing path.
pub fn start_node(id: NodeId, members: &[NodeId], network: Recipient<SendMessages>) -> TestNode {
    start_recovered_node(id, members, network, RecoveredState::default())
}

/// Starts a node whose storage holds `recovered` (a restart); its applier starts empty and
/// re-applies the log once the commit index is known again.
pub fn start_recovered_node(
    id: NodeId,
    members: &[NodeId],
    network: Recipient<SendMessages>,
    recovered: RecoveredState,
) -> TestNode {
    let raft_context: Context<RaftActor> = Context::new();
    let raft_address = raft_context.address();
    let storage_probe = Arc::new(StorageProbe::default());
    let storage = MemoryStorage {
        events: raft_address.clone().recipient(),
        entries: recovered.entries.clone(),
        hard_state: recovered.hard_state,
        probe: Arc::clone(&storage_probe),
    }
    .start();
    let raft = Raft::new(core_config(id, members), recovered).expect("test configuration is valid");
    let (raft, applier, metrics) =
        run_raft_with_applier(raft_context, raft, storage.clone().recipient(), network);
    TestNode {
        id,
        raft,
        applier,
        storage,
        storage_probe,
        metrics,
    }
}

/// Starts a real applier and runs the consensus actor for `raft` in `raft_context` (whose
/// address the storage already reports to), checking invariants after every flush.
pub fn run_raft_with_applier(
    raft_context: Context<RaftActor>,
    raft: Raft,
    storage: Recipient<StorageRequest>,
    network: Recipient<SendMessages>,
) -> (
    Addr<RaftActor>,
    Addr<ApplierActor<KvStore>>,
    Arc<raft_actor::RaftMetrics>,
) {
    let mut actor_config = RaftActorConfig::new(TICK_INTERVAL);
    actor_config.check_invariants = true;
    run_raft_with_applier_and_config(raft_context, raft, storage, network, actor_config)
}

/// [`run_raft_with_applier`] with the actor's own settings.
pub fn run_raft_with_applier_and_config(
    raft_context: Context<RaftActor>,
    raft: Raft,
    storage: Recipient<StorageRequest>,
    network: Recipient<SendMessages>,
    actor_config: RaftActorConfig,
) -> (
    Addr<RaftActor>,
    Addr<ApplierActor<KvStore>>,
    Arc<raft_actor::RaftMetrics>,
) {
    let applier = ApplierActor::new(
        KvStore::new(),
        ApplierPorts {
            applied: raft_context.address().recipient(),
        },
    )
    .start();
    let ports = RaftPorts {
        storage,
        network,
        apply: applier.clone().recipient(),
        query: applier.clone().recipient(),
        restore: applier.clone().recipient(),
        snapshot_store: None,
    };
    let actor = RaftActor::new(actor_config, raft, ports);
    let metrics = actor.metrics();
    (raft_context.run(actor), applier, metrics)
}

pub fn start_single_node() -> TestNode {
    let network = NullNetwork.start();
    start_node(NodeId(1), &[NodeId(1)], network.recipient())
}

/// Polls `condition` until it holds or [`DEADLINE`] passes.
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    test_support::wait::wait_for(what, DEADLINE, POLL, || {
        let holds = condition();
        async move {
            holds
                .await
                .then_some(())
                .ok_or_else(|| "not yet".to_string())
        }
    })
    .await
    .unwrap_or_else(|timeout| panic!("{timeout}"));
}

pub async fn status(raft: &Addr<RaftActor>) -> RaftStatus {
    raft.send(GetStatus).await.expect("raft actor alive")
}

/// Waits until one of `nodes` leads; returns its id.
pub async fn wait_for_leader(nodes: &[&TestNode]) -> NodeId {
    let leader = test_support::wait::wait_for("a leader", DEADLINE, POLL, || async move {
        let mut roles = Vec::new();
        for node in nodes {
            let status = status(&node.raft).await;
            if status.role == Role::Leader {
                return Ok(status.id);
            }
            roles.push((status.id, status.role));
        }
        Err(format!("{roles:?}"))
    });
    leader.await.unwrap_or_else(|timeout| panic!("{timeout}"))
}

pub fn put_command(key: &str, value: &[u8]) -> Vec<u8> {
    KvCommand::Put {
        key: key.to_string(),
        value: value.to_vec(),
    }
    .encode()
}

pub fn propose(
    raft: &Addr<RaftActor>,
    command: Vec<u8>,
) -> oneshot::Receiver<Result<Vec<u8>, ClientError>> {
    let (responder, receiver) = oneshot::channel();
    raft.do_send(Propose { command, responder });
    receiver
}

pub async fn put(raft: &Addr<RaftActor>, key: &str, value: &[u8]) -> Result<KvOutput, ClientError> {
    let output = propose(raft, put_command(key, value))
        .await
        .expect("every proposal is answered")?;
    Ok(KvOutput::decode(&output).expect("the store answers with a KvOutput"))
}

pub async fn linearizable_get(raft: &Addr<RaftActor>, key: &str) -> Result<KvOutput, ClientError> {
    let (responder, receiver) = oneshot::channel();
    let query = KvQuery::Get {
        key: key.to_string(),
    }
    .encode();
    raft.do_send(Read { query, responder });
    let output = receiver.await.expect("every read is answered")?;
    Ok(KvOutput::decode(&output).expect("the store answers with a KvOutput"))
}

pub fn last_log_id(entries: &[Entry]) -> LogId {
    entries.last().map(|entry| entry.log_id).unwrap_or_default()
}
