//! The `StateMachine` trait: what a replicated service implements to run on this Raft.

use raft_types::LogId;

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
pub trait StateMachine: Unpin + 'static {
    /// Applies the committed command at `log_id` and returns the output for the client that
    /// proposed it.
    fn apply(&mut self, log_id: LogId, command: &[u8]) -> Vec<u8>;

    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Vec<u8>;
}
