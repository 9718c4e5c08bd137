//! `RaftActor`: the consensus actor. It owns a `raft_core::Raft`, turns actix messages and
//! ticks into the core's inputs, and hands the core's commands to the ports
//! (see [`crate::command_runner`]).
//!
//! # Correctness
//!
//! - No handler awaits anything: every output leaves through `do_send`, so the mailbox keeps
//!   moving even when a peer, the disk or a client is slow.
//! - Everything bound for disk goes to the one storage recipient, in the order the core
//!   emitted it (docs/ARCHITECTURE.md, ordering rule 1).
//! - Inputs are batched: handlers only feed the core and schedule one flush
//!   (`take_commands`) that runs once the messages queued so far are handled, so proposals
//!   that arrive together share one `Append` and one AppendEntries per follower.
//! - A storage failure, or a storage or applier actor that is gone, is fatal: the actor logs
//!   it and stops the system with exit code 1 (rule 4), rather than run on a log it can't trust
//!   or commit entries nobody applies.
//! - The write path is bounded: a leader whose storage has not reported durable
//!   `max_unpersisted_entries` entries (or `max_unpersisted_bytes` of proposals) refuses new
//!   proposals as `Unavailable` (definitely not applied) rather than queue them without limit.
//! - A divergence (the core's `Command::Diverged`) is fatal with exit code 3, after the
//!   `on_divergence` hook has recorded it.
//! - Every client responder is answered exactly once: by the applier (its entry applied), by
//!   this actor (refused, overwritten, read rejected), or when the actor stops.

use crate::metrics::{Counter, Gauges, RaftMetrics};
use crate::peer_round_trip::RoundTripProbes;
use crate::waiting_proposals::WaitingProposals;
use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, MessageResult, SpawnHandle,
    System,
};
use raft_core::{Raft, ReadRequestId, RequestError};
use raft_proto::applier::{Applied, SnapshotTaken};
use raft_proto::client::{
    ClientError, ClientResponder, GetStatus, Propose, RaftStatus, Read, Role, Shutdown,
};
use raft_proto::network::{PeerEvent, ReceivedMessages, SendMessages};
use raft_proto::ports::RaftPorts;
use raft_proto::storage::StorageEvent;
use raft_types::{IoSequence, LogIndex, NodeId, RaftMessage, Term};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After this many inputs without a flush, flush at once instead of waiting for the mailbox to
/// run dry, so a sustained flood of messages cannot starve replication.
const MAX_INPUTS_PER_FLUSH: usize = 4096;

/// Every this many ticks, forget proposals whose client stopped waiting.
const FORGET_ABANDONED_EVERY_TICKS: u64 = 1024;

/// Clients send with `do_send` or `send().await`; the latter waits once this many messages
/// are queued. Generous, because each message is cheap to handle and a full mailbox would
/// make the HTTP handlers wait instead of failing fast.
const MAILBOX_CAPACITY: usize = 65_536;

/// The shell's own settings; the algorithm's are in `raft_core::Config`.
#[derive(Clone)]
pub struct RaftActorConfig {
    /// How often the core's logical clock advances. The core's timeouts are in ticks, so this
    /// times `election_timeout_min_ticks` is the election timeout in wall-clock time.
    pub tick_interval: Duration,
    /// Runs `Raft::check_invariants` after every flush. It walks the whole in-memory log, so
    /// it is for tests, not production.
    pub check_invariants: bool,
    /// Called with one line (naming the index, both terms and the peer) when the core stops
    /// on a divergence, before the node stops. The node binary records it in the data
    /// directory so the node refuses to restart until an operator acts.
    pub on_divergence: Option<DivergenceHook>,
    /// Stop the whole actix System on a fatal error (what a node process wants). An
    /// in-process cluster, which runs many nodes in one System, turns it off: the actor then
    /// only stops itself.
    pub stop_system_on_fatal: bool,
    /// The write path's memory bound: a leader holding this many entries that storage has not
    /// yet reported durable refuses new proposals (`Unavailable`, HTTP 503) instead of queueing
    /// them without limit behind a slow disk.
    pub max_unpersisted_entries: u64,
    /// The same bound in payload bytes of this node's own proposals.
    pub max_unpersisted_bytes: u64,
    /// Read the snapshot chunks a leader sends on this actor's thread instead of tokio's
    /// blocking pool. For deterministic simulations only (the in-process cluster on a paused
    /// clock): the blocking pool runs in real time, outside the simulated clock.
    pub read_snapshot_chunks_inline: bool,
    /// BROKEN ON PURPOSE, for tests of the test harness only: answer linearizable reads from
    /// this node's state machine at once, without ReadIndex, even on a follower that lags.
    /// It exists so a test can show that the linearizability checker catches stale reads.
    pub serve_stale_reads_for_tests: bool,
}

/// Default of [`RaftActorConfig::max_unpersisted_entries`].
pub const DEFAULT_MAX_UNPERSISTED_ENTRIES: u64 = 100_000;

/// Default of [`RaftActorConfig::max_unpersisted_bytes`]: 256 MiB.
pub const DEFAULT_MAX_UNPERSISTED_BYTES: u64 = 256 * 1024 * 1024;

/// See [`RaftActorConfig::on_divergence`].
pub type DivergenceHook = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for RaftActorConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RaftActorConfig")
            .field("tick_interval", &self.tick_interval)
            .field("check_invariants", &self.check_invariants)
            .field("on_divergence", &self.on_divergence.is_some())
            .field("stop_system_on_fatal", &self.stop_system_on_fatal)
            .field("max_unpersisted_entries", &self.max_unpersisted_entries)
            .field("max_unpersisted_bytes", &self.max_unpersisted_bytes)
            .field(
                "read_snapshot_chunks_inline",
                &self.read_snapshot_chunks_inline,
            )
            .field(
                "serve_stale_reads_for_tests",
                &self.serve_stale_reads_for_tests,
            )
            .finish()
    }
}

impl RaftActorConfig {
    pub fn new(tick_interval: Duration) -> RaftActorConfig {
        RaftActorConfig {
            tick_interval,
            check_invariants: false,
            on_divergence: None,
            stop_system_on_fatal: true,
            max_unpersisted_entries: DEFAULT_MAX_UNPERSISTED_ENTRIES,
            max_unpersisted_bytes: DEFAULT_MAX_UNPERSISTED_BYTES,
            read_snapshot_chunks_inline: false,
            serve_stale_reads_for_tests: false,
        }
    }
}

/// A linearizable read waiting for its leadership round and its read index to be applied.
#[derive(Debug)]
pub(crate) struct WaitingRead {
    pub query: Vec<u8>,
    pub responder: ClientResponder,
}

/// What the actor last told the metrics, to count transitions.
#[derive(Debug, Clone, Copy)]
struct ObservedState {
    role: Role,
    term: Term,
    last_known_leader: Option<NodeId>,
}

/// Asks whether a shut-down actor has finished its durable work; see [`DrainState`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "DrainState")]
pub struct GetDrainState;

/// The answer to [`GetDrainState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainState {
    /// `Shutdown` was received: no new requests, no ticks, peer messages ignored.
    pub shutting_down: bool,
    /// The whole in-memory log and the current hard state have been reported durable.
    pub storage_idle: bool,
    /// Every committed entry has been handed to the applier and reported applied.
    pub applier_idle: bool,
}

impl DrainState {
    /// True once it is safe to stop the node without losing anything it acknowledged.
    pub fn is_drained(&self) -> bool {
        self.shutting_down && self.storage_idle && self.applier_idle
    }
}

/// Runs the pending flush; sent to itself with `notify` so it is handled after the mailbox.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Flush;

pub struct RaftActor {
    pub(crate) config: RaftActorConfig,
    pub(crate) raft: Raft,
    pub(crate) ports: RaftPorts,
    pub(crate) metrics: Arc<RaftMetrics>,
    pub(crate) waiting_proposals: WaitingProposals,
    /// Outstanding AppendEntries probes for the peer round-trip histograms.
    pub(crate) round_trip_probes: RoundTripProbes,
    /// Reads keyed by the id the core echoes in `ReadReady` / `RejectRead`.
    pub(crate) waiting_reads: BTreeMap<ReadRequestId, WaitingRead>,
    next_read_request_id: ReadRequestId,
    /// When each outstanding `Append` was sent, by its request sequence, for the latency
    /// histogram.
    pub(crate) appends_in_flight: VecDeque<(IoSequence, Instant)>,
    /// This node's proposals not yet reported durable here, by index, with their payload
    /// sizes, and the sum of those sizes: the byte half of the write path's bound.
    unpersisted_proposals: VecDeque<(LogIndex, u64)>,
    unpersisted_bytes: u64,
    flush_scheduled: bool,
    inputs_since_flush: usize,
    shutting_down: bool,
    /// Set by a fatal error; nothing more is sent anywhere.
    pub(crate) failed: bool,
    /// The messages of the flush in progress, sent to the network as one batch when it ends.
    pub(crate) outgoing: SendMessages,
    tick_handle: Option<SpawnHandle>,
    pub(crate) ticks: u64,
    observed: ObservedState,
    connected_peers: BTreeSet<NodeId>,
    /// Snapshot files open for the transfers this leader runs.
    pub(crate) open_snapshot_files: Arc<crate::command_runner::OpenSnapshotFiles>,
    /// Per peer, the snapshot chunks being read, so they leave in the order the core sent them.
    pub(crate) chunk_send_order: BTreeMap<NodeId, crate::command_runner::ChunkSendOrder>,
    /// The membership change whose client waits for it to complete (see `admin.rs`).
    pub(crate) pending_change: Option<crate::admin::PendingChange>,
    /// The leadership transfer whose client waits for the target to lead.
    pub(crate) pending_transfer: Option<crate::admin::PendingTransfer>,
    /// The configuration in force, published after every flush that changed it.
    pub(crate) membership_watch: tokio::sync::watch::Sender<crate::admin::MembershipInForce>,
}

impl RaftActor {
    /// `raft` is the core as restored from storage (`Raft::new(config, recovered)`); `ports`
    /// hold the storage, network, applier and query recipients.
    pub fn new(config: RaftActorConfig, raft: Raft, ports: RaftPorts) -> RaftActor {
        assert!(
            !config.tick_interval.is_zero(),
            "tick_interval must be positive: the core's clock would spin"
        );
        let in_force = raft.membership_with_log_id().clone();
        let observed = ObservedState {
            role: Role::Follower,
            term: raft.current_term(),
            last_known_leader: None,
        };
        RaftActor {
            config,
            raft,
            ports,
            metrics: Arc::new(RaftMetrics::default()),
            waiting_proposals: WaitingProposals::default(),
            round_trip_probes: RoundTripProbes::default(),
            waiting_reads: BTreeMap::new(),
            next_read_request_id: 1,
            appends_in_flight: VecDeque::new(),
            unpersisted_proposals: VecDeque::new(),
            unpersisted_bytes: 0,
            flush_scheduled: false,
            inputs_since_flush: 0,
            shutting_down: false,
            failed: false,
            outgoing: SendMessages::default(),
            tick_handle: None,
            ticks: 0,
            observed,
            connected_peers: BTreeSet::new(),
            open_snapshot_files: Arc::default(),
            chunk_send_order: BTreeMap::new(),
            pending_change: None,
            pending_transfer: None,
            membership_watch: tokio::sync::watch::Sender::new(in_force),
        }
    }

    /// The configuration in force, updated after every flush that changes it (an appended,
    /// truncated or installed configuration). Take it before starting the actor.
    pub fn membership_watch(
        &self,
    ) -> tokio::sync::watch::Receiver<crate::admin::MembershipInForce> {
        self.membership_watch.subscribe()
    }

    /// The live metrics, readable from any thread. Take it before starting the actor.
    pub fn metrics(&self) -> Arc<RaftMetrics> {
        Arc::clone(&self.metrics)
    }

    pub fn id(&self) -> NodeId {
        self.raft.id()
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Called after every input: flush now if many inputs piled up, else schedule one flush
    /// behind the messages already queued.
    pub(crate) fn input_handled(&mut self, ctx: &mut Context<Self>) {
        self.inputs_since_flush += 1;
        if self.inputs_since_flush >= MAX_INPUTS_PER_FLUSH {
            self.flush(ctx);
        } else if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.notify(Flush);
        }
    }

    /// Takes the core's commands and runs them, in order.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_scheduled = false;
        self.inputs_since_flush = 0;
        if self.failed {
            return;
        }
        let commands = self.raft.take_commands();
        if self.config.check_invariants {
            self.raft.check_invariants();
        }
        for command in commands {
            if self.failed {
                return;
            }
            self.run_command(command, ctx);
        }
        if !self.outgoing.messages.is_empty() {
            // Best effort by contract: a lost message is a message the core will send again.
            self.ports
                .network
                .do_send(std::mem::take(&mut self.outgoing));
        }
        self.observe_state();
        self.settle_admin_requests();
    }

    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks += 1;
        if self.ticks.is_multiple_of(FORGET_ABANDONED_EVERY_TICKS) {
            self.waiting_proposals.forget_abandoned();
        }
        self.raft.tick();
        self.flush(ctx);
    }

    /// Logs the error, stops this actor and the whole system with exit code 1.
    pub(crate) fn fatal(&mut self, ctx: &mut Context<Self>, reason: &str) {
        self.fatal_with_code(ctx, reason, 1);
    }

    /// Logs the error, stops this actor and (unless configured not to) the whole system with
    /// `exit_code`.
    pub(crate) fn fatal_with_code(
        &mut self,
        ctx: &mut Context<Self>,
        reason: &str,
        exit_code: i32,
    ) {
        tracing::error!(id = %self.raft.id(), term = %self.raft.current_term(), reason,
            "fatal: stopping the node");
        self.failed = true;
        if self.config.stop_system_on_fatal {
            System::current().stop_with_code(exit_code);
        }
        ctx.stop();
    }

    /// Updates the metrics' gauges and counts elections and leader changes.
    fn observe_state(&mut self) {
        let role = self.raft.role();
        let term = self.raft.current_term();
        let leader_id = self.raft.leader_id();
        if role == Role::Candidate
            && (self.observed.role != Role::Candidate || term != self.observed.term)
        {
            self.metrics.increment(Counter::ElectionsStarted);
        }
        if leader_id.is_some() && leader_id != self.observed.last_known_leader {
            self.metrics.increment(Counter::LeaderChanges);
            tracing::info!(id = %self.raft.id(), %term, leader = ?leader_id, "leader changed");
            self.observed.last_known_leader = leader_id;
        }
        self.observed.role = role;
        self.observed.term = term;
        let receiving = self.raft.receiving_snapshot();
        self.metrics.set_gauges(Gauges {
            current_term: term,
            role,
            leader_id,
            commit_index: self.raft.commit_index(),
            last_applied: self.raft.last_applied(),
            last_log_index: self.raft.last_log_id().index,
            persisted_index: self.raft.persisted_index(),
            snapshot_index: self
                .raft
                .snapshot()
                .map_or(LogIndex::ZERO, |snapshot| snapshot.last_log_id.index),
            first_log_index: self.raft.log().first_index(),
            snapshot_receiving_index: receiving
                .map_or(LogIndex::ZERO, |(snapshot, _)| snapshot.last_log_id.index),
            snapshot_received_bytes: receiving.map_or(0, |(_, stored)| stored),
            pending_proposals: self.waiting_proposals.len() as u64,
            pending_reads: self.waiting_reads.len() as u64,
        });
    }

    fn status(&self) -> RaftStatus {
        RaftStatus {
            id: self.raft.id(),
            role: self.raft.role(),
            term: self.raft.current_term(),
            leader_id: self.raft.leader_id(),
            commit_index: self.raft.commit_index(),
            last_applied: self.raft.last_applied(),
            last_log_index: self.raft.last_log_id().index,
            members: self.raft.membership().all_voters().into_iter().collect(),
            removed: self.raft.is_removed(),
        }
    }

    /// Answers every waiting read `Unavailable`: a read changes nothing, so this is exact.
    fn refuse_waiting_reads(&mut self, reason: &str) {
        for (_, read) in std::mem::take(&mut self.waiting_reads) {
            self.metrics.increment(Counter::ReadsRejected);
            let _ = read.responder.send(Err(ClientError::Unavailable {
                reason: reason.to_string(),
            }));
        }
    }

    /// Why a proposal of `bytes` must be refused because storage is too far behind, if it
    /// must (see [`RaftActorConfig::max_unpersisted_entries`]).
    fn write_path_full(&mut self, bytes: u64) -> Option<String> {
        let persisted_index = self.raft.persisted_index();
        while let Some((index, size)) = self.unpersisted_proposals.front().copied() {
            if index > persisted_index {
                break;
            }
            self.unpersisted_bytes -= size;
            self.unpersisted_proposals.pop_front();
        }
        let unpersisted_entries = self.raft.last_log_id().index.0 - persisted_index.0;
        if unpersisted_entries >= self.config.max_unpersisted_entries {
            return Some(format!(
                "storage is behind: {unpersisted_entries} entries are not yet durable \
                 (limit {})",
                self.config.max_unpersisted_entries
            ));
        }
        if self.unpersisted_bytes + bytes > self.config.max_unpersisted_bytes {
            return Some(format!(
                "storage is behind: {} bytes of proposals are not yet durable (limit {})",
                self.unpersisted_bytes, self.config.max_unpersisted_bytes
            ));
        }
        None
    }

    /// What a client is told when the core refuses its request (nothing was done).
    fn client_error(&self, error: RequestError) -> ClientError {
        if self.raft.is_removed() {
            // Forwarding to the leader it last knew would still work, but a removed node must
            // say it is out of the cluster rather than go on serving as if it were in it.
            return ClientError::Unavailable {
                reason: "this node was removed from the cluster".to_string(),
            };
        }
        match error {
            RequestError::NotLeader { leader_hint } => ClientError::NotLeader { leader_hint },
            RequestError::Halted => ClientError::Unavailable {
                reason: "the node stopped on a divergence".to_string(),
            },
            RequestError::LeadershipTransferInProgress { target } => ClientError::Unavailable {
                reason: format!("leadership is being transferred to node {target}; retry there"),
            },
            other => ClientError::Unavailable {
                reason: other.to_string(),
            },
        }
    }

    fn refuse_when_shutting_down(&self, responder: ClientResponder) -> Option<ClientResponder> {
        if !self.shutting_down {
            return Some(responder);
        }
        let _ = responder.send(Err(ClientError::Unavailable {
            reason: "the node is shutting down".to_string(),
        }));
        None
    }
}

impl Actor for RaftActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let handle = ctx.run_interval(self.config.tick_interval, |actor, ctx| actor.on_tick(ctx));
        self.tick_handle = Some(handle);
        self.observe_state();
        tracing::info!(id = %self.raft.id(), term = %self.raft.current_term(),
            last_log = %self.raft.last_log_id(), "consensus actor started");
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Entries may still commit elsewhere: their clients cannot be told they did not.
        self.waiting_proposals
            .answer_all(ClientError::OutcomeUnknown {
                reason: "the node stopped before the entry was applied".to_string(),
            });
        self.refuse_waiting_reads("the node stopped before the read was served");
        self.abandon_admin_requests();
        tracing::info!(id = %self.raft.id(), "consensus actor stopped");
    }
}

impl Handler<Flush> for RaftActor {
    type Result = ();

    fn handle(&mut self, _message: Flush, ctx: &mut Context<Self>) {
        if self.flush_scheduled {
            self.flush(ctx);
        }
    }
}

impl Handler<ReceivedMessages> for RaftActor {
    type Result = ();

    fn handle(&mut self, received: ReceivedMessages, ctx: &mut Context<Self>) {
        if self.shutting_down {
            // As if lost on the network: Raft tolerates it, and a node that is leaving should
            // take on no new durable work.
            return;
        }
        // Each message counts as one input, so a burst still flushes at least every
        // MAX_INPUTS_PER_FLUSH messages, however the network grouped them.
        for message in received.messages {
            self.metrics.increment(Counter::MessagesReceived);
            if let RaftMessage::AppendEntriesResponse(response) = &message {
                let answered = self.round_trip_probes.answered(
                    received.from,
                    response.term,
                    response.sequence,
                    Instant::now(),
                );
                if let Some((kind, elapsed)) = answered {
                    self.metrics
                        .observe_peer_round_trip(received.from, kind, elapsed);
                }
            }
            self.raft.step(received.from, message);
            self.input_handled(ctx);
        }
    }
}

impl Handler<StorageEvent> for RaftActor {
    type Result = ();

    fn handle(&mut self, event: StorageEvent, ctx: &mut Context<Self>) {
        match event {
            StorageEvent::Persisted { io, last } => {
                let now = Instant::now();
                while let Some((sent_io, started)) = self.appends_in_flight.front().copied() {
                    if sent_io > io {
                        break;
                    }
                    self.metrics
                        .observe_append_latency(now.duration_since(started));
                    self.appends_in_flight.pop_front();
                }
                self.raft.persisted(io, last);
            }
            StorageEvent::HardStateSaved { io } => self.raft.hard_state_saved(io),
            StorageEvent::SnapshotReceived { snapshot, outcome } => {
                self.raft.snapshot_chunk_stored(snapshot.id(), outcome)
            }
            StorageEvent::Failed { error } => {
                self.fatal(ctx, &format!("storage failed: {error}"));
                return;
            }
        }
        self.input_handled(ctx);
    }
}

impl Handler<SnapshotTaken> for RaftActor {
    type Result = ();

    fn handle(&mut self, message: SnapshotTaken, ctx: &mut Context<Self>) {
        if self.failed {
            return;
        }
        self.metrics.increment(Counter::SnapshotsTaken);
        self.raft.snapshot_taken(message.snapshot);
        self.input_handled(ctx);
    }
}

impl Handler<Applied> for RaftActor {
    type Result = ();

    fn handle(&mut self, message: Applied, ctx: &mut Context<Self>) {
        self.raft.applied(message.index);
        self.input_handled(ctx);
    }
}

impl Handler<PeerEvent> for RaftActor {
    type Result = ();

    fn handle(&mut self, event: PeerEvent, ctx: &mut Context<Self>) {
        match event {
            PeerEvent::Connected { peer } => {
                self.connected_peers.insert(peer);
                tracing::info!(id = %self.raft.id(), %peer, "peer connected");
            }
            PeerEvent::Disconnected { peer } => {
                self.connected_peers.remove(&peer);
                tracing::info!(id = %self.raft.id(), %peer, "peer disconnected");
                // A hint for the core: a lost leader is replaced sooner (pre-vote only).
                self.raft.peer_connection_lost(peer);
                self.input_handled(ctx);
            }
        }
        self.metrics.set_peers_connected(self.connected_peers.len());
    }
}

impl Handler<Propose> for RaftActor {
    type Result = ();

    fn handle(&mut self, message: Propose, ctx: &mut Context<Self>) {
        let Some(responder) = self.refuse_when_shutting_down(message.responder) else {
            self.metrics.increment(Counter::ProposalsRejected);
            return;
        };
        let bytes = message.command.len() as u64;
        if self.raft.role() == raft_core::Role::Leader {
            if let Some(reason) = self.write_path_full(bytes) {
                self.metrics.increment(Counter::ProposalsRejected);
                let _ = responder.send(Err(ClientError::Unavailable { reason }));
                return;
            }
        }
        match self.raft.propose(message.command) {
            Ok(log_id) => {
                self.unpersisted_proposals.push_back((log_id.index, bytes));
                self.unpersisted_bytes += bytes;
                self.metrics.increment(Counter::Proposals);
                self.waiting_proposals.insert(log_id, responder);
                self.input_handled(ctx);
            }
            Err(error) => {
                self.metrics.increment(Counter::ProposalsRejected);
                let _ = responder.send(Err(self.client_error(error)));
            }
        }
    }
}

impl Handler<Read> for RaftActor {
    type Result = ();

    fn handle(&mut self, message: Read, ctx: &mut Context<Self>) {
        let Some(responder) = self.refuse_when_shutting_down(message.responder) else {
            self.metrics.increment(Counter::ReadsRejected);
            return;
        };
        if self.config.serve_stale_reads_for_tests {
            // The deliberately broken path (see the field): no leadership check, no read index.
            self.ports.query.do_send(raft_proto::applier::Query {
                query: message.query,
                responder,
            });
            return;
        }
        let request_id = self.next_read_request_id;
        match self.raft.read_index(request_id) {
            Ok(()) => {
                self.next_read_request_id += 1;
                self.metrics.increment(Counter::Reads);
                let read = WaitingRead {
                    query: message.query,
                    responder,
                };
                self.waiting_reads.insert(request_id, read);
                self.input_handled(ctx);
            }
            Err(error) => {
                self.metrics.increment(Counter::ReadsRejected);
                let _ = responder.send(Err(self.client_error(error)));
            }
        }
    }
}

impl Handler<GetStatus> for RaftActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _message: GetStatus, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<Shutdown> for RaftActor {
    type Result = ();

    fn handle(&mut self, _message: Shutdown, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        tracing::info!(id = %self.raft.id(), term = %self.raft.current_term(),
            "shutting down: refusing new requests, finishing durable work");
        self.shutting_down = true;
        if let Some(handle) = self.tick_handle.take() {
            ctx.cancel_future(handle);
        }
        // Reads change nothing, so refusing them now is exact: "definitely not applied".
        self.refuse_waiting_reads("the node is shutting down");
        self.flush(ctx);
    }
}

impl Handler<GetDrainState> for RaftActor {
    type Result = MessageResult<GetDrainState>;

    fn handle(&mut self, _message: GetDrainState, _ctx: &mut Context<Self>) -> Self::Result {
        // Derived from the core rather than mirrored: every flush hands storage the whole
        // log and the applier every committed entry, so idle means "caught up with the core".
        // Between an input and its flush this reads "not idle", which only delays the drain.
        MessageResult(DrainState {
            shutting_down: self.shutting_down,
            storage_idle: self.raft.storage_idle(),
            applier_idle: self.raft.last_applied() >= self.raft.commit_index(),
        })
    }
}
