//! The `raft-node` command line. Flags are the highest configuration layer; each flag names the
//! configuration key it sets, so `--peer-addr` and `peer_addr` / `RAFT_PEER_ADDR` are one thing.

use crate::node_config::{self, ConfigSources};
use crate::{divergence_marker, local_cluster, node_runtime, restore};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Exit code for a configuration that cannot work (the same code clap uses for bad usage).
pub const EXIT_BAD_CONFIGURATION: i32 = 2;

/// Exit code when the node fails to start or stops on a fatal error.
pub const EXIT_FAILURE: i32 = 1;

/// The whole of `raft-node`: parses the command line, runs the server or the local cluster,
/// and returns the process exit code (0 after a graceful stop, 1 on a fatal error, 2 for a bad
/// configuration, printed as one line naming the key, or for a data directory that belongs to
/// another node or cluster, printed as one line naming both; 3 when the node stopped, or
/// refuses to start, on a divergence). `restore` has its own codes: see [`run_restore`].
pub fn raft_node_main() -> i32 {
    let cli = NodeCli::parse();
    match &cli.command {
        Some(NodeCommand::LocalCluster(flags)) => {
            return local_cluster::run(flags).unwrap_or_else(|error| {
                eprintln!("raft-node local-cluster: {error:#}");
                EXIT_FAILURE
            });
        }
        Some(NodeCommand::Restore(flags)) => return run_restore(flags),
        None => {}
    }
    let sources = ConfigSources::from_process(cli.server.config.clone(), cli.server.overrides());
    let config = match node_config::load(&sources) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("raft-node: {error}");
            return EXIT_BAD_CONFIGURATION;
        }
    };
    // Before the write-ahead log is opened: a node on another member's data directory must
    // not recover (or repair) that member's log as its own.
    if let Err(error) = node_runtime::check_data_dir_identity(&config) {
        eprintln!("raft-node: {error}");
        return EXIT_BAD_CONFIGURATION;
    }
    match divergence_marker::read(&config.data_dir) {
        Ok(None) => {}
        Ok(Some(line)) => {
            eprintln!(
                "raft-node: refusing to start: {line} (recorded in {}; see docs/OPERATIONS.md, \
                 \"A node stopped on a divergence\")",
                divergence_marker::marker_path(&config.data_dir).display()
            );
            return raft_actor::DIVERGENCE_EXIT_CODE;
        }
        Err(error) => {
            eprintln!(
                "raft-node: cannot read {}: {error}",
                divergence_marker::marker_path(&config.data_dir).display()
            );
            return EXIT_FAILURE;
        }
    }
    node_runtime::init_tracing(config.log_format);
    node_runtime::run(config).unwrap_or_else(|error| {
        tracing::error!("cannot run the node: {error:#}");
        EXIT_FAILURE
    })
}

/// Runs one Raft server (a replicated key-value store with an HTTP API).
///
/// Configuration layers, lowest first: embedded defaults < TOML file (--config) < environment
/// RAFT_<KEY> (nested keys joined by `__`, e.g. RAFT_RAFT__TICK_INTERVAL_MS) < these flags.
/// With no configuration at all it runs a single-node cluster on 127.0.0.1 with data in
/// ./raft-data. See docs/CONFIGURATION.md for every key.
#[derive(Debug, Parser)]
#[command(name = "raft-node", version = crate::build_info::VERSION_LINE)]
pub struct NodeCli {
    #[command(subcommand)]
    pub command: Option<NodeCommand>,
    #[command(flatten)]
    pub server: ServerFlags,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Start N server processes on loopback with fresh data directories, print their client
    /// URLs, and stop them all on Ctrl-C.
    LocalCluster(LocalClusterFlags),
    /// Write this node's data directory from a backup (`raftctl snapshot save`), for a new
    /// cluster whose every node restores the same file; then start the node as usual. The
    /// members are the configuration's `[[members]]`. Refuses a data directory that holds a
    /// log or snapshots, and a file that fails verification.
    Restore(RestoreFlags),
}

#[derive(Debug, Args)]
pub struct RestoreFlags {
    /// The snapshot file to restore from.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// This node's TOML configuration (environment RAFT_<KEY> overrides apply as for a start).
    #[arg(long, value_name = "CONFIG")]
    pub config: PathBuf,
}

/// `raft-node restore`: 0 once the data directory is written; 2 for a configuration that
/// cannot work or a data directory that already holds state (nothing written); 1 for a file
/// that cannot be read or fails verification (nothing written) or a write that failed part way
/// (the message says what to remove).
pub fn run_restore(flags: &RestoreFlags) -> i32 {
    let sources = ConfigSources::from_process(Some(flags.config.clone()), Vec::new());
    let config = match node_config::load(&sources) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("raft-node restore: {error}");
            return EXIT_BAD_CONFIGURATION;
        }
    };
    match restore::restore(&flags.file, &config) {
        Ok(restored) => {
            if let Some(snapshot_members) = &restored.members_differ {
                let ids = |members: &mut dyn Iterator<Item = raft_types::NodeId>| {
                    members
                        .map(|member| member.0.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                eprintln!(
                    "raft-node restore: warning: the snapshot was taken in a cluster of members \
                     [{}]; this node's cluster is the configuration's [{}]",
                    ids(&mut snapshot_members.iter().copied()),
                    ids(&mut config.member_ids().into_iter())
                );
            }
            println!(
                "restored {} into {} for node {} of cluster {:?}: snapshot index={} term={} \
                 size_bytes={} file_checksum={:08x}; the log continues at index {}",
                flags.file.display(),
                restored.data_dir.display(),
                config.id,
                config.cluster_id,
                restored.snapshot.last_log_id.index,
                restored.snapshot.last_log_id.term,
                restored.snapshot.size_bytes,
                restored.snapshot.file_checksum,
                restored.snapshot.last_log_id.index.next(),
            );
            0
        }
        Err(error @ restore::RestoreError::Refused(_)) => {
            eprintln!("raft-node restore: {error}");
            EXIT_BAD_CONFIGURATION
        }
        Err(error) => {
            eprintln!("raft-node restore: {error}");
            EXIT_FAILURE
        }
    }
}

#[derive(Debug, Args)]
pub struct ServerFlags {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This server's id (key `id`).
    #[arg(long)]
    pub id: Option<u64>,
    /// Cluster name checked at the peer handshake (key `cluster_id`).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Directory of the write-ahead log (key `data_dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Raft traffic address, IP:port (key `peer_addr`).
    #[arg(long, value_name = "IP:PORT")]
    pub peer_addr: Option<String>,
    /// HTTP client API address, IP:port (key `client_addr`).
    #[arg(long, value_name = "IP:PORT")]
    pub client_addr: Option<String>,
    /// Storage engine: wal | memory (key `storage.engine`).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Log line format: text | json (key `log.format`).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Join an existing cluster (key `join`): with an empty data dir, never campaign and
    /// wait to be added with `raftctl member add`; `[[members]]` names the servers to reach.
    #[arg(long)]
    pub join: bool,
}

#[derive(Debug, Args)]
pub struct LocalClusterFlags {
    /// How many servers to start.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Where the servers keep their data (one sub-directory per node), kept on exit and used
    /// again by the next run.
    #[arg(long, value_name = "DIR", default_value = "raft-local-cluster")]
    pub data_dir: PathBuf,
    /// Wipe the data directory first and start an empty cluster.
    #[arg(long)]
    pub fresh: bool,
    /// First client API port; node i listens on base + i - 1. Peer ports start at base - 1000.
    #[arg(long, default_value_t = 8001)]
    pub base_client_port: u16,
    /// Storage engine for every node: wal | memory.
    #[arg(long, default_value = "wal")]
    pub engine: String,
    /// Mutual TLS for peer and client traffic with a throwaway CA made for this run (files in
    /// <data-dir>/tls); prints the raftctl flags to use.
    #[arg(long)]
    pub tls: bool,
}

impl ServerFlags {
    /// The flags that were given, as `(configuration key, value)` overrides.
    pub fn overrides(&self) -> Vec<(String, String)> {
        let flags = [
            ("id", self.id.map(|id| id.to_string())),
            ("cluster_id", self.cluster_id.clone()),
            ("data_dir", self.data_dir.clone()),
            ("peer_addr", self.peer_addr.clone()),
            ("client_addr", self.client_addr.clone()),
            ("storage.engine", self.engine.clone()),
            ("log.format", self.log_format.clone()),
            ("join", self.join.then(|| "true".to_string())),
        ];
        flags
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), value?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_overrides_of_their_keys() {
        let cli = NodeCli::parse_from([
            "raft-node",
            "--id",
            "3",
            "--peer-addr",
            "127.0.0.3:7001",
            "--engine",
            "memory",
        ]);
        assert!(cli.command.is_none());
        assert_eq!(
            cli.server.overrides(),
            vec![
                ("id".to_string(), "3".to_string()),
                ("peer_addr".to_string(), "127.0.0.3:7001".to_string()),
                ("storage.engine".to_string(), "memory".to_string()),
            ]
        );
    }

    #[test]
    fn restore_subcommand_parses() {
        let cli = NodeCli::parse_from([
            "raft-node",
            "restore",
            "backup.snap",
            "--config",
            "node1.toml",
        ]);
        match cli.command {
            Some(NodeCommand::Restore(flags)) => {
                assert_eq!(flags.file, PathBuf::from("backup.snap"));
                assert_eq!(flags.config, PathBuf::from("node1.toml"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn local_cluster_subcommand_parses() {
        let cli = NodeCli::parse_from(["raft-node", "local-cluster", "--nodes", "5"]);
        match cli.command {
            Some(NodeCommand::LocalCluster(flags)) => assert_eq!(flags.nodes, 5),
            other => panic!("unexpected {other:?}"),
        }
    }
}
