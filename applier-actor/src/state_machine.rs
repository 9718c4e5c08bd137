//! The `StateMachine` trait: what a replicated service implements to run on this Raft, and the
//! `StateMachineSnapshot` it hands out to be written while it goes on applying.

use raft_types::LogId;
use std::io;

/// A deterministic service driven by the replicated log.
///
/// # Correctness
///
/// - `apply` is deterministic: the same sequence of `(log_id, command)` calls produces the same
///   state and the same outputs on every replica, on every run. No clock, no randomness, no
///   iteration over a `HashMap`, no reading of the environment.
/// - `apply` never panics on a command's bytes: a malformed command yields an error *output*
///   (the same on every replica) and leaves the state unchanged. A panic would stop every
///   replica at the same entry, forever.
/// - `apply` is called once per committed command, in strictly increasing index order; the
///   applier guarantees this, the state machine may rely on it.
/// - `query` does not change the state: two queries with nothing applied in between return
///   the same answer. It never panics on the query's bytes either.
/// - `snapshot` captures the state as it is at the call, cheaply (the applier calls it on its
///   own thread, between two batches): what the returned value writes later reflects every
///   command applied before the call and none applied after it.
/// - The bytes a snapshot writes are deterministic: two replicas with the same state write the
///   same bytes (no hash-map order, no addresses, no timestamps), so snapshots of the same
///   index can be compared byte for byte. They are versioned, so a newer node can still read
///   an older node's snapshot.
/// - `restore` replaces the whole state with the one `payload` describes: nothing of the state
///   before it survives (it never merges). It reads the payload to its end and refuses bytes
///   after the state's end. On any error (unreadable, truncated, corrupt, unknown version) it
///   returns `Err` and leaves the state exactly as it was; it never panics on the payload's
///   bytes, and never allocates from a length it has not yet seen bytes for.
/// - `restore` of what `snapshot` wrote gives a state that answers every `query` and every
///   later `apply` exactly as the state it was taken from.
pub trait StateMachine: Unpin + 'static {
    /// Applies the committed command at `log_id` and returns the output for the client that
    /// proposed it.
    fn apply(&mut self, log_id: LogId, command: &[u8]) -> Vec<u8>;

    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Vec<u8>;

    /// Captures the current state, to be written on another thread while `apply` goes on.
    fn snapshot(&self) -> Box<dyn StateMachineSnapshot>;

    /// Replaces the whole state with the one `payload` holds (written by
    /// [`StateMachineSnapshot::write_to`], possibly on another replica). On error the state is
    /// unchanged and the error says what was wrong with the payload.
    fn restore(&mut self, payload: &mut dyn io::Read) -> Result<(), String>;
}

/// A state captured by [`StateMachine::snapshot`]. It owns what it captured (it is written on a
/// thread of its own, while the state machine moves on), so it is `Send + 'static`.
pub trait StateMachineSnapshot: Send + 'static {
    /// Writes the captured state to `out`, streaming (a piece at a time, never the whole state
    /// as one buffer). May be called more than once; every call writes the same bytes.
    fn write_to(&self, out: &mut dyn io::Write) -> io::Result<()>;
}
