//! The randomized soak: many seeds of the in-core cluster under crashes, restarts, partial
//! storage flushes, partitions, drops, duplicates, reordering and delays, with every safety
//! property checked after every step, and convergence checked at the end of each run.
//!
//! `RAFT_TEST_SEED=N cargo test -p raft-core --test soak` replays one seed (in each shard).

mod common;

use common::{run_seeds, seeds, Cluster, Faults};

const STEPS_PER_SEED: u64 = 4_000;
const SEEDS_PER_SHARD: u64 = 125;

/// One seeded run: the seed picks the cluster size and the fault mix.
fn soak(seed: u64) {
    let size = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut cluster = Cluster::new(size, seed);
    cluster.faults = Faults {
        drop_probability: [0.0, 0.05, 0.2][(seed % 3) as usize],
        duplicate_probability: [0.0, 0.05][(seed % 2) as usize],
        reorder: !seed.is_multiple_of(4),
        max_delay_steps: [0, 5, 30][(seed / 3 % 3) as usize],
    };
    for _ in 0..STEPS_PER_SEED {
        cluster.random_step();
    }
    cluster.converge();
    if std::env::var("SOAK_DEBUG").is_ok() {
        let reads: u64 = cluster.servers.values().map(|s| s.reads_served).sum();
        eprintln!(
            "seed {seed} size {size} committed {} highest {} reads {} messages {}",
            cluster.committed_count(),
            cluster.checker.highest_committed,
            reads,
            cluster.stats.total()
        );
    }
}

// Four shards so the test runner spreads 500 seeds over the machine's cores.

#[test]
fn soak_shard_0() {
    run_seeds("soak", "soak_shard_0", seeds(0, SEEDS_PER_SHARD), soak);
}

#[test]
fn soak_shard_1() {
    run_seeds(
        "soak",
        "soak_shard_1",
        seeds(SEEDS_PER_SHARD, SEEDS_PER_SHARD),
        soak,
    );
}

#[test]
fn soak_shard_2() {
    run_seeds(
        "soak",
        "soak_shard_2",
        seeds(2 * SEEDS_PER_SHARD, SEEDS_PER_SHARD),
        soak,
    );
}

#[test]
fn soak_shard_3() {
    run_seeds(
        "soak",
        "soak_shard_3",
        seeds(3 * SEEDS_PER_SHARD, SEEDS_PER_SHARD),
        soak,
    );
}
