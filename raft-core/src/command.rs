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
//! - `Diverged` is the last command the core ever emits: stop the node, carry out none of the
//!   core's later output, and keep it from restarting until an operator has looked.

use crate::divergence::Divergence;
use raft_types::{Entry, HardState, IoSequence, LogIndex, NodeId, RaftMessage};

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
    /// A committed entry differs between this server and a peer: stop (see [`Divergence`]).
    /// Nothing follows it; every later input to the core is ignored.
    Diverged(Divergence),
}
