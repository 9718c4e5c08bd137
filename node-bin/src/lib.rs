//! `node-bin`: everything that turns the actor crates into a server people run.
//!
//! The binaries are thin: `raft-node` loads a [`node_config::NodeConfig`], sets up tracing and
//! calls the wiring; `raftctl` is an HTTP client of the API in [`http_api`].
//!
//! # Layout
//!
//! - [`node_config`]: configuration keys, layered loading (defaults < TOML < env < flags) and
//!   validation that names the bad key.
//! - [`node_cli`]: the `raft-node` command line (flags are the top configuration layer).
//! - [`http_api`]: the client HTTP API on actix-web, against `raft-proto` recipients.
pub mod http_api;
pub mod node_cli;
pub mod node_config;
pub mod raft_client;
