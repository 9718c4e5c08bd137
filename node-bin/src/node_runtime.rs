//! Wiring: turns a [`NodeConfig`] into running actors and an HTTP server, and stops them
//! gracefully on SIGTERM / SIGINT.
//!
//! ```text
//!  storage (own Arbiter) ◀─StorageRequest── raft ──SendMessages─▶ TcpNetwork
//!        └──StorageEvent──────────────────▶  ▲ │ ◀─ReceivedMessages──┘
//!                                             │ └─ApplyEntries/Query─▶ applier (KvStore)
//!  HTTP API ──Propose/Read/GetStatus─────────┘        ◀──Applied──────┘
//!      ├────Query (consistency=local), TakeSnapshot───▶ applier
//!      └────GET /v1/snapshot reads the snapshot store (on the blocking pool)
//!  consistency check ── reads the applier's checkpoints; fetches the peers' over HTTP
//! ```
//!
//! To swap an actor, change the one function that starts it ([`start_storage`] picks the
//! store from `storage.engine`; [`start_applier`] the state machine): the others only see
//! `raft-proto` recipients.
//!
//! # Correctness
//!
//! - The consensus core restarts from exactly what the store recovered (hard state and log).
//! - Storage runs on an Arbiter of its own: fsync blocks a thread, never the consensus actor.
//! - The HTTP API is served on the System's thread with the consensus actor, the applier and
//!   the peer sockets ([`same_thread_server`]): a request and its answer wake no other thread.
//! - Shutdown: the HTTP server stops accepting and the consensus actor is told to `Shutdown`
//!   (no new proposals, in-flight durable work finished); the process exits once
//!   `GetDrainState` reports everything durable and applied, or at the latest after
//!   [`DRAIN_DEADLINE`], well within the 2 s a supervisor allows.
//! - The consistency check is a task on the System's arbiter (the consensus actor's thread):
//!   per round it awaits one HTTP request per peer and compares a few hundred checkpoints,
//!   reading the applier's under one short lock; nothing it does blocks the thread.

use crate::address_book::{AddressBook, MemberAddrs};
use crate::consistency::{ConsistencyChecker, ConsistencyState};
use crate::http_api::forwarder::Forwarder;
use crate::http_api::member_routes::AdminPorts;
use crate::http_api::{app, same_thread_server, ApiCounters, ApiPorts, ApiState};
use crate::node_config::{LogFormat, NodeConfig, StorageEngine};
use crate::security::{auth_middleware, NodeSecurity};
use actix::{Actor, Addr, Arbiter, AsyncContext, Context, Recipient};
use anyhow::Context as _;
use applier_actor::{AppliedCheckpoints, ApplierActor, KvStore, SnapshotMetrics, SnapshotPolicy};
use network_actor::{NetworkConfig, StopNetwork, TcpNetwork};
use raft_actor::{GetDrainState, RaftActor, RaftActorConfig, RaftMetrics};
use raft_proto::applier::{ApplyEntries, Query, RestoreSnapshot, SnapshotTaken, TakeSnapshot};
use raft_proto::client::Shutdown;
use raft_proto::ports::{ApplierPorts, NetworkPorts, RaftPorts, StoragePorts};
use raft_proto::snapshot::SnapshotStore;
use raft_proto::storage::{StorageEvent, StorageRequest};
use raft_types::Membership;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_actor::data_dir_identity::{
    check_or_record, DataDirIdentity, IdentityCheck, IdentityError,
};
use storage_actor::file_system::RealFileSystem;
use storage_actor::{
    FileLogStore, FileLogStoreConfig, FileSnapshotStore, LogStore, MemLogStore, MemSnapshotStore,
    StorageActor, StorageMetrics,
};

/// How long a stopping node waits for its durable work before exiting anyway.
pub const DRAIN_DEADLINE: Duration = Duration::from_millis(1500);

/// Installs the tracing subscriber: `RUST_LOG` filters (default `info`), `log.format` picks
/// text or JSON lines on stderr.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the node until it is stopped; returns the process exit code (0 after a graceful stop,
/// 1 after a fatal error such as a storage failure, 3 after a divergence).
pub fn run(config: NodeConfig) -> anyhow::Result<i32> {
    let span = tracing::info_span!("node", id = %config.id);
    let _entered = span.enter();
    let system = actix::System::new();
    if let Err(error) = system.block_on(start(config)) {
        // What `start` got running before it failed (the peer network, the storage arbiter)
        // must stop inside the runtime: dropped outside it, actix panics on its way out and
        // buries the one line that says what went wrong.
        system.block_on(async { actix::System::current().stop_with_code(1) });
        let _ = system.run_with_code();
        return Err(error);
    }
    let code = system.run_with_code()?;
    tracing::info!(code, "node stopped");
    Ok(code)
}

/// Checks that `data_dir` belongs to this node of this cluster, recording the identity on first
/// start (see `storage_actor::data_dir_identity`). The in-memory engine keeps nothing there, so
/// it is not checked.
pub fn check_data_dir_identity(config: &NodeConfig) -> Result<(), IdentityError> {
    if config.storage_engine == StorageEngine::Memory {
        return Ok(());
    }
    let expected = DataDirIdentity {
        cluster_id: config.cluster_id.clone(),
        node_id: config.id,
    };
    if check_or_record(&RealFileSystem, &config.data_dir, &expected)? == IdentityCheck::Recorded {
        tracing::info!(data_dir = %config.data_dir.display(), identity = %expected,
            "recorded the data directory's identity");
    }
    Ok(())
}

/// What the running node holds on to.
struct RunningNode {
    raft: Addr<RaftActor>,
    network: Addr<TcpNetwork>,
    http: same_thread_server::ServerHandle,
}

async fn start(config: NodeConfig) -> anyhow::Result<()> {
    tracing::info!(
        id = %config.id,
        peer_addr = %config.peer_addr,
        client_addr = %config.client_addr,
        members = config.members.len(),
        engine = ?config.storage_engine,
        data_dir = %config.data_dir.display(),
        "starting raft-node"
    );
    let security = NodeSecurity::load(&config).context("cannot load the [tls] or [auth] files")?;
    let raft_context: Context<RaftActor> = Context::new();
    let raft_address = raft_context.address();

    let snapshot_store = open_snapshot_store(&config)?;
    let (storage, storage_metrics, recovered) = start_storage(
        &config,
        raft_address.clone().recipient(),
        Arc::clone(&snapshot_store),
    )?;
    let applier = start_applier(
        &config,
        raft_address.clone(),
        Arc::clone(&snapshot_store),
        recovered.snapshot.as_ref(),
    )?;
    let StartedApplier {
        apply,
        local_query,
        restore,
        take_snapshot,
        checkpoints,
        snapshot_metrics,
    } = applier;
    let consistency = ConsistencyState::new(config.id, config.cluster_id.clone(), checkpoints);

    let peers = config
        .peers()
        .map(|member| (member.id, member.peer_addr))
        .collect();
    let mut network_config = NetworkConfig::new(
        config.id,
        config.cluster_id.clone(),
        config.peer_addr,
        peers,
    );
    let peer_port = config.security.peer_port;
    network_config.max_pending_handshakes = peer_port.max_pending_handshakes;
    network_config.max_pending_handshakes_per_ip = peer_port.max_pending_handshakes_per_ip;
    network_config.handshake_timeout = peer_port.handshake_timeout;
    network_config.tls = security.peer_tls.clone();
    let network_ports = NetworkPorts {
        received: raft_address.clone().recipient(),
        peer_events: raft_address.clone().recipient(),
    };
    let network = TcpNetwork::bind(network_config, network_ports)
        .await
        .with_context(|| format!("cannot start the peer network on {}", config.peer_addr))?
        .start();

    let raft_ports = RaftPorts {
        storage,
        network: network.clone().recipient(),
        apply,
        query: local_query.clone(),
        restore,
        snapshot_store: Some(Arc::clone(&snapshot_store)),
    };
    let raft = raft_core::Raft::new(core_config(&config), recovered)
        .context("invalid consensus configuration")?;
    let mut actor_config = RaftActorConfig::new(config.tick_interval());
    let data_dir = config.data_dir.clone();
    actor_config.on_divergence = Some(Arc::new(move |line: &str| {
        crate::divergence_marker::record(&data_dir, line)
    }));
    let actor = RaftActor::new(actor_config, raft, raft_ports);
    let metrics = actor.metrics();
    let membership_watch = actor.membership_watch();
    let raft = raft_context.run(actor);
    let address_book = seeded_address_book(&config);
    actix::spawn(crate::address_book::follow_membership(
        config.id,
        membership_watch,
        address_book.clone(),
        network.clone().recipient(),
    ));

    let api_ports = ApiPorts {
        propose: raft.clone().recipient(),
        read: raft.clone().recipient(),
        status: raft.clone().recipient(),
        local_query,
        network_stats: Some(network.clone().recipient()),
        take_snapshot,
    };
    let snapshots = HttpSnapshots {
        store: snapshot_store,
        metrics: snapshot_metrics,
    };
    let members = HttpMembership {
        address_book: address_book.clone(),
        admin: AdminPorts {
            change: raft.clone().recipient(),
            transfer: raft.clone().recipient(),
            membership: raft.clone().recipient(),
        },
    };
    let http = start_http(
        &config,
        api_ports,
        metrics,
        storage_metrics,
        snapshots,
        consistency.clone(),
        &security,
        members,
    )?;
    start_consistency_check(&config, consistency, &security, address_book)?;
    let node = RunningNode {
        raft,
        network,
        http,
    };
    actix::spawn(stop_on_signal(node));
    let scheme = security.node_to_node.scheme();
    tracing::info!(client_url = %format!("{scheme}://{}", config.client_addr),
        tls = security.http_tls.is_some(), tokens = security.auth.tokens.is_some(),
        "raft-node is serving");
    Ok(())
}

/// The consensus core's configuration: milliseconds become ticks of `tick_interval_ms`.
pub fn core_config(config: &NodeConfig) -> raft_core::Config {
    let ticks = config.timing_ticks();
    let mut core = raft_core::Config::new(config.id, bootstrap_membership(config).voters);
    core.strict_reconfiguration_check = config.raft.strict_reconfiguration_check;
    core.heartbeat_interval_ticks = ticks.heartbeat_interval_ticks;
    core.election_timeout_min_ticks = ticks.election_timeout_min_ticks;
    core.election_timeout_max_ticks = ticks.election_timeout_max_ticks;
    core.snapshot_trailing_entries = config.snapshot.trailing_entries;
    core.snapshot_chunk_bytes = config.snapshot.chunk_size_bytes;
    core.snapshot_max_inflight_chunks = config.snapshot.max_inflight_chunks as usize;
    // A chunk unanswered for two maximum election timeouts is sent again: long enough for a
    // 16 MiB chunk to cross a slow link and be fsynced, short enough to recover a lost one.
    core.snapshot_chunk_timeout_ticks = 2 * ticks.election_timeout_max_ticks;
    core
}

/// The configuration a new cluster starts in: `[[members]]` as voters, or none for a server
/// that joins an existing cluster (it learns the configuration from the leader). The core and
/// the applier start from the same one, so every snapshot records what the log holds.
pub fn bootstrap_membership(config: &NodeConfig) -> Membership {
    if config.join {
        Membership::default()
    } else {
        Membership::with_voters(config.member_ids())
    }
}

/// Opens the snapshot store: `<data_dir>/snapshots` for the write-ahead log engine (removing
/// what a crash left half written, falling back from a corrupt newest snapshot), memory for
/// the memory engine.
pub fn open_snapshot_store(config: &NodeConfig) -> anyhow::Result<Arc<dyn SnapshotStore>> {
    match config.storage_engine {
        StorageEngine::Wal => {
            let directory = snapshot_directory(config);
            let store = FileSnapshotStore::open(&directory).with_context(|| {
                format!("cannot open the snapshot store in {}", directory.display())
            })?;
            if let Some(newest) = store.newest() {
                tracing::info!(snapshot = %newest, "found the newest snapshot");
            }
            Ok(Arc::new(store))
        }
        StorageEngine::Memory => Ok(Arc::new(MemSnapshotStore::new())),
    }
}

/// Opens the store chosen by `storage.engine`, starts the storage actor on its own Arbiter and
/// returns its recipient and metrics with the state the core restarts from.
fn start_storage(
    config: &NodeConfig,
    events: Recipient<StorageEvent>,
    snapshot_store: Arc<dyn SnapshotStore>,
) -> anyhow::Result<(
    Recipient<StorageRequest>,
    Arc<StorageMetrics>,
    raft_core::RecoveredState,
)> {
    match config.storage_engine {
        StorageEngine::Wal => {
            let mut store_config = FileLogStoreConfig::new(wal_directory(config));
            store_config.fsync = config.fsync;
            store_config.preallocate_bytes = config.preallocate_bytes;
            if !config.fsync {
                tracing::warn!("storage.fsync = false: acknowledged writes can be lost on a crash");
            }
            let (mut store, recovered) = FileLogStore::open(store_config).with_context(|| {
                format!(
                    "cannot open the write-ahead log in {}",
                    config.data_dir.display()
                )
            })?;
            let recovered = core_recovered_state(&mut store, recovered, snapshot_store.as_ref())?;
            let (storage, metrics) = run_storage(store, events, snapshot_store);
            Ok((storage, metrics, recovered))
        }
        StorageEngine::Memory => {
            tracing::warn!("storage.engine = \"memory\": nothing survives a restart");
            let store = MemLogStore::new();
            let (storage, metrics) = run_storage(store, events, snapshot_store);
            Ok((storage, metrics, raft_core::RecoveredState::default()))
        }
    }
}

fn run_storage<S: LogStore>(
    store: S,
    events: Recipient<StorageEvent>,
    snapshot_store: Arc<dyn SnapshotStore>,
) -> (Recipient<StorageRequest>, Arc<StorageMetrics>) {
    let arbiter = Arbiter::new();
    let actor =
        StorageActor::new(store, StoragePorts { events }).with_snapshot_store(snapshot_store);
    let metrics = actor.metrics();
    let storage = actor.start_on(&arbiter.handle());
    (storage.recipient(), metrics)
}

/// What the consensus core restarts from, given what the log store recovered and the newest
/// snapshot (`raft_core::reconcile`: the log after the snapshot; a log the snapshot replaced
/// is reset in the store first, durably). Public so the in-process test cluster boots its
/// nodes exactly as a real node does.
pub fn core_recovered_state<S: LogStore>(
    store: &mut S,
    recovered: raft_types::StoredLog,
    snapshot_store: &dyn SnapshotStore,
) -> anyhow::Result<raft_core::RecoveredState> {
    let snapshot = snapshot_store.newest();
    let (state, reset) = raft_core::reconcile(snapshot, recovered)
        .context("the log and the snapshots do not fit together")?;
    if let Some(last_log_id) = reset {
        tracing::warn!(%last_log_id,
            "the log does not continue the newest snapshot (an installation was cut short): \
             discarding it");
        store
            .reset(last_log_id)
            .and_then(|()| store.sync())
            .context("cannot reset the write-ahead log to the snapshot")?;
    }
    tracing::info!(
        snapshot = ?state.snapshot.as_ref().map(|snapshot| snapshot.last_log_id.to_string()),
        entries_after_it = state.entries.len(),
        term = %state.hard_state.current_term,
        "recovered"
    );
    Ok(state)
}

/// The applier's handles.
struct StartedApplier {
    apply: Recipient<ApplyEntries>,
    local_query: Recipient<Query>,
    restore: Recipient<RestoreSnapshot>,
    take_snapshot: Recipient<TakeSnapshot>,
    checkpoints: Arc<AppliedCheckpoints>,
    snapshot_metrics: Arc<SnapshotMetrics>,
}

/// Starts the applier over a `KvStore` restored from `snapshot` (the one the core restarts
/// from) or empty; it applies the log after it once the commit index is known again, and
/// snapshots itself by the `[snapshot]` thresholds.
fn start_applier(
    config: &NodeConfig,
    raft: Addr<RaftActor>,
    snapshot_store: Arc<dyn SnapshotStore>,
    snapshot: Option<&raft_types::SnapshotMeta>,
) -> anyhow::Result<StartedApplier> {
    let ports = ApplierPorts {
        applied: raft.clone().recipient(),
    };
    let applier = match snapshot {
        Some(snapshot) => {
            ApplierActor::restored_from(KvStore::new(), ports, snapshot_store.as_ref(), snapshot)
                .with_context(|| format!("cannot restore the state machine from {snapshot}"))?
        }
        None => ApplierActor::new(KvStore::new(), ports),
    };
    let policy = SnapshotPolicy {
        threshold_entries: config.snapshot.threshold_entries,
        threshold_bytes: config.snapshot.threshold_bytes,
    };
    let taken: Recipient<SnapshotTaken> = raft.recipient();
    let applier = applier
        .with_checkpoint_policy(config.consistency.checkpoint_policy)
        .with_snapshots(snapshot_store, policy, bootstrap_membership(config), taken);
    let checkpoints = applier.checkpoints();
    let snapshot_metrics = applier.snapshot_metrics();
    let applier = applier.start();
    Ok(StartedApplier {
        apply: applier.clone().recipient(),
        local_query: applier.clone().recipient(),
        restore: applier.clone().recipient(),
        take_snapshot: applier.recipient(),
        checkpoints,
        snapshot_metrics,
    })
}

/// Starts the periodic comparison with the peers' checkpoints, unless
/// `consistency.check_interval_ms` is 0 or there are no peers.
fn start_consistency_check(
    config: &NodeConfig,
    consistency: ConsistencyState,
    security: &NodeSecurity,
    address_book: AddressBook,
) -> anyhow::Result<()> {
    let peers: BTreeMap<_, _> = config
        .peers()
        .map(|member| (member.id, member.client_addr))
        .collect();
    let Some(interval) = config.consistency.check_interval else {
        tracing::warn!("consistency.check_interval_ms = 0: diverged replicas go unnoticed");
        return Ok(());
    };
    if peers.is_empty() {
        return Ok(());
    }
    let access = &security.node_to_node;
    let checker = ConsistencyChecker::secured(consistency, config.peer_addr.ip(), peers, access)
        .context("cannot build the consistency check's HTTP client")?
        .following(address_book);
    actix::spawn(checker.run(interval));
    Ok(())
}

/// What the HTTP API needs for `/v1/snapshot` and the snapshot figures of status and metrics.
struct HttpSnapshots {
    store: Arc<dyn SnapshotStore>,
    metrics: Arc<SnapshotMetrics>,
}

/// The address book every HTTP worker forwards with, and the admin API's recipients.
struct HttpMembership {
    address_book: AddressBook,
    admin: AdminPorts,
}

/// The address book before the log says anything: the `[[members]]` of the configuration.
fn seeded_address_book(config: &NodeConfig) -> AddressBook {
    AddressBook::new(config.members.iter().map(|member| {
        let addrs = MemberAddrs {
            peer_addr: Some(member.peer_addr),
            client_addr: Some(member.client_addr),
        };
        (member.id, addrs)
    }))
}

/// Where the snapshots of a node live: `<data_dir>/snapshots`.
pub fn snapshot_directory(config: &NodeConfig) -> std::path::PathBuf {
    config.data_dir.join("snapshots")
}

/// Where the write-ahead log of a node lives: `<data_dir>/wal`.
pub fn wal_directory(config: &NodeConfig) -> std::path::PathBuf {
    config.data_dir.join("wal")
}

fn start_http(
    config: &NodeConfig,
    ports: ApiPorts,
    metrics: Arc<RaftMetrics>,
    storage_metrics: Arc<StorageMetrics>,
    snapshots: HttpSnapshots,
    consistency: ConsistencyState,
    security: &NodeSecurity,
    members: HttpMembership,
) -> anyhow::Result<same_thread_server::ServerHandle> {
    let wal_directory = match config.storage_engine {
        StorageEngine::Wal => Some(wal_directory(config)),
        StorageEngine::Memory => None,
    };
    let node_id = config.id;
    let bind_ip = config.peer_addr.ip();
    let request_timeout = config.request_timeout;
    let max_value_bytes = config.max_value_bytes;
    let counters = ApiCounters::default();
    let node_to_node = security.node_to_node.clone();
    let auth = security.auth.clone();
    let forwarder = Forwarder::secured(
        node_id,
        bind_ip,
        members.address_book.clone(),
        request_timeout + Duration::from_secs(1),
        &node_to_node,
    )
    .expect("an HTTP client with a validated TLS configuration builds");
    let app = app(ApiState {
        node_id,
        ports,
        forwarder,
        request_timeout,
        max_value_bytes,
        raft_metrics: Some(metrics),
        storage_metrics: Some(storage_metrics),
        counters,
        consistency,
        snapshot_store: snapshots.store,
        snapshot_metrics: Some(snapshots.metrics),
        wal_directory,
    })
    .app_data(actix_web::web::Data::new(members.admin))
    .wrap_fn(move |request, service| auth_middleware::guard(&auth, request, service));
    let listener = std::net::TcpListener::bind(config.client_addr)
        .with_context(|| format!("cannot listen on client_addr {}", config.client_addr))?;
    same_thread_server::serve(listener, security.http_tls.clone(), app)
        .with_context(|| format!("cannot serve on client_addr {}", config.client_addr))
}

/// Waits for SIGTERM or SIGINT, then stops the node gracefully (see the module docs).
async fn stop_on_signal(node: RunningNode) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the node with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    let started = Instant::now();
    tracing::info!(
        signal = name,
        "stopping: no new requests, finishing durable work"
    );
    node.raft.do_send(Shutdown);
    node.http.stop();
    loop {
        match node.raft.send(GetDrainState).await {
            Ok(state) if state.is_drained() => break,
            Ok(_) if started.elapsed() < DRAIN_DEADLINE => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(state) => {
                tracing::warn!(?state, "drain deadline passed; stopping anyway");
                break;
            }
            Err(_) => break,
        }
    }
    node.network.do_send(StopNetwork);
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "drained");
    actix::System::current().stop_with_code(0);
}
