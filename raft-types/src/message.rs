//! The RPCs of Figure 2, as one enum so a transport moves a single type.
//!
//! The sender's id travels beside the message (in the transport's envelope), not inside it, so
//! a node cannot claim to be someone else by writing a different id into a request.

use crate::entry::Entry;
use crate::ids::{LogId, LogIndex, NodeId, Term};
use crate::snapshot::{SnapshotId, SnapshotMeta};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Every message one server sends another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMessage {
    /// A candidate asks a peer for its vote (§5.2).
    RequestVote(RequestVoteRequest),
    /// A peer answers a candidate's RequestVote.
    RequestVoteResponse(RequestVoteResponse),
    /// The leader replicates entries to a follower, or sends it a heartbeat (§5.3).
    AppendEntries(AppendEntriesRequest),
    /// A follower answers the leader's AppendEntries.
    AppendEntriesResponse(AppendEntriesResponse),
    /// Pre-vote (thesis §9.6): "would you vote for me in `term`?" asked before a real
    /// election. The receiver changes nothing, so a server that was partitioned away cannot
    /// disrupt a working leader by bumping the term when it returns.
    PreVote(RequestVoteRequest),
    /// A peer answers a PreVote. A granted answer carries the request's hypothetical term, a
    /// refusal the receiver's current term.
    PreVoteResponse(RequestVoteResponse),
    /// The leader sends a follower one chunk of a snapshot, because the entries the follower
    /// needs next are compacted away (§7).
    InstallSnapshot(InstallSnapshotRequest),
    /// A follower answers an InstallSnapshot chunk.
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// Leadership transfer (thesis §3.10): the leader tells a caught-up voter to start an
    /// election now, without waiting for its election timeout and without a pre-vote.
    TimeoutNow(TimeoutNowRequest),
    /// The receiver was removed from the cluster: the sender refuses its messages. Sent in
    /// answer to a removed server's messages and by a leader once a removal is committed, so
    /// the removed server stops campaigning instead of disturbing the cluster.
    MemberRemoved(MemberRemovedNotice),
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
            RaftMessage::InstallSnapshot(request) => request.term,
            RaftMessage::InstallSnapshotResponse(response) => response.term,
            RaftMessage::TimeoutNow(request) => request.term,
            RaftMessage::MemberRemoved(notice) => notice.term,
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
            RaftMessage::InstallSnapshot(_) => "InstallSnapshot",
            RaftMessage::InstallSnapshotResponse(_) => "InstallSnapshotResponse",
            RaftMessage::TimeoutNow(_) => "TimeoutNow",
            RaftMessage::MemberRemoved(_) => "MemberRemoved",
        }
    }
}

/// Invoked by candidates to gather votes (§5.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteRequest {
    /// The candidate's term; in a PreVote, the term it would move to (its current term + 1).
    pub term: Term,
    /// The candidate requesting the vote; a vote is granted only when it is the sender.
    pub candidate_id: NodeId,
    /// The candidate's last entry, for the election restriction (§5.4.1).
    pub last_log_id: LogId,
    /// Set by a candidate that campaigns because its leader handed leadership over
    /// (TimeoutNow): voters then grant it even while they hear from that leader, since the
    /// leader itself asked for the election (thesis §3.10).
    #[serde(default)]
    pub leadership_transfer: bool,
}

/// A leader hands leadership to the receiver (thesis §3.10): its log matched the leader's
/// when sent, so it can win an election at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNowRequest {
    /// The leader's term; the receiver campaigns in the next one.
    pub term: Term,
}

/// The receiver is not a member of the sender's configuration any more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRemovedNotice {
    /// The sender's current term (informational: the notice never moves a term).
    pub term: Term,
}

/// A voter's answer to a RequestVote or PreVote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteResponse {
    /// The voter's current term, so a stale candidate learns it is behind.
    pub term: Term,
    /// Whether the voter granted its vote (for a PreVote: whether it would).
    pub vote_granted: bool,
}

/// Invoked by the leader to replicate entries; with no entries it is a heartbeat (§5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesRequest {
    /// The leader's term.
    pub term: Term,
    /// The leader, so followers learn whom to follow; a request whose `leader_id` is not its
    /// sender is refused.
    pub leader_id: NodeId,
    /// The entry just before `entries`; the follower must hold it (the consistency check).
    pub prev_log_id: LogId,
    /// The entries to store after `prev_log_id`, in index order; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The leader's commit index, so followers learn what to apply.
    pub leader_commit: LogIndex,
    /// A per-term counter the leader stamps on every AppendEntries and the follower echoes.
    /// A response carrying sequence `s` proves the follower still followed this leader after
    /// the leader sent `s`, which is what ReadIndex needs (thesis §6.4) without extra RPCs.
    pub sequence: u64,
}

/// A follower's answer to an AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesResponse {
    /// The follower's current term, so a stale leader learns it is behind.
    pub term: Term,
    /// The `sequence` of the request this answers.
    pub sequence: u64,
    /// What the follower made of the request.
    pub outcome: AppendOutcome,
}

/// What a follower made of an AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's through `match_index`, and everything through
    /// `match_index` is durable on the follower.
    Success {
        /// The last index the answered request covered (`prev_log_id.index` plus its number
        /// of entries); one answer sent for several held acknowledgements carries the highest.
        match_index: LogIndex,
    },
    /// The consistency check failed: the follower does not hold `prev_log_id`. The hint lets
    /// the leader skip a whole conflicting term per round trip (§5.3, "optimization"):
    /// `conflict_term` is the follower's term at `prev_log_id.index` (None when its log is
    /// shorter) and `conflict_index` the first index the follower holds for that term, or its
    /// last index + 1 when the log is too short.
    Conflict {
        /// The follower's term at `prev_log_id.index`; `None` when its log is shorter.
        conflict_term: Option<Term>,
        /// Where the leader should probe next: the first index the follower holds of
        /// `conflict_term` (never at or below its commit index), or its last index + 1.
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
        /// The index of the contradicted committed entry.
        index: LogIndex,
        /// The term of the follower's entry at `index` (0 when it holds none there).
        committed_term: Term,
    },
}

/// One chunk of a snapshot file, sent by the leader (§7, Figure 13). The chunks of one
/// transfer are the file's bytes in order; the follower stores a chunk only when it starts
/// exactly where its stored bytes end, so a lost or reordered chunk is sent again and a broken
/// transfer resumes from what the follower already holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotRequest {
    /// The leader's term.
    pub term: Term,
    /// The leader; a request whose `leader_id` is not its sender is refused.
    pub leader_id: NodeId,
    /// The snapshot the chunk belongs to.
    pub snapshot: SnapshotMeta,
    /// Where `data` starts in the snapshot file.
    pub offset: u64,
    /// The file's bytes `offset .. offset + data.len()`; the last chunk ends at
    /// `snapshot.size_bytes`.
    pub data: Bytes,
    /// The same per-term counter as `AppendEntriesRequest::sequence`, echoed in the answer: an
    /// answer proves the follower followed this leader after the chunk was sent.
    pub sequence: u64,
}

impl InstallSnapshotRequest {
    /// Where the next chunk starts.
    pub fn end_offset(&self) -> u64 {
        self.offset + self.data.len() as u64
    }

    /// Whether this chunk completes the file.
    pub fn is_last(&self) -> bool {
        self.end_offset() >= self.snapshot.size_bytes
    }
}

/// A follower's answer to an InstallSnapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotResponse {
    /// The follower's current term.
    pub term: Term,
    /// The `sequence` of the request this answers.
    pub sequence: u64,
    /// What the follower made of the chunk.
    pub outcome: SnapshotOutcome,
}

/// What a follower made of an InstallSnapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotOutcome {
    /// The follower durably holds bytes `0 .. next_offset` of `snapshot`: the leader continues
    /// from `next_offset`. Sent after each stored chunk, and (with a lower `next_offset`) when
    /// a chunk did not start where the stored bytes end, so the leader goes back.
    Receiving {
        /// The snapshot being received.
        snapshot: SnapshotId,
        /// The first byte the follower does not hold.
        next_offset: u64,
    },
    /// The follower installed the snapshot: its log now matches the leader's through
    /// `last_log_id`, durably.
    Installed {
        /// The snapshot's last entry.
        last_log_id: LogId,
    },
    /// The follower does not need the snapshot: its commit index already covers it (Figure 13:
    /// a snapshot at or below what is committed is ignored). The leader replicates entries
    /// from just after the snapshot instead.
    NotNeeded {
        /// The follower's commit index.
        commit_index: LogIndex,
    },
    /// The follower stored every byte but the file failed verification (a checksum, or a
    /// header that does not match `snapshot`): it discarded what it had; send it again from 0.
    Rejected {
        /// What was wrong, for the leader's log.
        reason: String,
    },
    /// The request's term was older than the follower's; `term` tells the sender the newer one.
    StaleTerm,
}
