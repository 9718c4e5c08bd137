//! The synchronous storage port the storage actor drives: what any log store must guarantee.
//!
//! # Correctness
//!
//! Every implementation must pass [`crate::conformance`], which checks each point below.
//!
//! - Operations take effect in call order. A `save_hard_state` followed by an `append` is
//!   never reordered on disk, nor is a `truncate` and the `append` that follows it
//!   (docs/ARCHITECTURE.md, rule 1).
//! - After `sync` returns `Ok`, everything written before it survives a crash of the process or
//!   the machine and is returned by the next `open` (unless the store was configured not to
//!   sync, which is unsafe and for experiments only).
//! - Data not yet synced may survive a crash or not, but only as a prefix of the operations
//!   issued: the log after a crash is always one the store passed through.
//! - `append` continues the log: the first entry has index `next_index()`, the rest follow
//!   contiguously. Anything else is refused with `AppendOutOfOrder`.
//! - `truncate(since)` removes every entry with index >= `since`; entries below stay intact
//!   (§5.3: only a conflicting suffix is ever removed).
//! - `purge(before)` may remove entries with index < `before` and never removes one at or
//!   after it; `first_index()` tells what remains. The hard state is never purged.
//! - `reset(last_log_id)` discards the whole log (a snapshot at `last_log_id` replaces it): the
//!   next append is `last_log_id.index + 1`, and after a crash the log is the one before the
//!   reset or the one after it (with a prefix of what was appended since), never a mix. The
//!   hard state is kept.
//! - The hard state read back is the one most recently saved.
//! - After an error from a write (`append`, `truncate`, `save_hard_state`, `purge`, `sync`)
//!   the store is poisoned: every later write fails with `Poisoned`, because a failed write or
//!   fsync leaves the state of the disk unknown. Reads outside the log fail without poisoning.

use crate::storage_error::StorageError;
pub use raft_types::StoredLog;
use raft_types::{Entry, HardState, LogId, LogIndex};
use std::ops::Range;

/// A durable (or in-memory) Raft log plus hard state. Opening is implementation specific and
/// returns the store together with its [`StoredLog`].
///
/// Writes are buffered until [`LogStore::sync`]; the storage actor calls `sync` once per batch
/// of requests (group commit).
pub trait LogStore: Send + Unpin + 'static {
    /// Appends `entries` after the last entry. An empty slice is a no-op.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;

    /// Removes every entry with index >= `since`. Truncating at or past the end is a no-op.
    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError>;

    /// Records `current_term` and `voted_for`, ordered with the log operations around it.
    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError>;

    /// Allows the store to delete entries with index < `before` (they are in a snapshot).
    fn purge(&mut self, before: LogIndex) -> Result<(), StorageError>;

    /// Discards every entry: a snapshot through `last_log_id` (complete and durable in the
    /// snapshot store) replaces the log, and the next append is `last_log_id.index + 1`.
    /// Ordered with the operations around it like any write, durable at the next `sync`.
    fn reset(&mut self, last_log_id: LogId) -> Result<(), StorageError>;

    /// Makes every operation issued so far durable.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// The most recently saved hard state.
    fn hard_state(&self) -> HardState;

    /// The index of the first entry held, or `next_index()` when the log is empty.
    fn first_index(&self) -> LogIndex;

    /// The index the next append must start at.
    fn next_index(&self) -> LogIndex;

    /// The id of the last entry held, if any.
    fn last_log_id(&self) -> Option<LogId>;

    /// Reads the entries with indexes in `range`, which must lie within
    /// `first_index()..next_index()`.
    fn entries(&self, range: Range<LogIndex>) -> Result<Vec<Entry>, StorageError>;
}

/// Checks that `range` lies within what a store holds, for `LogStore::entries`.
pub(crate) fn check_range(
    range: &Range<LogIndex>,
    first_index: LogIndex,
    next_index: LogIndex,
) -> Result<(), StorageError> {
    let within = range.start <= range.end && first_index <= range.start && range.end <= next_index;
    if within {
        Ok(())
    } else {
        Err(StorageError::IndexOutOfRange {
            requested_start: range.start,
            requested_end: range.end,
            first_index,
            next_index,
        })
    }
}

/// Checks that `entries` continue a log whose next index is `next_index`, contiguously.
pub(crate) fn check_continues(entries: &[Entry], next_index: LogIndex) -> Result<(), StorageError> {
    let mut expected = next_index;
    for entry in entries {
        if entry.index() != expected {
            return Err(StorageError::AppendOutOfOrder {
                expected,
                found: entry.index(),
            });
        }
        expected = expected.next();
    }
    Ok(())
}
