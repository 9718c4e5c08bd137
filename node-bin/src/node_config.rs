//! The node's configuration: every key of docs/CONFIGURATION.md, loaded in layers and validated.
//!
//! Layers, lowest priority first: the embedded defaults ([`RawConfig::default`]), the TOML file
//! given with `--config`, environment variables `RAFT_<KEY>` (nested keys joined with `__`, so
//! `raft.tick_interval_ms` is `RAFT_RAFT__TICK_INTERVAL_MS`), then command-line flags. Loading
//! goes through the `config` crate; [`RawConfig`] is the serde shape it fills and
//! [`NodeConfig`] the validated, typed result. Every key and its default is listed in
//! `docs/CONFIGURATION.md`.
//!
//! Validation never guesses: a value that cannot work (unknown engine, `min >= max`, duplicate
//! member id, own id missing from the members, an address that does not parse) is a
//! [`ConfigError`] naming the key, and `raft-node` exits with code 2 printing that one line.

use crate::config_values::{at_least_one, one_of, parse_address};
use crate::consistency::consistency_config::{ConsistencyConfig, RawConsistency};
use crate::security::security_config::{RawAuth, RawNetwork, RawTls, SecurityConfig};
use raft_types::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The keys that can be set from the environment or the command line (everything but
/// `members`, which is a list of tables and only comes from the TOML file).
pub const SCALAR_KEYS: &[&str] = &[
    "id",
    "cluster_id",
    "data_dir",
    "peer_addr",
    "client_addr",
    "join",
    "raft.tick_interval_ms",
    "raft.heartbeat_interval_ms",
    "raft.election_timeout_min_ms",
    "raft.election_timeout_max_ms",
    "raft.strict_reconfiguration_check",
    "storage.engine",
    "storage.fsync",
    "storage.preallocate_bytes",
    "client.request_timeout_ms",
    "client.max_value_bytes",
    "snapshot.threshold_entries",
    "snapshot.chunk_size_bytes",
    "log.format",
    "consistency.check_interval_ms",
    "consistency.checkpoint_interval_entries",
    "consistency.checkpoints_kept",
    "tls.ca_file",
    "tls.cert_file",
    "tls.key_file",
    "tls.client_cert_file",
    "tls.client_key_file",
    "auth.tokens_file",
    "auth.open_metrics",
    "network.max_pending_handshakes",
    "network.max_pending_handshakes_per_ip",
    "network.handshake_timeout_ms",
];

/// The prefix of environment variables read as configuration.
pub const ENV_PREFIX: &str = "RAFT_";

/// A configuration value that cannot work. `key` is the dotted key path (`raft.tick_interval_ms`,
/// `members[2].id`), so the one line printed at startup says exactly what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The configuration as written by a person: plain strings and numbers, all defaulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub id: u64,
    pub cluster_id: String,
    pub data_dir: String,
    pub peer_addr: String,
    pub client_addr: String,
    /// Join an existing cluster instead of bootstrapping one from `members`.
    pub join: bool,
    /// The bootstrap configuration of a new cluster (empty means "this server alone": a
    /// single-node cluster), or with `join`, the servers of the existing cluster to reach.
    pub members: Vec<RawMember>,
    pub raft: RawRaft,
    pub storage: RawStorage,
    pub client: RawClient,
    pub snapshot: RawSnapshot,
    pub log: RawLog,
    pub consistency: RawConsistency,
    /// `[tls]`, `[auth]`, `[network]`: see [`crate::security`].
    pub tls: RawTls,
    pub auth: RawAuth,
    pub network: RawNetwork,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRaft {
    pub tick_interval_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub strict_reconfiguration_check: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStorage {
    pub engine: String,
    pub fsync: bool,
    pub preallocate_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClient {
    pub request_timeout_ms: u64,
    pub max_value_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSnapshot {
    pub threshold_entries: u64,
    pub threshold_bytes: u64,
    pub trailing_entries: u64,
    pub chunk_size_bytes: u64,
    pub max_inflight_chunks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: String,
}

impl Default for RawConfig {
    /// The embedded defaults: a single-node cluster on loopback with data in `./raft-data`.
    fn default() -> RawConfig {
        RawConfig {
            id: 1,
            cluster_id: "default".to_string(),
            data_dir: "./raft-data".to_string(),
            peer_addr: "127.0.0.1:7001".to_string(),
            client_addr: "127.0.0.1:8001".to_string(),
            join: false,
            members: Vec::new(),
            raft: RawRaft::default(),
            storage: RawStorage::default(),
            client: RawClient::default(),
            snapshot: RawSnapshot::default(),
            log: RawLog::default(),
            consistency: RawConsistency::default(),
            tls: RawTls::default(),
            auth: RawAuth::default(),
            network: RawNetwork::default(),
        }
    }
}

impl Default for RawRaft {
    fn default() -> RawRaft {
        RawRaft {
            tick_interval_ms: 10,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            strict_reconfiguration_check: true,
        }
    }
}

impl Default for RawStorage {
    fn default() -> RawStorage {
        RawStorage {
            engine: "wal".to_string(),
            fsync: true,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        }
    }
}

impl Default for RawClient {
    fn default() -> RawClient {
        RawClient {
            request_timeout_ms: 5000,
            max_value_bytes: 1024 * 1024,
        }
    }
}

impl Default for RawSnapshot {
    fn default() -> RawSnapshot {
        RawSnapshot {
            // etcd's default --snapshot-count. At 10,000 a node under a steady 25k writes/s
            // rewrote its whole state (8.8 MB at 100,000 keys) more than twice a second, and
            // the snapshot writes took a third of the disk from the WAL's fsyncs
            // (docs/PERFORMANCE.md).
            threshold_entries: 100_000,
            threshold_bytes: 64 * 1024 * 1024,
            trailing_entries: 5_000,
            chunk_size_bytes: 1024 * 1024,
            max_inflight_chunks: 4,
        }
    }
}

impl Default for RawLog {
    fn default() -> RawLog {
        RawLog {
            format: "text".to_string(),
        }
    }
}

/// Where configuration comes from, lowest priority first. Built by `raft-node` from the real
/// process environment; tests build it by hand so they never touch global state.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The TOML file given with `--config`.
    pub file: Option<PathBuf>,
    /// Environment variables (all of them; only `RAFT_<known key>` are read).
    pub environment: BTreeMap<String, String>,
    /// Command-line flags, as `(dotted key, value)`.
    pub flags: Vec<(String, String)>,
}

impl ConfigSources {
    /// Sources taken from this process: its environment, plus the given file and flags.
    pub fn from_process(file: Option<PathBuf>, flags: Vec<(String, String)>) -> ConfigSources {
        ConfigSources {
            file,
            environment: std::env::vars().collect(),
            flags,
        }
    }
}

/// The storage engine behind the storage actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageEngine {
    /// The durable write-ahead log (the default).
    Wal,
    /// An in-memory log: everything is lost when the process stops. Experiments only.
    Memory,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One voting member of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
}

/// Validated Raft timings, in milliseconds as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTimings {
    pub tick_interval_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Refuse a change of voters that would leave fewer reachable voters than a majority.
    pub strict_reconfiguration_check: bool,
}

/// The Raft timings converted to ticks, as the consensus core counts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingTicks {
    pub heartbeat_interval_ticks: u64,
    pub election_timeout_min_ticks: u64,
    pub election_timeout_max_ticks: u64,
}

/// A validated configuration: every address parsed, every range checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: NodeId,
    pub cluster_id: String,
    pub data_dir: PathBuf,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    /// With `join`: this server waits to be added to an existing cluster and never campaigns
    /// until it is a voter.
    pub join: bool,
    /// Ordered by id; this server included. The bootstrap configuration of a new cluster, or
    /// with `join` the servers to reach (and this one). Once the log holds a configuration,
    /// that one is in force: these only supply addresses it does not name.
    pub members: Vec<Member>,
    pub raft: RaftTimings,
    pub storage_engine: StorageEngine,
    pub fsync: bool,
    /// How far ahead of its writes the WAL extends its active segment with zeros (0: not at
    /// all); `storage.preallocate_bytes`.
    pub preallocate_bytes: u64,
    pub request_timeout: Duration,
    pub max_value_bytes: usize,
    pub snapshot: SnapshotConfig,
    pub log_format: LogFormat,
    pub consistency: ConsistencyConfig,
    /// TLS, client tokens and the peer port's limits (all off or default unless configured).
    pub security: SecurityConfig,
}

/// The `[snapshot]` section, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// Snapshot after this many entries applied since the last snapshot.
    pub threshold_entries: u64,
    /// ... or after this many payload bytes applied since the last snapshot.
    pub threshold_bytes: u64,
    /// Entries kept behind a snapshot for followers that lag a little.
    pub trailing_entries: u64,
    /// Bytes per InstallSnapshot chunk.
    pub chunk_size_bytes: u64,
    /// InstallSnapshot chunks in flight per follower.
    pub max_inflight_chunks: u64,
}

/// The largest chunk a peer frame carries with room to spare (frames are bounded at 64 MiB).
const MAX_SNAPSHOT_CHUNK_BYTES: u64 = 16 * 1024 * 1024;

/// `storage.preallocate_bytes` by default: the WAL's own default.
const DEFAULT_PREALLOCATE_BYTES: u64 = 4 * 1024 * 1024;

/// The most `storage.preallocate_bytes` may be: a WAL segment's size (the store never
/// preallocates past it), and the zeros are written in one go.
const MAX_PREALLOCATE_BYTES: u64 = 64 * 1024 * 1024;

/// Loads every layer and validates the result.
pub fn load(sources: &ConfigSources) -> Result<NodeConfig, ConfigError> {
    let raw = load_raw(sources)?;
    NodeConfig::from_raw(&raw)
}

/// Merges the layers into a [`RawConfig`] without validating values.
pub fn load_raw(sources: &ConfigSources) -> Result<RawConfig, ConfigError> {
    let defaults = config::Config::try_from(&RawConfig::default())
        .map_err(|error| ConfigError::new("(defaults)", error.to_string()))?;
    let mut builder = config::Config::builder().add_source(defaults);
    if let Some(path) = &sources.file {
        if !path.is_file() {
            return Err(ConfigError::new(
                "--config",
                format!("{} is not a readable file", path.display()),
            ));
        }
        builder =
            builder.add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml));
    }
    for (key, value) in environment_keys(&sources.environment) {
        builder = builder
            .set_override(key.as_str(), value)
            .map_err(|error| ConfigError::new(key.clone(), error.to_string()))?;
    }
    for (key, value) in &sources.flags {
        builder = builder
            .set_override(key.as_str(), value.as_str())
            .map_err(|error| ConfigError::new(key.clone(), error.to_string()))?;
    }
    let merged = builder
        .build()
        .map_err(|error| config_crate_error(sources.file.as_deref(), error))?;
    merged
        .try_deserialize::<RawConfig>()
        .map_err(|error| config_crate_error(sources.file.as_deref(), error))
}

/// `RAFT_RAFT__TICK_INTERVAL_MS=20` becomes `("raft.tick_interval_ms", "20")`. Variables that
/// do not name a known key (`RAFT_TEST_SEED`, `RAFT_LOG` of other tools) are not configuration
/// and are left alone.
fn environment_keys(environment: &BTreeMap<String, String>) -> Vec<(String, String)> {
    environment
        .iter()
        .filter_map(|(name, value)| {
            let key = name
                .strip_prefix(ENV_PREFIX)?
                .to_ascii_lowercase()
                .replace("__", ".");
            SCALAR_KEYS
                .contains(&key.as_str())
                .then(|| (key, value.clone()))
        })
        .collect()
}

/// The `config` crate reports a key path for most errors ("... for key `raft.tick_interval_ms`");
/// pull it out so every error has the same one-line shape.
fn config_crate_error(file: Option<&Path>, error: config::ConfigError) -> ConfigError {
    let text = error.to_string();
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string)
        .or_else(|| {
            text.split("unknown field `")
                .nth(1)
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| match file {
            Some(path) => path.display().to_string(),
            None => "(configuration)".to_string(),
        });
    ConfigError::new(key, text)
}

impl NodeConfig {
    /// Checks every value of `raw` and converts it to its typed form.
    pub fn from_raw(raw: &RawConfig) -> Result<NodeConfig, ConfigError> {
        if raw.id == 0 {
            return Err(ConfigError::new("id", "must be > 0 (0 is reserved)"));
        }
        let id = NodeId(raw.id);
        if raw.cluster_id.trim().is_empty() {
            return Err(ConfigError::new("cluster_id", "must not be empty"));
        }
        if raw.data_dir.trim().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        let peer_addr = parse_address("peer_addr", &raw.peer_addr)?;
        let client_addr = parse_address("client_addr", &raw.client_addr)?;
        if peer_addr == client_addr {
            return Err(ConfigError::new(
                "client_addr",
                format!("must differ from peer_addr ({peer_addr})"),
            ));
        }
        let members = validate_members(raw, id, peer_addr, client_addr)?;
        let raft = validate_timings(&raw.raft)?;
        let storage_engine = one_of(
            "storage.engine",
            "engine",
            &raw.storage.engine,
            [
                ("wal", StorageEngine::Wal),
                ("memory", StorageEngine::Memory),
            ],
        )?;
        let request_timeout_ms =
            at_least_one("client.request_timeout_ms", raw.client.request_timeout_ms)?;
        let max_value_bytes = at_least_one("client.max_value_bytes", raw.client.max_value_bytes)?;
        let max_value_bytes = usize::try_from(max_value_bytes)
            .map_err(|_| ConfigError::new("client.max_value_bytes", "too large"))?;
        let snapshot = SnapshotConfig {
            threshold_entries: at_least_one(
                "snapshot.threshold_entries",
                raw.snapshot.threshold_entries,
            )?,
            threshold_bytes: at_least_one(
                "snapshot.threshold_bytes",
                raw.snapshot.threshold_bytes,
            )?,
            trailing_entries: raw.snapshot.trailing_entries,
            chunk_size_bytes: at_least_one(
                "snapshot.chunk_size_bytes",
                raw.snapshot.chunk_size_bytes,
            )?,
            max_inflight_chunks: at_least_one(
                "snapshot.max_inflight_chunks",
                raw.snapshot.max_inflight_chunks,
            )?,
        };
        if snapshot.chunk_size_bytes > MAX_SNAPSHOT_CHUNK_BYTES {
            return Err(ConfigError::new(
                "snapshot.chunk_size_bytes",
                format!("must be at most {MAX_SNAPSHOT_CHUNK_BYTES} (a chunk travels in one peer frame)"),
            ));
        }
        if raw.storage.preallocate_bytes > MAX_PREALLOCATE_BYTES {
            return Err(ConfigError::new(
                "storage.preallocate_bytes",
                format!(
                    "must be at most {MAX_PREALLOCATE_BYTES} (a write-ahead log segment's size); \
                     0 turns preallocation off"
                ),
            ));
        }
        let log_format = one_of(
            "log.format",
            "format",
            &raw.log.format,
            [("text", LogFormat::Text), ("json", LogFormat::Json)],
        )?;
        let config = NodeConfig {
            id,
            cluster_id: raw.cluster_id.clone(),
            data_dir: PathBuf::from(&raw.data_dir),
            peer_addr,
            client_addr,
            join: raw.join,
            members,
            raft,
            storage_engine,
            fsync: raw.storage.fsync,
            preallocate_bytes: raw.storage.preallocate_bytes,
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_value_bytes,
            snapshot,
            log_format,
            consistency: ConsistencyConfig::from_raw(&raw.consistency)?,
            security: SecurityConfig::from_raw(
                &raw.tls,
                &raw.auth,
                &raw.network,
                &raw.cluster_id,
                id,
            )?,
        };
        Ok(config)
    }

    /// The Raft timings in ticks of `tick_interval_ms` (the core has no clock; the consensus
    /// actor ticks it every `tick_interval_ms`). Validation guarantees
    /// `1 <= heartbeat < election_min < election_max`.
    pub fn timing_ticks(&self) -> TimingTicks {
        let ticks = |milliseconds: u64| milliseconds / self.raft.tick_interval_ms;
        TimingTicks {
            heartbeat_interval_ticks: ticks(self.raft.heartbeat_interval_ms),
            election_timeout_min_ticks: ticks(self.raft.election_timeout_min_ms),
            election_timeout_max_ticks: ticks(self.raft.election_timeout_max_ms),
        }
    }

    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.raft.tick_interval_ms)
    }

    /// Every member except this server.
    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(move |member| member.id != self.id)
    }

    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|member| member.id == id)
    }

    pub fn member_ids(&self) -> BTreeSet<NodeId> {
        self.members.iter().map(|member| member.id).collect()
    }
}

fn validate_members(
    raw: &RawConfig,
    id: NodeId,
    peer_addr: SocketAddr,
    client_addr: SocketAddr,
) -> Result<Vec<Member>, ConfigError> {
    if raw.members.is_empty() {
        if raw.join {
            return Err(ConfigError::new(
                "members",
                "a server that joins (join = true) needs [[members]] naming servers of the \
                 existing cluster to reach",
            ));
        }
        return Ok(vec![Member {
            id,
            peer_addr,
            client_addr,
        }]);
    }
    let mut members: BTreeMap<NodeId, Member> = BTreeMap::new();
    let mut addresses: BTreeSet<SocketAddr> = BTreeSet::new();
    for (position, raw_member) in raw.members.iter().enumerate() {
        let key = |field: &str| format!("members[{position}].{field}");
        if raw_member.id == 0 {
            return Err(ConfigError::new(key("id"), "must be > 0 (0 is reserved)"));
        }
        let member = Member {
            id: NodeId(raw_member.id),
            peer_addr: parse_address(&key("peer_addr"), &raw_member.peer_addr)?,
            client_addr: parse_address(&key("client_addr"), &raw_member.client_addr)?,
        };
        if members.contains_key(&member.id) {
            return Err(ConfigError::new(
                key("id"),
                format!("duplicate member id {}", member.id),
            ));
        }
        for (field, address) in [
            ("peer_addr", member.peer_addr),
            ("client_addr", member.client_addr),
        ] {
            if !addresses.insert(address) {
                return Err(ConfigError::new(
                    key(field),
                    format!("address {address} is used twice among the members"),
                ));
            }
        }
        members.insert(member.id, member);
    }
    if raw.join && !members.contains_key(&id) {
        // A joining server names the servers it can reach; it is not one of them yet.
        for (field, address) in [("peer_addr", peer_addr), ("client_addr", client_addr)] {
            if addresses.contains(&address) {
                return Err(ConfigError::new(
                    field,
                    format!("{address} is also a [[members]] entry's address"),
                ));
            }
        }
        members.insert(
            id,
            Member {
                id,
                peer_addr,
                client_addr,
            },
        );
    }
    let own = members.get(&id).ok_or_else(|| {
        ConfigError::new(
            "members",
            format!("own id {id} is not among the members (add a [[members]] table for it)"),
        )
    })?;
    for (key, configured, listed) in [
        ("peer_addr", peer_addr, own.peer_addr),
        ("client_addr", client_addr, own.client_addr),
    ] {
        if configured != listed {
            return Err(ConfigError::new(
                key,
                format!("{configured} differs from this server's [[members]] entry ({listed})"),
            ));
        }
    }
    Ok(members.into_values().collect())
}

fn validate_timings(raw: &RawRaft) -> Result<RaftTimings, ConfigError> {
    let tick = at_least_one("raft.tick_interval_ms", raw.tick_interval_ms)?;
    let checks = [
        ("raft.heartbeat_interval_ms", raw.heartbeat_interval_ms),
        ("raft.election_timeout_min_ms", raw.election_timeout_min_ms),
        ("raft.election_timeout_max_ms", raw.election_timeout_max_ms),
    ];
    for (key, value) in checks {
        if value < tick {
            return Err(ConfigError::new(
                key,
                format!("{value} is below raft.tick_interval_ms ({tick})"),
            ));
        }
    }
    if raw.election_timeout_min_ms / tick >= raw.election_timeout_max_ms / tick {
        return Err(ConfigError::new(
            "raft.election_timeout_min_ms",
            format!(
                "must be below raft.election_timeout_max_ms by at least one tick \
                 (min {}, max {}, tick {tick})",
                raw.election_timeout_min_ms, raw.election_timeout_max_ms
            ),
        ));
    }
    if raw.heartbeat_interval_ms / tick >= raw.election_timeout_min_ms / tick {
        return Err(ConfigError::new(
            "raft.heartbeat_interval_ms",
            format!(
                "must be below raft.election_timeout_min_ms ({}) by at least one tick",
                raw.election_timeout_min_ms
            ),
        ));
    }
    Ok(RaftTimings {
        tick_interval_ms: tick,
        heartbeat_interval_ms: raw.heartbeat_interval_ms,
        election_timeout_min_ms: raw.election_timeout_min_ms,
        election_timeout_max_ms: raw.election_timeout_max_ms,
        strict_reconfiguration_check: raw.strict_reconfiguration_check,
    })
}

/// Renders a configuration back to TOML (what `local-cluster` and the process tests write).
pub fn to_toml(raw: &RawConfig) -> String {
    toml::to_string(raw).expect("RawConfig has only TOML-representable fields")
}

#[cfg(test)]
mod tests;
