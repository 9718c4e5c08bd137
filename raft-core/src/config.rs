//! Static configuration of one consensus core. Times are in ticks: the core has no clock, the
//! shell calls `tick()` every `tick_interval` and converts milliseconds into ticks.

use raft_types::NodeId;
use std::collections::BTreeSet;

/// The static configuration of one consensus core, checked by [`Config::validate`] when
/// [`Raft::new`](crate::Raft::new) builds the core. Times are in ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This server's id.
    pub id: NodeId,
    /// The voters a new cluster starts with (its bootstrap configuration), this server
    /// included; empty for a server that joins an existing cluster and waits to be added.
    /// Once the log or a snapshot holds a configuration, that one is in force and this is
    /// not consulted again (thesis §4.1).
    pub members: BTreeSet<NodeId>,
    /// An election starts after a random number of ticks in
    /// [`election_timeout_min_ticks`, `election_timeout_max_ticks`) without hearing from a
    /// leader (§5.2). Randomized anew at every reset so split votes resolve quickly.
    pub election_timeout_min_ticks: u64,
    /// The exclusive upper bound of the election timeout, in ticks; see
    /// `election_timeout_min_ticks`.
    pub election_timeout_max_ticks: u64,
    /// A leader sends one AppendEntries (heartbeat or entries) per follower this often. Must be
    /// well below `election_timeout_min_ticks` (§5.6: broadcastTime ≪ electionTimeout).
    pub heartbeat_interval_ticks: u64,
    /// AppendEntries messages a leader keeps unacknowledged per follower in replicate mode.
    pub max_inflight_appends: usize,
    /// At most this many entries in one AppendEntries.
    pub max_entries_per_append: usize,
    /// At most about this many payload bytes in one AppendEntries (one entry always fits).
    pub max_append_bytes: usize,
    /// A leader that has not heard from a majority within an election timeout steps down, so
    /// an isolated leader stops claiming leadership (thesis §6.2, "check quorum").
    pub check_quorum: bool,
    /// Run a pre-vote round before each election (thesis §9.6) and ignore vote requests
    /// while a leader is known to be alive, so a server rejoining after a partition does not
    /// depose a working leader.
    pub pre_vote: bool,
    /// Entries kept in the log behind the newest snapshot, so a follower that lags by less
    /// than this catches up with entries instead of a whole snapshot (§7).
    pub snapshot_trailing_entries: u64,
    /// Bytes of snapshot file per InstallSnapshot chunk.
    pub snapshot_chunk_bytes: u64,
    /// InstallSnapshot chunks a leader keeps unacknowledged per follower.
    pub snapshot_max_inflight_chunks: usize,
    /// A transfer that made no progress (no chunk acknowledged) for this many ticks resends
    /// from the last byte the follower reported stored. Per chunk, so the time a whole
    /// transfer may take grows with its size.
    pub snapshot_chunk_timeout_ticks: u64,
    /// Refuse a change of voters that would leave fewer voters the leader heard from within
    /// an election timeout than the new configuration needs for a majority: such a change
    /// could not commit, and would leave the cluster stuck in it.
    pub strict_reconfiguration_check: bool,
    /// A learner is promoted only when its match index is within this many entries of the
    /// leader's last index (and its last catch-up round took less than an election timeout).
    pub learner_catch_up_max_lag: u64,
    /// Seed of the core's RNG (election timeouts). Tests pin it to replay a run.
    pub random_seed: u64,
}

/// Why [`Config::validate`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// This server's id or a member's is 0, which is reserved (see `NodeId`).
    #[error("node id 0 is reserved")]
    ZeroId,
    /// `members` (the bootstrap configuration) is given but does not name this server.
    #[error("own id {id} is not among the bootstrap members")]
    NotAMember {
        /// This server's id.
        id: NodeId,
    },
    /// The election timeout range `[min, max)` is empty or starts at 0.
    #[error(
        "election_timeout_min_ticks ({min}) must be >= 1 and < election_timeout_max_ticks ({max})"
    )]
    ElectionTimeoutRange {
        /// `election_timeout_min_ticks`.
        min: u64,
        /// `election_timeout_max_ticks`.
        max: u64,
    },
    /// The heartbeat interval is 0 or not below the minimum election timeout.
    #[error("heartbeat_interval_ticks ({heartbeat}) must be >= 1 and < election_timeout_min_ticks ({min})")]
    HeartbeatInterval {
        /// `heartbeat_interval_ticks`.
        heartbeat: u64,
        /// `election_timeout_min_ticks`.
        min: u64,
    },
    /// A replication limit (`max_inflight_appends`, `max_entries_per_append`,
    /// `max_append_bytes`, `snapshot_chunk_bytes`, `snapshot_max_inflight_chunks`,
    /// `snapshot_chunk_timeout_ticks`) is 0.
    #[error("{field} must be at least 1")]
    ZeroLimit {
        /// The name of the `Config` field that is 0.
        field: &'static str,
    },
}

impl Config {
    /// A configuration with the contract's default timings (10 ms ticks: heartbeat 50 ms,
    /// election timeout 150..300 ms).
    pub fn new(id: NodeId, members: impl IntoIterator<Item = NodeId>) -> Config {
        Config {
            id,
            members: members.into_iter().collect(),
            election_timeout_min_ticks: 15,
            election_timeout_max_ticks: 30,
            heartbeat_interval_ticks: 5,
            max_inflight_appends: 64,
            max_entries_per_append: 1024,
            max_append_bytes: 4 * 1024 * 1024,
            check_quorum: true,
            pre_vote: true,
            snapshot_trailing_entries: 5_000,
            snapshot_chunk_bytes: 1024 * 1024,
            snapshot_max_inflight_chunks: 4,
            snapshot_chunk_timeout_ticks: 100,
            strict_reconfiguration_check: true,
            learner_catch_up_max_lag: 1_000,
            random_seed: id.0,
        }
    }

    /// Checks what the core relies on: no id is 0, this server is a bootstrap member when
    /// there are any,
    /// 1 <= `election_timeout_min_ticks` < `election_timeout_max_ticks`,
    /// 1 <= `heartbeat_interval_ticks` < `election_timeout_min_ticks`, and every limit is at
    /// least 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.0 == 0 || self.members.contains(&NodeId(0)) {
            return Err(ConfigError::ZeroId);
        }
        if !self.members.is_empty() && !self.members.contains(&self.id) {
            return Err(ConfigError::NotAMember { id: self.id });
        }
        if self.election_timeout_min_ticks < 1
            || self.election_timeout_min_ticks >= self.election_timeout_max_ticks
        {
            return Err(ConfigError::ElectionTimeoutRange {
                min: self.election_timeout_min_ticks,
                max: self.election_timeout_max_ticks,
            });
        }
        if self.heartbeat_interval_ticks < 1
            || self.heartbeat_interval_ticks >= self.election_timeout_min_ticks
        {
            return Err(ConfigError::HeartbeatInterval {
                heartbeat: self.heartbeat_interval_ticks,
                min: self.election_timeout_min_ticks,
            });
        }
        for (field, value) in [
            ("max_inflight_appends", self.max_inflight_appends),
            ("max_entries_per_append", self.max_entries_per_append),
            ("max_append_bytes", self.max_append_bytes),
            ("snapshot_chunk_bytes", self.snapshot_chunk_bytes as usize),
            (
                "snapshot_max_inflight_chunks",
                self.snapshot_max_inflight_chunks,
            ),
            (
                "snapshot_chunk_timeout_ticks",
                self.snapshot_chunk_timeout_ticks as usize,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit { field });
            }
        }
        Ok(())
    }
}
