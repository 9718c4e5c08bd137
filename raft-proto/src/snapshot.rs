//! The snapshot store: where snapshot files live, behind a synchronous trait every actor that
//! touches snapshots shares (the applier writes and restores them, the storage actor receives
//! them from a leader, the consensus actor reads chunks to send).
//!
//! A snapshot file is the store's format (a header naming the [`SnapshotMeta`], the payload in
//! chunks with a checksum each, a checksum of the whole); the payload inside is the state
//! machine's. Only the store reads or writes the file format: everybody else sees payload
//! bytes (`begin` / `read_payload`) or raw file bytes to move between stores unchanged
//! (`open` / `receive`).
//!
//! # Correctness
//!
//! Every implementation must guarantee:
//!
//! - **Atomic and durable.** A snapshot becomes visible (`newest`, `open`, `read_payload`) only
//!   once it is complete, verified and durable: written to a temporary file, synced, renamed
//!   into place and its directory synced. A crash at any moment leaves either the old set of
//!   snapshots or the new one, never a partial file that is taken for a snapshot.
//! - **Newest wins, two are kept.** `newest` is the complete snapshot with the highest
//!   `last_log_id`; once a newer one is complete, all but the newest two are deleted. A reader
//!   already open (`open`) keeps working after its file is deleted.
//! - **Verified before trusted.** `read_payload` checks every chunk's checksum and the whole
//!   file's while it reads and fails with [`SnapshotError::Corrupt`] rather than return a byte
//!   it cannot vouch for; `finish_receive` checks the whole received file (header against the
//!   expected `SnapshotMeta`, every checksum) before it installs it.
//! - **Receiving resumes.** `receive` stores a chunk only at the offset where the bytes stored
//!   so far for that snapshot end (or at 0, which starts over), so the leader can resend and a
//!   broken transfer continues where it stopped. A chunk at offset 0 of a different snapshot
//!   discards the partial one; a chunk at another offset of a snapshot with no partial file is
//!   refused (`OutOfOrder` with 0 stored) and changes nothing, so a late chunk of an abandoned
//!   transfer cannot destroy the current one.
//! - **Recovery.** Opening a store removes temporary and partial files left by a crash; a
//!   corrupt newest snapshot falls back to the previous one (with a warning); the choice is
//!   reported by `newest`.

use raft_types::{Bytes, LogId, Membership, SnapshotId, SnapshotMeta};
use std::io;
use std::sync::Arc;

/// Every way a snapshot store can fail.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The disk failed: the operation, the path and the OS error.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done ("create", "sync", "rename", ...).
        operation: &'static str,
        /// The file or directory.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A snapshot file's bytes are not what its checksums or its header say.
    #[error("corrupt snapshot {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// Where in the file the problem was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// No complete snapshot with this identity is in the store.
    #[error("{0} is not in the store")]
    NotFound(SnapshotId),
    /// A received chunk does not start where the stored bytes of that snapshot end.
    #[error("chunk of {snapshot} at offset {offset}, but {stored} bytes are stored")]
    OutOfOrder {
        /// The snapshot being received.
        snapshot: SnapshotId,
        /// Where the refused chunk started.
        offset: u64,
        /// How many bytes of it are stored.
        stored: u64,
    },
    /// The state machine could not produce or restore its payload.
    #[error("state machine: {0}")]
    StateMachine(String),
}

/// Where snapshot files live. Shared between actors (`Arc<dyn SnapshotStore>`); every method
/// may block on the disk, so callers run it off the consensus actor's thread.
pub trait SnapshotStore: Send + Sync + 'static {
    /// The newest complete snapshot, if any.
    fn newest(&self) -> Option<SnapshotMeta>;

    /// Every complete snapshot held, oldest first.
    fn list(&self) -> Vec<SnapshotMeta>;

    /// Starts writing a snapshot of this server's state machine at `last_log_id`, reflecting
    /// `membership`. The payload is written through the returned writer, which makes it a
    /// complete snapshot with [`SnapshotWriter::finish`]; a writer dropped unfinished leaves
    /// nothing behind.
    fn begin(
        &self,
        last_log_id: LogId,
        membership: Membership,
    ) -> Result<Box<dyn SnapshotWriter>, SnapshotError>;

    /// Opens a complete snapshot's file for reading raw bytes (what a leader sends).
    fn open(&self, snapshot: &SnapshotId) -> Result<Arc<dyn SnapshotFile>, SnapshotError>;

    /// Reads a complete snapshot's payload, verifying checksums as it goes.
    fn read_payload(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<Box<dyn io::Read + Send>, SnapshotError>;

    /// Stores raw file bytes of `snapshot`, received from a leader, at `offset`, which must be
    /// where the bytes stored so far end, or 0 to start over ([`SnapshotError::OutOfOrder`]
    /// otherwise). Returns how many bytes of it are stored now; they are durable.
    fn receive(
        &self,
        snapshot: &SnapshotMeta,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, SnapshotError>;

    /// How many bytes of `snapshot` a partial receive holds (0 when none).
    fn received_bytes(&self, snapshot: &SnapshotId) -> u64;

    /// Every byte of `snapshot` is stored: verifies the file and makes it a complete snapshot
    /// (the newest, if it is newer than the others). On [`SnapshotError::Corrupt`] the partial
    /// file is discarded and the transfer must start over.
    fn finish_receive(&self, snapshot: &SnapshotMeta) -> Result<(), SnapshotError>;
}

/// A snapshot being written by this server; see [`SnapshotStore::begin`].
pub trait SnapshotWriter: io::Write + Send {
    /// Completes the snapshot: seals the file, syncs it, renames it into place, syncs the
    /// directory, applies the retention rule. Returns its description.
    fn finish(self: Box<Self>) -> Result<SnapshotMeta, SnapshotError>;
}

/// A complete snapshot file opened for reading raw bytes.
pub trait SnapshotFile: Send + Sync {
    /// The snapshot this file holds.
    fn meta(&self) -> &SnapshotMeta;

    /// Bytes `offset .. offset + length` of the file (fewer at its end).
    fn read_at(&self, offset: u64, length: usize) -> Result<Bytes, SnapshotError>;
}
