//! The consensus actor: owns a `raft-core` instance, feeds it actix messages and ticks, and
//! routes the core's commands to the storage, network and applier ports.
//!
//! Wiring, in short (node-bin does this for real; `tests/common` does it in-process):
//!
//! ```text
//! let raft = raft_core::Raft::new(core_config, recovered_state)?;
//! let actor = RaftActor::new(RaftActorConfig::new(tick_interval), raft, raft_ports);
//! let metrics = actor.metrics();            // Arc<RaftMetrics>, read by /metrics
//! let address = raft_context.run(actor);    // Context::new() first, so storage, network and
//!                                           // applier can be given its recipients
//! ```
//!
//! The actor handles `ReceivedMessage`, `PeerEvent` (from the network), `StorageEvent` (from
//! storage), `Applied` (from the applier), and `Propose`, `Read`, `GetStatus`, `Shutdown`
//! (from the client API), plus [`GetDrainState`] to learn when a shutdown has finished its
//! durable work.
//!
//! # Layout
//!
//! - [`raft_actor`]: `RaftActor`, its configuration and its message handlers.
//! - [`command_runner`]: one `run_<command>` arm per core `Command`.
//! - [`waiting_proposals`]: clients waiting on their entry to be applied.
//! - [`metrics`]: `RaftMetrics`, counters and gauges shared with the node through an `Arc`.

pub mod command_runner;
pub mod metrics;
pub mod raft_actor;
pub mod waiting_proposals;

pub use metrics::{HistogramSnapshot, RaftMetrics, RaftMetricsSnapshot};
pub use raft_actor::{DrainState, GetDrainState, RaftActor, RaftActorConfig};
