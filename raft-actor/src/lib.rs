//! The consensus actor: owns a `raft-core` instance, feeds it actix messages and ticks, and
//! routes the core's commands to the storage, network and applier ports.
//!
//! # Wiring
//!
//! The consensus actor and its peers point at each other, so create its `Context` first, hand
//! its address to the others, then run it (node-bin does this for real; `tests/common` does it
//! in-process):
//!
//! ```text
//! let raft_context: Context<RaftActor> = Context::new();
//! let raft_address = raft_context.address();
//! // storage: StoragePorts { events: raft_address.clone().recipient() }
//! // network: NetworkPorts { received: .., peer_events: .. } (both raft_address recipients)
//! // applier: ApplierActor::new(KvStore::new(), ApplierPorts { applied: .. }).start()
//! let raft = raft_core::Raft::new(core_config, recovered_state)?;
//! let ports = RaftPorts { storage, network, apply: applier.clone().recipient(),
//!                         query: applier.clone().recipient(), restore: applier.recipient(),
//!                         snapshot_store: Some(snapshot_store) };
//! let actor = RaftActor::new(RaftActorConfig::new(tick_interval), raft, ports);
//! let metrics = actor.metrics();   // Arc<RaftMetrics>; metrics.snapshot() for /metrics
//! let raft_address = raft_context.run(actor);
//! ```
//!
//! # Messages
//!
//! - From the network: `ReceivedMessages`, `PeerEvent`.
//! - From storage: `StorageEvent` (`Failed` stops the node with exit code 1).
//! - From the applier: `Applied`, `SnapshotTaken` (the log behind it may be compacted).
//! - From the client API: `Propose`, `Read` (answered through their responders: the state
//!   machine's output, or a `ClientError`), `GetStatus` (returns `RaftStatus`), `Shutdown`.
//! - From the admin API: `ChangeMembership`, `TransferLeadership` (answered once complete),
//!   `GetMembership`; [`RaftActor::membership_watch`] publishes the configuration in force.
//! - [`GetDrainState`]: after `Shutdown`, poll until [`DrainState::is_drained`], then stop the
//!   system: everything this node acknowledged is durable and applied.
//!
//! Answers a client can get: `NotLeader { leader_hint }` (not the leader: retry there),
//! `Unavailable` (refused while shutting down, while storage is too far behind (the write
//! path's bound), after the node stopped on a divergence, or the entry was overwritten by a
//! later leader: definitely not applied), `OutcomeUnknown` (the node stopped while the entry was in
//! the log). A proposal stays waiting while its outcome is open, even across a loss of
//! leadership, so the client API's own timeout turns a long wait into a 504.
//!
//! # Layout
//!
//! - [`raft_actor`]: `RaftActor`, its configuration and its message handlers.
//! - [`admin`]: membership change and leadership transfer requests, waited on until done.
//! - [`command_runner`]: one `run_<command>` arm per core `Command`.
//! - [`waiting_proposals`]: clients waiting on their entry to be applied.
//! - [`metrics`]: `RaftMetrics`, counters and gauges shared with the node through an `Arc`.
//! - [`peer_round_trip`]: AppendEntries round-trip time per peer, matched by sequence.

pub mod admin;
pub mod command_runner;
pub mod metrics;
pub mod peer_round_trip;
pub mod raft_actor;
pub mod waiting_proposals;

pub use admin::{MembershipInForce, ADMIN_TIMEOUT};
pub use metrics::{HistogramSnapshot, RaftMetrics, RaftMetricsSnapshot};
pub use raft_actor::{
    DivergenceHook, DrainState, GetDrainState, RaftActor, RaftActorConfig,
    DEFAULT_MAX_UNPERSISTED_BYTES, DEFAULT_MAX_UNPERSISTED_ENTRIES,
};

/// The exit code of a node stopped on a divergence (a committed entry that differs from a
/// peer's; see `raft_core::Divergence`). Distinct from 1 (storage failure) so an operator, or a
/// supervisor, can tell that restarting alone will not help.
pub const DIVERGENCE_EXIT_CODE: i32 = 3;
