//! `node-bin`: everything that turns the actor crates into a server people run.
//!
//! The binaries are thin: `raft-node` loads a [`node_config::NodeConfig`], sets up tracing and
//! calls the wiring; `raftctl` is an HTTP client of the API in [`http_api`].
//!
//! # Layout
//!
//! - [`node_config`]: configuration keys, layered loading (defaults < TOML < env < flags) and
//!   validation that names the bad key.
pub mod node_cli;
pub mod node_config;
