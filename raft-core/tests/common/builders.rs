//! Small constructors for single-core tests: a server in a given state, driven one call at a
//! time, so a test can assert the exact `Vec<Command>` of one handler.

use raft_core::{Command, Config, Raft, RecoveredState, Role};
use raft_types::{
    AppendEntriesRequest, AppendEntriesResponse, AppendOutcome, Entry, EntryPayload, HardState,
    IoSequence, LogId, LogIndex, NodeId, RaftMessage, RequestVoteRequest, RequestVoteResponse,
    Term,
};

/// Election timeout 10..20 ticks, heartbeat every 3, fixed seed.
pub fn config(id: u64, cluster_size: u64) -> Config {
    let mut config = Config::new(NodeId(id), (1..=cluster_size).map(NodeId));
    config.election_timeout_min_ticks = 10;
    config.election_timeout_max_ticks = 20;
    config.heartbeat_interval_ticks = 3;
    config.random_seed = 42 + id;
    // Most single-core tests exercise §5 as written; pre-vote has tests of its own.
    config.pre_vote = false;
    config
}

/// Entries at indexes 1.. with the given terms; the payload names the index.
pub fn entries_with_terms(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(offset, term)| entry(*term, offset as u64 + 1))
        .collect()
}

pub fn entry(term: u64, index: u64) -> Entry {
    Entry::new(
        Term(term),
        LogIndex(index),
        EntryPayload::command(format!("command-{index}").into_bytes()),
    )
}

pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(Term(term), LogIndex(index))
}

pub fn io(sequence: u64) -> IoSequence {
    IoSequence(sequence)
}

/// A `PersistHardState` command, in [`persist_hard_state`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HardStateWrite {
    pub current_term: u64,
    pub voted_for: Option<u64>,
    /// The storage request's `IoSequence`.
    pub io: u64,
}

/// The `PersistHardState` command for `current_term` and `voted_for`, as storage request `io`.
pub fn persist_hard_state(write: HardStateWrite) -> Command {
    Command::PersistHardState {
        hard_state: HardState::new(Term(write.current_term), write.voted_for.map(NodeId)),
        io: IoSequence(write.io),
    }
}

/// The state a single-core test server restarts in: `server(1).of(3).term(4).log(&[1, 4])`,
/// then [`ServerSetup::start`]. Unset, it is in term 0 with no vote, an empty log and pre-vote
/// off (so elections follow §5 as written).
#[derive(Clone, Copy, Debug)]
pub struct ServerSetup<'a> {
    pub id: u64,
    pub cluster_size: u64,
    pub current_term: u64,
    pub voted_for: Option<u64>,
    /// The terms of the entries at indexes 1.. (see [`entries_with_terms`]).
    pub log_terms: &'a [u64],
    /// Pre-vote and leader stickiness on (the default configuration), instead of elections as
    /// §5 writes them.
    pub pre_vote: bool,
}

/// Server `id` (of a single-node cluster until [`ServerSetup::of`] says otherwise).
pub fn server(id: u64) -> ServerSetup<'static> {
    ServerSetup {
        id,
        cluster_size: 1,
        current_term: 0,
        voted_for: None,
        log_terms: &[],
        pre_vote: false,
    }
}

impl<'a> ServerSetup<'a> {
    /// In a cluster of servers `1..=cluster_size`.
    pub fn of(self, cluster_size: u64) -> Self {
        ServerSetup {
            cluster_size,
            ..self
        }
    }

    /// Restarted in `current_term`.
    pub fn term(self, current_term: u64) -> Self {
        ServerSetup {
            current_term,
            ..self
        }
    }

    /// Having voted for `candidate` in its current term.
    pub fn voted(self, candidate: u64) -> Self {
        self.voted_for(Some(candidate))
    }

    /// With this vote (or none) in its current term.
    pub fn voted_for(self, voted_for: Option<u64>) -> Self {
        ServerSetup { voted_for, ..self }
    }

    /// With a log of entries of these terms at indexes 1...
    pub fn log<'b>(self, log_terms: &'b [u64]) -> ServerSetup<'b> {
        ServerSetup {
            id: self.id,
            cluster_size: self.cluster_size,
            current_term: self.current_term,
            voted_for: self.voted_for,
            log_terms,
            pre_vote: self.pre_vote,
        }
    }

    /// With pre-vote and leader stickiness on (the default configuration).
    pub fn pre_vote(self) -> Self {
        ServerSetup {
            pre_vote: true,
            ..self
        }
    }

    /// The follower restarted in this state.
    pub fn start(self) -> Raft {
        let mut config = config(self.id, self.cluster_size);
        config.pre_vote = self.pre_vote;
        restarted(config, self.current_term, self.voted_for, self.log_terms)
    }
}

fn restarted(config: Config, current_term: u64, voted_for: Option<u64>, log_terms: &[u64]) -> Raft {
    Raft::new(
        config,
        RecoveredState {
            hard_state: HardState::new(Term(current_term), voted_for.map(NodeId)),
            snapshot: None,
            entries: entries_with_terms(log_terms),
        },
    )
    .expect("valid config")
}

/// Ticks until the server starts an election; returns the commands of that tick.
pub fn tick_until_election(raft: &mut Raft) -> Vec<Command> {
    let term = raft.current_term();
    for _ in 0..100 {
        raft.tick();
        let commands = raft.take_commands();
        if raft.current_term() > term {
            return commands;
        }
        assert!(
            commands.is_empty(),
            "a quiet follower emits nothing: {commands:?}"
        );
    }
    panic!("no election within 100 ticks");
}

/// Completes every storage command in `commands` as the storage actor would: one sync, then
/// `hard_state_saved` if the batch saved a hard state and `persisted` if it appended, both
/// naming the batch's last request.
pub fn complete_storage(raft: &mut Raft, commands: &[Command]) {
    let mut saved_hard_state = false;
    let mut last_appended = None;
    let mut last_io = None;
    for command in commands {
        match command {
            Command::PersistHardState { io, .. } => {
                saved_hard_state = true;
                last_io = Some(*io);
            }
            Command::AppendLog { entries, io } => {
                last_appended = entries.last().map(|entry| entry.log_id);
                last_io = Some(*io);
            }
            Command::TruncateLog { io, .. } => last_io = Some(*io),
            Command::ResetLog { last_log_id, io } => {
                last_appended = Some(*last_log_id);
                last_io = Some(*io);
            }
            _ => {}
        }
    }
    let Some(last_io) = last_io else {
        return;
    };
    if saved_hard_state {
        raft.hard_state_saved(last_io);
    }
    if let Some(log_id) = last_appended {
        raft.persisted(last_io, log_id);
    }
}

/// Makes `raft` (server 1 of its cluster) leader with votes from every peer, storage
/// completed; returns it with its command buffer drained and its no-op durable.
pub fn elected_leader(mut raft: Raft) -> Raft {
    let commands = tick_until_election(&mut raft);
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    let term = raft.current_term();
    let own_id = raft.id();
    let peers: Vec<NodeId> = raft
        .membership()
        .all_voters()
        .into_iter()
        .filter(|id| *id != own_id)
        .collect();
    for peer in peers {
        raft.step(
            peer,
            RaftMessage::RequestVoteResponse(RequestVoteResponse {
                term,
                vote_granted: true,
            }),
        );
    }
    assert_eq!(raft.role(), Role::Leader);
    let commands = raft.take_commands();
    complete_storage(&mut raft, &commands);
    raft.take_commands();
    raft
}

/// A `RequestVote` message, in [`request_vote`].
#[derive(Clone, Copy, Debug)]
pub struct Vote {
    pub term: u64,
    pub candidate: u64,
    pub last_log_id: LogId,
}

pub fn request_vote(vote: Vote) -> RaftMessage {
    RaftMessage::RequestVote(RequestVoteRequest {
        leadership_transfer: false,
        term: Term(vote.term),
        candidate_id: NodeId(vote.candidate),
        last_log_id: vote.last_log_id,
    })
}

pub fn vote_response(term: u64, vote_granted: bool) -> RaftMessage {
    RaftMessage::RequestVoteResponse(RequestVoteResponse {
        term: Term(term),
        vote_granted,
    })
}

/// An `AppendEntries` request, in [`append_entries`]. The default is a heartbeat of term 0
/// from server 1 at the start of the log: no entries, commit 0, sequence 0.
#[derive(Clone, Debug)]
pub struct Append {
    pub term: u64,
    pub leader: u64,
    pub prev_log_id: LogId,
    pub entries: Vec<Entry>,
    pub leader_commit: u64,
    pub sequence: u64,
}

impl Default for Append {
    fn default() -> Self {
        Append {
            term: 0,
            leader: 1,
            prev_log_id: LogId::ZERO,
            entries: Vec::new(),
            leader_commit: 0,
            sequence: 0,
        }
    }
}

pub fn append_entries(append: Append) -> RaftMessage {
    RaftMessage::AppendEntries(AppendEntriesRequest {
        term: Term(append.term),
        leader_id: NodeId(append.leader),
        prev_log_id: append.prev_log_id,
        entries: append.entries,
        leader_commit: LogIndex(append.leader_commit),
        sequence: append.sequence,
    })
}

pub fn append_response(term: u64, sequence: u64, outcome: AppendOutcome) -> RaftMessage {
    RaftMessage::AppendEntriesResponse(AppendEntriesResponse {
        term: Term(term),
        sequence,
        outcome,
    })
}

pub fn success(match_index: u64) -> AppendOutcome {
    AppendOutcome::Success {
        match_index: LogIndex(match_index),
    }
}

pub fn send(to: u64, message: RaftMessage) -> Command {
    Command::Send {
        to: NodeId(to),
        message,
    }
}

/// The messages sent in `commands`, by destination.
pub fn sends(commands: &[Command]) -> Vec<(NodeId, RaftMessage)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// The AppendEntries requests in `commands`, by destination.
pub fn append_requests(commands: &[Command]) -> Vec<(NodeId, AppendEntriesRequest)> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Send {
                to,
                message: RaftMessage::AppendEntries(request),
            } => Some((*to, request.clone())),
            _ => None,
        })
        .collect()
}
