//! `Role`: what a server is in its current term (§5.1). One type for the core, the actors,
//! the status API and the metrics, so no layer converts between copies of it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The role a server plays in its current term (§5.1). Serialized in lowercase (`"leader"`),
/// as `GET /v1/status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Follows the leader of its term, or waits for one; may run a pre-vote round.
    Follower,
    /// Asks for votes in its current term (§5.2).
    Candidate,
    /// Leads its current term: accepts proposals, replicates its log to the followers and
    /// decides what is committed (§5.3, §5.4.2).
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}
