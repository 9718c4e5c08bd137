//! What names a snapshot (paper §7): the last log entry it covers, the membership it reflects,
//! and the identity of the file that holds it.
//!
//! A snapshot's bytes are opaque to everything but the snapshot store that wrote them (its
//! file format, with a checksum per chunk and for the whole) and the state machine that
//! produced the payload. Servers move those bytes from one store to another unchanged
//! (`InstallSnapshot`), so the same `SnapshotMeta` names the same bytes on every server.

use crate::ids::LogId;
use crate::membership::Membership;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One snapshot: which log prefix it replaces and which file holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last entry the snapshot covers (the paper's lastIncludedIndex and lastIncludedTerm):
    /// the state is the state machine's after applying every entry through it.
    pub last_log_id: LogId,
    /// The configuration as of `last_log_id` (the last one in the log through it, joint or
    /// not), so a server that restores the snapshot knows its cluster without the entries it
    /// replaces.
    pub membership: Membership,
    /// The length of the snapshot file in bytes: what an `InstallSnapshot` transfer moves.
    pub size_bytes: u64,
    /// The CRC32C of the file as its writer computed it: of every byte before the file's
    /// trailer, which records it (docs/SNAPSHOT_FORMAT.md). Two files with the same
    /// `last_log_id` but different bytes (written by two servers) have different checksums, so
    /// a transfer never resumes one file with the other's bytes.
    pub file_checksum: u32,
}

impl SnapshotMeta {
    /// The short identity used in logs and to match a resumed transfer with its partial file.
    pub fn id(&self) -> SnapshotId {
        SnapshotId {
            last_log_id: self.last_log_id,
            file_checksum: self.file_checksum,
        }
    }
}

/// A snapshot's identity without its membership and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotId {
    /// The last entry the snapshot covers.
    pub last_log_id: LogId,
    /// The CRC32C of the whole file.
    pub file_checksum: u32,
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "snapshot {}-{:08x}",
            self.last_log_id, self.file_checksum
        )
    }
}

impl fmt::Display for SnapshotMeta {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({} bytes)", self.id(), self.size_bytes)
    }
}

/// What became of snapshot bytes a follower stored on the leader's behalf: the storage
/// actor's answer to a chunk (`raft_proto::storage::StorageEvent::SnapshotReceived`) and the
/// consensus core's input for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotReceiveOutcome {
    /// Bytes `0 .. next_offset` of the snapshot are durable; the file is not complete yet (or
    /// the chunk did not start where they end, and was not stored).
    Stored {
        /// The first byte not held.
        next_offset: u64,
    },
    /// The file is complete, verified and durable: it is now a complete snapshot in the store.
    Complete,
    /// The received file failed verification and was discarded; the transfer starts over.
    Rejected {
        /// What was wrong.
        reason: String,
    },
}
