//! The applier port: committed entries go to the state machine, in order, exactly once.
//!
//! # Correctness
//!
//! - `ApplyEntries` batches arrive in strictly increasing, contiguous index order starting at
//!   `last_applied + 1`; the applier applies each entry once and in that order.
//! - `Applied { index }` is sent only after every entry up to `index` has been applied.
//! - A `Query` is served against the state as it is when the query is handled: the consensus
//!   actor sends it only once `Applied` has reached the read index, so what the applier holds
//!   is at least as new as any write acknowledged before the read began.
//! - Every responder handed over is answered exactly once (a result, or an error if the
//!   entry turns out not to be a client command).

use crate::client::ClientResponder;
use actix::Message;
use raft_types::{Entry, LogId, LogIndex, SnapshotMeta};

/// Sent by the consensus actor: apply these committed entries.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ApplyEntries {
    /// Committed entries, contiguous, starting just after the last entry already handed over.
    pub entries: Vec<Entry>,
    /// Clients waiting on some of these entries (those proposed through this node), keyed by
    /// the `LogId` their proposal received. The applier answers each with the state machine's
    /// output for that entry.
    pub responders: Vec<(LogId, ClientResponder)>,
}

/// Sent by the applier to the consensus actor after applying through `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Applied {
    /// Every entry through this index has been applied.
    pub index: LogIndex,
}

/// Sent by the consensus actor (linearizable read) or the client API (`consistency=local`):
/// run a read-only query against the state machine and answer `responder`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Query {
    /// The read-only query, opaque to everything but the state machine.
    pub query: Vec<u8>,
    /// Where the query's result goes.
    pub responder: ClientResponder,
}

/// Sent by the consensus actor: replace the state machine's state with the snapshot (already
/// complete in the snapshot store). Entries the applier was handed before it are applied
/// first (mailbox order); the next `ApplyEntries` starts just after `snapshot.last_log_id`.
/// The applier answers with `Applied { index: snapshot.last_log_id.index }` once restored.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct RestoreSnapshot {
    /// The snapshot to restore.
    pub snapshot: SnapshotMeta,
}

/// Sent by the applier to the consensus actor: a snapshot of the applied state is complete and
/// durable in the snapshot store, so the log before it may be compacted.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct SnapshotTaken {
    /// The new snapshot.
    pub snapshot: SnapshotMeta,
}

/// Sent by the client API (`POST /v1/snapshot`): take a snapshot of the applied state now,
/// and answer once it is durable. One already being written is waited for instead of
/// starting a second.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct TakeSnapshot {
    /// Where the outcome goes: the snapshot, or why none could be taken.
    pub responder: tokio::sync::oneshot::Sender<Result<SnapshotMeta, String>>,
}
