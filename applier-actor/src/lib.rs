//! The state-machine applier: applies committed log entries to a [`StateMachine`], in index
//! order and exactly once, answers the clients waiting on them, and serves read queries.
//!
//! The consensus actor decides *what* is committed; this crate decides *what it means*. A node
//! swaps in another state machine by implementing [`StateMachine`] and handing it to
//! [`ApplierActor::new`]; nothing else changes.
//!
//! # Layout
//!
//! - [`state_machine`]: the `StateMachine` trait, with its `# Correctness` contract, and the
//!   `StateMachineSnapshot` it hands out to be written on another thread.
//! - [`kv`]: the key-value vocabulary (`KvCommand`, `KvQuery`, `KvOutput`) and the helpers a
//!   client API uses to encode requests and decode answers.
//! - [`kv_store`]: `KvStore`, the default state machine (put, get, delete, compare-and-swap),
//!   on a persistent map so a snapshot captures it in O(1).
//! - [`kv_snapshot`]: the byte format of a `KvStore` snapshot, its writer and its reader.
//! - [`applier_actor`]: `ApplierActor`, the actix actor handling `ApplyEntries` and `Query`,
//!   and taking (`SnapshotPolicy`, `TakeSnapshot`) and restoring (`RestoreSnapshot`) snapshots.
//! - [`snapshot_envelope`]: what the applier writes around the state machine's payload (the
//!   last applied `LogId` and the running hash), its byte format.
//! - [`snapshot_metrics`]: `SnapshotMetrics`, the snapshot counters, readable from any thread.
//! - [`running_hash`]: `RunningHash`, the hash of every applied entry (its byte format).
//! - [`applied_checkpoints`]: `AppliedCheckpoints`, that hash at a fixed cadence of indexes,
//!   shared with the node's consistency check, and `compare_checkpoints` for two replicas.

pub mod applied_checkpoints;
pub mod applier_actor;
pub mod kv;
pub mod kv_snapshot;
pub mod kv_store;
pub mod running_hash;
pub mod snapshot_envelope;
pub mod snapshot_metrics;
pub mod state_machine;

pub use applied_checkpoints::{
    compare_checkpoints, AppliedCheckpoints, Checkpoint, CheckpointComparison, CheckpointMismatch,
    CheckpointPolicy, CheckpointsSnapshot,
};

pub use applier_actor::{AppliedSinceSnapshot, ApplierActor, SnapshotPolicy};
pub use kv::{KvCommand, KvOutput, KvQuery, ListedEntry};
pub use kv_store::KvStore;
pub use running_hash::{HistoryHash, RunningHash};
pub use snapshot_metrics::{SnapshotMetrics, SnapshotMetricsValues};
pub use state_machine::{StateMachine, StateMachineSnapshot};
