//! Everything that can go wrong in a store. Every variant is fatal for the node
//! (docs/ARCHITECTURE.md, rule 4): the storage actor reports it once as `StorageEvent::Failed` and
//! accepts nothing after it.

use raft_types::{CodecError, LogIndex};
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call on a file or directory failed.
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record before the tail of the log failed its checksum or framing. The log cannot be
    /// trusted past this point, and silently dropping it could lose committed entries, so
    /// the node refuses to start. Truncating a torn tail is not this error: see `WAL_FORMAT.md`.
    #[error("corrupt write-ahead log: {path} at byte offset {offset}: {reason}")]
    Corruption {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The directory holds files that are not ours (and no segment), so it is probably
    /// another program's directory given by mistake; writing there could destroy its data.
    #[error("{path} is not a write-ahead log directory: it contains {found:?} and no segment")]
    ForeignDirectory { path: PathBuf, found: String },
    /// A segment was written by a newer (or unknown) version of this format.
    #[error("{path}: segment format version {found}, this build reads version {supported}")]
    UnsupportedFormatVersion {
        path: PathBuf,
        found: u16,
        supported: u16,
    },
    /// Another process (or another store in this one) holds the directory's lock.
    #[error("{path} is locked by another open store: two writers would interleave the log")]
    DirectoryLocked { path: PathBuf },
    /// An append does not continue the log: the caller broke the port's contract.
    #[error("append out of order: the log expects index {expected}, got {found}")]
    AppendOutOfOrder { expected: LogIndex, found: LogIndex },
    /// An entry too large for one record (`max_record_bytes`); nothing was written.
    #[error("entry {index} needs a record of {framed_length} bytes, over the limit of {max_record_bytes}")]
    RecordTooLong {
        index: LogIndex,
        framed_length: usize,
        max_record_bytes: u32,
    },
    /// A read asked for entries the store does not hold.
    #[error(
        "entries [{requested_start}, {requested_end}) requested, the store holds [{first_index}, {next_index})"
    )]
    IndexOutOfRange {
        requested_start: LogIndex,
        requested_end: LogIndex,
        first_index: LogIndex,
        next_index: LogIndex,
    },
    /// A record could not be encoded or a valid-checksum record could not be decoded.
    #[error("record codec: {0}")]
    Codec(#[from] CodecError),
    /// The snapshot store failed to store a received chunk (a disk error: fatal like any).
    #[error("snapshot store: {0}")]
    Snapshot(#[source] raft_proto::snapshot::SnapshotError),
    /// A snapshot chunk arrived, but the actor was started without a snapshot store.
    #[error(
        "a snapshot chunk arrived but this storage actor has no snapshot store \
         (start it with StorageActor::with_snapshot_store)"
    )]
    NoSnapshotStore,
    /// An earlier write or sync failed; after a failed fsync the kernel may have dropped the
    /// dirty pages, so nothing written afterwards could be trusted either.
    #[error("the store failed earlier and accepts no more work")]
    Poisoned,
}
