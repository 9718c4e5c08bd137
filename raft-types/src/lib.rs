//! The vocabulary every other crate shares: identifiers, log entries, the durable hard state,
//! and the RPCs servers exchange (Raft paper, Figure 2).
//!
//! This crate has no actix, no IO and no policy. It is the part of the project a second
//! implementation (a simulator, a proxy, a test peer) would link to speak our wire format.
//!
//! # Layout
//!
//! - [`ids`]: the newtypes `NodeId`, `Term`, `LogIndex`, `IoSequence` and the pair `LogId`.
//! - [`entry`]: `Entry` and its `EntryPayload` (client command, the leader's no-op).
//! - [`membership`]: `Membership`, the configuration (voters, joint, learners, addresses).
//! - [`hard_state`]: `HardState`, what a server must persist before it answers (§5.1, Figure 2).
//! - [`message`]: `RaftMessage`, the RequestVote and AppendEntries RPCs and their responses.
//! - [`role`]: `Role`, what a server is in its current term.
//! - [`stored_log`]: `StoredLog`, what a log store recovered (hard state and log).
//! - [`snapshot`]: `SnapshotMeta`, what names a snapshot and the log prefix it replaces (§7).
//! - [`codec`]: the versioned rmp-serde encoding used on the wire and in stored records.

#![warn(missing_docs)]

pub mod codec;
pub mod entry;
pub mod hard_state;
pub mod ids;
pub mod membership;
pub mod message;
pub mod role;
pub mod snapshot;
pub mod stored_log;

pub use bytes::Bytes;
pub use codec::{decode, encode, encode_into, CodecError, WIRE_FORMAT_VERSION};
pub use entry::{Entry, EntryPayload};
pub use hard_state::HardState;
pub use ids::{IoSequence, LogId, LogIndex, NodeId, Term};
pub use membership::{MemberAddress, Membership, MembershipChange, MembershipChangeError};
pub use message::{
    AppendEntriesRequest, AppendEntriesResponse, AppendOutcome, InstallSnapshotRequest,
    InstallSnapshotResponse, MemberRemovedNotice, RaftMessage, RequestVoteRequest,
    RequestVoteResponse, SnapshotOutcome, TimeoutNowRequest,
};
pub use role::Role;
pub use snapshot::{SnapshotId, SnapshotMeta, SnapshotReceiveOutcome};
pub use stored_log::StoredLog;
