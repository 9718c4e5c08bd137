//! Cluster harnesses and fault injection: the library for writing a new fault scenario.
//!
//! A scenario builds a cluster on the paused clock, puts it through a fault and checks a
//! verdict. Every bound is virtual time, so this runs in a moment and a seed replays it:
//!
//! ```
//! use integration_tests::in_process::{seed_report, test_seed, InProcessCluster, PausedSystem};
//! use std::time::Duration;
//!
//! PausedSystem::new().block_on(async {
//!     let seed = test_seed(7); // RAFT_TEST_SEED replays another seed.
//!     let _report = seed_report(test_support::this_test!(), seed); // prints the replay command on failure
//!     let cluster = InProcessCluster::start(3, seed);
//!     let leader = cluster.wait_for_leader(Duration::from_secs(5)).await.unwrap();
//!     cluster.put(leader, "k", b"v").await.unwrap();
//!     cluster.isolate(leader).await; // the fault: the leader is cut off
//!     let others: Vec<_> = cluster.members().iter().copied().filter(|n| *n != leader).collect();
//!     let new_leader = cluster.wait_for_leader_among(&others, Duration::from_secs(5)).await.unwrap();
//!     cluster.heal().await;
//!     // The verdict: the acknowledged write survived the change of leader.
//!     assert_eq!(cluster.get(new_leader, "k").await.unwrap(), Some(b"v".to_vec()));
//! });
//! ```
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
//!   crashes, power losses and restarts in virtual time. By job: `cluster` (the nodes and
//!   their faults), `disk` (the disk models and the disk latency) and `paused_system` (the
//!   paused clock and the seed report).
//! - [`process_cluster`]: `ProcessCluster`: writes TOML configs, starts, kills (`-9`),
//!   restarts, pauses (`SIGSTOP`/`SIGCONT`) and stops (`SIGTERM`) nodes; an HTTP client.
//! - [`private_network`]: runs a test inside its own network namespace (`unshare -n`) where
//!   it may cut links with iptables, or skips it with a printed reason.
//! - [`write_history`]: records acknowledged writes and checks them after faults.
//! - [`linearizability`]: a linearizability checker for a read/write register history.
//! - [`kv_linearizability`]: the same for the whole key-value model (get, put, delete,
//!   compare-and-swap), per key, with a budget that answers "unknown" and a report of the
//!   failing key's history.
//! - [`kv_workload`]: clients that run a key-value workload against an in-process cluster and
//!   record the history the checker judges.
//! - [`http_kv_workload`]: the same workload over HTTP against a `ProcessCluster`, on a set of
//!   nodes that may change while it runs, with the final reads and the verdict.

pub mod http_kv_workload;
pub mod in_process;
pub mod kv_linearizability;
pub mod kv_workload;
pub mod linearizability;
pub mod private_network;
pub mod process_cluster;
pub mod write_history;
