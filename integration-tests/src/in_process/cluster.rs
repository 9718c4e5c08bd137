//! [`InProcessCluster`]: the nodes, their wiring, faults, crashes, restarts and client requests.

mod boot;
mod membership;

use super::client::{await_answer, get_query, value_of, PendingAnswer};
use super::disk::{
    disk_holding, DiskLatency, EventGate, NodeDisk, POWER_CUT_OPERATIONS_MAX, POWER_CUT_WINDOW,
    SIMULATED_SEGMENT_BYTES, SIMULATED_WAL_DIRECTORY,
};
use super::traffic::ReplicationCounter;
use super::*;
use actix::{Actor, Addr, AsyncContext, Context};
use applier_actor::{ApplierActor, KvCommand, KvStore, SnapshotPolicy};
use network_actor::sim::{
    GetSimStats, HealAll, Isolate, LinkFaults, Partition, SetDefaultLinkFaults, SetLinkFaults,
    SimEndpoint, SimNetwork, SimStats,
};
use node_bin::node_runtime::core_recovered_state;
use raft_actor::{RaftActor, RaftActorConfig, RaftMetrics};
use raft_proto::applier::Query;
use raft_proto::client::{GetStatus, Propose, RaftStatus, Read, Role};
use raft_proto::ports::{ApplierPorts, NetworkPorts, RaftPorts, StoragePorts};
use raft_proto::snapshot::SnapshotStore;
use raft_types::{LogIndex, NodeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use storage_actor::file_system::FileSystem;
use storage_actor::sim_file_system::{SimFileSystem, SimStatistics};
use storage_actor::{
    FileLogStore, FileLogStoreConfig, FileSnapshotStore, FileSnapshotStoreConfig, MemLogStore,
    StorageActor,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The actors of a running node. Each task is the actor's actix context; aborting it is a crash.
struct RunningNode {
    raft: Addr<RaftActor>,
    applier: Addr<ApplierActor<KvStore>>,
    metrics: Arc<RaftMetrics>,
    snapshot_store: Arc<dyn SnapshotStore>,
    /// The applier's running-hash checkpoints: what it applied, index by index.
    checkpoints: Arc<applier_actor::AppliedCheckpoints>,
    /// Aborted all together, before any of them can run again: a consensus actor that saw its
    /// storage or applier gone would take it as fatal and stop the whole System.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl NodeSlot {
    /// A node that was never started: empty disks.
    fn fresh(id: NodeId, seed: u64, disk_model: DiskModel) -> NodeSlot {
        let disk = NodeDisk::new(disk_model, mix(seed ^ mix(id.0 ^ 0xD15C)));
        let snapshot_disk = match &disk {
            NodeDisk::Simulated(disk) => disk.clone(),
            NodeDisk::Memory(_) => {
                let disk = SimFileSystem::new(mix(seed ^ mix(id.0 ^ 0x5A4B)));
                disk.create_dir_all(std::path::Path::new("/node"))
                    .and_then(|()| disk.sync_directory(std::path::Path::new("/")))
                    .expect("a fresh simulated disk is powered");
                disk
            }
        };
        NodeSlot {
            disk,
            snapshot_disk,
            running: None,
            incarnation: 0,
            power_cuts: 0,
        }
    }
}

/// One member: its disk survives crashes; `running` is `None` while it is crashed.
struct NodeSlot {
    disk: NodeDisk,
    /// Where the node's snapshot files live: the WAL's simulated disk on that model, a
    /// simulated disk of their own beside a memory log (crashed with the node).
    snapshot_disk: SimFileSystem,
    running: Option<RunningNode>,
    /// How many times the node was started, mixed into its election-timeout seed so that a
    /// restarted node does not replay its first life's timeouts.
    incarnation: u64,
    /// How many power cuts the node had, mixed into where the next one lands.
    power_cuts: u64,
}

/// An in-process cluster: N whole nodes (consensus, storage, applier and network actors wired
/// as `node-bin` wires them) in the current actix System, over one seeded simulated network and
/// simulated disks. It models a cluster of machines whose links can be cut or made lossy and
/// whose nodes can crash, lose power and restart; on a [`PausedSystem`] every bound is virtual
/// time and a seed replays a run. See the module documentation. Methods take `&self` so a test
/// can run a stream of writes and a fault script concurrently (`tokio::join!`) on one cluster.
pub struct InProcessCluster {
    seed: u64,
    members: Vec<NodeId>,
    network: Addr<SimNetwork>,
    nodes: RefCell<BTreeMap<NodeId, NodeSlot>>,
    /// `AppendEntries` requests with entries sent by every node, when counted.
    appends_with_entries: Option<Arc<AtomicU64>>,
    snapshots: SnapshotOptions,
    stale_reader: Option<NodeId>,
    /// Nodes added after the start ([`InProcessCluster::add_joining_node`]): they boot with no
    /// bootstrap configuration and wait to be added.
    joined: RefCell<std::collections::BTreeSet<NodeId>>,
    disk_model: DiskModel,
}

/// How to build an [`InProcessCluster`] beyond its size and seed; the default is what
/// [`InProcessCluster::start`] builds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterOptions {
    /// What every node keeps its log on.
    pub disk_model: DiskModel,
    /// Count the `AppendEntries` requests that carry entries (see
    /// [`InProcessCluster::appends_with_entries_sent`]): one more actor on each node's path to
    /// the network, so off unless a test asks.
    pub count_replication: bool,
    /// How the nodes snapshot and compact their logs.
    pub snapshots: SnapshotOptions,
    /// A node that serves linearizable reads from its own state without ReadIndex (broken on
    /// purpose: `RaftActorConfig::serve_stale_reads_for_tests`), to show a checker bites.
    pub stale_reader: Option<NodeId>,
}

/// The snapshot settings of every node of an [`InProcessCluster`]. The default snapshots
/// often (every 64 entries, 16 kept behind, chunks of 4 KiB) so that ordinary tests compact,
/// send snapshots to lagging followers and restart from snapshots too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Snapshot after this many entries applied since the last snapshot; `None`: never.
    pub threshold_entries: Option<u64>,
    /// Entries kept behind a snapshot.
    pub trailing_entries: u64,
    /// Bytes per InstallSnapshot chunk.
    pub chunk_bytes: u64,
}

impl Default for SnapshotOptions {
    fn default() -> SnapshotOptions {
        SnapshotOptions {
            threshold_entries: Some(64),
            trailing_entries: 16,
            chunk_bytes: 4 * 1024,
        }
    }
}

/// The files of a node's data directory, each as `(name, live length in bytes)`: see
/// [`InProcessCluster::data_files`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataFiles {
    /// The write-ahead log's segments; `None` on [`DiskModel::Memory`], whose log is no file.
    pub wal: Option<Vec<(String, usize)>>,
    /// The snapshot directory's files (snapshots, and a transfer's partial file if any).
    pub snapshots: Vec<(String, usize)>,
}

impl DataFiles {
    /// The WAL's bytes (0 on a memory disk).
    pub fn wal_bytes(&self) -> usize {
        self.wal.iter().flatten().map(|(_, length)| length).sum()
    }

    /// The snapshot directory's bytes.
    pub fn snapshot_bytes(&self) -> usize {
        self.snapshots.iter().map(|(_, length)| length).sum()
    }
}

/// Where a node keeps its snapshots on its simulated disk.
const SNAPSHOT_DIRECTORY: &str = "/node/snapshots";

impl InProcessCluster {
    /// Starts `size` nodes with ids `1..=size` in the current actix System, on one simulated
    /// network seeded with `seed`. Must be called inside a System; in a [`PausedSystem`] it
    /// runs in virtual time, replayably.
    pub fn start(size: usize, seed: u64) -> InProcessCluster {
        InProcessCluster::start_on(size, seed, DiskModel::Memory)
    }

    /// [`InProcessCluster::start`] with every node's log on disks of the given model.
    pub fn start_on(size: usize, seed: u64, disk_model: DiskModel) -> InProcessCluster {
        let options = ClusterOptions {
            disk_model,
            ..ClusterOptions::default()
        };
        InProcessCluster::start_with(size, seed, options)
    }

    /// [`InProcessCluster::start`] with the given options.
    pub fn start_with(size: usize, seed: u64, options: ClusterOptions) -> InProcessCluster {
        let disk_model = options.disk_model;
        assert!(size >= 1, "a cluster has at least one node");
        let members: Vec<NodeId> = (1..=size as u64).map(NodeId).collect();
        let network = SimNetwork::with_default_faults(seed, healthy_links()).start();
        let nodes = members
            .iter()
            .map(|id| (*id, NodeSlot::fresh(*id, seed, disk_model)))
            .collect();
        let cluster = InProcessCluster {
            seed,
            members,
            network,
            nodes: RefCell::new(nodes),
            appends_with_entries: options
                .count_replication
                .then(|| Arc::new(AtomicU64::new(0))),
            snapshots: options.snapshots,
            stale_reader: options.stale_reader,
            joined: RefCell::default(),
            disk_model,
        };
        for &id in &cluster.members {
            cluster.boot(id);
        }
        cluster
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// The nodes (joined ones too) that are not crashed.
    pub fn running_members(&self) -> Vec<NodeId> {
        let nodes = self.nodes.borrow();
        nodes
            .iter()
            .filter(|(_, slot)| slot.running.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn is_running(&self, node: NodeId) -> bool {
        self.slot_running(node, |_| ()).is_some()
    }

    /// Stops every actor of `node` at once, as `kill -9` would. Its disk keeps what the storage
    /// actor had flushed (a simulated disk: its page cache); requests it had not flushed yet
    /// (never reported durable) are lost. Returns once none of its actors can run again.
    /// Crashing a crashed node does nothing.
    pub async fn crash(&self, node: NodeId) {
        let disk = self.disk_of(node);
        let Some(running) = self.take_running(node) else {
            return;
        };
        let log_in_memory = running.metrics.snapshot().last_log_index;
        match disk {
            NodeDisk::Memory(disk) => {
                // Taken before the actors are dropped: dropping an actix context lets it handle
                // what is still in its mailbox and run `stopping`, so the dying storage actor
                // would write requests it never reported durable. Those land on the old disk,
                // which is discarded.
                let (_, flushed) = MemLogStore::open(disk);
                let flushed_last = flushed.last_log_id().unwrap_or_default();
                let survivor = disk_holding(flushed);
                // The snapshot disk goes dark too (a snapshot being written by the dying
                // applier's thread stops there), keeping its page cache, as a process crash.
                let snapshot_disk = self.nodes.borrow()[&node].snapshot_disk.clone();
                snapshot_disk.power_off();
                abort_all(running).await;
                snapshot_disk.process_crash();
                self.set_disk(node, NodeDisk::Memory(survivor));
                tracing::info!(%node, %flushed_last, %log_in_memory,
                    "in-process cluster: node crashed; its disk keeps the log through flushed_last");
            }
            NodeDisk::Simulated(disk) => {
                // Dark first, so the dying actors write nothing; the page cache survives.
                disk.power_off();
                abort_all(running).await;
                disk.process_crash();
                tracing::info!(%node, %log_in_memory,
                    "in-process cluster: node crashed; its page cache survives");
            }
        }
    }

    /// Cuts the power of every node in `nodes` together: each simulated disk goes dark at a
    /// seeded one of its next few operations (possibly between a write and its fdatasync), all
    /// within [`POWER_CUT_WINDOW`], and keeps what was synced plus a seeded part of the rest;
    /// then the nodes are stopped as by [`InProcessCluster::crash`]. A node on a memory disk is
    /// simply crashed.
    pub async fn power_loss(&self, nodes: &[NodeId]) {
        for &node in nodes {
            if let (NodeDisk::Simulated(disk), true) = (self.disk_of(node), self.is_running(node)) {
                let cut = {
                    let mut slots = self.nodes.borrow_mut();
                    let slot = slots.get_mut(&node).expect("power_loss: not a member");
                    slot.power_cuts += 1;
                    mix(self.seed ^ mix(node.0) ^ mix(slot.power_cuts))
                        % (POWER_CUT_OPERATIONS_MAX + 1)
                };
                disk.power_off_after(cut);
            }
        }
        // The cuts land while the nodes go on working, within a few milliseconds of each other
        // under load: a storage flush may be cut between its write and its fdatasync.
        let disks: Vec<SimFileSystem> = nodes
            .iter()
            .filter_map(|&node| match self.disk_of(node) {
                NodeDisk::Simulated(disk) => Some(disk),
                NodeDisk::Memory(_) => None,
            })
            .collect();
        let window_end = Instant::now() + POWER_CUT_WINDOW;
        while Instant::now() < window_end && !disks.iter().all(SimFileSystem::is_powered_off) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The end of the window: from here no disk of `nodes` completes anything, and their
        // storage events are dropped at the gates.
        for &node in nodes {
            if let NodeDisk::Simulated(disk) = self.disk_of(node) {
                disk.power_off();
            }
        }
        for &node in nodes {
            let NodeDisk::Simulated(disk) = self.disk_of(node) else {
                self.crash(node).await;
                continue;
            };
            let Some(running) = self.take_running(node) else {
                continue;
            };
            let log_in_memory = running.metrics.snapshot().last_log_index;
            abort_all(running).await;
            disk.power_loss();
            tracing::info!(%node, %log_in_memory,
                "in-process cluster: node lost power; its disk keeps what was synced");
        }
    }

    /// What `node`'s simulated disk has done (`None` on a memory disk).
    pub fn disk_statistics(&self, node: NodeId) -> Option<SimStatistics> {
        match self.disk_of(node) {
            NodeDisk::Memory(_) => None,
            NodeDisk::Simulated(disk) => Some(disk.statistics()),
        }
    }

    /// The files in `node`'s data directory right now, with their live lengths (the page
    /// cache included: what the node would see, not only what is synced), for tests that bound
    /// what compaction leaves on disk. A crashed node's files are listed too: its disks outlive
    /// it.
    pub fn data_files(&self, node: NodeId) -> DataFiles {
        let nodes = self.nodes.borrow();
        let slot = nodes.get(&node).expect("not a member of the cluster");
        let wal = match &slot.disk {
            NodeDisk::Memory(_) => None,
            NodeDisk::Simulated(disk) => {
                Some(disk.list_files(std::path::Path::new(SIMULATED_WAL_DIRECTORY)))
            }
        };
        let snapshots = slot
            .snapshot_disk
            .list_files(std::path::Path::new(SNAPSHOT_DIRECTORY));
        DataFiles { wal, snapshots }
    }

    fn disk_of(&self, node: NodeId) -> NodeDisk {
        self.nodes.borrow()[&node].disk.clone()
    }

    fn set_disk(&self, node: NodeId, disk: NodeDisk) {
        self.nodes
            .borrow_mut()
            .get_mut(&node)
            .expect("not a member")
            .disk = disk;
    }

    fn take_running(&self, node: NodeId) -> Option<RunningNode> {
        self.nodes
            .borrow_mut()
            .get_mut(&node)
            .expect("not a member of the cluster")
            .running
            .take()
    }

    /// Restarts a crashed `node` from what its disk holds, with fresh actors.
    pub fn restart(&self, node: NodeId) {
        self.boot(node);
        tracing::info!(%node, "in-process cluster: node restarted");
    }

    /// Cuts every link between the two groups, both ways.
    pub async fn partition(&self, group: &[NodeId], other: &[NodeId]) {
        self.control(Partition::both_ways(
            group.iter().copied(),
            other.iter().copied(),
        ))
        .await;
    }

    /// Cuts `node` off from every other node, both ways.
    pub async fn isolate(&self, node: NodeId) {
        self.control(Isolate { node }).await;
    }

    /// Reconnects every link; loss, delay and reordering settings stay.
    pub async fn heal(&self) {
        self.control(HealAll).await;
    }

    /// Gives every link (existing and future) the fault model `faults`, keeping which links are
    /// cut; [`healthy_links`] turns faults off again.
    pub async fn set_all_link_faults(&self, faults: LinkFaults) {
        self.control(SetDefaultLinkFaults { faults }).await;
    }

    /// Gives the one directed link `from -> to` the fault model `faults`.
    pub async fn set_link_faults(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        self.control(SetLinkFaults { from, to, faults }).await;
    }

    pub async fn network_stats(&self) -> SimStats {
        self.network
            .send(GetSimStats)
            .await
            .expect("the simulated network lives as long as the cluster")
    }

    async fn control<M>(&self, message: M)
    where
        M: actix::Message<Result = ()> + Send + 'static,
        SimNetwork: actix::Handler<M>,
    {
        self.network
            .send(message)
            .await
            .expect("the simulated network lives as long as the cluster");
    }

    /// The running node's `get`, or `None` while it is crashed. Panics when an actor of a
    /// node that was not crashed has stopped: it panicked (a failed invariant check, say; its
    /// message is printed above) and the test must not go on as if the node were merely slow.
    fn slot_running<T>(&self, node: NodeId, get: impl FnOnce(&RunningNode) -> T) -> Option<T> {
        self.assert_no_actor_died();
        let nodes = self.nodes.borrow();
        let slot = nodes.get(&node).expect("not a member of the cluster");
        slot.running.as_ref().map(get)
    }

    /// Panics if an actor of a node that is not crashed has stopped; see [`Self::status`].
    pub fn assert_no_actor_died(&self) {
        for (node, slot) in self.nodes.borrow().iter() {
            let Some(running) = &slot.running else {
                continue;
            };
            for (actor, task) in &running.tasks {
                assert!(
                    !task.is_finished(),
                    "the {actor} actor of node {node} stopped without being crashed (seed {}); \
                     look for its panic above",
                    self.seed
                );
            }
        }
    }

    /// The node's status, or `None` while it is crashed. Like every request method, it panics
    /// if an actor of a node that is not crashed has died (see [`Self::assert_no_actor_died`]).
    pub async fn status(&self, node: NodeId) -> Option<RaftStatus> {
        let raft = self.slot_running(node, |running| running.raft.clone())?;
        raft.send(GetStatus).await.ok()
    }

    /// The status of every running node (joined ones too), by id.
    pub async fn statuses(&self) -> BTreeMap<NodeId, RaftStatus> {
        self.statuses_of(&self.node_ids()).await
    }

    /// The status of every running node among `nodes`, by id.
    async fn statuses_of(&self, nodes: &[NodeId]) -> BTreeMap<NodeId, RaftStatus> {
        let mut statuses = BTreeMap::new();
        for &node in nodes {
            if let Some(status) = self.status(node).await {
                statuses.insert(node, status);
            }
        }
        statuses
    }

    /// The running node that believes it is leader with the highest term, if any. A stale
    /// leader cut off in an older term may still believe it leads; the highest term wins.
    pub async fn leader(&self) -> Option<NodeId> {
        leader_of(self.statuses().await.values()).ok()
    }

    /// Waits until some running node is leader, for at most `within` of virtual time.
    pub async fn wait_for_leader(&self, within: Duration) -> Result<NodeId, WaitTimedOut> {
        self.wait_for_leader_among(&self.node_ids(), within).await
    }

    /// Waits until one of `candidates` is the highest-term leader among `candidates`, for at most
    /// `within` of virtual time. For the majority side of a partition.
    pub async fn wait_for_leader_among(
        &self,
        candidates: &[NodeId],
        within: Duration,
    ) -> Result<NodeId, WaitTimedOut> {
        wait_for("a leader", within, || async {
            let statuses = self.statuses_of(candidates).await;
            leader_of(statuses.values()).map_err(|()| format!("{:?}", summarize(statuses.values())))
        })
        .await
    }

    /// Proposes `Put { key, value }` through `node` and waits for the answer (at most
    /// [`REQUEST_TIMEOUT`] of virtual time). `Ok` carries the index the write was applied at.
    pub async fn put(
        &self,
        node: NodeId,
        key: &str,
        value: &[u8],
    ) -> Result<LogIndex, RequestError> {
        self.put_within(node, key, value, REQUEST_TIMEOUT).await
    }

    /// [`Self::put`] with its own bound on the wait, for a client that waits out a fault.
    pub async fn put_within(
        &self,
        node: NodeId,
        key: &str,
        value: &[u8],
        within: Duration,
    ) -> Result<LogIndex, RequestError> {
        self.send_put(node, key, value)?.put_answer(within).await
    }

    /// Sends `Put { key, value }` to `node` now and returns its answer to await later, so the
    /// test can go on (fault the cluster, send more) while the write is in flight.
    /// Proposes any key-value command through `node` without waiting; the answer is the
    /// state machine's output ([`PendingAnswer::output`]).
    pub fn send_command(
        &self,
        node: NodeId,
        command: KvCommand,
    ) -> Result<PendingAnswer, RequestError> {
        let raft = self
            .slot_running(node, |running| running.raft.clone())
            .ok_or(RequestError::Crashed { node })?;
        let (responder, receiver) = oneshot::channel();
        raft.do_send(Propose {
            command: command.encode(),
            responder,
        });
        Ok(PendingAnswer {
            node,
            request: "command",
            receiver,
        })
    }

    pub fn send_put(
        &self,
        node: NodeId,
        key: &str,
        value: &[u8],
    ) -> Result<PendingAnswer, RequestError> {
        let raft = self
            .slot_running(node, |running| running.raft.clone())
            .ok_or(RequestError::Crashed { node })?;
        let command = KvCommand::Put {
            key: key.to_string(),
            value: value.to_vec(),
        }
        .encode();
        let (responder, receiver) = oneshot::channel();
        raft.do_send(Propose { command, responder });
        Ok(PendingAnswer {
            node,
            request: "put",
            receiver,
        })
    }

    /// Sends a linearizable read of `key` to `node` now and returns its answer to await later.
    pub fn send_get(&self, node: NodeId, key: &str) -> Result<PendingAnswer, RequestError> {
        let raft = self
            .slot_running(node, |running| running.raft.clone())
            .ok_or(RequestError::Crashed { node })?;
        let (responder, receiver) = oneshot::channel();
        raft.do_send(Read {
            query: get_query(key),
            responder,
        });
        Ok(PendingAnswer {
            node,
            request: "get",
            receiver,
        })
    }

    /// The `AppendEntries` requests carrying entries that every node sent so far.
    ///
    /// # Panics
    ///
    /// When the cluster was not started with [`ClusterOptions::count_replication`].
    pub fn appends_with_entries_sent(&self) -> u64 {
        self.appends_with_entries
            .as_ref()
            .expect("start the cluster with ClusterOptions { count_replication: true, .. }")
            .load(Ordering::SeqCst)
    }

    /// The running node's metrics (what its `/metrics` would show), or `None` while it is
    /// crashed.
    /// A running node's applied-state checkpoints (the running hash of everything applied, at
    /// regular indexes): two nodes holding different hashes at one index applied different
    /// entries there.
    pub fn applied_checkpoints(&self, node: NodeId) -> Option<applier_actor::CheckpointsSnapshot> {
        self.slot_running(node, |running| running.checkpoints.snapshot())
    }

    /// The newest complete snapshot in a running node's snapshot store.
    pub fn newest_snapshot(&self, node: NodeId) -> Option<raft_types::SnapshotMeta> {
        self.slot_running(node, |running| running.snapshot_store.newest())
            .flatten()
    }

    pub fn metrics(&self, node: NodeId) -> Option<raft_actor::RaftMetricsSnapshot> {
        self.slot_running(node, |running| running.metrics.snapshot())
    }

    /// A linearizable read of `key` through `node` (ReadIndex): only a leader that confirms
    /// its leadership answers `Ok`.
    pub async fn get(&self, node: NodeId, key: &str) -> Result<Option<Vec<u8>>, RequestError> {
        self.send_get(node, key)?.get_answer(REQUEST_TIMEOUT).await
    }

    /// What `node`'s state machine holds for `key` right now (a local, possibly stale read,
    /// straight from its applier).
    pub async fn local_get(
        &self,
        node: NodeId,
        key: &str,
    ) -> Result<Option<Vec<u8>>, RequestError> {
        let applier = self
            .slot_running(node, |running| running.applier.clone())
            .ok_or(RequestError::Crashed { node })?;
        let (responder, receiver) = oneshot::channel();
        applier.do_send(Query {
            query: get_query(key),
            responder,
        });
        value_of(node, await_answer(node, receiver, REQUEST_TIMEOUT).await?)
    }

    /// Waits until `node` has applied at least through `index`.
    pub async fn wait_for_applied(
        &self,
        node: NodeId,
        index: LogIndex,
        within: Duration,
    ) -> Result<(), WaitTimedOut> {
        wait_for(
            &format!("node {node} to apply index {index}"),
            within,
            || async {
                match self.status(node).await {
                    Some(status) if status.last_applied >= index => Ok(()),
                    Some(status) => Err(format!("last_applied {}", status.last_applied)),
                    None => Err("crashed".to_string()),
                }
            },
        )
        .await
    }

    /// Waits until every running node has applied everything the highest-term leader
    /// committed and holds no uncommitted entries: the cluster is quiet and in agreement.
    /// Returns the common applied index.
    pub async fn wait_for_convergence(&self, within: Duration) -> Result<LogIndex, WaitTimedOut> {
        wait_for(
            "every running node to apply the same log",
            within,
            || async {
                let statuses = self.statuses().await;
                let leader = leader_of(statuses.values()).map_err(|()| "no leader".to_string());
                let summary = format!("{:?}", summarize(statuses.values()));
                let leader = leader.map_err(|reason| format!("{reason}: {summary}"))?;
                let commit_index = statuses[&leader].commit_index;
                // Every member of the leader's configuration: a removed node is not sent the
                // entries after its removal.
                let members = self
                    .membership(leader)
                    .await
                    .map(|status| status.membership.all_members())
                    .unwrap_or_default();
                let agreed = statuses.iter().all(|(id, status)| {
                    !members.contains(id) || {
                        status.last_applied == commit_index
                            && status.commit_index == commit_index
                            && status.last_log_index == commit_index
                    }
                });
                if agreed && commit_index > LogIndex::ZERO {
                    Ok(commit_index)
                } else {
                    Err(summary)
                }
            },
        )
        .await
    }
}

impl Drop for InProcessCluster {
    /// Crashes every node: the actors hold each other's addresses, so without this they would
    /// keep ticking in the System after the test is done with the cluster.
    fn drop(&mut self) {
        for slot in self.nodes.get_mut().values_mut() {
            if let Some(running) = slot.running.take() {
                for (_, task) in running.tasks {
                    task.abort();
                }
            }
        }
    }
}

/// Aborts every task of a node, then waits until none of them can run again.
async fn abort_all(running: RunningNode) {
    for (_, task) in &running.tasks {
        task.abort();
    }
    for (_, task) in running.tasks {
        // An aborted task resolves once its future is dropped; a task that already ended
        // resolves at once. Either way nothing of it runs after this.
        let _ = task.await;
    }
}

/// The consensus core's configuration for one node: default timings (in ticks of
/// [`TICK_INTERVAL`]), election timeouts seeded from the cluster seed, the node and its life.
fn core_config(id: NodeId, members: &[NodeId], seed: u64, incarnation: u64) -> raft_core::Config {
    let mut config = raft_core::Config::new(id, members.iter().copied());
    config.random_seed = mix(mix(seed ^ id.0) ^ incarnation);
    config
}

/// Runs `actor` in `context` as a task of the current arbiter, returning a handle whose abort
/// is a crash (what `Context::run` does, minus the lost handle).
fn spawn_actor<A>(context: Context<A>, actor: A) -> (Addr<A>, JoinHandle<()>)
where
    A: Actor<Context = Context<A>>,
{
    let address = context.address();
    let task = actix_rt::spawn(context.into_future(actor));
    (address, task)
}

/// The highest-term leader among `statuses`.
fn leader_of<'a>(statuses: impl Iterator<Item = &'a RaftStatus>) -> Result<NodeId, ()> {
    statuses
        .filter(|status| status.role == Role::Leader)
        .max_by_key(|status| status.term)
        .map(|status| status.id)
        .ok_or(())
}

/// `(id, role, term, commit_index, last_applied, last_log_index)` per node, for messages.
fn summarize<'a>(
    statuses: impl Iterator<Item = &'a RaftStatus>,
) -> Vec<(u64, Role, u64, u64, u64, u64)> {
    statuses
        .map(|status| {
            (
                status.id.0,
                status.role,
                status.term.0,
                status.commit_index.0,
                status.last_applied.0,
                status.last_log_index.0,
            )
        })
        .collect()
}
