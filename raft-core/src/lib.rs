//! The Raft consensus algorithm as a deterministic state machine with no IO.
//!
//! A shell (the consensus actor, or a test harness) feeds it inputs: [`Raft::tick`] for
//! time, [`Raft::step`] for peer messages, [`Raft::propose`] and [`Raft::read_index`] for
//! clients, and the completion events [`Raft::persisted`], [`Raft::hard_state_saved`] and
//! [`Raft::applied`]. After each input the shell calls [`Raft::take_commands`] and carries out
//! the returned [`Command`]s in order. There is no clock, no thread, no socket and no file
//! here; randomness (election timeouts) comes from one RNG seeded from [`Config`], so a run is
//! a pure function of its inputs and can be replayed exactly.
//!
//! Rules from the Raft paper are cited by section (§5.x) next to the code that implements them.
//!
//! # Layout
//!
//! The public surface is what a shell needs: [`Raft`], [`Config`], the [`Command`]s it emits,
//! the [`RaftLog`] it can be asked for, [`Divergence`] and [`RequestError`]. Inside, one module
//! per part of the protocol adds its `impl Raft` block:
//!
//! - `raft`: the `Raft` type, its inputs and queries, role transitions.
//! - `invariants`: `check_invariants`, the local invariants.
//! - `election`: §5.2 leader election and §5.4.1 the election restriction.
//! - `replication`: the leader's side of §5.3 and the commit rule of §5.4.2.
//! - `follower`: the follower's side of AppendEntries.
//! - `read_index`: linearizable reads (thesis §6.4).
//! - `membership`: configuration changes through joint consensus, learners, removal and
//!   leadership transfer (thesis chapter 4, §3.10).
//! - `snapshot`: log compaction, sending and installing snapshots (§7, Figure 13).
//! - [`recovery`]: what a restarting server's log is, given its snapshot and its stored log.
//! - `progress`: per-follower replication state.
//! - [`raft_log`]: the in-memory log, which may start after a snapshot.
//! - [`command`]: the output vocabulary.
//! - [`divergence`]: what stops a server whose committed entry differs from a peer's.
//! - [`config`], [`error`].

#![warn(missing_docs)]

pub mod command;
pub mod config;
pub mod divergence;
mod election;
pub mod error;
mod follower;
mod invariants;
mod membership;
mod progress;
mod raft;
pub mod raft_log;
mod read_index;
pub mod recovery;
mod replication;
mod snapshot;

pub use command::{Command, ReadRequestId};
pub use config::{Config, ConfigError};
pub use divergence::{Divergence, DivergenceSide};
pub use error::RequestError;
pub use membership::MemberProgress;
pub use progress::{CatchUpRound, Progress, ReplicationMode, SentChunk, SnapshotTransfer};
pub use raft::{Raft, RecoveredState};
pub use raft_log::RaftLog;
pub use raft_types::Role;
pub use raft_types::StoredLog;
pub use recovery::{reconcile, RecoveryError};
