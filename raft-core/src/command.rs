//! What the core asks its shell to do. The shell runs each command with one `run_<command>`
//! arm; the core never performs IO itself.
//!
//! # Correctness (what the shell must guarantee)
//!
//! - `PersistHardState`, `TruncateLog` and `AppendLog` go, in the order emitted, through one
//!   ordered path to disk. Each carries its [`IoSequence`] (1, 2, 3, ... in emission order).
//!   Completion is reported back with `hard_state_saved` and `persisted`, naming the sequence
//!   of the last request the sync covered (docs/CORE.md, "Storage completions").
//! - `Send` may be delivered late, out of order, duplicated or not at all. The core has
//!   already held back any message that depends on state not yet durable.
//! - `Apply` batches are contiguous and in order; the shell reports progress with `applied`.
//! - `ReadReady` means: run the read against the state machine now (it has applied through
//!   `read_index`, so the result is linearizable).
//! - `ResetLog` goes on the same ordered path and is answered by `persisted` like an append.
//!   `PurgeLog` may be carried out whenever convenient after the requests before it: it only
//!   frees space the core no longer needs.
//! - `StoreSnapshotChunk` is answered with [`Raft::snapshot_chunk_stored`](crate::Raft::snapshot_chunk_stored);
//!   `SendSnapshotChunk` is a `Send` whose data the shell reads from its snapshot store;
//!   `RestoreSnapshot` is ordered with `Apply` on the way to the state machine, which answers
//!   with `applied` at the snapshot's index.
//! - `Diverged` is the last command the core ever emits: stop the node, carry out none of the
//!   core's later output, and keep it from restarting until an operator has looked.

use crate::divergence::Divergence;
use raft_types::{
    Bytes, Entry, HardState, InstallSnapshotRequest, IoSequence, LogId, LogIndex, NodeId,
    RaftMessage, SnapshotMeta,
};

/// An opaque id the shell gives a read request, returned with its outcome.
pub type ReadRequestId = u64;

/// One thing the core asks its shell to do. [`Raft::take_commands`](crate::Raft::take_commands)
/// returns them in the order they must be carried out (see the module docs for the guarantees
/// each needs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Durably store the hard state (term and vote).
    PersistHardState {
        /// The term and vote to store.
        hard_state: HardState,
        /// This request's place on the ordered storage path.
        io: IoSequence,
    },
    /// Durably remove every entry with index >= `since` (a conflicting suffix, §5.3).
    TruncateLog {
        /// The first index removed; always above the commit index.
        since: LogIndex,
        /// This request's place on the ordered storage path.
        io: IoSequence,
    },
    /// Durably append these entries; they directly follow the current last entry.
    AppendLog {
        /// The entries, contiguous and in index order.
        entries: Vec<Entry>,
        /// This request's place on the ordered storage path.
        io: IoSequence,
    },
    /// Send a message to a peer.
    Send {
        /// The peer to send to.
        to: NodeId,
        /// The message.
        message: RaftMessage,
    },
    /// Apply these committed entries to the state machine, in order.
    Apply {
        /// Committed entries, contiguous, directly following those of the previous `Apply`.
        entries: Vec<Entry>,
    },
    /// The read `request_id` may now be served from the state machine.
    ReadReady {
        /// The id the shell passed to [`Raft::read_index`](crate::Raft::read_index).
        request_id: ReadRequestId,
        /// The commit index the read is ordered at; the state machine has applied through it.
        read_index: LogIndex,
    },
    /// The read `request_id` cannot be served here (leadership lost before it was confirmed).
    RejectRead {
        /// The id the shell passed to [`Raft::read_index`](crate::Raft::read_index).
        request_id: ReadRequestId,
        /// The new leader, when the server that stepped down was told of one.
        leader_hint: Option<NodeId>,
    },
    /// Storage may delete entries with index < `before`: a snapshot covers them (§7).
    PurgeLog {
        /// The first index still needed.
        before: LogIndex,
    },
    /// Durably discard the whole log: the installed snapshot ending at `last_log_id` replaces
    /// it, and the next append is `last_log_id.index + 1`.
    ResetLog {
        /// The installed snapshot's last entry.
        last_log_id: LogId,
        /// This request's place on the ordered storage path.
        io: IoSequence,
    },
    /// Store bytes of a snapshot the leader is sending (they start where the bytes handed over
    /// before end); report with [`Raft::snapshot_chunk_stored`](crate::Raft::snapshot_chunk_stored).
    StoreSnapshotChunk {
        /// The snapshot being received.
        snapshot: SnapshotMeta,
        /// Where `data` starts in its file.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// Send peer `to` an InstallSnapshot chunk: `request` with its `data` filled in with the
    /// snapshot file's bytes `request.offset .. request.offset + length`.
    SendSnapshotChunk {
        /// The follower.
        to: NodeId,
        /// The request, with empty `data`.
        request: InstallSnapshotRequest,
        /// How many bytes to read into `data`.
        length: u64,
    },
    /// Replace the state machine's state with this snapshot (complete in the snapshot store).
    /// Entries of earlier `Apply` commands are applied first; the next `Apply` starts right
    /// after the snapshot. The state machine answers with `applied` at the snapshot's index.
    RestoreSnapshot {
        /// The snapshot to restore.
        snapshot: SnapshotMeta,
    },
    /// A committed entry differs between this server and a peer: stop (see [`Divergence`]).
    /// Nothing follows it; every later input to the core is ignored.
    Diverged(Divergence),
}
