//! A deterministic in-core cluster: N `Raft` cores, a seeded message bus, a storage model that
//! loses everything not yet durable on crash, and a checker that asserts Raft's safety
//! properties (Figure 3) after every step.
//!
//! Everything random comes from one `ChaCha8Rng` seeded by the test, so a failing seed replays
//! exactly. The bus can drop, duplicate, reorder and delay; links can be cut per direction; a
//! message can be stashed and delivered much later on purpose (an old-term message arriving
//! after elections). With [`Faults::delay_completions`] storage completions queue up (in order,
//! as in the storage actor's mailbox) and reach the core only at a later step, across term
//! changes and truncations; with [`Faults::lagging_applier`] the state machine applies at a
//! step of its own. [`Cluster::deliver_batch`] feeds one server several inputs before a single
//! `take_commands`, as the consensus actor batches a mailbox.
//!
//! # Layout
//!
//! - `Cluster`: the servers, the bus and the fault controls.
//! - `Checker`: the cluster-wide invariants (Election Safety, Log Matching, Leader
//!   Completeness, State Machine Safety, commit on a durable majority, monotonic commit,
//!   in-order apply, linearizable ReadIndex).
//!
//! Seeds and the failure report (`seeds`, `run_seeds`) come from the `test-support` crate.

#![allow(dead_code)]

use raft_core::{Command, Config, Raft, Role, StoredLog};
use raft_types::Membership;
use raft_types::{
    Bytes, Entry, EntryPayload, HardState, IoSequence, LogId, LogIndex, NodeId, RaftMessage,
    SnapshotId, SnapshotMeta, SnapshotOutcome, SnapshotReceiveOutcome, Term,
};
pub mod builders;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What the bus does to messages.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub drop_probability: f64,
    pub duplicate_probability: f64,
    /// Deliver any eligible message, not the oldest.
    pub reorder: bool,
    /// Each message waits 0..=max_delay_steps bus steps before it may be delivered.
    pub max_delay_steps: u64,
    /// Each message is stashed with this probability: it leaves the normal queue and is
    /// delivered only when a step releases it, usually after several elections.
    pub stash_probability: f64,
    /// Storage completions wait in a per-server queue for a step of their own instead of
    /// reaching the core as soon as the write is durable.
    pub delay_completions: bool,
    /// Committed entries wait for an apply step of their own.
    pub lagging_applier: bool,
    /// At each random step, the chance that one server's disk stalls for 100..1000 steps:
    /// its storage requests pile up across elections and truncations, then complete in
    /// pieces, so completions arrive long after the log they describe has changed.
    pub storage_stall_probability: f64,
    /// Each server's state machine snapshots after this many entries applied since its last
    /// snapshot (`None`: never), so logs are compacted and lagging followers are sent
    /// snapshots.
    pub snapshot_every: Option<u64>,
    /// The chance that a received snapshot chunk is stored with a flipped byte (a bad disk or
    /// a bug in transit): the file then fails verification and the transfer starts over.
    pub corrupt_chunk_probability: f64,
}

impl Faults {
    /// Every kind of fault on, at moderate rates: the soak's mix.
    pub fn chaotic(seed: u64) -> Faults {
        Faults {
            drop_probability: [0.0, 0.05, 0.2][(seed % 3) as usize],
            duplicate_probability: [0.0, 0.05][(seed % 2) as usize],
            reorder: !seed.is_multiple_of(4),
            max_delay_steps: [0, 5, 30][(seed / 3 % 3) as usize],
            stash_probability: 0.01,
            delay_completions: true,
            lagging_applier: true,
            storage_stall_probability: 0.001,
            snapshot_every: [None, Some(7), Some(25)][(seed / 9 % 3) as usize],
            corrupt_chunk_probability: 0.02,
        }
    }
}

/// A configuration that makes snapshots small and their transfers many-chunked, for the
/// soak's snapshotting seeds: a handful of trailing entries, tiny chunks, a small window.
pub fn small_snapshots(config: &mut Config, seed: u64) {
    config.snapshot_trailing_entries = seed % 6;
    config.snapshot_chunk_bytes = [8, 24, 1000][(seed / 5 % 3) as usize];
    config.snapshot_max_inflight_chunks = 1 + (seed / 7 % 3) as usize;
    config.snapshot_chunk_timeout_ticks = 10;
}

#[derive(Clone, Debug)]
struct InFlight {
    from: NodeId,
    to: NodeId,
    message: RaftMessage,
    deliverable_at: u64,
}

/// One storage request waiting to become durable.
#[derive(Clone, Debug)]
enum StorageOperation {
    HardState(HardState),
    Truncate(LogIndex),
    Append(Vec<Entry>),
    Reset(LogId),
    Purge(LogIndex),
    StoreChunk {
        snapshot: SnapshotMeta,
        offset: u64,
        data: Bytes,
    },
}

/// What one storage flush reports, as the storage actor does: `HardStateSaved` when the batch
/// saved a hard state, `Persisted` when it appended (or reset), both naming the batch's last
/// request, and what became of each snapshot chunk.
#[derive(Clone, Debug)]
struct Completion {
    io: IoSequence,
    hard_state_saved: bool,
    persisted: Option<LogId>,
    chunks: Vec<(SnapshotId, SnapshotReceiveOutcome)>,
}

/// A snapshot file of the simulated state machine, whose state is the list of `LogId`s it
/// applied: the file is a 8-byte header (the count) and 16 bytes per `LogId`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSnapshot {
    pub meta: SnapshotMeta,
    pub bytes: Vec<u8>,
}

impl SimSnapshot {
    pub fn of(applied: &[LogId], membership: Membership) -> SimSnapshot {
        let mut bytes = (applied.len() as u64).to_le_bytes().to_vec();
        for log_id in applied {
            bytes.extend_from_slice(&log_id.term.0.to_le_bytes());
            bytes.extend_from_slice(&log_id.index.0.to_le_bytes());
        }
        let meta = SnapshotMeta {
            last_log_id: applied.last().copied().unwrap_or(LogId::ZERO),
            membership,
            size_bytes: bytes.len() as u64,
            file_checksum: checksum(&bytes),
        };
        SimSnapshot { meta, bytes }
    }

    /// The applied list the file holds.
    pub fn applied(&self) -> Vec<LogId> {
        let count = u64::from_le_bytes(self.bytes[..8].try_into().expect("8 bytes")) as usize;
        (0..count)
            .map(|position| {
                let at = 8 + position * 16;
                let word = |from: usize| {
                    u64::from_le_bytes(self.bytes[from..from + 8].try_into().expect("8 bytes"))
                };
                LogId::new(Term(word(at)), LogIndex(word(at + 8)))
            })
            .collect()
    }
}

/// FNV-1a, folded to 32 bits: the simulated file checksum.
fn checksum(bytes: &[u8]) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash ^ (hash >> 32)) as u32
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    /// The entry before `log[0]` when known (after a reset), as the WAL records it.
    pub log_prev: Option<LogId>,
    /// The index of `log[0]`; 1 until a purge or a reset.
    pub log_first: LogIndex,
    pub log: Vec<Entry>,
    /// Complete snapshots, oldest first; the newest two are kept.
    pub snapshots: Vec<SimSnapshot>,
}

impl Durable {
    fn fresh() -> Durable {
        Durable {
            log_prev: Some(LogId::ZERO),
            log_first: LogIndex(1),
            ..Durable::default()
        }
    }

    /// The entry at `index` in the durable log.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index < self.log_first {
            return None;
        }
        self.log.get((index.0 - self.log_first.0) as usize)
    }

    /// Whether this disk holds `log_id`: in the log, or covered by a snapshot (whose entries
    /// are committed, so one at a higher index holds every committed entry before it).
    pub fn holds(&self, log_id: LogId) -> bool {
        if log_id.index.0 == 0 {
            return false;
        }
        if self
            .entry(log_id.index)
            .is_some_and(|entry| entry.log_id == log_id)
        {
            return true;
        }
        self.newest_snapshot().is_some_and(|snapshot| {
            snapshot.meta.last_log_id.index >= log_id.index
                && snapshot.applied()[log_id.index.0 as usize - 1] == log_id
        })
    }

    pub fn newest_snapshot(&self) -> Option<&SimSnapshot> {
        self.snapshots.last()
    }

    fn next_index(&self) -> LogIndex {
        self.log_first.plus(self.log.len() as u64)
    }

    fn last_log_id(&self) -> LogId {
        match self.log.last() {
            Some(entry) => entry.log_id,
            None => self
                .log_prev
                .unwrap_or_else(|| LogId::new(Term(0), self.log_first.previous())),
        }
    }

    /// Adds a complete snapshot, keeping the newest two.
    fn add_snapshot(&mut self, snapshot: SimSnapshot) {
        if self.snapshots.iter().any(|held| held.meta == snapshot.meta) {
            return;
        }
        self.snapshots.push(snapshot);
        self.snapshots
            .sort_by_key(|snapshot| snapshot.meta.last_log_id.index);
        while self.snapshots.len() > 2 {
            self.snapshots.remove(0);
        }
    }
}

/// An item handed to the simulated state machine: an entry, or a snapshot to restore.
#[derive(Clone, Debug)]
enum ApplyItem {
    Entry(LogId),
    Restore(SnapshotMeta),
}

pub struct Server {
    pub raft: Option<Raft>,
    pub durable: Durable,
    /// Requests waiting for a flush; snapshot chunks carry no sequence.
    storage_queue: VecDeque<(Option<IoSequence>, StorageOperation)>,
    /// Completions of durable writes not yet reported to the core, oldest first.
    completions: VecDeque<Completion>,
    /// Committed entries (and snapshots to restore) handed to the applier and not yet applied.
    apply_queue: VecDeque<ApplyItem>,
    /// The index the next `Apply` must start after.
    handed_to_applier: LogIndex,
    /// The state machine: every LogId applied, in order (restored from a snapshot at start).
    pub applied: Vec<LogId>,
    /// The index of the state machine's last snapshot.
    last_snapshot_index: LogIndex,
    /// The bytes of a snapshot being received, with its meta. Gone on a crash: the snapshot
    /// store removes partial files when it opens.
    partial_snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// Every snapshot file this server can read: a leader keeps a file it is sending open,
    /// so retention deleting it does not stop the transfer.
    readable_snapshots: BTreeMap<SnapshotId, Vec<u8>>,
    /// Reads this server accepted, with the highest index known committed anywhere when the
    /// read arrived: a linearizable read must be served at an index at least that high.
    pending_reads: BTreeMap<u64, LogIndex>,
    pub reads_served: u64,
    pub reads_rejected: u64,
    /// The divergence this server stopped on, if any (only in a dishonest cluster).
    pub divergence: Option<raft_core::Divergence>,
    incarnation: u64,
    /// A slow disk: random steps do not flush this server's storage before this step.
    storage_stalled_until: u64,
}

impl Server {
    fn fresh(raft: Raft) -> Server {
        Server {
            raft: Some(raft),
            durable: Durable::fresh(),
            storage_queue: VecDeque::new(),
            completions: VecDeque::new(),
            apply_queue: VecDeque::new(),
            handed_to_applier: LogIndex::ZERO,
            applied: Vec::new(),
            last_snapshot_index: LogIndex::ZERO,
            partial_snapshot: None,
            readable_snapshots: BTreeMap::new(),
            pending_reads: BTreeMap::new(),
            reads_served: 0,
            reads_rejected: 0,
            divergence: None,
            incarnation: 0,
            storage_stalled_until: 0,
        }
    }
}

#[derive(Default, Debug, Clone)]
pub struct MessageStats {
    pub request_vote: u64,
    pub append_entries: u64,
    pub snapshot_chunks: u64,
    pub snapshots_installed: u64,
    pub append_entries_heartbeats: u64,
    pub responses: u64,
    /// AppendEntries sent per (from, to).
    pub append_entries_by_link: BTreeMap<(NodeId, NodeId), u64>,
}

impl MessageStats {
    pub fn total(&self) -> u64 {
        self.request_vote + self.append_entries + self.responses
    }
}

/// Cluster-wide safety properties, checked after every step.
#[derive(Default)]
pub struct Checker {
    /// Election Safety: at most one leader per term.
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// Every entry known committed anywhere, with the lowest term at which it was seen
    /// committed (an upper bound on the term of the leader that committed it).
    committed: BTreeMap<LogIndex, (LogId, Term)>,
    /// Log Matching: for every LogId ever appended anywhere, the term of the entry before it
    /// and the payload. Two entries with one LogId must agree on both.
    appended: BTreeMap<LogId, (Term, EntryPayload)>,
    /// Per server (and incarnation): the highest commit index seen, which must not decrease.
    commit_seen: BTreeMap<NodeId, LogIndex>,
    pub highest_committed: LogIndex,
    /// The configuration entries were committed under, from the index on which each was first
    /// seen: a committed entry must be durable on a majority of every voter set of it.
    commit_configurations: Vec<(LogIndex, Membership)>,
}

pub struct Cluster {
    pub seed: u64,
    pub random: ChaCha8Rng,
    pub configs: BTreeMap<NodeId, Config>,
    pub servers: BTreeMap<NodeId, Server>,
    in_flight: Vec<InFlight>,
    /// Messages held back on purpose (see [`Faults::stash_probability`]).
    stashed: Vec<InFlight>,
    pub faults: Faults,
    /// Directed links that are cut: (from, to).
    cut_links: BTreeSet<(NodeId, NodeId)>,
    pub bus_step: u64,
    /// Random steps taken so far (the clock of storage stalls).
    pub step_count: u64,
    pub stats: MessageStats,
    pub checker: Checker,
    /// Whether every server's storage keeps what it acknowledged. A test that forges a
    /// server's disk ([`Cluster::forge_durable`]) turns it off: the cluster-wide checks then
    /// no longer hold by design, and a divergence is recorded instead of failing the test.
    pub honest: bool,
    next_read_id: u64,
    next_command: u64,
    /// `SIM_TRACE=1`: print every command and delivery (replaying one seed).
    pub trace: bool,
}

pub fn ids(count: u64) -> Vec<NodeId> {
    (1..=count).map(NodeId).collect()
}

impl Cluster {
    pub fn new(size: u64, seed: u64) -> Cluster {
        Cluster::with_config(size, seed, |_| {})
    }

    pub fn with_config(size: u64, seed: u64, adjust: impl Fn(&mut Config)) -> Cluster {
        let members = ids(size);
        let mut configs = BTreeMap::new();
        let mut servers = BTreeMap::new();
        for id in &members {
            let mut config = Config::new(*id, members.clone());
            config.random_seed = seed.wrapping_mul(1000).wrapping_add(id.0);
            adjust(&mut config);
            let raft = Raft::new(config.clone(), raft_core::RecoveredState::default())
                .expect("valid config");
            configs.insert(*id, config);
            servers.insert(*id, Server::fresh(raft));
        }
        Cluster {
            seed,
            random: ChaCha8Rng::seed_from_u64(seed),
            configs,
            servers,
            in_flight: Vec::new(),
            stashed: Vec::new(),
            faults: Faults::default(),
            cut_links: BTreeSet::new(),
            bus_step: 0,
            step_count: 0,
            stats: MessageStats::default(),
            checker: Checker::default(),
            honest: true,
            next_read_id: 1,
            next_command: 1,
            trace: std::env::var("SIM_TRACE").is_ok(),
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.servers.keys().copied().collect()
    }

    /// Starts server `id` with an empty disk and no bootstrap configuration, as a server that
    /// joins an existing cluster does: it never campaigns and waits for a leader to add it.
    /// Its settings are the first server's.
    pub fn add_joining_server(&mut self, id: NodeId) {
        assert!(!self.servers.contains_key(&id), "{id} exists already");
        let mut config = self.configs.values().next().expect("a cluster").clone();
        config.id = id;
        config.members.clear();
        config.random_seed = self.seed.wrapping_mul(1000).wrapping_add(id.0);
        let raft =
            Raft::new(config.clone(), raft_core::RecoveredState::default()).expect("valid config");
        self.configs.insert(id, config);
        self.servers.insert(id, Server::fresh(raft));
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        self.servers[&id].raft.as_ref().expect("server is running")
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.servers[&id].raft.is_some()
    }

    /// Messages on the bus, not counting stashed ones.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Every live server that believes it leads, deposed ones included.
    pub fn believed_leaders(&self) -> Vec<NodeId> {
        self.leaders()
    }

    /// One of the servers that believe they lead, at random.
    pub fn random_believed_leader(&mut self) -> Option<NodeId> {
        let leaders = self.leaders();
        if leaders.is_empty() {
            return None;
        }
        Some(leaders[self.random.gen_range(0..leaders.len())])
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.servers
            .iter()
            .filter_map(|(id, server)| server.raft.as_ref().map(|raft| (*id, raft)))
            .filter(|(_, raft)| raft.role() == Role::Leader)
            .max_by_key(|(_, raft)| raft.current_term())
            .map(|(id, _)| id)
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.servers
            .iter()
            .filter(|(_, server)| {
                server
                    .raft
                    .as_ref()
                    .is_some_and(|raft| raft.role() == Role::Leader)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    // ----- driving ------------------------------------------------------------------------

    fn trace_delivery(&self, message: &InFlight) {
        if self.trace {
            let text = format!("{:?}", message.message);
            eprintln!(
                "[{}] deliver {} -> {}: {}",
                self.step_count,
                message.from,
                message.to,
                &text[..text.len().min(300)]
            );
        }
    }

    /// Applies `input` to server `id` (if up), then carries out its commands.
    pub fn with_server(&mut self, id: NodeId, input: impl FnOnce(&mut Raft)) {
        let Some(raft) = self.servers.get_mut(&id).and_then(|s| s.raft.as_mut()) else {
            return;
        };
        input(raft);
        self.process_commands(id);
    }

    fn process_commands(&mut self, id: NodeId) {
        loop {
            // Record new commits before the Apply commands that carry them are checked.
            self.check();
            let commands = match self.servers.get_mut(&id).and_then(|s| s.raft.as_mut()) {
                Some(raft) => raft.take_commands(),
                None => return,
            };
            if commands.is_empty() {
                break;
            }
            for command in commands {
                if self.servers[&id].raft.is_none() {
                    break;
                }
                self.run_command(id, command);
            }
            if !self.faults.lagging_applier {
                self.apply_queued(id);
            }
        }
        self.check();
    }

    /// The applier applies everything handed to it (restoring snapshots among it) and reports
    /// the last index; then, when due, the state machine takes a snapshot.
    pub fn apply_queued(&mut self, id: NodeId) {
        let server = self.server_mut(id);
        if server.raft.is_none() || server.apply_queue.is_empty() {
            return;
        }
        let mut last = LogIndex::ZERO;
        while let Some(item) = server.apply_queue.pop_front() {
            match item {
                ApplyItem::Entry(log_id) => {
                    assert_eq!(
                        log_id.index.0,
                        server.applied.len() as u64 + 1,
                        "the state machine applies in index order"
                    );
                    server.applied.push(log_id);
                    last = log_id.index;
                }
                ApplyItem::Restore(meta) => {
                    let bytes = server
                        .readable_snapshots
                        .get(&meta.id())
                        .expect("a snapshot is restored only once complete in the store");
                    let snapshot = SimSnapshot {
                        meta: meta.clone(),
                        bytes: bytes.clone(),
                    };
                    let restored = snapshot.applied();
                    assert!(
                        restored.len() as u64 >= server.applied.len() as u64,
                        "{id} restored snapshot {meta}, older than what it applied ({})",
                        server.applied.len()
                    );
                    server.applied = restored;
                    server.last_snapshot_index = meta.last_log_id.index;
                    last = meta.last_log_id.index;
                }
            }
        }
        self.check_applied_state(id);
        self.with_server(id, |raft| raft.applied(last));
        self.maybe_take_snapshot(id);
    }

    /// The state machine snapshots its state when `snapshot_every` entries were applied since
    /// its last snapshot; the file is durable at once and reported to the core.
    fn maybe_take_snapshot(&mut self, id: NodeId) {
        let Some(every) = self.faults.snapshot_every else {
            return;
        };
        let server = self.server_mut(id);
        let Some(raft) = &server.raft else {
            return;
        };
        let applied_index = LogIndex(server.applied.len() as u64);
        if applied_index.0 < server.last_snapshot_index.0 + every {
            return;
        }
        // The simulated state machine keeps no payloads: the configuration at the snapshot's
        // index comes from the core's log (the real applier tracks it from what it applies).
        let membership = raft.log().membership_at(applied_index).1.clone();
        let snapshot = SimSnapshot::of(&server.applied, membership);
        server.last_snapshot_index = applied_index;
        server
            .readable_snapshots
            .insert(snapshot.meta.id(), snapshot.bytes.clone());
        let meta = snapshot.meta.clone();
        server.durable.add_snapshot(snapshot);
        self.with_server(id, |raft| raft.snapshot_taken(meta));
    }

    /// Every state machine's state is a prefix of the committed log.
    fn check_applied_state(&self, id: NodeId) {
        if !self.honest {
            return;
        }
        for (position, log_id) in self.servers[&id].applied.iter().enumerate() {
            let index = LogIndex(position as u64 + 1);
            if let Some((committed, _)) = self.checker.committed.get(&index) {
                assert_eq!(
                    committed, log_id,
                    "State Machine Safety: {id}'s state holds {log_id} where {committed} was committed"
                );
            }
        }
    }

    /// Carries out one command.
    fn run_command(&mut self, id: NodeId, command: Command) {
        if self.trace {
            let text = format!("{command:?}");
            eprintln!(
                "[{}] {id} {}",
                self.step_count,
                &text[..text.len().min(300)]
            );
        }
        match command {
            Command::PersistHardState { hard_state, io } => {
                self.queue_storage(id, io, StorageOperation::HardState(hard_state));
            }
            Command::TruncateLog { since, io } => {
                self.queue_storage(id, io, StorageOperation::Truncate(since));
            }
            Command::AppendLog { entries, io } => {
                self.check_log_matching(id, &entries);
                self.queue_storage(id, io, StorageOperation::Append(entries));
            }
            Command::Send { to, message } => self.send(id, to, message),
            Command::Apply { entries } => {
                self.check_apply(id, &entries);
                let server = self.server_mut(id);
                server.handed_to_applier = entries.last().expect("never empty").index();
                server
                    .apply_queue
                    .extend(entries.iter().map(|entry| ApplyItem::Entry(entry.log_id)));
            }
            Command::PurgeLog { before } => {
                let server = self.server_mut(id);
                server
                    .storage_queue
                    .push_back((None, StorageOperation::Purge(before)));
            }
            Command::ResetLog { last_log_id, io } => {
                self.queue_storage(id, io, StorageOperation::Reset(last_log_id));
            }
            Command::StoreSnapshotChunk {
                snapshot,
                offset,
                data,
            } => {
                let server = self.server_mut(id);
                server.storage_queue.push_back((
                    None,
                    StorageOperation::StoreChunk {
                        snapshot,
                        offset,
                        data,
                    },
                ));
            }
            Command::SendSnapshotChunk {
                to,
                mut request,
                length,
            } => {
                let bytes = self.servers[&id]
                    .readable_snapshots
                    .get(&request.snapshot.id())
                    .expect("a leader sends only snapshots it holds");
                let start = request.offset as usize;
                let end = (start + length as usize).min(bytes.len());
                request.data = Bytes::copy_from_slice(&bytes[start..end]);
                self.stats.snapshot_chunks += 1;
                self.send(id, to, RaftMessage::InstallSnapshot(request));
            }
            Command::RestoreSnapshot { snapshot } => {
                let server = self.server_mut(id);
                assert!(
                    snapshot.last_log_id.index > server.handed_to_applier,
                    "{id} restores {snapshot} after handing entries through {} to the applier",
                    server.handed_to_applier
                );
                server.handed_to_applier = snapshot.last_log_id.index;
                server.apply_queue.push_back(ApplyItem::Restore(snapshot));
                self.stats.snapshots_installed += 1;
            }
            Command::Diverged(divergence) => {
                assert!(
                    !self.honest,
                    "{id} stopped on a divergence in a cluster of honest servers: {divergence}"
                );
                self.server_mut(id).divergence = Some(divergence);
            }
            Command::ReadReady {
                request_id,
                read_index,
            } => {
                let server = self.server_mut(id);
                let required = server
                    .pending_reads
                    .remove(&request_id)
                    .expect("ReadReady answers a read this server accepted");
                assert!(
                    read_index >= required,
                    "linearizability: read {request_id} on {id} served at index {read_index}, \
                     but index {required} was already committed when it arrived"
                );
                let applied = server.applied.len() as u64;
                assert!(
                    applied >= read_index.0,
                    "read served before its read index was applied"
                );
                server.reads_served += 1;
            }
            Command::RejectRead { request_id, .. } => {
                let server = self.server_mut(id);
                server
                    .pending_reads
                    .remove(&request_id)
                    .expect("RejectRead answers a read this server accepted");
                server.reads_rejected += 1;
            }
        }
    }

    fn queue_storage(&mut self, id: NodeId, io: IoSequence, operation: StorageOperation) {
        let server = self.server_mut(id);
        if let Some(last) = server.storage_queue.iter().rev().find_map(|(io, _)| *io) {
            assert!(io > last, "storage requests are numbered in emission order");
        }
        server.storage_queue.push_back((Some(io), operation));
    }

    fn server_mut(&mut self, id: NodeId) -> &mut Server {
        self.servers.get_mut(&id).expect("known server")
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: RaftMessage) {
        self.check_said_only_what_is_durable(from, to, &message);
        match &message {
            RaftMessage::RequestVote(_) => self.stats.request_vote += 1,
            RaftMessage::AppendEntries(request) => {
                self.stats.append_entries += 1;
                if request.entries.is_empty() {
                    self.stats.append_entries_heartbeats += 1;
                }
                *self
                    .stats
                    .append_entries_by_link
                    .entry((from, to))
                    .or_default() += 1;
            }
            RaftMessage::InstallSnapshot(_) => {}
            _ => self.stats.responses += 1,
        }
        if self.cut_links.contains(&(from, to)) || !self.servers.contains_key(&to) {
            // (A message to a server that does not exist is lost, as on a real network.)
            return;
        }
        if self.faults.drop_probability > 0.0 && self.random.gen_bool(self.faults.drop_probability)
        {
            return;
        }
        let copies = if self.faults.duplicate_probability > 0.0
            && self.random.gen_bool(self.faults.duplicate_probability)
        {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.faults.max_delay_steps > 0 {
                self.random.gen_range(0..=self.faults.max_delay_steps)
            } else {
                0
            };
            let in_flight = InFlight {
                from,
                to,
                message: message.clone(),
                deliverable_at: self.bus_step + delay,
            };
            if self.faults.stash_probability > 0.0
                && self.random.gen_bool(self.faults.stash_probability)
            {
                self.stashed.push(in_flight);
            } else {
                self.in_flight.push(in_flight);
            }
        }
    }

    /// Nothing is said before it is durable (docs/CORE.md): a vote, a vote request, an
    /// AppendEntries and an acknowledgement each depend on a term, a vote or entries that must
    /// be on the sender's disk when the message leaves. A message held behind a later save
    /// may leave after the disk moved on to a newer term, which supersedes what it depended on
    /// (a server never acts in an older term again): that passes too.
    fn check_said_only_what_is_durable(&self, from: NodeId, to: NodeId, message: &RaftMessage) {
        let server = &self.servers[&from];
        let durable = &server.durable;
        let durable_term = durable.hard_state.current_term;
        let durable_vote = durable.hard_state.voted_for;
        match message {
            RaftMessage::RequestVote(request) => assert!(
                durable_term > request.term
                    || (durable_term == request.term && durable_vote == Some(from)),
                "{from} asked for votes in term {} before its own vote was durable ({:?})",
                request.term,
                durable.hard_state
            ),
            RaftMessage::RequestVoteResponse(response) if response.vote_granted => assert!(
                durable_term > response.term
                    || (durable_term == response.term && durable_vote == Some(to)),
                "{from} granted {to} its vote in term {} before it was durable ({:?})",
                response.term,
                durable.hard_state
            ),
            RaftMessage::AppendEntries(request) => assert!(
                durable_term >= request.term,
                "{from} led term {} before the term was durable ({:?})",
                request.term,
                durable.hard_state
            ),
            RaftMessage::AppendEntriesResponse(response) => {
                let raft_types::AppendOutcome::Success { match_index } = response.outcome else {
                    return;
                };
                assert!(
                    durable_term >= response.term,
                    "{from} acknowledged in term {} before the term was durable",
                    response.term
                );
                if durable_term > response.term || match_index == LogIndex::ZERO {
                    return;
                }
                // Within one term the log through an acknowledged index never changes.
                let raft = server.raft.as_ref().expect("a running server sends");
                let Some(log_id) = raft.log().log_id_at(match_index) else {
                    // Purged since: covered by a durable snapshot.
                    assert!(
                        raft.log().last_purged_log_id().index >= match_index,
                        "an index acknowledged in this term is in the log or purged"
                    );
                    return;
                };
                assert!(
                    durable.holds(log_id),
                    "{from} acknowledged {log_id} to {to}, which its disk does not hold"
                );
            }
            RaftMessage::InstallSnapshotResponse(response) => match &response.outcome {
                SnapshotOutcome::Installed { last_log_id } => assert!(
                    durable
                        .snapshots
                        .iter()
                        .any(|snapshot| snapshot.meta.last_log_id == *last_log_id)
                        || durable.holds(*last_log_id),
                    "{from} told {to} it installed {last_log_id} before the snapshot was durable"
                ),
                SnapshotOutcome::Receiving {
                    snapshot,
                    next_offset,
                } if *next_offset > 0 => {
                    // Storage reports a batch of chunks at once: a later chunk of the batch
                    // may have completed the file, or failed its verification and removed the
                    // partial file, before the answer for an earlier one leaves. That answer
                    // was true when storage made it, and only paces the leader; what can be
                    // checked is that a partial file still there is not shorter.
                    if let Some((_, bytes)) = server
                        .partial_snapshot
                        .as_ref()
                        .filter(|(meta, _)| meta.id() == *snapshot)
                    {
                        assert!(
                            bytes.len() as u64 >= *next_offset,
                            "{from} told {to} it holds {next_offset} bytes of {snapshot}; its disk has {}",
                            bytes.len()
                        );
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Delivers one stashed message now (if any), however old: a message of a past term
    /// reaching a server that has moved on, or the same leader in a later term.
    pub fn release_stashed(&mut self) -> bool {
        if self.stashed.is_empty() {
            return false;
        }
        let position = self.random.gen_range(0..self.stashed.len());
        let message = self.stashed.swap_remove(position);
        if self.cut_links.contains(&(message.from, message.to)) {
            return true;
        }
        self.trace_delivery(&message);
        self.with_server(message.to, |raft| raft.step(message.from, message.message));
        true
    }

    /// Holds back, from now on, every message for which `select` is true (a targeted stash).
    pub fn stash_in_flight(&mut self, select: impl Fn(NodeId, NodeId, &RaftMessage) -> bool) {
        let (stash, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|message| select(message.from, message.to, &message.message));
        self.in_flight = keep;
        self.stashed.extend(stash);
    }

    /// Delivers every stashed message matching `select` now, oldest first, as if its link
    /// were up for it (a packet that was already on its way when the link went down).
    pub fn release_stashed_matching(
        &mut self,
        select: impl Fn(NodeId, NodeId, &RaftMessage) -> bool,
    ) -> usize {
        let (release, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.stashed)
            .into_iter()
            .partition(|message| select(message.from, message.to, &message.message));
        self.stashed = keep;
        let count = release.len();
        for message in release {
            self.with_server(message.to, |raft| raft.step(message.from, message.message));
        }
        count
    }

    /// Feeds server `id` up to `max_inputs` deliverable messages addressed to it, and its
    /// queued storage completions, before one `take_commands`: what the consensus actor does
    /// with a full mailbox.
    pub fn deliver_batch(&mut self, id: NodeId, max_inputs: usize) {
        self.bus_step += 1;
        let now = self.bus_step;
        if self.servers[&id].raft.is_none() {
            return;
        }
        let mut inputs = 0;
        while inputs < max_inputs {
            let eligible: Vec<usize> = self
                .in_flight
                .iter()
                .enumerate()
                .filter(|(_, message)| message.to == id && message.deliverable_at <= now)
                .map(|(position, _)| position)
                .collect();
            if eligible.is_empty() {
                break;
            }
            let position = if self.faults.reorder {
                eligible[self.random.gen_range(0..eligible.len())]
            } else {
                eligible[0]
            };
            let message = self.in_flight.remove(position);
            inputs += 1;
            if self.cut_links.contains(&(message.from, message.to)) {
                continue;
            }
            self.trace_delivery(&message);
            let raft = self.servers.get_mut(&id).and_then(|s| s.raft.as_mut());
            raft.expect("server is running")
                .step(message.from, message.message);
            if self.random.gen_bool(0.2) {
                self.report_completions_without_flush(id);
            }
        }
        self.process_commands(id);
    }

    /// Reports every queued completion of `id` to its core without taking its commands (part
    /// of a batch).
    fn report_completions_without_flush(&mut self, id: NodeId) {
        let server = self.server_mut(id);
        let completions: Vec<Completion> = server.completions.drain(..).collect();
        let raft = server.raft.as_mut().expect("server is running");
        for completion in completions {
            Self::report_completion(raft, completion);
        }
    }

    fn report_completion(raft: &mut Raft, completion: Completion) {
        if std::env::var("SIM_TRACE").is_ok() {
            eprintln!("    completion at {}: {completion:?}", raft.id());
        }
        if completion.hard_state_saved {
            raft.hard_state_saved(completion.io);
        }
        if let Some(last) = completion.persisted {
            raft.persisted(completion.io, last);
        }
        for (snapshot, outcome) in completion.chunks {
            raft.snapshot_chunk_stored(snapshot, outcome);
        }
    }

    /// Reports `id`'s oldest queued completion (or all of them) to its core.
    pub fn deliver_completions(&mut self, id: NodeId, all: bool) {
        loop {
            let server = self.server_mut(id);
            if server.raft.is_none() {
                return;
            }
            let Some(completion) = server.completions.pop_front() else {
                return;
            };
            self.with_server(id, |raft| Self::report_completion(raft, completion));
            if !all {
                return;
            }
        }
    }

    /// Delivers one deliverable message (the oldest, or a random one when reordering).
    /// Returns false when none is deliverable.
    pub fn deliver_one(&mut self) -> bool {
        self.bus_step += 1;
        let now = self.bus_step;
        let eligible: Vec<usize> = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, message)| message.deliverable_at <= now)
            .map(|(position, _)| position)
            .collect();
        if eligible.is_empty() {
            return false;
        }
        let position = if self.faults.reorder {
            eligible[self.random.gen_range(0..eligible.len())]
        } else {
            eligible[0]
        };
        let message = self.in_flight.remove(position);
        // A link cut after the message left still loses it (the TCP connection dies).
        if self.cut_links.contains(&(message.from, message.to)) {
            return true;
        }
        self.trace_delivery(&message);
        self.with_server(message.to, |raft| raft.step(message.from, message.message));
        true
    }

    /// Makes `id`'s queued storage operations durable: all of them, or with `partial` a random
    /// prefix. The completion (as the storage actor reports it) reaches the core at once, or
    /// with [`Faults::delay_completions`] joins the server's completion queue.
    pub fn flush_storage(&mut self, id: NodeId, partial: bool) {
        let server = self.server_mut(id);
        if server.raft.is_none() || server.storage_queue.is_empty() {
            return;
        }
        let queued = server.storage_queue.len();
        let count = if partial {
            self.random.gen_range(1..=queued)
        } else {
            queued
        };
        let corrupt_probability = self.faults.corrupt_chunk_probability;
        let corrupt: Vec<bool> = (0..count)
            .map(|_| corrupt_probability > 0.0 && self.random.gen_bool(corrupt_probability))
            .collect();
        let server = self.server_mut(id);
        let mut completion = Completion {
            io: IoSequence::ZERO,
            hard_state_saved: false,
            persisted: None,
            chunks: Vec::new(),
        };
        let mut appended = false;
        let mut truncated = false;
        let operations: Vec<_> = server.storage_queue.drain(..count).collect();
        for ((io, operation), corrupt) in operations.into_iter().zip(corrupt) {
            if let Some(io) = io {
                completion.io = io;
            }
            let durable = &mut server.durable;
            match operation {
                StorageOperation::HardState(hard_state) => {
                    durable.hard_state = hard_state;
                    completion.hard_state_saved = true;
                }
                StorageOperation::Truncate(since) => {
                    assert!(since >= durable.log_first, "truncating purged entries");
                    durable
                        .log
                        .truncate((since.0 - durable.log_first.0) as usize);
                    truncated = true;
                }
                StorageOperation::Append(entries) => {
                    assert_eq!(
                        entries[0].index(),
                        durable.next_index(),
                        "storage appends must be contiguous with the durable log"
                    );
                    durable.log.extend(entries);
                    appended = true;
                }
                StorageOperation::Reset(last_log_id) => {
                    durable.log.clear();
                    durable.log_first = last_log_id.index.next();
                    durable.log_prev = Some(last_log_id);
                    appended = true;
                    truncated = true;
                }
                StorageOperation::Purge(before) => {
                    // Whole "segments": a random amount up to `before`, as the WAL deletes
                    // only segments that lie entirely before it.
                    let removable = before.0.saturating_sub(durable.log_first.0) as usize;
                    let removable = removable.min(durable.log.len());
                    if removable > 0 {
                        durable.log.drain(..removable);
                        durable.log_first = durable.log_first.plus(removable as u64);
                        durable.log_prev = None;
                    }
                }
                StorageOperation::StoreChunk {
                    snapshot,
                    offset,
                    data,
                } => {
                    let mut data = data.to_vec();
                    if corrupt && !data.is_empty() {
                        data[0] ^= 0x55;
                    }
                    // The snapshot store's rules: offset 0 starts over (dropping any partial
                    // file); elsewhere a chunk must continue the partial file of its own
                    // snapshot, or it is refused and changes nothing.
                    let stored_of_this = match &server.partial_snapshot {
                        Some((meta, bytes)) if *meta == snapshot => bytes.len() as u64,
                        _ => 0,
                    };
                    if offset != 0 && offset != stored_of_this {
                        completion.chunks.push((
                            snapshot.id(),
                            SnapshotReceiveOutcome::Stored {
                                next_offset: stored_of_this,
                            },
                        ));
                        continue;
                    }
                    let mut bytes = match server.partial_snapshot.take() {
                        Some((meta, bytes)) if meta == snapshot && offset != 0 => bytes,
                        _ => Vec::new(),
                    };
                    bytes.extend_from_slice(&data);
                    let stored = bytes.len() as u64;
                    if stored < snapshot.size_bytes {
                        server.partial_snapshot = Some((snapshot.clone(), bytes));
                        completion.chunks.push((
                            snapshot.id(),
                            SnapshotReceiveOutcome::Stored {
                                next_offset: stored,
                            },
                        ));
                    } else if stored == snapshot.size_bytes
                        && checksum(&bytes) == snapshot.file_checksum
                    {
                        server
                            .readable_snapshots
                            .insert(snapshot.id(), bytes.clone());
                        server.durable.add_snapshot(SimSnapshot {
                            meta: snapshot.clone(),
                            bytes,
                        });
                        completion
                            .chunks
                            .push((snapshot.id(), SnapshotReceiveOutcome::Complete));
                    } else {
                        completion.chunks.push((
                            snapshot.id(),
                            SnapshotReceiveOutcome::Rejected {
                                reason: "checksum mismatch".to_string(),
                            },
                        ));
                    }
                }
            }
        }
        if appended {
            completion.persisted = Some(server.durable.last_log_id());
        }
        if truncated {
            // A truncation is the one way a durable copy of an entry disappears.
            self.check_committed_durable_on_majority(true);
        }
        if !completion.hard_state_saved
            && completion.persisted.is_none()
            && completion.chunks.is_empty()
        {
            return;
        }
        // Delayed completions are reported in order: this one joins the queue, or (half the
        // time) the queue is reported now with it.
        self.server_mut(id).completions.push_back(completion);
        if !self.faults.delay_completions || self.random.gen_bool(0.5) {
            self.deliver_completions(id, true);
        }
    }

    pub fn flush_all_storage(&mut self) {
        for id in self.ids() {
            self.flush_storage(id, false);
        }
    }

    /// Runs the bus and storage until nothing is left to do (bounded).
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            self.flush_all_storage();
            for id in self.ids() {
                self.deliver_completions(id, true);
                self.apply_queued(id);
            }
            let mut delivered = false;
            while self.deliver_one() {
                delivered = true;
            }
            let storage_idle = self.servers.values().all(|server| {
                server.raft.is_none()
                    || (server.storage_queue.is_empty()
                        && server.completions.is_empty()
                        && server.apply_queue.is_empty())
            });
            if !delivered && storage_idle && self.in_flight.is_empty() {
                return;
            }
            if !delivered && storage_idle {
                // Only delayed messages remain: let bus time pass.
                self.bus_step += 1;
            }
        }
        panic!("cluster did not settle");
    }

    pub fn tick_all(&mut self) {
        for id in self.ids() {
            self.with_server(id, Raft::tick);
        }
    }

    /// `ticks` rounds of: every server ticks, then the cluster settles.
    pub fn run_ticks(&mut self, ticks: u64) {
        for _ in 0..ticks {
            self.tick_all();
            self.settle();
        }
    }

    /// Ticks until some server is leader (and every server agrees after settling); returns it.
    pub fn elect(&mut self, max_ticks: u64) -> NodeId {
        for _ in 0..max_ticks {
            self.tick_all();
            self.settle();
            if let Some(leader) = self.leader() {
                let term = self.raft(leader).current_term();
                if self.raft(leader).commit_index() >= self.raft(leader).log().last_index()
                    || term > Term(0)
                {
                    return leader;
                }
            }
        }
        panic!(
            "seed {}: no leader within {max_ticks} ticks; {}",
            self.seed,
            self.describe_servers()
        );
    }

    pub fn propose(&mut self, id: NodeId) -> Option<LogId> {
        let command = self.next_command.to_be_bytes().to_vec();
        self.next_command += 1;
        let mut result = None;
        self.with_server(id, |raft| result = raft.propose(command).ok());
        result
    }

    pub fn read(&mut self, id: NodeId) -> bool {
        let accepted = self.register_read(id);
        self.process_commands(id);
        accepted
    }

    /// Registers a read at `id` without taking its commands (part of a batch); returns
    /// whether the core accepted it.
    pub fn register_read(&mut self, id: NodeId) -> bool {
        let request_id = self.next_read_id;
        self.next_read_id += 1;
        let required = self.checker.highest_committed;
        let mut accepted = false;
        if let Some(raft) = self.servers.get_mut(&id).and_then(|s| s.raft.as_mut()) {
            accepted = raft.read_index(request_id).is_ok();
        }
        if accepted {
            self.server_mut(id)
                .pending_reads
                .insert(request_id, required);
        }
        accepted
    }

    // ----- faults -------------------------------------------------------------------------

    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut_links.insert((from, to));
    }

    pub fn cut_both(&mut self, left: NodeId, right: NodeId) {
        self.cut(left, right);
        self.cut(right, left);
    }

    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.cut_both(id, other);
            }
        }
    }

    /// Splits the cluster into `group` and everyone else.
    pub fn partition(&mut self, group: &[NodeId]) {
        for inside in group {
            for outside in self.ids() {
                if !group.contains(&outside) {
                    self.cut_both(*inside, outside);
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut_links.clear();
    }

    /// Tells every running server that its connection to `lost` closed (`peer_connection_lost`).
    pub fn tell_connection_lost(&mut self, lost: NodeId) {
        for id in self.ids() {
            if id != lost && self.is_up(id) {
                self.with_server(id, |raft| raft.peer_connection_lost(lost));
            }
        }
    }

    /// Stops `id`, losing every storage operation not yet durable and its volatile state.
    pub fn crash(&mut self, id: NodeId) {
        let server = self.server_mut(id);
        server.raft = None;
        server.storage_queue.clear();
        server.completions.clear();
        server.apply_queue.clear();
        server.applied.clear();
        server.handed_to_applier = LogIndex::ZERO;
        server.last_snapshot_index = LogIndex::ZERO;
        server.partial_snapshot = None;
        server.readable_snapshots.clear();
        server.pending_reads.clear();
        self.checker.commit_seen.remove(&id);
    }

    /// Rewrites what crashed server `id` holds on disk (a restored backup, another member's
    /// data directory): the cluster stops being honest.
    pub fn forge_durable(&mut self, id: NodeId, forge: impl FnOnce(&mut Durable)) {
        assert!(!self.is_up(id), "forge the disk of a crashed server only");
        self.honest = false;
        forge(&mut self.server_mut(id).durable);
    }

    /// Restarts `id` from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        let mut config = self.configs[&id].clone();
        let server = self.servers.get_mut(&id).expect("known server");
        assert!(server.raft.is_none(), "restart a crashed server only");
        server.incarnation += 1;
        config.random_seed = config.random_seed.wrapping_add(server.incarnation * 7919);
        let durable = &mut server.durable;
        let newest = durable.newest_snapshot().cloned();
        let stored = StoredLog {
            hard_state: durable.hard_state,
            first_index: durable.log_first,
            prev_log_id: durable.log_prev,
            entries: durable.log.clone(),
        };
        let (recovered, reset) = raft_core::reconcile(
            newest.as_ref().map(|snapshot| snapshot.meta.clone()),
            stored,
        )
        .expect("a durable log always continues a durable snapshot");
        if let Some(last_log_id) = reset {
            durable.log.clear();
            durable.log_first = last_log_id.index.next();
            durable.log_prev = Some(last_log_id);
        }
        // The state machine is restored from the newest snapshot before the core starts.
        server.applied = newest
            .as_ref()
            .map(SimSnapshot::applied)
            .unwrap_or_default();
        server.handed_to_applier = LogIndex(server.applied.len() as u64);
        server.last_snapshot_index = server.handed_to_applier;
        for snapshot in &durable.snapshots {
            server
                .readable_snapshots
                .insert(snapshot.meta.id(), snapshot.bytes.clone());
        }
        server.raft = Some(Raft::new(config, recovered).expect("valid config"));
        self.process_commands(id);
    }

    // ----- checks -------------------------------------------------------------------------

    fn check_log_matching(&mut self, id: NodeId, entries: &[Entry]) {
        if !self.honest {
            return;
        }
        let raft = self.servers[&id].raft.as_ref().expect("server is running");
        for entry in entries {
            let previous_term = raft
                .log()
                .term_at(entry.index().previous())
                .expect("the entry before an appended one is in the log");
            match self.checker.appended.get(&entry.log_id) {
                Some((known_previous_term, known_payload)) => {
                    assert_eq!(
                        *known_previous_term, previous_term,
                        "Log Matching: {} follows different terms on different servers",
                        entry.log_id
                    );
                    assert_eq!(
                        known_payload, &entry.payload,
                        "Log Matching: {} holds different commands",
                        entry.log_id
                    );
                }
                None => {
                    self.checker
                        .appended
                        .insert(entry.log_id, (previous_term, entry.payload.clone()));
                }
            }
        }
    }

    fn check_apply(&mut self, id: NodeId, entries: &[Entry]) {
        if !self.honest {
            return;
        }
        let server = self.servers.get_mut(&id).expect("known server");
        let handed_over = server.handed_to_applier.0;
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index().0,
                handed_over + offset as u64 + 1,
                "entries are applied in index order, each once"
            );
            let (committed, _) = self
                .checker
                .committed
                .get(&entry.index())
                .expect("only committed entries are applied");
            assert_eq!(
                *committed, entry.log_id,
                "State Machine Safety: {id} applied {} where {} was committed",
                entry.log_id, committed
            );
        }
    }

    /// Every committed entry is durable on a majority. Checked for the highest committed
    /// entry after every step (durable logs obey Log Matching, so a server holding it holds
    /// every committed entry before it), and for all of them (`all`) after every durable
    /// truncation, the one way a durable copy disappears.
    fn check_committed_durable_on_majority(&self, all: bool) {
        if !self.honest {
            return;
        }
        let highest = self.checker.highest_committed;
        let lowest = if all { LogIndex(1) } else { highest };
        for (_, (log_id, _)) in self.checker.committed.range(lowest..=highest) {
            assert!(
                self.durable_on_a_majority(*log_id),
                "committed entry {log_id} is durable on less than a majority of {}; disks: {}",
                self.commit_configuration(log_id.index),
                self.describe_disks()
            );
        }
    }

    /// The configuration `index` was committed under.
    fn commit_configuration(&self, index: LogIndex) -> &Membership {
        &self
            .checker
            .commit_configurations
            .iter()
            .rev()
            .find(|(from, _)| *from <= index)
            .or(self.checker.commit_configurations.first())
            .expect("a configuration is recorded with the first commit")
            .1
    }

    /// Whether `log_id` is durable on a majority of every voter set it was committed under.
    fn durable_on_a_majority(&self, log_id: LogId) -> bool {
        self.commit_configuration(log_id.index).is_quorum(|id| {
            self.servers
                .get(&id)
                .is_some_and(|server| server.durable.holds(log_id))
        })
    }

    /// Each server's durable log range and snapshots, for failure messages.
    pub fn describe_disks(&self) -> String {
        self.servers
            .iter()
            .map(|(id, server)| {
                let durable = &server.durable;
                let snapshots: Vec<String> = durable
                    .snapshots
                    .iter()
                    .map(|snapshot| snapshot.meta.last_log_id.to_string())
                    .collect();
                format!(
                    "{id}: log {}..{} (prev {:?}, last {}), snapshots [{}]",
                    durable.log_first,
                    durable.next_index(),
                    durable.log_prev,
                    durable.last_log_id(),
                    snapshots.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Cluster-wide invariants plus each core's own `check_invariants`.
    pub fn check(&mut self) {
        if !self.honest {
            for server in self.servers.values() {
                if let Some(raft) = &server.raft {
                    raft.check_invariants();
                }
            }
            return;
        }
        let ids = self.ids();
        for id in ids {
            let Some(raft) = self.servers[&id].raft.as_ref() else {
                continue;
            };
            raft.check_invariants();
            let term = raft.current_term();
            if raft.role() == Role::Leader {
                match self.checker.leaders_by_term.get(&term) {
                    Some(leader) => assert_eq!(
                        *leader, id,
                        "Election Safety: {leader} and {id} both leaders in term {term}"
                    ),
                    None => {
                        self.checker.leaders_by_term.insert(term, id);
                        // Leader Completeness: every entry committed in an earlier term is
                        // in the new leader's log (or in the snapshot that replaced it).
                        let purged = raft.log().last_purged_log_id().index;
                        for (index, (log_id, committed_term)) in &self.checker.committed {
                            if *committed_term < term && *index >= purged {
                                assert_eq!(
                                    raft.log().log_id_at(*index),
                                    Some(*log_id),
                                    "Leader Completeness: leader {id} of term {term} lacks \
                                     committed entry {log_id}"
                                );
                            }
                        }
                    }
                }
            }
            let commit_index = raft.commit_index();
            let seen = self
                .checker
                .commit_seen
                .get(&id)
                .copied()
                .unwrap_or_default();
            if commit_index < seen {
                panic!("commit index of {id} decreased from {seen} to {commit_index}");
            }
            if commit_index > seen {
                let snapshot_state = self.servers[&id]
                    .durable
                    .snapshots
                    .iter()
                    .rev()
                    .find(|snapshot| snapshot.meta.last_log_id.index >= commit_index)
                    .map(SimSnapshot::applied);
                for index in (seen.0 + 1)..=commit_index.0 {
                    // Entries an installed snapshot covers are not in the log: the snapshot
                    // says what was committed there.
                    let log_id = raft.log().log_id_at(LogIndex(index)).unwrap_or_else(|| {
                        snapshot_state.as_ref().expect(
                            "committed entries are in the log or in a snapshot covering them",
                        )[index as usize - 1]
                    });
                    match self.checker.committed.get(&LogIndex(index)) {
                        Some((known, _)) => assert_eq!(
                            *known, log_id,
                            "State Machine Safety: index {index} committed as {known} and {log_id}"
                        ),
                        None => {
                            self.checker
                                .committed
                                .insert(LogIndex(index), (log_id, term));
                        }
                    }
                }
                if raft.role() == Role::Leader {
                    // A leader's commit index moves first: record what it committed under.
                    let membership = raft.membership().clone();
                    let configurations = &mut self.checker.commit_configurations;
                    if configurations
                        .last()
                        .is_none_or(|(_, last)| *last != membership)
                    {
                        let from = self.checker.highest_committed.next();
                        configurations.push((from, membership));
                    }
                } else if self.checker.commit_configurations.is_empty() {
                    let membership = raft.membership().clone();
                    self.checker
                        .commit_configurations
                        .push((LogIndex(1), membership));
                }
                let log_id = self.checker.committed[&commit_index].0;
                assert!(
                    self.durable_on_a_majority(log_id),
                    "{id} committed {log_id} but less than a majority of {} hold it durably",
                    self.commit_configuration(log_id.index)
                );
                self.checker.commit_seen.insert(id, commit_index);
                if commit_index > self.checker.highest_committed {
                    self.checker.highest_committed = commit_index;
                }
            }
        }
        self.check_committed_durable_on_majority(false);
    }

    /// Every live server has applied the same prefix as the global committed log.
    pub fn committed_count(&self) -> u64 {
        self.checker.committed.len() as u64
    }

    pub fn random_bool(&mut self, probability: f64) -> bool {
        self.random.gen_bool(probability)
    }

    /// A random number in `low..high`.
    pub fn random_range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        self.random.gen_range(low..high)
    }

    pub fn random_node(&mut self) -> NodeId {
        let ids = self.ids();
        ids[self.random.gen_range(0..ids.len())]
    }

    // ----- random steps -------------------------------------------------------------------

    /// One random step of a chaotic run: a tick, a delivery (one message, or a batch to one
    /// server), a storage flush, storage completions, an apply, a client request to any server
    /// that believes it leads, a stashed message released, or (rarely) a crash, restart,
    /// partition or heal.
    pub fn random_step(&mut self) {
        self.step_count += 1;
        let choice = self.random.gen_range(0..1000);
        let ids = self.ids();
        let id = ids[self.random.gen_range(0..ids.len())];
        if self.faults.storage_stall_probability > 0.0
            && self.random.gen_bool(self.faults.storage_stall_probability)
        {
            let stall = self.random.gen_range(50..500);
            self.server_mut(id).storage_stalled_until = self.step_count + stall;
        }
        match choice {
            0..=129 => self.tick_all(),
            130..=529 => {
                self.deliver_one();
            }
            530..=569 => {
                let max_inputs = self.random.gen_range(2..=8);
                self.deliver_batch(id, max_inputs);
            }
            570..=709 => {
                if self.servers[&id].storage_stalled_until <= self.step_count {
                    let partial = self.random.gen_bool(0.3);
                    self.flush_storage(id, partial);
                }
            }
            710..=769 => {
                let all = self.random.gen_bool(0.7);
                self.deliver_completions(id, all);
            }
            770..=789 => self.apply_queued(id),
            790..=869 => {
                if let Some(leader) = self.random_believed_leader() {
                    self.propose(leader);
                }
            }
            870..=914 => {
                if let Some(leader) = self.random_believed_leader() {
                    self.read(leader);
                }
            }
            915..=929 => {
                let down = ids.iter().filter(|id| !self.is_up(**id)).count();
                if self.is_up(id) && down < ids.len() / 2 {
                    self.crash(id);
                    // A crashed process's connections close: usually its peers hear of it.
                    if self.random.gen_bool(0.7) {
                        self.tell_connection_lost(id);
                    }
                }
            }
            930..=959 => {
                if !self.is_up(id) {
                    self.restart(id);
                }
            }
            960..=969 => {
                self.release_stashed();
            }
            970..=984 => {
                let other = ids[self.random.gen_range(0..ids.len())];
                if other != id {
                    self.cut(id, other);
                    // A connection reset while the peer lives on: the hint must be harmless.
                    if self.is_up(id) && self.random.gen_bool(0.3) {
                        self.with_server(id, |raft| raft.peer_connection_lost(other));
                    }
                }
            }
            _ => self.heal(),
        }
    }

    /// Restarts everyone, heals, disables faults and checks the cluster converges: a leader
    /// is elected, a new entry commits and every server applies the same log.
    pub fn converge(&mut self) {
        for id in self.ids() {
            if !self.is_up(id) {
                self.restart(id);
            }
        }
        self.heal();
        self.faults = Faults::default();
        // Old messages still arrive, then the network behaves.
        while self.release_stashed() {}
        self.settle();
        for _attempt in 0..5 {
            let leader = self.elect(500);
            let Some(log_id) = self.propose(leader) else {
                // Refused (a leadership transfer in progress): let it finish or time out.
                self.run_ticks(50);
                continue;
            };
            for _ in 0..400 {
                self.run_ticks(1);
                // Every member of the configuration in force (a removed server is not sent
                // the entries after its removal).
                let Some(leader) = self.leader() else {
                    break;
                };
                let members = self.raft(leader).membership().all_members();
                let applied_everywhere = self
                    .servers
                    .iter()
                    .filter(|(id, _)| members.contains(id))
                    .all(|(_, server)| {
                        server.applied.get(log_id.index.0 as usize - 1) == Some(&log_id)
                    });
                if applied_everywhere {
                    return;
                }
                if self.leader().is_none() {
                    // The proposal may be lost with its leader: propose again under the next.
                    break;
                }
            }
        }
        panic!(
            "seed {}: cluster did not converge; {}",
            self.seed,
            self.describe_servers()
        );
    }

    /// Each live server's role, term, log and configuration, for failure messages.
    pub fn describe_servers(&self) -> String {
        self.servers
            .iter()
            .filter_map(|(id, server)| {
                let raft = server.raft.as_ref()?;
                Some(format!(
                    "{id}: {} term {} last {} commit {} applied {} removed {} in force {} at {}",
                    raft.role(),
                    raft.current_term(),
                    raft.last_log_id(),
                    raft.commit_index(),
                    server.applied.len(),
                    raft.is_removed(),
                    raft.membership(),
                    raft.membership_with_log_id().0
                ))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
