//! A deterministic in-core cluster: N `Raft` cores, a seeded message bus, a storage model that
//! loses everything not yet reported durable on crash, and a checker that asserts Raft's
//! safety properties (Figure 3) after every step.
//!
//! Everything random comes from one `ChaCha8Rng` seeded by the test, so a failing seed replays
//! exactly. The bus can drop, duplicate, reorder and delay; links can be cut per direction.
//!
//! # Layout
//!
//! - `Cluster`: the servers, the bus and the fault controls.
//! - `Checker`: the cluster-wide invariants (Election Safety, Log Matching, Leader
//!   Completeness, State Machine Safety, commit on a durable majority, monotonic commit,
//!   in-order apply, linearizable ReadIndex).
//! - `run_seeds`: runs a scenario over many seeds and names the failing one.

#![allow(dead_code)]

use raft_core::{Command, Config, Raft, RecoveredState, Role};
use raft_types::{Entry, EntryPayload, HardState, LogId, LogIndex, NodeId, RaftMessage, Term};
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
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    pub log: Vec<Entry>,
}

impl Durable {
    fn holds(&self, log_id: LogId) -> bool {
        log_id.index.0 >= 1
            && self
                .log
                .get(log_id.index.0 as usize - 1)
                .is_some_and(|entry| entry.log_id == log_id)
    }
}

pub struct Server {
    pub raft: Option<Raft>,
    pub durable: Durable,
    storage_queue: VecDeque<StorageOperation>,
    /// LogIds applied by this incarnation's state machine, in order.
    pub applied: Vec<LogId>,
    /// Reads this server accepted, with the highest index known committed anywhere when the
    /// read arrived: a linearizable read must be served at an index at least that high.
    pending_reads: BTreeMap<u64, LogIndex>,
    pub reads_served: u64,
    pub reads_rejected: u64,
    incarnation: u64,
}

#[derive(Default, Debug, Clone)]
pub struct MessageStats {
    pub request_vote: u64,
    pub append_entries: u64,
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
}

pub struct Cluster {
    pub seed: u64,
    pub random: ChaCha8Rng,
    pub configs: BTreeMap<NodeId, Config>,
    pub servers: BTreeMap<NodeId, Server>,
    in_flight: Vec<InFlight>,
    pub faults: Faults,
    /// Directed links that are cut: (from, to).
    cut_links: BTreeSet<(NodeId, NodeId)>,
    pub bus_step: u64,
    pub stats: MessageStats,
    pub checker: Checker,
    next_read_id: u64,
    next_command: u64,
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
            let raft = Raft::new(config.clone(), RecoveredState::default()).expect("valid config");
            configs.insert(*id, config);
            servers.insert(
                *id,
                Server {
                    raft: Some(raft),
                    durable: Durable::default(),
                    storage_queue: VecDeque::new(),
                    applied: Vec::new(),
                    pending_reads: BTreeMap::new(),
                    reads_served: 0,
                    reads_rejected: 0,
                    incarnation: 0,
                },
            );
        }
        Cluster {
            seed,
            random: ChaCha8Rng::seed_from_u64(seed),
            configs,
            servers,
            in_flight: Vec::new(),
            faults: Faults::default(),
            cut_links: BTreeSet::new(),
            bus_step: 0,
            stats: MessageStats::default(),
            checker: Checker::default(),
            next_read_id: 1,
            next_command: 1,
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.servers.keys().copied().collect()
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        self.servers[&id].raft.as_ref().expect("server is running")
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.servers[&id].raft.is_some()
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
            let mut applied_through = None;
            for command in commands {
                if let Some(index) = self.run_command(id, command) {
                    applied_through = Some(index);
                }
            }
            if let Some(index) = applied_through {
                let raft = self.servers.get_mut(&id).and_then(|s| s.raft.as_mut());
                raft.expect("server is running").applied(index);
            }
        }
        self.check();
    }

    /// Carries out one command; returns the applied index for `Apply`.
    fn run_command(&mut self, id: NodeId, command: Command) -> Option<LogIndex> {
        match command {
            Command::PersistHardState(hard_state) => {
                self.server_mut(id)
                    .storage_queue
                    .push_back(StorageOperation::HardState(hard_state));
            }
            Command::TruncateLog { since } => {
                self.server_mut(id)
                    .storage_queue
                    .push_back(StorageOperation::Truncate(since));
            }
            Command::AppendLog { entries } => {
                self.check_log_matching(id, &entries);
                self.server_mut(id)
                    .storage_queue
                    .push_back(StorageOperation::Append(entries));
            }
            Command::Send { to, message } => self.send(id, to, message),
            Command::Apply { entries } => {
                let last = entries.last().map(|entry| entry.index());
                self.check_apply(id, &entries);
                return last;
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
        None
    }

    fn server_mut(&mut self, id: NodeId) -> &mut Server {
        self.servers.get_mut(&id).expect("known server")
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: RaftMessage) {
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
            _ => self.stats.responses += 1,
        }
        if self.cut_links.contains(&(from, to)) {
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
            self.in_flight.push(InFlight {
                from,
                to,
                message: message.clone(),
                deliverable_at: self.bus_step + delay,
            });
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
        self.with_server(message.to, |raft| raft.step(message.from, message.message));
        true
    }

    /// Makes `id`'s queued storage operations durable: all of them, or with `partial` a random
    /// prefix. Reports completion to the core the way the storage actor does.
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
        let server = self.server_mut(id);
        let mut saved_hard_state = None;
        let mut appended = false;
        for operation in server.storage_queue.drain(..count) {
            match operation {
                StorageOperation::HardState(hard_state) => {
                    server.durable.hard_state = hard_state;
                    saved_hard_state = Some(hard_state);
                }
                StorageOperation::Truncate(since) => {
                    server.durable.log.truncate(since.0 as usize - 1);
                }
                StorageOperation::Append(entries) => {
                    let first = entries[0].index().0 as usize;
                    assert_eq!(
                        first,
                        server.durable.log.len() + 1,
                        "storage appends must be contiguous with the durable log"
                    );
                    server.durable.log.extend(entries);
                    appended = true;
                }
            }
        }
        let last = server
            .durable
            .log
            .last()
            .map(|entry| entry.log_id)
            .unwrap_or(LogId::ZERO);
        if let Some(hard_state) = saved_hard_state {
            self.with_server(id, |raft| raft.hard_state_saved(hard_state));
        }
        if appended {
            self.with_server(id, |raft| raft.persisted(last));
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
            let mut delivered = false;
            while self.deliver_one() {
                delivered = true;
            }
            let storage_idle = self
                .servers
                .values()
                .all(|server| server.raft.is_none() || server.storage_queue.is_empty());
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
        panic!("seed {}: no leader within {max_ticks} ticks", self.seed);
    }

    pub fn propose(&mut self, id: NodeId) -> Option<LogId> {
        let command = self.next_command.to_be_bytes().to_vec();
        self.next_command += 1;
        let mut result = None;
        self.with_server(id, |raft| result = raft.propose(command).ok());
        result
    }

    pub fn read(&mut self, id: NodeId) -> bool {
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
        self.process_commands(id);
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

    /// Stops `id`, losing every storage operation not yet durable and its volatile state.
    pub fn crash(&mut self, id: NodeId) {
        let server = self.server_mut(id);
        server.raft = None;
        server.storage_queue.clear();
        server.applied.clear();
        server.pending_reads.clear();
        self.checker.commit_seen.remove(&id);
    }

    /// Restarts `id` from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        let mut config = self.configs[&id].clone();
        let server = self.servers.get_mut(&id).expect("known server");
        assert!(server.raft.is_none(), "restart a crashed server only");
        server.incarnation += 1;
        config.random_seed = config.random_seed.wrapping_add(server.incarnation * 7919);
        let recovered = RecoveredState {
            hard_state: server.durable.hard_state,
            snapshot_last_log_id: LogId::ZERO,
            entries: server.durable.log.clone(),
        };
        server.raft = Some(Raft::new(config, recovered).expect("valid config"));
        self.process_commands(id);
    }

    // ----- checks -------------------------------------------------------------------------

    fn check_log_matching(&mut self, id: NodeId, entries: &[Entry]) {
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
        let server = self.servers.get_mut(&id).expect("known server");
        for entry in entries {
            assert_eq!(
                entry.index().0,
                server.applied.len() as u64 + 1,
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
            server.applied.push(entry.log_id);
        }
    }

    /// Cluster-wide invariants plus each core's own `check_invariants`.
    pub fn check(&mut self) {
        let quorum = self.configs.values().next().expect("a cluster").quorum();
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
                        // in the new leader's log.
                        for (index, (log_id, committed_term)) in &self.checker.committed {
                            if *committed_term < term {
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
                for index in (seen.0 + 1)..=commit_index.0 {
                    let log_id = raft
                        .log()
                        .log_id_at(LogIndex(index))
                        .expect("committed entries are in the log");
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
                let log_id = raft
                    .log()
                    .log_id_at(commit_index)
                    .expect("committed entries are in the log");
                let durable_copies = self
                    .servers
                    .values()
                    .filter(|server| server.durable.holds(log_id))
                    .count();
                assert!(
                    durable_copies >= quorum,
                    "{id} committed {log_id} but only {durable_copies} servers hold it durably"
                );
                self.checker.commit_seen.insert(id, commit_index);
                if commit_index > self.checker.highest_committed {
                    self.checker.highest_committed = commit_index;
                }
            }
        }
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

    /// One random step of a chaotic run: a tick, a delivery, a storage flush, a client
    /// request, or (rarely) a crash, restart, partition or heal.
    pub fn random_step(&mut self) {
        let choice = self.random.gen_range(0..1000);
        let ids = self.ids();
        let id = ids[self.random.gen_range(0..ids.len())];
        match choice {
            0..=149 => self.tick_all(),
            150..=599 => {
                self.deliver_one();
            }
            600..=799 => {
                let partial = self.random.gen_bool(0.3);
                self.flush_storage(id, partial);
            }
            800..=879 => {
                if let Some(leader) = self.leader() {
                    self.propose(leader);
                }
            }
            880..=919 => {
                if let Some(leader) = self.leader() {
                    self.read(leader);
                }
            }
            920..=939 => {
                let down = ids.iter().filter(|id| !self.is_up(**id)).count();
                if self.is_up(id) && down < ids.len() / 2 {
                    self.crash(id);
                }
            }
            940..=969 => {
                if !self.is_up(id) {
                    self.restart(id);
                }
            }
            970..=984 => {
                let other = ids[self.random.gen_range(0..ids.len())];
                if other != id {
                    self.cut(id, other);
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
        self.settle();
        for _attempt in 0..5 {
            let leader = self.elect(500);
            let Some(log_id) = self.propose(leader) else {
                continue;
            };
            for _ in 0..400 {
                self.run_ticks(1);
                let applied_everywhere = self
                    .servers
                    .values()
                    .all(|server| server.applied.get(log_id.index.0 as usize - 1) == Some(&log_id));
                if applied_everywhere {
                    return;
                }
                if self.leader().is_none() {
                    // The proposal may be lost with its leader: propose again under the next.
                    break;
                }
            }
        }
        panic!("seed {}: cluster did not converge", self.seed);
    }
}

/// The seeds to run: `RAFT_TEST_SEED` alone when set, else `count` seeds from `base`.
pub fn seeds(base: u64, count: u64) -> Vec<u64> {
    match std::env::var("RAFT_TEST_SEED") {
        Ok(value) => vec![value
            .parse()
            .expect("RAFT_TEST_SEED must be an unsigned integer")],
        Err(_) => (base..base + count).collect(),
    }
}

/// Runs `scenario` for each seed; a failure names the seed and the command that replays it.
pub fn run_seeds(test_binary: &str, test_name: &str, seeds: Vec<u64>, scenario: impl Fn(u64)) {
    for seed in seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(seed)));
        if let Err(panic) = outcome {
            eprintln!(
                "\n{test_name} failed with seed {seed}; replay with:\n  \
                 RAFT_TEST_SEED={seed} cargo test -p raft-core --test {test_binary} {test_name}\n"
            );
            std::panic::resume_unwind(panic);
        }
    }
}
