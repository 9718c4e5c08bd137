//! `node-bin`: everything that turns the actor crates into a server people run.
//!
//! The binaries are thin: `raft-node` loads a [`node_config::NodeConfig`], sets up tracing and
//! calls the wiring; `raftctl` is an HTTP client of the API in [`http_api`].
//!
//! # Layout
//!
//! - [`node_config`]: configuration keys, layered loading (defaults < TOML < env < flags) and
//!   validation that names the bad key; [`config_values`]: the shared value parsers.
//! - [`consistency`]: the state-machine consistency check between nodes and its corruption
//!   alarm.
//! - [`node_cli`]: the `raft-node` command line (flags are the top configuration layer).
//! - [`http_api`]: the client HTTP API on actix-web, against `raft-proto` recipients.
//! - [`node_runtime`]: wiring of storage, network, applier, consensus and HTTP; tracing;
//!   graceful stop on SIGTERM / SIGINT.
//! - [`local_cluster`]: `raft-node local-cluster --nodes N`.
//! - [`divergence_marker`]: the file that keeps a node stopped on a divergence from restarting.
//! - [`raft_client`]: the blocking HTTP client behind `raftctl` (endpoint failover).
//! - [`build_info`]: version, git commit, profile and compiler of this build.
//! - [`metrics`]: `/metrics` through `prometheus-client` (the collector and the HTTP
//!   latency histograms).
//! - [`restore`]: `raft-node restore FILE --config node.toml`, a data dir from a backup.
//! - [`security`]: TLS (peer and client), client tokens, the peer port's limits (issue 16).
//! - [`address_book`]: every member's addresses, from `[[members]]` and the configuration in
//!   force.

pub mod address_book;
pub mod build_info;
pub mod config_values;
pub mod consistency;
pub mod divergence_marker;
pub mod http_api;
pub mod local_cluster;
pub mod metrics;
pub mod node_cli;
pub mod node_config;
pub mod node_runtime;
pub mod raft_client;
pub mod restore;
pub mod security;
