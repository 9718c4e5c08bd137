//! The randomized soak of membership change: the chaotic runs of `soak.rs` (crashes, restarts,
//! partitions, drops, duplicates, reordering, late messages, partial storage flushes, small
//! snapshots) with, every so often, a membership change or a leadership transfer asked of a
//! server that believes it leads: a new server joins as a learner, a learner is promoted, a
//! voter or learner is removed (the leader too), leadership is handed over. Removed servers
//! keep running and keep timing out. Every safety property is checked after every step
//! (Election Safety, Log Matching, Leader Completeness, State Machine Safety, committed entries
//! durable on a majority of every voter set they were committed under), and every member of
//! the final configuration converges.
//!
//! `RAFT_TEST_SEED=N cargo test -p raft-core --test membership_soak` replays one seed.

mod common;

use common::{Cluster, Faults};
use raft_core::Config;
use raft_types::{MemberAddress, MembershipChange, NodeId};
use std::time::Instant;
use test_support::report::{run_seeds, TestId};
use test_support::seed::seeds;
use test_support::this_test;

const STEPS_PER_SEED: u64 = 4_000;
const SEEDS: u64 = 600;
/// On average one membership operation every this many steps.
const OPERATION_EVERY_STEPS: u64 = 60;
/// At most this many servers ever exist (ids are never reused, so removals make room).
const MAX_LIVE_MEMBERS: usize = 6;

/// Accepted operations by kind (add, promote, remove, transfer), and refused ones.
#[derive(Default, Debug)]
struct Tally {
    accepted: [u64; 4],
    refused: u64,
}

fn address(id: NodeId) -> MemberAddress {
    MemberAddress {
        peer_addr: format!("127.0.0.1:{}", 7000 + id.0),
        client_addr: format!("127.0.0.1:{}", 8000 + id.0),
    }
}

/// One operation, asked of a server that believes it leads (a deposed one refuses).
fn random_operation(cluster: &mut Cluster, next_id: &mut u64, tally: &mut Tally) {
    let Some(leader) = cluster.random_believed_leader() else {
        return;
    };
    let membership = cluster.raft(leader).membership().clone();
    let learners: Vec<NodeId> = membership.learners.iter().copied().collect();
    let members: Vec<NodeId> = membership.all_members().into_iter().collect();
    let choice = cluster.random_range(0, 100);
    // A learner is promoted only once caught up, which chaos makes rare: try often.
    let change = if !learners.is_empty() && cluster.random_bool(0.7) {
        let id = learners[cluster.random_range(0, learners.len() as u64) as usize];
        Some(MembershipChange::PromoteLearner { id })
    } else if choice < 30 && members.len() < MAX_LIVE_MEMBERS {
        let id = NodeId(*next_id);
        *next_id += 1;
        cluster.add_joining_server(id);
        Some(MembershipChange::AddLearner {
            id,
            address: address(id),
        })
    } else if choice < 90 {
        let id = members[cluster.random_range(0, members.len() as u64) as usize];
        Some(MembershipChange::RemoveMember { id })
    } else {
        None
    };
    let kind = match &change {
        Some(MembershipChange::AddLearner { .. }) => 0,
        Some(MembershipChange::PromoteLearner { .. }) => 1,
        Some(MembershipChange::RemoveMember { .. }) => 2,
        None => 3,
    };
    let mut accepted = false;
    match change {
        Some(change) => cluster.with_server(leader, |raft| {
            accepted = raft.change_membership(change).is_ok();
        }),
        None => {
            let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
            let to = if cluster.random_bool(0.5) {
                Some(voters[cluster.random_range(0, voters.len() as u64) as usize])
            } else {
                None
            };
            cluster.with_server(leader, |raft| {
                accepted = raft.transfer_leadership(to).is_ok();
            });
        }
    }
    if accepted {
        tally.accepted[kind] += 1;
    } else {
        tally.refused += 1;
    }
}

fn soak(seed: u64, adjust: fn(&mut Config)) -> Tally {
    let size = if seed.is_multiple_of(2) { 3 } else { 5 };
    let mut cluster = Cluster::with_config(size, seed, |config| {
        adjust(config);
        common::small_snapshots(config, seed);
        // Learners must be promotable in a chaotic run; the catch-up rule still applies.
        config.learner_catch_up_max_lag = 50;
    });
    cluster.faults = Faults::chaotic(seed);
    let mut next_id = size + 1;
    let mut tally = Tally::default();
    for _ in 0..STEPS_PER_SEED {
        if cluster.random_range(0, OPERATION_EVERY_STEPS) == 0 {
            random_operation(&mut cluster, &mut next_id, &mut tally);
        }
        cluster.random_step();
    }
    cluster.converge();
    tally
}

// The wall clock measures the test run itself, never anything the core sees.
#[allow(clippy::disallowed_methods)]
fn soak_configuration(test: TestId, base_seed: u64, adjust: fn(&mut Config)) {
    let started = Instant::now();
    let seeds = seeds(base_seed, SEEDS);
    let count = seeds.len();
    let mut total = Tally::default();
    run_seeds(&test, seeds, |seed| {
        let tally = soak(seed, adjust);
        for (total, accepted) in total.accepted.iter_mut().zip(tally.accepted) {
            *total += accepted;
        }
        total.refused += tally.refused;
    });
    eprintln!(
        "{}: {count} seeds x {STEPS_PER_SEED} steps in {:.1} s; accepted: {} learners \
         added, {} promoted, {} members removed, {} transfers; {} operations refused",
        test.name,
        started.elapsed().as_secs_f64(),
        total.accepted[0],
        total.accepted[1],
        total.accepted[2],
        total.accepted[3],
        total.refused
    );
    if count > 1 {
        assert!(
            total.accepted.iter().all(|accepted| *accepted > 0),
            "the soak must exercise every kind of operation: {total:?}"
        );
    }
}

#[test]
fn membership_soak_defaults() {
    soak_configuration(this_test!(), 50_000, |_| {});
}

#[test]
fn membership_soak_without_pre_vote() {
    soak_configuration(this_test!(), 60_000, |config| config.pre_vote = false);
}

#[test]
fn membership_soak_without_strict_reconfiguration() {
    soak_configuration(this_test!(), 70_000, |config| {
        config.strict_reconfiguration_check = false
    });
}
