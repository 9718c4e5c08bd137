//! Booting one node of an [`InProcessCluster`]: its stores opened on its disks and reconciled
//! as `raft-node` does, then its consensus, storage, applier and network actors wired.

use super::*;

impl InProcessCluster {
    /// Opens a store on the node's disk and starts its actors; see the module documentation.
    pub(super) fn boot(&self, id: NodeId) {
        let mut nodes = self.nodes.borrow_mut();
        let slot = nodes.get_mut(&id).expect("boot is only called for members");
        assert!(slot.running.is_none(), "node {id} is already running");
        slot.incarnation += 1;

        let raft_context: Context<RaftActor> = Context::new();
        let raft_address = raft_context.address();
        // A node that joined starts with no configuration, as `raft-node --join` does.
        let bootstrap: Vec<NodeId> = if self.joined.borrow().contains(&id) {
            Vec::new()
        } else {
            self.members.clone()
        };

        let gate = EventGate {
            consensus: raft_address.clone().recipient(),
            disk: match &slot.disk {
                NodeDisk::Memory(_) => None,
                NodeDisk::Simulated(disk) => Some(disk.clone()),
            },
        };
        let (gate_address, gate_task) = spawn_actor(Context::new(), gate);
        let ports = StoragePorts {
            events: gate_address.recipient(),
        };
        let mut snapshot_config = FileSnapshotStoreConfig::new(SNAPSHOT_DIRECTORY);
        snapshot_config.chunk_bytes = 16 * 1024;
        // Each life of the node sees its disks through views that die with it
        // (`for_this_process`): a snapshot writer thread still running when the node was
        // aborted cannot touch what the next life finds, as no thread of a killed process can.
        let snapshot_store: Arc<dyn SnapshotStore> = Arc::new(
            FileSnapshotStore::open_on(
                Arc::new(slot.snapshot_disk.for_this_process()),
                snapshot_config,
            )
            .unwrap_or_else(|error| panic!("node {id}: the snapshot store does not open: {error}")),
        );
        // Booted exactly as `raft-node` boots: the log reconciled with the newest snapshot.
        let (storage, storage_task, recovered) = match &slot.disk {
            NodeDisk::Memory(disk) => {
                let (mut store, recovered) = MemLogStore::open(disk.clone());
                let recovered =
                    core_recovered_state(&mut store, recovered, snapshot_store.as_ref())
                        .unwrap_or_else(|error| panic!("node {id}: {error:#}"));
                let actor = StorageActor::new(store, ports)
                    .with_snapshot_store(Arc::clone(&snapshot_store));
                let (storage, task) = spawn_actor(Context::new(), actor);
                (storage.recipient(), task, recovered)
            }
            NodeDisk::Simulated(disk) => {
                let mut config = FileLogStoreConfig::new(SIMULATED_WAL_DIRECTORY);
                config.segment_size_bytes = SIMULATED_SEGMENT_BYTES;
                let (mut store, recovered) =
                    FileLogStore::open_on(Arc::new(disk.for_this_process()), config)
                        .unwrap_or_else(|error| {
                            panic!("node {id}: the write-ahead log does not recover: {error}")
                        });
                let recovered =
                    core_recovered_state(&mut store, recovered, snapshot_store.as_ref())
                        .unwrap_or_else(|error| panic!("node {id}: {error:#}"));
                let actor = StorageActor::new(store, ports)
                    .with_snapshot_store(Arc::clone(&snapshot_store));
                let (storage, task) = spawn_actor(Context::new(), actor);
                (storage.recipient(), task, recovered)
            }
        };
        let disk_latency = DiskLatency::new(storage, mix(self.seed ^ mix(id.0) ^ slot.incarnation));
        let (disk_latency_address, disk_latency_task) = spawn_actor(Context::new(), disk_latency);

        let applier_ports = ApplierPorts {
            applied: raft_address.clone().recipient(),
        };
        let mut applier = match &recovered.snapshot {
            Some(snapshot) => ApplierActor::restored_from(
                KvStore::new(),
                applier_ports,
                snapshot_store.as_ref(),
                snapshot,
            )
            .unwrap_or_else(|error| panic!("node {id}: cannot restore {snapshot}: {error}")),
            None => ApplierActor::new(KvStore::new(), applier_ports),
        };
        if let Some(threshold_entries) = self.snapshots.threshold_entries {
            let policy = SnapshotPolicy {
                threshold_entries,
                ..SnapshotPolicy::default()
            };
            // Written on the applier's thread: a writer thread would run outside the paused
            // clock and a seed would no longer replay a run.
            applier = applier
                .with_snapshots(
                    Arc::clone(&snapshot_store),
                    policy,
                    raft_types::Membership::with_voters(bootstrap.iter().copied()),
                    raft_address.clone().recipient(),
                )
                .writing_snapshots_inline();
        }
        let checkpoints = applier.checkpoints();
        let (applier_address, applier_task) = spawn_actor(Context::new(), applier);

        let endpoint = SimEndpoint::start_for(
            &self.network,
            id,
            NetworkPorts {
                received: raft_address.clone().recipient(),
                peer_events: raft_address.clone().recipient(),
            },
        );

        let mut tasks = Vec::new();
        let network = match &self.appends_with_entries {
            None => endpoint.recipient(),
            Some(counter) => {
                let counter = ReplicationCounter {
                    network: endpoint.recipient(),
                    appends_with_entries: Arc::clone(counter),
                };
                let (address, task) = spawn_actor(Context::new(), counter);
                tasks.push(("replication counter", task));
                address.recipient()
            }
        };
        let ports = RaftPorts {
            storage: disk_latency_address.recipient(),
            network,
            apply: applier_address.clone().recipient(),
            query: applier_address.clone().recipient(),
            restore: applier_address.clone().recipient(),
            snapshot_store: Some(Arc::clone(&snapshot_store)),
        };
        let mut config = core_config(id, &bootstrap, self.seed, slot.incarnation);
        config.snapshot_trailing_entries = self.snapshots.trailing_entries;
        config.snapshot_chunk_bytes = self.snapshots.chunk_bytes;
        let core = raft_core::Raft::new(config, recovered)
            .expect("the harness's consensus configuration is valid");
        let mut actor_config = RaftActorConfig::new(TICK_INTERVAL);
        actor_config.check_invariants = true;
        // Deterministic: no blocking pool running outside the paused clock.
        actor_config.read_snapshot_chunks_inline = true;
        actor_config.serve_stale_reads_for_tests = self.stale_reader == Some(id);
        let actor = RaftActor::new(actor_config, core, ports);
        let metrics = actor.metrics();
        let (raft, raft_task) = spawn_actor(raft_context, actor);

        slot.running = Some(RunningNode {
            raft,
            applier: applier_address,
            metrics,
            snapshot_store,
            checkpoints,
            tasks: [
                ("consensus", raft_task),
                ("applier", applier_task),
                ("disk latency", disk_latency_task),
                ("storage", storage_task),
                ("storage event gate", gate_task),
            ]
            .into_iter()
            .chain(tasks)
            .collect(),
        });
    }
}
