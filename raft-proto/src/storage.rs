//! The storage port: the one ordered path to disk for log entries and the hard state.
//!
//! # Correctness
//!
//! - Requests are executed in the order they were sent. A `SaveHardState` followed by an
//!   `Append` is never reordered (docs/ARCHITECTURE.md, rule 1): reordering could lose a vote or
//!   resurrect truncated entries after a crash.
//! - An event is sent only after everything it reports is durable (fsync'd, unless the store
//!   was configured with `fsync = false` for experiments).
//! - Every request carries the consensus core's [`IoSequence`] for it, increasing in sending
//!   order. An event names the sequence of the last request its sync covered: everything up
//!   to and including that request is durable (docs/ARCHITECTURE.md, rule 6). The consensus core
//!   uses it to tell a completion issued before a truncation from one issued after it.
//! - `Persisted { io, last }` covers every request through `io`: the storage actor may group
//!   many requests under one fsync and report only once, with the log's last `LogId` then.
//! - A failure to write or sync is reported once as `Failed` and the store accepts nothing
//!   after it; the node must stop (rule 4).
//! - Per batch (everything the storage actor drained under one fsync) it sends at most one
//!   `HardStateSaved` (when the batch saved a hard state), then at most one `Persisted`
//!   carrying the log's last entry after the batch, both with the batch's last sequence. A
//!   batch holding no non-empty `Append` sends no `Persisted` (a `Truncate` alone reports
//!   nothing: its `Append` will).
//! - The sender keeps the storage actor's `Recipient` alive while requests may be in flight:
//!   actix discards requests still queued when an actor's last address is dropped.
//!
//! The durable implementation and its on-disk layout: `storage-actor`, `docs/WAL_FORMAT.md`.

use actix::Message;
pub use raft_types::SnapshotReceiveOutcome;
use raft_types::{Bytes, Entry, HardState, IoSequence, LogId, LogIndex, SnapshotMeta};

/// Sent by the consensus actor to the storage actor.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum StorageRequest {
    /// Append entries after the current last entry. Indexes are contiguous with the log.
    Append {
        /// The entries, in index order.
        entries: Vec<Entry>,
        /// The consensus core's sequence for this request.
        io: IoSequence,
    },
    /// Remove every entry with index >= `since` (a conflicting suffix, §5.3). Always followed,
    /// in the same mailbox, by the `Append` that replaces it. Never below the commit index:
    /// committed entries are never removed.
    Truncate {
        /// The first index removed.
        since: LogIndex,
        /// The consensus core's sequence for this request.
        io: IoSequence,
    },
    /// Persist `current_term` and `voted_for`.
    SaveHardState {
        /// The term and vote to persist, replacing the stored ones.
        hard_state: HardState,
        /// The consensus core's sequence for this request.
        io: IoSequence,
    },
    /// Entries with index < `before` are no longer needed (they are covered by a snapshot);
    /// the store may delete whole segments that lie entirely before it. No event answers it:
    /// nothing waits for space to be freed.
    Purge {
        /// The first index still needed; everything below it may go.
        before: LogIndex,
    },
    /// Discard the whole log: the snapshot at `last_log_id` (already complete and durable in
    /// the snapshot store) replaces it, and the next append is `last_log_id.index + 1`.
    /// Answered like an `Append`: by a `Persisted` whose `last` is `last_log_id` (or a later
    /// entry appended in the same batch).
    ResetLog {
        /// The last entry of the installed snapshot.
        last_log_id: LogId,
        /// The consensus core's sequence for this request.
        io: IoSequence,
    },
    /// Store raw bytes of a snapshot a leader is sending, at `offset` (see
    /// `raft_proto::snapshot::SnapshotStore::receive`); when they complete the file, verify
    /// and install it. Answered by `SnapshotReceived`. Not ordered with the log requests
    /// around it in any way the core relies on, and never part of an `IoSequence`.
    StoreSnapshotChunk {
        /// The snapshot being received.
        snapshot: SnapshotMeta,
        /// Where `data` starts in its file.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
}

/// Sent by the storage actor back to the consensus actor.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum StorageEvent {
    /// Every request through `io` is durable; the log then ends at `last`.
    Persisted {
        /// The last request the sync covered.
        io: IoSequence,
        /// The last entry of the store's log after request `io`.
        last: LogId,
    },
    /// Every request through `io` is durable, a hard state save among them.
    HardStateSaved {
        /// The last request the sync covered.
        io: IoSequence,
    },
    /// What became of a `StoreSnapshotChunk`.
    SnapshotReceived {
        /// The snapshot the chunk belonged to.
        snapshot: SnapshotMeta,
        /// What the store did with it.
        outcome: SnapshotReceiveOutcome,
    },
    /// The store failed and has stopped; the node must stop too.
    Failed {
        /// What failed, in words, for the log and the operator.
        error: String,
    },
}
