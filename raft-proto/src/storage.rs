//! The storage port: the one ordered path to disk for log entries and the hard state.
//!
//! # Correctness
//!
//! - Requests are executed in the order they were sent. A `SaveHardState` followed by an
//!   `Append` is never reordered (ARCHITECTURE.md, rule 1): reordering could lose a vote or
//!   resurrect truncated entries after a crash.
//! - An event is sent only after everything it reports is durable (fsync'd, unless the store
//!   was configured with `fsync = false` for experiments).
//! - `Persisted { last }` covers every `Append` received before it: the storage actor may group
//!   many requests under one fsync and report only the last `LogId` of the batch.
//! - A failure to write or sync is reported once as `Failed` and the store accepts nothing
//!   after it; the node must stop (rule 4).
//! - Per batch (everything the storage actor drained under one fsync) it sends at most one
//!   `HardStateSaved`, carrying the last hard state saved in the batch, then at most one
//!   `Persisted`, carrying the log's last entry after the batch. A batch holding no non-empty
//!   `Append` sends no `Persisted` (a `Truncate` alone reports nothing: its `Append` will).
//! - The sender keeps the storage actor's `Recipient` alive while requests may be in flight:
//!   actix discards requests still queued when an actor's last address is dropped.
//!
//! The durable implementation and its on-disk layout: `storage-actor`, `docs/WAL_FORMAT.md`.

use actix::Message;
use raft_types::{Entry, HardState, LogId, LogIndex};

/// Sent by the consensus actor to the storage actor.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum StorageRequest {
    /// Append entries after the current last entry. Indexes are contiguous with the log.
    Append { entries: Vec<Entry> },
    /// Remove every entry with index >= `since` (a conflicting suffix, §5.3). Always followed,
    /// in the same mailbox, by the `Append` that replaces it. Never below the commit index:
    /// committed entries are never removed.
    Truncate { since: LogIndex },
    /// Persist `current_term` and `voted_for`.
    SaveHardState(HardState),
    /// Entries with index < `before` are no longer needed (they are covered by a snapshot);
    /// the store may delete whole segments that lie entirely before it. No event answers it:
    /// nothing waits for space to be freed.
    Purge { before: LogIndex },
}

/// Sent by the storage actor back to the consensus actor.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum StorageEvent {
    /// Every entry up to and including `last` is durable.
    Persisted { last: LogId },
    /// This hard state (and everything requested before it) is durable.
    HardStateSaved(HardState),
    /// The store failed and has stopped; the node must stop too.
    Failed { error: String },
}
