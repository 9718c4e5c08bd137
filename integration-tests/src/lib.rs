//! Cluster harnesses and fault injection for tests on real `raft-node` processes.
//!
//! The process tests (`tests/process_cluster.rs`) start the `raft-node-under-test` binary of
//! this package (the `raft-node` program, built from the same library, so `cargo test
//! --workspace` from a clean clone always tests the current code) on 127.0.0.x addresses.
//!
//! # Layout
//!
//! - [`in_process`]: `InProcessCluster`: every actor of N nodes in one actix System on the
//!   tokio clock (paused in tests), over a seeded simulated network and in-memory disks (or the
//!   real write-ahead log on simulated disks that lose power); partitions, link faults,
//!   crashes, power losses and restarts in virtual time.
//! - [`process_cluster`]: `ProcessCluster`: writes TOML configs, starts, kills (`-9`),
//!   restarts, pauses (`SIGSTOP`/`SIGCONT`) and stops (`SIGTERM`) nodes; an HTTP client.
//! - [`private_network`]: runs a test inside its own network namespace (`unshare -n`) where
//!   it may cut links with iptables, or skips it with a printed reason.
//! - [`write_history`]: records acknowledged writes and checks them after faults.
//! - [`linearizability`]: a linearizability checker for a read/write register history.

pub mod in_process;
pub mod linearizability;
pub mod private_network;
pub mod process_cluster;
pub mod write_history;
