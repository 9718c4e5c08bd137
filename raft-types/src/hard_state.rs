//! The state a server persists before it answers any RPC (Figure 2, "Persistent state").

use crate::ids::{NodeId, Term};
use serde::{Deserialize, Serialize};

/// `current_term` and `voted_for`. The log is persisted separately, through the same ordered
/// storage path, so a HardState change and a later append are never reordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this server has seen; it never decreases.
    pub current_term: Term,
    /// The candidate this server voted for in `current_term`, if any. Persisted so that a
    /// restarted server cannot vote twice in one term (§5.2, Election Safety).
    pub voted_for: Option<NodeId>,
}

impl HardState {
    /// The hard state of a server in `current_term` that voted for `voted_for` in it.
    pub fn new(current_term: Term, voted_for: Option<NodeId>) -> HardState {
        HardState {
            current_term,
            voted_for,
        }
    }
}
