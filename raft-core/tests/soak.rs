//! The randomized soak: many seeds of the in-core cluster under crashes, restarts, partial
//! storage flushes, delayed storage completions, a lagging applier, batched inputs,
//! partitions, drops, duplicates, reordering, delays and old messages delivered late on
//! purpose, with every safety property checked after every step, and convergence checked at
//! the end of each run. Reads go to every server that believes it leads, deposed ones too.
//!
//! It runs over five configurations of the core, because each optional mechanism hides bugs
//! of the others: the defaults, pre-vote off, check-quorum off, one entry per AppendEntries,
//! and one AppendEntries in flight per follower.
//!
//! `RAFT_TEST_SEED=N cargo test -p raft-core --test soak` replays one seed (in each test).

mod common;

use common::{Cluster, Faults};
use raft_core::Config;
use std::time::Instant;
use test_support::report::{run_seeds, TestId};
use test_support::seed::seeds;
use test_support::this_test;

const STEPS_PER_SEED: u64 = 4_000;
const SEEDS_PER_CONFIGURATION: u64 = 1_000;

/// One seeded run: the seed picks the cluster size and the fault mix.
fn soak(seed: u64, adjust: fn(&mut Config)) {
    let size = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut cluster = Cluster::with_config(size, seed, |config| {
        adjust(config);
        common::small_snapshots(config, seed);
    });
    cluster.faults = Faults::chaotic(seed);
    for _ in 0..STEPS_PER_SEED {
        cluster.random_step();
    }
    cluster.converge();
    if std::env::var("SOAK_DEBUG").is_ok() {
        let reads: u64 = cluster.servers.values().map(|s| s.reads_served).sum();
        eprintln!(
            "seed {seed} size {size} committed {} highest {} reads {} messages {} snapshot chunks {} installed {}",
            cluster.committed_count(),
            cluster.checker.highest_committed,
            reads,
            cluster.stats.total(),
            cluster.stats.snapshot_chunks,
            cluster.stats.snapshots_installed
        );
    }
}

/// Runs the soak for one configuration over its seeds and prints how long it took.
// The wall clock measures the test run itself, never anything the core sees.
#[allow(clippy::disallowed_methods)]
fn soak_configuration(test: TestId, base_seed: u64, adjust: fn(&mut Config)) {
    let started = Instant::now();
    let seeds = seeds(base_seed, SEEDS_PER_CONFIGURATION);
    let count = seeds.len();
    run_seeds(&test, seeds, |seed| soak(seed, adjust));
    eprintln!(
        "{}: {count} seeds x {STEPS_PER_SEED} steps in {:.1} s",
        test.name,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn soak_defaults() {
    soak_configuration(this_test!(), 0, |_| {});
}

#[test]
fn soak_without_pre_vote() {
    soak_configuration(this_test!(), 10_000, |config| config.pre_vote = false);
}

#[test]
fn soak_without_check_quorum() {
    soak_configuration(this_test!(), 20_000, |config| config.check_quorum = false);
}

#[test]
fn soak_one_entry_per_append() {
    soak_configuration(this_test!(), 30_000, |config| {
        config.max_entries_per_append = 1
    });
}

#[test]
fn soak_one_append_in_flight() {
    soak_configuration(this_test!(), 40_000, |config| {
        config.max_inflight_appends = 1
    });
}
