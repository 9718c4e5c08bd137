//! The RPCs of Figure 2, as one enum so a transport moves a single type.
//!
//! The sender's id travels beside the message (in the transport's envelope), not inside it, so
//! a node cannot claim to be someone else by writing a different id into a request.

use crate::entry::Entry;
use crate::ids::{LogId, LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

/// Every message one server sends another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMessage {
    RequestVote(RequestVoteRequest),
    RequestVoteResponse(RequestVoteResponse),
    AppendEntries(AppendEntriesRequest),
    AppendEntriesResponse(AppendEntriesResponse),
    /// Pre-vote (thesis §9.6): "would you vote for me in `term`?" asked before a real
    /// election. The receiver changes nothing, so a server that was partitioned away cannot
    /// disrupt a working leader by bumping the term when it returns.
    PreVote(RequestVoteRequest),
    PreVoteResponse(RequestVoteResponse),
}

impl RaftMessage {
    /// The sender's term; every RPC carries one (§5.1: a higher term makes the receiver a
    /// follower, a lower one is answered with the receiver's term).
    pub fn term(&self) -> Term {
        match self {
            RaftMessage::RequestVote(request) => request.term,
            RaftMessage::RequestVoteResponse(response) => response.term,
            RaftMessage::AppendEntries(request) => request.term,
            RaftMessage::AppendEntriesResponse(response) => response.term,
            RaftMessage::PreVote(request) => request.term,
            RaftMessage::PreVoteResponse(response) => response.term,
        }
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RaftMessage::RequestVote(_) => "RequestVote",
            RaftMessage::RequestVoteResponse(_) => "RequestVoteResponse",
            RaftMessage::AppendEntries(_) => "AppendEntries",
            RaftMessage::AppendEntriesResponse(_) => "AppendEntriesResponse",
            RaftMessage::PreVote(_) => "PreVote",
            RaftMessage::PreVoteResponse(_) => "PreVoteResponse",
        }
    }
}

/// Invoked by candidates to gather votes (§5.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteRequest {
    pub term: Term,
    pub candidate_id: NodeId,
    /// The candidate's last entry, for the election restriction (§5.4.1).
    pub last_log_id: LogId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteResponse {
    /// The voter's current term, so a stale candidate learns it is behind.
    pub term: Term,
    pub vote_granted: bool,
}

/// Invoked by the leader to replicate entries; with no entries it is a heartbeat (§5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesRequest {
    pub term: Term,
    pub leader_id: NodeId,
    /// The entry just before `entries`; the follower must hold it (the consistency check).
    pub prev_log_id: LogId,
    pub entries: Vec<Entry>,
    /// The leader's commit index, so followers learn what to apply.
    pub leader_commit: LogIndex,
    /// A per-term counter the leader stamps on every AppendEntries and the follower echoes.
    /// A response carrying sequence `s` proves the follower still followed this leader after
    /// the leader sent `s`, which is what ReadIndex needs (thesis §6.4) without extra RPCs.
    pub sequence: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesResponse {
    pub term: Term,
    /// The `sequence` of the request this answers.
    pub sequence: u64,
    pub outcome: AppendOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's through `match_index`, and everything through
    /// `match_index` is durable on the follower.
    Success { match_index: LogIndex },
    /// The consistency check failed: the follower does not hold `prev_log_id`. The hint lets
    /// the leader skip a whole conflicting term per round trip (§5.3, "optimization"):
    /// `conflict_term` is the follower's term at `prev_log_id.index` (None when its log is
    /// shorter) and `conflict_index` the first index the follower holds for that term, or its
    /// last index + 1 when the log is too short.
    Conflict {
        conflict_term: Option<Term>,
        conflict_index: LogIndex,
    },
    /// The request's term was older than the follower's; `term` tells the sender the newer one.
    /// It is no acknowledgement of anything: `sequence` echoes a request of an older term.
    StaleTerm,
    /// The request contradicts an entry this follower knows is committed: it holds
    /// `committed_term` at `index`, at or below its commit index, and the leader's log does not.
    /// Raft's safety is already broken (storage lost or rewrote data), so the follower has
    /// stopped; the leader stops too (see `raft_core::Divergence`).
    Diverged {
        index: LogIndex,
        committed_term: Term,
    },
}
