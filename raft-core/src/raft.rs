//! `Raft`: one server's consensus state machine (Figure 2). Inputs are method calls; outputs
//! are [`Command`]s collected with [`Raft::take_commands`].
//!
//! The handlers for each part of the protocol live in sibling modules as further `impl Raft`
//! blocks: [`crate::election`], [`crate::replication`] (leader side), [`crate::follower`]
//! (follower side) and [`crate::read_index`].

use crate::command::{Command, ReadRequestId};
use crate::config::{Config, ConfigError};
use crate::divergence::Divergence;
use crate::error::RequestError;
use crate::progress::Progress;
use crate::raft_log::RaftLog;
use crate::read_index::PendingRead;
use crate::snapshot::SnapshotReceipt;
use raft_types::{
    Entry, EntryPayload, HardState, IoSequence, LogId, LogIndex, MemberRemovedNotice, Membership,
    NodeId, RaftMessage, RequestVoteResponse, Role, SnapshotMeta, Term,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// What a server restarts from: its hard state, its newest snapshot and the log after it.
/// [`crate::recovery::reconcile`] builds it from what the snapshot store and the log store
/// hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// The term and vote last made durable.
    pub hard_state: HardState,
    /// The newest snapshot, which the state machine was restored from; `None` when there is
    /// none (the state machine starts empty).
    pub snapshot: Option<SnapshotMeta>,
    /// The entries after the snapshot's last entry (or after index 0), contiguous.
    pub entries: Vec<Entry>,
}

impl RecoveredState {
    /// The last entry the snapshot covers, or `LogId::ZERO` without one.
    pub fn snapshot_last_log_id(&self) -> LogId {
        self.snapshot
            .as_ref()
            .map(|snapshot| snapshot.last_log_id)
            .unwrap_or(LogId::ZERO)
    }
}

/// Leader-only state, created on election and dropped on stepping down.
#[derive(Debug)]
pub(crate) struct LeaderState {
    pub progress: BTreeMap<NodeId, Progress>,
    /// Stamped on every AppendEntries of this term; see `AppendEntriesRequest::sequence`.
    pub next_sequence: u64,
    /// Index of this term's no-op. Until it commits the leader does not know the full commit
    /// index of the cluster, so reads wait for it (thesis §6.4 step 1).
    pub term_start_index: LogIndex,
    pub heartbeat_elapsed: u64,
    pub quorum_check_elapsed: u64,
    /// Set by a heartbeat tick or a new read: at the next flush every follower gets an
    /// AppendEntries even when there is nothing new to send.
    pub broadcast_pending: bool,
    pub pending_reads: Vec<PendingRead>,
    /// The leadership transfer in progress, if any (thesis §3.10).
    pub transfer: Option<LeadershipTransfer>,
    /// Servers this leader stopped replicating to because the configuration in force removed
    /// them; each is told so once the removal is committed.
    pub removal_notices: BTreeSet<NodeId>,
}

/// A leadership transfer in progress (thesis §3.10): the leader brings `target` up to date,
/// sends it TimeoutNow, and takes no proposal meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeadershipTransfer {
    pub target: NodeId,
    pub elapsed_ticks: u64,
    pub timeout_now_sent: bool,
    /// Started because this leader is no longer a voter: it steps down when the transfer
    /// ends, whether or not the target won.
    pub stepping_down: bool,
}

/// Candidate-only state.
#[derive(Debug, Default)]
pub(crate) struct CandidateState {
    pub votes_granted: BTreeSet<NodeId>,
}

/// Follower-only state.
#[derive(Debug, Default)]
pub(crate) struct FollowerState {
    /// The pre-vote round this follower runs, if any (thesis §9.6).
    pub pre_vote: Option<PreVoteState>,
}

/// A follower running a pre-vote round for `term` (one above its current term).
#[derive(Debug)]
pub(crate) struct PreVoteState {
    pub term: Term,
    pub votes_granted: BTreeSet<NodeId>,
}

/// The role a server plays with the state only that role has. A transition replaces the
/// whole value, so no role's state can outlive the role (a leader's progress on a follower,
/// a candidate's votes on a leader).
#[derive(Debug)]
pub(crate) enum RoleState {
    Follower(FollowerState),
    Candidate(CandidateState),
    Leader(LeaderState),
}

impl RoleState {
    pub(crate) fn role(&self) -> Role {
        match self {
            RoleState::Follower(_) => Role::Follower,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
}

/// An AppendEntries acknowledgement held until the entries it covers are durable (rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingAcknowledgement {
    pub leader: NodeId,
    pub sequence: u64,
    pub match_index: LogIndex,
}

/// One server's consensus state machine: built by [`Raft::new`], driven by the input methods,
/// drained by [`Raft::take_commands`].
pub struct Raft {
    pub(crate) config: Config,
    pub(crate) random: ChaCha8Rng,

    // Persistent state (Figure 2), mirrored here; made durable through commands.
    pub(crate) current_term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: RaftLog,

    // Volatile state on all servers.
    pub(crate) role_state: RoleState,
    pub(crate) leader_id: Option<NodeId>,
    pub(crate) commit_index: LogIndex,
    /// Highest index the applier reported applied.
    pub(crate) last_applied: LogIndex,
    /// Highest index handed to the applier in an `Apply` command.
    pub(crate) apply_requested_index: LogIndex,
    /// Highest index known durable in this server's log (and still part of it).
    pub(crate) persisted_index: LogIndex,
    /// Highest index handed to storage in an `AppendLog` command.
    pub(crate) storage_requested_index: LogIndex,
    /// The sequence of the last storage request emitted (see [`IoSequence`]).
    pub(crate) last_io: IoSequence,
    /// The sequence of the latest `TruncateLog`. A completion covering less than it was issued
    /// before the truncation and describes a log that no longer exists: it is ignored.
    pub(crate) last_truncation_io: IoSequence,
    /// The sequence of the latest `PersistHardState` not yet reported saved. While it is in
    /// flight every outgoing message is held: a vote or an acknowledgement must never be seen
    /// by others before the term and vote it depends on are durable.
    pub(crate) hard_state_in_flight: Option<IoSequence>,
    pub(crate) held_messages: Vec<(NodeId, RaftMessage)>,

    pub(crate) election_elapsed: u64,
    pub(crate) randomized_election_timeout: u64,

    pub(crate) pending_acknowledgements: Vec<PendingAcknowledgement>,

    /// The newest snapshot this server holds (taken by its state machine or installed).
    pub(crate) snapshot: Option<SnapshotMeta>,
    /// The snapshot this follower is receiving from a leader, if any.
    pub(crate) snapshot_receipt: Option<SnapshotReceipt>,
    /// Chunks handed to storage for receipts since dropped, by snapshot, whose reports are
    /// still to come and must be ignored.
    pub(crate) abandoned_chunk_stores: BTreeMap<raft_types::SnapshotId, u64>,

    /// Set when a member told this server it was removed from the cluster: it stops
    /// campaigning until a leader replicates to it again.
    pub(crate) told_removed: bool,

    /// Set when a committed entry was found to differ from a peer's: the server has stopped
    /// and every later input is ignored.
    pub(crate) halted: Option<Divergence>,

    pub(crate) commands: Vec<Command>,
}

impl Raft {
    /// A server restarting from what storage recovered (a fresh server recovers nothing).
    pub fn new(config: Config, recovered: RecoveredState) -> Result<Raft, ConfigError> {
        config.validate()?;
        let snapshot_last_log_id = recovered.snapshot_last_log_id();
        // The configuration at the snapshot, or the bootstrap one of a new cluster (empty for a
        // server joining one); membership entries of the log come after it.
        let base_membership = match &recovered.snapshot {
            Some(snapshot) => (snapshot.last_log_id, snapshot.membership.clone()),
            None => (
                LogId::ZERO,
                Membership::with_voters(config.members.iter().copied()),
            ),
        };
        let log = RaftLog::new(snapshot_last_log_id, recovered.entries, base_membership);
        let last_index = log.last_index();
        // The state machine was restored from the snapshot: everything in it is committed
        // and applied.
        let snapshot_index = snapshot_last_log_id.index;
        let mut raft = Raft {
            random: ChaCha8Rng::seed_from_u64(config.random_seed),
            config,
            current_term: recovered.hard_state.current_term,
            voted_for: recovered.hard_state.voted_for,
            log,
            role_state: RoleState::Follower(FollowerState::default()),
            leader_id: None,
            commit_index: snapshot_index,
            last_applied: snapshot_index,
            apply_requested_index: snapshot_index,
            persisted_index: last_index,
            storage_requested_index: last_index,
            last_io: IoSequence::ZERO,
            last_truncation_io: IoSequence::ZERO,
            hard_state_in_flight: None,
            held_messages: Vec::new(),
            election_elapsed: 0,
            randomized_election_timeout: 0,
            pending_acknowledgements: Vec::new(),
            snapshot: recovered.snapshot,
            snapshot_receipt: None,
            abandoned_chunk_stores: BTreeMap::new(),
            told_removed: false,
            halted: None,
            commands: Vec::new(),
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    // ----- inputs -------------------------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if self.halted.is_some() {
            return;
        }
        match &mut self.role_state {
            RoleState::Leader(leader_state) => {
                if leader_state.tick(&self.config, &self.log.membership().1) {
                    self.step_down_without_quorum();
                } else {
                    self.tick_leadership_transfer();
                }
            }
            RoleState::Follower(_) | RoleState::Candidate(_) => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_election_timeout && !self.may_campaign()
                {
                    // A learner, a removed server or one still waiting to be added never
                    // campaigns; it only keeps its timer for the leader lease.
                    self.reset_election_timer();
                } else if self.election_elapsed >= self.randomized_election_timeout {
                    if self.config.pre_vote {
                        self.start_pre_vote();
                    } else {
                        self.start_election();
                    }
                }
            }
        }
    }

    /// The connection to `peer` was lost: its process ended (the kernel closed its sockets)
    /// or the network gave up on it. Only a hint, never needed for correctness: a follower
    /// that loses its leader this way, with pre-vote on, stops honouring the leader's lease
    /// and asks for pre-votes after a short random delay instead of a whole election timeout,
    /// so a crashed leader is replaced in tens of milliseconds. A spurious loss disturbs
    /// nobody: the other voters still hear from the leader and refuse the pre-vote. A
    /// partition or a frozen host closes nothing; the election timeout still covers those.
    pub fn peer_connection_lost(&mut self, peer: NodeId) {
        if self.halted.is_none() {
            self.leader_connection_lost(peer);
        }
    }

    /// Handles a message from peer `from`.
    pub fn step(&mut self, from: NodeId, message: RaftMessage) {
        if self.halted.is_some() {
            return;
        }
        if from == self.config.id {
            tracing::warn!(%from, kind = message.kind(), "ignoring a message from itself");
            return;
        }
        // Thesis §4.1: a server processes requests without consulting its configuration (a
        // leader added after it, or a follower it has not yet heard added, is legitimate).
        // A server the configuration removed is refused, and told so, when it asks for votes
        // or brings a newer term: it cannot depose the leader. (A removed leader still leads
        // its term until it hands over: its AppendEntries and TimeoutNow are not refused.)
        let disruptive = matches!(
            message,
            RaftMessage::RequestVote(_) | RaftMessage::PreVote(_)
        ) || message.term() > self.current_term;
        if disruptive && self.membership().removed.contains(&from) {
            if !matches!(message, RaftMessage::MemberRemoved(_)) {
                tracing::debug!(id = %self.config.id, %from, kind = message.kind(),
                    "refusing a message from a removed server");
                let notice = MemberRemovedNotice {
                    term: self.current_term,
                };
                self.send(from, RaftMessage::MemberRemoved(notice));
            }
            return;
        }
        let message_term = message.term();
        if let RaftMessage::RequestVote(request) = &message {
            if self.in_leader_lease()
                && request.term > self.current_term
                && !request.leadership_transfer
            {
                // Thesis §4.2.3: a server that heard from a live leader within the minimum
                // election timeout ignores vote requests, so a server that cannot hear the
                // leader cannot make the cluster abandon it.
                tracing::debug!(id = %self.config.id, %from, "ignoring vote request: leader is alive");
                return;
            }
        }
        // A pre-vote carries a hypothetical term and changes nothing; a granted pre-vote
        // response echoes it. Neither may move this server's term.
        let term_is_hypothetical = matches!(
            &message,
            RaftMessage::PreVote(_)
                | RaftMessage::PreVoteResponse(RequestVoteResponse {
                    vote_granted: true,
                    ..
                })
                | RaftMessage::MemberRemoved(_)
        );
        // §5.1: any RPC with a newer term makes this server a follower in that term.
        if message_term > self.current_term && !term_is_hypothetical {
            let leader = match &message {
                RaftMessage::AppendEntries(_) | RaftMessage::InstallSnapshot(_) => Some(from),
                _ => None,
            };
            self.become_follower(message_term, leader);
        }
        match message {
            RaftMessage::RequestVote(request) => self.handle_request_vote(from, request),
            RaftMessage::RequestVoteResponse(response) => {
                self.handle_request_vote_response(from, response)
            }
            RaftMessage::AppendEntries(request) => self.handle_append_entries(from, request),
            RaftMessage::AppendEntriesResponse(response) => {
                self.handle_append_entries_response(from, response)
            }
            RaftMessage::PreVote(request) => self.handle_pre_vote(from, request),
            RaftMessage::PreVoteResponse(response) => self.handle_pre_vote_response(from, response),
            RaftMessage::InstallSnapshot(request) => self.handle_install_snapshot(from, request),
            RaftMessage::InstallSnapshotResponse(response) => {
                self.handle_install_snapshot_response(from, response)
            }
            RaftMessage::TimeoutNow(request) => self.handle_timeout_now(from, request),
            RaftMessage::MemberRemoved(notice) => self.handle_member_removed(from, notice),
        }
    }

    /// Appends a client command to the leader's log. The entry is persisted and replicated at
    /// the next [`Raft::take_commands`], together with every other proposal since the last one.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<LogId, RequestError> {
        if self.halted.is_some() {
            return Err(RequestError::Halted);
        }
        if self.role() != Role::Leader {
            return Err(RequestError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        if let Some(transfer) = &self.leader_state_mut().transfer {
            // Thesis §3.10: a leader handing over takes no proposal, so the target can catch
            // up and the handover is quick.
            return Err(RequestError::LeadershipTransferInProgress {
                target: transfer.target,
            });
        }
        Ok(self.append_to_own_log(EntryPayload::command(command)))
    }

    /// Starts a linearizable read (thesis §6.4). The outcome arrives later as
    /// `Command::ReadReady` or `Command::RejectRead` carrying `request_id`.
    pub fn read_index(&mut self, request_id: ReadRequestId) -> Result<(), RequestError> {
        if self.halted.is_some() {
            return Err(RequestError::Halted);
        }
        if self.role() != Role::Leader {
            return Err(RequestError::NotLeader {
                leader_hint: self.leader_id,
            });
        }
        self.register_read(request_id);
        Ok(())
    }

    /// Storage reports every request through `io` durable, its log then ending at `last`.
    ///
    /// The rule (docs/CORE.md, "Storage completions"): a completion issued before the latest
    /// truncation is ignored, whatever it names. One issued after it covers that truncation
    /// (storage is ordered), so storage's log is then exactly a prefix of this log, ending at
    /// `last`.
    pub fn persisted(&mut self, io: IoSequence, last: LogId) {
        if self.halted.is_some() || io < self.last_truncation_io {
            return;
        }
        self.assert_issued(io);
        assert!(
            self.log.matches(last) || last.index < self.log.first_index(),
            "storage reports {last} durable through request {io}, after the last truncation \
             ({}), but the log holds {:?} there",
            self.last_truncation_io,
            self.log.log_id_at(last.index)
        );
        if last.index <= self.persisted_index {
            return;
        }
        self.persisted_index = last.index;
        match self.role() {
            Role::Leader => self.maybe_advance_commit_index(),
            Role::Follower | Role::Candidate => self.release_acknowledgements(),
        }
    }

    /// Storage reports every request through `io` durable, hard state saves included.
    pub fn hard_state_saved(&mut self, io: IoSequence) {
        if self.halted.is_some() {
            return;
        }
        self.assert_issued(io);
        if self
            .hard_state_in_flight
            .is_none_or(|in_flight| io < in_flight)
        {
            // An older save completing; a newer one is still in flight.
            return;
        }
        self.hard_state_in_flight = None;
        for (to, message) in std::mem::take(&mut self.held_messages) {
            self.commands.push(Command::Send { to, message });
        }
        if self.role() == Role::Candidate {
            // Our own vote is durable now and counts.
            self.maybe_win_election();
        }
    }

    /// The applier reports every entry through `index` applied.
    pub fn applied(&mut self, index: LogIndex) {
        if self.halted.is_some() {
            return;
        }
        assert!(
            index <= self.apply_requested_index,
            "applied index {index} beyond what was handed to the applier ({})",
            self.apply_requested_index
        );
        if index > self.last_applied {
            self.last_applied = index;
            self.serve_ready_reads();
        }
    }

    /// Returns the commands produced since the last call. Proposals made since then are
    /// batched here into one `AppendLog` and one AppendEntries per follower.
    pub fn take_commands(&mut self) -> Vec<Command> {
        if self.halted.is_none() {
            if self.role() == Role::Leader {
                self.flush_leader();
            }
            self.emit_apply();
            debug_assert_eq!(
                self.storage_requested_index,
                self.log.last_index(),
                "after a flush storage has been handed the whole in-memory log"
            );
        }
        std::mem::take(&mut self.commands)
    }

    // ----- queries ------------------------------------------------------------------------

    /// This server's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The configuration the core was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The role this server plays in its current term.
    pub fn role(&self) -> Role {
        self.role_state.role()
    }

    /// The leader's own state, when this server leads.
    pub(crate) fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role_state {
            RoleState::Leader(leader_state) => Some(leader_state),
            RoleState::Follower(_) | RoleState::Candidate(_) => None,
        }
    }

    /// The leader's own state, for code that runs only on a leader: every caller dispatched on
    /// the role first, so another role here is a bug in the core.
    pub(crate) fn leader_state_mut(&mut self) -> &mut LeaderState {
        match &mut self.role_state {
            RoleState::Leader(leader_state) => leader_state,
            other => unreachable!("leader-only code ran on a {}", other.role()),
        }
    }

    /// What this leader knows about `peer`'s log and how it replicates to it; `None` when
    /// this server does not lead (or `peer` is not a member).
    pub fn follower_progress(&self, peer: NodeId) -> Option<&Progress> {
        self.leader_state()
            .and_then(|leader_state| leader_state.progress.get(&peer))
    }

    /// The latest term this server has seen. It may not be durable yet: a `PersistHardState`
    /// for it can still be in flight.
    pub fn current_term(&self) -> Term {
        self.current_term
    }

    /// The candidate this server voted for in its current term, if any; like `current_term`,
    /// possibly not durable yet.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// `current_term` and `voted_for` together, as the core last asked storage to persist them
    /// (or as recovered).
    pub fn hard_state(&self) -> HardState {
        HardState::new(self.current_term, self.voted_for)
    }

    /// The leader of the current term as far as this server knows (itself when leader).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.leader_id
    }

    /// The highest index known to be committed (§5.3, §5.4.2).
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }

    /// The highest index the applier reported applied through [`Raft::applied`].
    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }

    /// The highest index storage reported durable in this server's log (and still part of
    /// it: a truncation lowers it).
    pub fn persisted_index(&self) -> LogIndex {
        self.persisted_index
    }

    /// Whether storage has reported durable everything it was handed: the whole in-memory
    /// log and the latest hard state. Between an input and the next `take_commands` a
    /// leader's new entries are not handed over yet, so this reads `false` then.
    pub fn storage_idle(&self) -> bool {
        self.hard_state_in_flight.is_none()
            && self.persisted_index == self.log.last_index()
            && self.storage_requested_index == self.log.last_index()
    }

    /// The contradiction that stopped this server, once it has stopped.
    pub fn divergence(&self) -> Option<&Divergence> {
        self.halted.as_ref()
    }

    /// The in-memory log, which may hold entries not yet durable.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The last entry of the log (the snapshot's last entry when none follows it).
    pub fn last_log_id(&self) -> LogId {
        self.log.last_log_id()
    }

    // ----- shared helpers -----------------------------------------------------------------

    /// Queues a message, holding it while a hard state save is in flight.
    pub(crate) fn send(&mut self, to: NodeId, message: RaftMessage) {
        if self.hard_state_in_flight.is_some() {
            self.held_messages.push((to, message));
        } else {
            self.commands.push(Command::Send { to, message });
        }
    }

    /// A completion can only name a request the core has emitted.
    fn assert_issued(&self, io: IoSequence) {
        assert!(
            io <= self.last_io,
            "storage reports request {io} durable, but only {} were issued",
            self.last_io
        );
    }

    /// The sequence for the next storage request, in emission order.
    pub(crate) fn next_io(&mut self) -> IoSequence {
        self.last_io = self.last_io.next();
        self.last_io
    }

    pub(crate) fn persist_hard_state(&mut self) {
        let current = self.hard_state();
        // Two saves in a row (a newer term, then a vote in it) need only the second: nothing
        // was emitted between them that could depend on the first alone. The request keeps
        // its sequence, which is still the latest.
        if let Some(Command::PersistHardState { hard_state, .. }) = self.commands.last_mut() {
            *hard_state = current;
            return;
        }
        let io = self.next_io();
        self.hard_state_in_flight = Some(io);
        self.commands.push(Command::PersistHardState {
            hard_state: current,
            io,
        });
    }

    /// Hands storage every in-memory entry it has not been given yet, as one `AppendLog`.
    pub(crate) fn hand_new_entries_to_storage(&mut self) {
        let last_index = self.log.last_index();
        if last_index <= self.storage_requested_index {
            return;
        }
        let entries = self.log.entries_between(
            self.storage_requested_index.next(),
            last_index,
            usize::MAX,
            usize::MAX,
        );
        self.storage_requested_index = last_index;
        let io = self.next_io();
        self.commands.push(Command::AppendLog { entries, io });
    }

    /// Removes every entry from `since` on, in memory and (by command) on disk.
    pub(crate) fn truncate_log_from(&mut self, since: LogIndex) {
        assert!(
            since > self.commit_index,
            "truncating committed entry {since} (commit index {})",
            self.commit_index
        );
        assert_eq!(
            self.storage_requested_index,
            self.log.last_index(),
            "a truncation follows the whole log on the storage path, or storage would see a gap"
        );
        self.log.truncate_from(since);
        self.persisted_index = self.persisted_index.min(since.previous());
        self.storage_requested_index = self.storage_requested_index.min(since.previous());
        let io = self.next_io();
        self.last_truncation_io = io;
        self.commands.push(Command::TruncateLog { since, io });
    }

    /// Stops this server for good: a committed entry differs from a peer's. Everything
    /// emitted so far stays (the answer telling the leader why among it); held messages are
    /// dropped, and nothing is emitted after the `Diverged` command.
    pub(crate) fn halt(&mut self, divergence: Divergence) {
        tracing::error!(id = %self.config.id, term = %self.current_term, %divergence,
            "fatal divergence: stopping");
        self.held_messages.clear();
        self.commands.push(Command::Diverged(divergence.clone()));
        self.halted = Some(divergence);
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let span = self.config.election_timeout_max_ticks - self.config.election_timeout_min_ticks;
        self.randomized_election_timeout =
            self.config.election_timeout_min_ticks + self.random.next_u64() % span;
    }

    /// Steps down (or stays) as follower in `term`, following `leader` when known.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.current_term, "terms never go backwards");
        if self.role() == Role::Leader {
            // Proposals appended since the last flush have not reached storage: write them now,
            // before anything else touches the log, so storage never sees a gap and no entry is
            // left in memory that storage will never report durable. They are ordinary
            // uncommitted entries of the ending term: a later leader keeps or overwrites them.
            self.hand_new_entries_to_storage();
        }
        let term_changed = term > self.current_term;
        if term_changed {
            self.current_term = term;
            self.voted_for = None;
            // Answers owed to the old term's leader would carry the new term: drop them. A
            // partial snapshot stays; the next leader may send the same one.
            self.pending_acknowledgements.clear();
            if let Some(receipt) = &mut self.snapshot_receipt {
                receipt.pending_answers.clear();
            }
            self.persist_hard_state();
        }
        let previous = std::mem::replace(
            &mut self.role_state,
            RoleState::Follower(FollowerState::default()),
        );
        if previous.role() != Role::Follower {
            tracing::debug!(id = %self.config.id, %term, "becoming follower");
        }
        if let RoleState::Leader(leader_state) = previous {
            // A leader stepping down only knows of a new leader when one told it so; its own
            // `leader_id` still names itself.
            for read in leader_state.pending_reads {
                self.commands.push(Command::RejectRead {
                    request_id: read.request_id,
                    leader_hint: leader,
                });
            }
        }
        self.leader_id = leader;
        self.reset_election_timer();
    }

    /// Leader: appends an entry of the current term to the in-memory log. It reaches storage
    /// and followers at the next flush.
    pub(crate) fn append_to_own_log(&mut self, payload: EntryPayload) -> LogId {
        let log_id = LogId::new(self.current_term, self.log.last_index().next());
        self.log.append(Entry { log_id, payload });
        log_id
    }

    /// Hands newly committed entries to the applier.
    fn emit_apply(&mut self) {
        if self.commit_index <= self.apply_requested_index {
            return;
        }
        let from = self.apply_requested_index.next();
        let entries = self
            .log
            .entries_between(from, self.commit_index, usize::MAX, usize::MAX);
        assert_eq!(
            entries.len() as u64,
            self.commit_index.0 - self.apply_requested_index.0,
            "committed entries must be in the in-memory log until applied"
        );
        self.apply_requested_index = self.commit_index;
        self.commands.push(Command::Apply { entries });
    }
}
