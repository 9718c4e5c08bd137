//! `InProcessCluster`: every actor of N nodes in the current actix System, on the tokio clock,
//! so a whole-node test runs in virtual time when that clock is paused (see [`PausedSystem`]).
//!
//! Each node is wired as `node-bin` wires a real node (`node_runtime.rs`), with two swaps:
//!
//! ```text
//!  MemDisk ◀─ StorageActor ◀─ DiskLatency ◀─StorageRequest── RaftActor ──SendMessages─▶ SimEndpoint
//!  (MemLogStore    └──StorageEvent──▶ EventGate ───────────▶  ▲ │                           │
//!  or WAL on a SimFileSystem)                                  │ └─ApplyEntries/Query─▶ Applier
//!  SimNetwork (one per cluster, seeded) ◀──SimSend──────────────┼───────────────────────────┘
//!       └──────────────ReceivedMessages/PeerEvent───────────────┘
//! ```
//!
//! - The network is one [`SimNetwork`] seeded from the cluster seed; each node sends through its
//!   own [`SimEndpoint`]. Partitions, isolation and per-link faults are its control messages.
//! - Storage is a [`StorageActor`] over a [`MemLogStore`], started on the *current* arbiter
//!   (not a thread of its own, unlike `node-bin`), so the paused clock governs every actor and
//!   nothing runs behind the test's back. A `DiskLatency` actor in front of it delays each
//!   request by a seeded 0..=[`DISK_LATENCY_MAX`] (in order), standing in for write-and-sync
//!   time, so a crash can catch requests not yet durable.
//! - The state machine is a fresh [`KvStore`] in an [`ApplierActor`].
//! - Each node's disk is a [`DiskModel`]: by default a [`MemLogStore`] over a [`MemDisk`]; with
//!   [`DiskModel::Simulated`] the real [`FileLogStore`] over a [`SimFileSystem`] (a page cache
//!   that a power loss empties, see `storage_actor::sim_file_system`). Storage events reach the
//!   consensus actor through an `EventGate` that drops them once the node's disk has lost power,
//!   so nothing a dead node's storage says (not even its failure) gets out.
//!
//! # Crash and restart
//!
//! Every actor of a node except its `SimEndpoint` (which stops by itself once the consensus
//! actor that holds it is gone) runs as a tokio task of its own. [`InProcessCluster::crash`]
//! aborts those tasks: nothing of the node runs again. The node's [`MemDisk`] keeps exactly
//! what its storage actor had flushed when the crash came (`MemLogStore` writes through, so a
//! flush is a sync); requests still in the storage actor's mailbox or batch are lost, as
//! unsynced writes are lost by a real crash. Nothing acknowledged depends on them: storage
//! reports `Persisted` only after a flush. Clients waiting on the node are answered by the
//! consensus actor's `stopped` hook (`OutcomeUnknown` / `Unavailable`), which actix runs when
//! the aborted context is dropped. [`InProcessCluster::restart`] opens a new store on the
//! disk and builds the consensus core with `Raft::new(config, recovered)` and fresh actors;
//! the applier starts empty and re-applies the log from index 1 once the commit index is
//! known.
//!
//! On a simulated disk, a crash is a process crash: the disk's power is switched off first
//! (so the dying actors write nothing), the actors are aborted, and the page cache survives.
//! [`InProcessCluster::power_loss`] cuts the power of several nodes at once: each disk goes dark
//! at a seeded one of its next few operations (so the cut can land between a write and its
//! fdatasync), then the nodes are aborted and each disk keeps what was synced plus a seeded part
//! of the rest. Restarting runs the WAL's recovery on what is left.
//!
//! A node's snapshot writer is a thread, which aborting the node's tasks does not stop. Each
//! life of a node therefore sees its disks through `SimFileSystem::for_this_process` views,
//! which fail every call once the disk restarts: a writer still running when its node crashed
//! cannot rename, delete or write anything its next life finds, as no thread of a killed
//! process can.
//!
//! # Determinism
//!
//! One thread, one seed: the network's RNG, every node's election-timeout RNG and its disk
//! latencies derive from the cluster seed, and every timer is a tokio timer. On a clock
//! paused from the start (run the test in a [`PausedSystem`]) a seed replays the same run as
//! long as the test issues the same inputs; tests print the seed when they fail (see
//! [`SeedReport`]) and `RAFT_TEST_SEED` replays it.
//!
//! # Waiting
//!
//! Every wait is bounded in virtual time and polls; a client request that gets no answer
//! within [`REQUEST_TIMEOUT`] ends with [`RequestError::TimedOut`], as the HTTP API's timeout
//! would answer 504.

mod client;
mod cluster;
mod disk;
mod paused_system;
mod traffic;

pub use client::PendingAnswer;
pub use cluster::{ClusterOptions, DataFiles, InProcessCluster, SnapshotOptions};
pub use disk::{DiskModel, SIMULATED_SEGMENT_BYTES};
pub use paused_system::{seed_report, test_seed, PausedSystem, SeedReport, REAL_TIME_LIMIT};
pub use test_support::wait::WaitTimedOut;

use applier_actor::KvOutput;
use network_actor::sim::LinkFaults;
use raft_proto::client::ClientError;
use raft_types::NodeId;
use std::future::Future;
use std::time::Duration;

/// How often every node's consensus core ticks: the core's default timings then mean a 50 ms
/// heartbeat and a 150..300 ms election timeout.
pub const TICK_INTERVAL: Duration = Duration::from_millis(10);

/// How long a client request waits for its answer before giving up, in virtual time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest a storage request waits before it reaches the storage actor (see
/// `DiskLatency`): the simulated time to write and sync.
pub const DISK_LATENCY_MAX: Duration = Duration::from_millis(2);

/// The delay range of a healthy simulated link (see [`healthy_links`]).
pub const NETWORK_DELAY_MIN: Duration = Duration::from_micros(500);
pub const NETWORK_DELAY_MAX: Duration = Duration::from_millis(2);

/// How often the `wait_for_*` helpers re-check their condition, in virtual time.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Why a client request through the harness did not succeed: what the client of a real node
/// would see (an error answer, no answer, a node that is down), with what each promises about
/// whether the request was applied ([`RequestError::definitely_not_applied`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The node answered with an error (see `ClientError` for what each one promises).
    #[error("node {node} answered: {error}")]
    Client { node: NodeId, error: ClientError },
    /// The node is crashed; nothing was sent.
    #[error("node {node} is crashed")]
    Crashed { node: NodeId },
    /// The node crashed while holding the request: its outcome is unknown.
    #[error("node {node} crashed before answering")]
    Dropped { node: NodeId },
    /// No answer within `within` of virtual time: the outcome is unknown.
    #[error("node {node} did not answer within {within:?}")]
    TimedOut { node: NodeId, within: Duration },
    /// The state machine answered with an output that does not fit the request.
    #[error("node {node} answered a {request} with {output:?}")]
    UnexpectedOutput {
        node: NodeId,
        request: &'static str,
        output: KvOutput,
    },
}

impl RequestError {
    /// True when the request was definitely not applied (the node refused it or never got it).
    pub fn definitely_not_applied(&self) -> bool {
        match self {
            RequestError::Crashed { .. } => true,
            RequestError::Client { error, .. } => matches!(
                error,
                ClientError::NotLeader { .. } | ClientError::Unavailable { .. }
            ),
            RequestError::Dropped { .. }
            | RequestError::TimedOut { .. }
            | RequestError::UnexpectedOutput { .. } => false,
        }
    }
}

/// The fault model of a healthy link: connected, no loss, FIFO, and a delay of
/// [`NETWORK_DELAY_MIN`]..=[`NETWORK_DELAY_MAX`]. Never zero: on a paused clock time only
/// advances when every task is idle, so messages that bounce between nodes without delay
/// (a bug, or a node whose disk was wiped) would spin forever at one instant and no deadline
/// would ever fire; with a delay, such a loop uses up virtual time and the test fails.
pub fn healthy_links() -> LinkFaults {
    LinkFaults::delayed(NETWORK_DELAY_MIN, NETWORK_DELAY_MAX)
}

/// Polls `condition` every [`POLL_INTERVAL`] until it returns `Ok`, for at most `within` of
/// virtual time. `Err` carries what the condition saw, for the failure message.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    within: Duration,
    condition: F,
) -> Result<T, WaitTimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    test_support::wait::wait_for(what, within, POLL_INTERVAL, condition).await
}

/// SplitMix64's finalizer: nearby inputs (seeds, node ids) give unrelated outputs.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
