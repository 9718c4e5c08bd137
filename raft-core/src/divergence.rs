//! Divergence: proof that two servers committed different entries at one index.
//!
//! Raft never lets that happen while every server's storage keeps what it acknowledged (§5.4,
//! State Machine Safety). When it does happen anyway (a node started on another member's data
//! directory, a disk that lost or rewrote synced data), carrying on would make the state
//! machines disagree silently. So the core checks every claim a peer makes about an index at
//! or below its commit index, and on a contradiction it stops for good: it emits
//! [`Command::Diverged`](crate::Command::Diverged) and ignores every later input.
//!
//! Two places can see it:
//!
//! - a follower whose committed entry at `index` has another term than the leader's (an
//!   AppendEntries whose `prev_log_id` at or below the commit index does not match, or one that
//!   would replace a committed entry); it answers `AppendOutcome::Diverged` before stopping;
//! - a leader told so by such a follower: the follower's committed entry is not in the
//!   leader's log, which Leader Completeness (§5.4.1) rules out for an honest leader.

use raft_types::{LogIndex, NodeId, Term};
use std::fmt;

/// Which side of the contradiction this server holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DivergenceSide {
    /// This server is a follower whose committed entry the leader contradicts.
    CommittedHere,
    /// This server is the leader and a follower reports a committed entry it does not hold.
    CommittedOnFollower,
}

/// The contradiction that stopped this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The index at which the two logs hold different entries.
    pub index: LogIndex,
    /// This server's term at `index`; `None` when it holds no entry there.
    pub local_term: Option<Term>,
    /// The peer on the other side: the leader, or the follower that reported it.
    pub peer: NodeId,
    /// The peer's term at `index`.
    pub peer_term: Term,
    /// Whether the committed entry is this server's (a follower) or the peer's (this server
    /// is the leader).
    pub side: DivergenceSide,
}

impl fmt::Display for Divergence {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = match self.local_term {
            Some(term) => format!("term {term}"),
            None => "no entry".to_string(),
        };
        match self.side {
            DivergenceSide::CommittedHere => write!(
                formatter,
                "committed entry {} has {local} here but leader {} holds term {} there",
                self.index, self.peer, self.peer_term
            ),
            DivergenceSide::CommittedOnFollower => write!(
                formatter,
                "follower {} committed entry {} with term {} but this leader holds {local} there",
                self.peer, self.index, self.peer_term
            ),
        }
    }
}
