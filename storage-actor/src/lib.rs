//! The log writer: the one ordered path to disk for log entries and the hard state, behind the
//! storage port of `raft-proto`.
//!
//! A node opens a store (which recovers what it held), restarts the consensus core from the
//! [`StoredLog`], and runs a [`StorageActor`] on an Arbiter of its own around the store.
//! The actor groups every request that arrived while it was busy under one fdatasync.
//!
//! # Layout
//!
//! - [`log_store`]: the synchronous `LogStore` trait, its `# Correctness` contract, and the
//!   `StoredLog` a store opens with.
//! - [`mem_log_store`]: `MemLogStore`, in memory, for experiments and tests.
//! - [`file_log_store`]: `FileLogStore`, the durable write-ahead log.
//! - [`file_system`]: the file-system calls of the log behind a trait, and the real disk.
//! - [`sim_file_system`]: a simulated disk with a page cache, power loss and injected faults.
//! - [`wal_segment`], [`wal_record`]: the on-disk layout (also in `docs/WAL_FORMAT.md`).
//! - [`wal_recovery`]: replay at open; torn tail versus corruption.
//! - [`storage_actor`]: the actor, group commit, failure handling.
//! - [`conformance`]: the suite every `LogStore` must pass.
//! - [`storage_error`]: every way a store can fail (`StorageError`).
//! - [`snapshot_file`]: the snapshot file format (also in `docs/SNAPSHOT_FORMAT.md`) and its
//!   verifier.
//! - [`file_snapshot_store`]: `FileSnapshotStore`, the snapshot store in a directory (temporary
//!   file, fdatasync, rename, directory fsync, retention, receiving, recovery).
//! - [`mem_snapshot_store`]: `MemSnapshotStore`, the same store on an in-memory disk.
//! - [`data_dir_identity`]: the cluster and node a data directory belongs to, checked at start.

pub mod conformance;
pub mod data_dir_identity;
pub mod file_log_store;
pub mod file_snapshot_store;
pub mod file_system;
pub mod log_store;
pub mod mem_log_store;
pub mod mem_snapshot_store;
pub mod sim_file_system;
pub mod snapshot_file;
pub mod storage_actor;
pub mod storage_error;
mod wal_directory;
pub mod wal_record;
pub mod wal_recovery;
pub mod wal_segment;

pub use file_log_store::{FileLogStore, FileLogStoreConfig};
pub use file_snapshot_store::{FileSnapshotStore, FileSnapshotStoreConfig};
pub use log_store::{LogStore, StoredLog};
pub use mem_log_store::{MemDisk, MemLogStore};
pub use mem_snapshot_store::{MemSnapshotDisk, MemSnapshotStore};
pub use storage_actor::{StorageActor, StorageMetrics, StorageMetricsSnapshot};
pub use storage_error::StorageError;
