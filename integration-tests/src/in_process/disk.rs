//! The disks of the in-process cluster: what a node keeps its log on ([`DiskModel`]), the
//! seeded write-and-sync latency in front of its storage actor, and the gate that silences a
//! node whose disk lost power.

use super::*;
use actix::{Actor, AsyncContext, Context, Handler, Recipient};
use raft_proto::storage::StorageEvent;
use raft_proto::storage::StorageRequest;
use std::collections::VecDeque;
use std::time::Duration;
use storage_actor::file_system::FileSystem;
use storage_actor::sim_file_system::SimFileSystem;
use storage_actor::{LogStore, MemDisk, MemLogStore};
use tokio::time::Instant;

/// What the nodes of an [`InProcessCluster`](super::InProcessCluster) keep their logs on: the
/// disk each node models, and so what a crash or a power loss takes from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiskModel {
    /// `MemLogStore` on a `MemDisk`: a flush is durable at once; a crash loses only the
    /// requests not yet flushed.
    #[default]
    Memory,
    /// The real `FileLogStore` on a `SimFileSystem`: a crash keeps the page cache, a power loss
    /// keeps only what was synced (and a seeded part of the rest).
    Simulated,
}

/// A node's disk.
#[derive(Clone, Debug)]
pub(super) enum NodeDisk {
    Memory(MemDisk),
    Simulated(SimFileSystem),
}

/// Where a node's write-ahead log lives on its simulated disk. `/node` is its data directory,
/// created durably when the disk is made; the store creates `wal` itself.
pub(super) const SIMULATED_WAL_DIRECTORY: &str = "/node/wal";

/// The WAL segment size on a simulated disk: small, so a run crosses segment rolls (and
/// compaction deletes whole segments often).
pub const SIMULATED_SEGMENT_BYTES: u64 = 8 * 1024;

/// Every simulated disk cuts its power within this many operations of a `power_loss` call.
pub(super) const POWER_CUT_OPERATIONS_MAX: u64 = 3;

/// How long `power_loss` lets the nodes work on for their cuts to land, in virtual time; a disk
/// that did not reach its cut by then (an idle node) goes dark at the end of it.
pub(super) const POWER_CUT_WINDOW: Duration = Duration::from_millis(20);

impl NodeDisk {
    pub(super) fn new(model: DiskModel, seed: u64) -> NodeDisk {
        match model {
            DiskModel::Memory => NodeDisk::Memory(MemDisk::default()),
            DiskModel::Simulated => {
                let disk = SimFileSystem::new(seed);
                let made = disk
                    .create_dir_all(std::path::Path::new("/node"))
                    .and_then(|()| disk.sync_directory(std::path::Path::new("/")));
                made.expect("a fresh simulated disk is powered");
                NodeDisk::Simulated(disk)
            }
        }
    }
}

/// Hands storage events on to the consensus actor, unless the node's simulated disk has lost
/// power: a node without power says nothing more, not even that its storage failed (which the
/// consensus actor would rightly take as fatal for the whole System).
pub(super) struct EventGate {
    pub(super) consensus: Recipient<StorageEvent>,
    /// `None` on a memory disk, which never loses power.
    pub(super) disk: Option<SimFileSystem>,
}

impl Actor for EventGate {
    type Context = Context<Self>;
}

impl Handler<StorageEvent> for EventGate {
    type Result = ();

    fn handle(&mut self, event: StorageEvent, _: &mut Context<Self>) {
        if self
            .disk
            .as_ref()
            .is_some_and(SimFileSystem::is_powered_off)
        {
            tracing::debug!(?event, "in-process cluster: dropped, the disk has no power");
            return;
        }
        self.consensus.do_send(event);
    }
}

/// Stands between a node's consensus actor and its storage actor and hands each request on
/// after a simulated write-and-sync latency in `[0, DISK_LATENCY_MAX]`, in order. It opens
/// the window a real disk has: a request sent but not yet durable, lost if the node crashes.
pub(super) struct DiskLatency {
    storage: Recipient<StorageRequest>,
    /// Requests with the time they reach the storage actor, in sending order.
    queue: VecDeque<(Instant, StorageRequest)>,
    /// State of the SplitMix64 sequence the latencies are drawn from.
    rng_state: u64,
}

impl DiskLatency {
    pub(super) fn new(storage: Recipient<StorageRequest>, seed: u64) -> DiskLatency {
        DiskLatency {
            storage,
            queue: VecDeque::new(),
            rng_state: seed,
        }
    }

    pub(super) fn next_latency(&mut self) -> Duration {
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let micros = DISK_LATENCY_MAX.as_micros() as u64;
        Duration::from_micros(mix(self.rng_state) % (micros + 1))
    }

    fn forward_due(&mut self) {
        let now = Instant::now();
        while let Some((due, _)) = self.queue.front() {
            if *due > now {
                break;
            }
            let (_, request) = self.queue.pop_front().expect("front was just seen");
            self.storage.do_send(request);
        }
    }
}

impl Actor for DiskLatency {
    type Context = Context<Self>;
}

impl Handler<StorageRequest> for DiskLatency {
    type Result = ();

    fn handle(&mut self, request: StorageRequest, context: &mut Context<Self>) {
        let now = Instant::now();
        // Never before an earlier request: the storage port is one ordered path to disk.
        let earliest = self.queue.back().map_or(now, |(due, _)| *due);
        let due = (now + self.next_latency()).max(earliest);
        self.queue.push_back((due, request));
        context.run_later(due - now, |latency, _| latency.forward_due());
    }
}

/// A fresh disk holding exactly `state`: what survives a crash.
pub(super) fn disk_holding(state: raft_types::StoredLog) -> MemDisk {
    let disk = MemDisk::default();
    let (mut store, _) = MemLogStore::open(disk.clone());
    let start = match state.prev_log_id {
        // A log that starts after a purge or a reset continues after the entry the store
        // knows precedes it (a `MemLogStore` always knows it).
        Some(prev) if prev.index.0 > 0 => store.reset(prev),
        Some(_) => Ok(()),
        None => panic!("a MemLogStore always knows the entry before its first"),
    };
    let written = start
        .and_then(|()| store.save_hard_state(&state.hard_state))
        .and_then(|()| store.append(&state.entries))
        .and_then(|()| store.sync());
    written.expect("an empty in-memory store accepts a contiguous log after its start");
    disk
}
