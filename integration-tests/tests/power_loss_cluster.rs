//! Power loss of whole nodes (issue 10): the in-process cluster runs every node on the real
//! `FileLogStore` over a simulated disk (`DiskModel::Simulated`), and under a write load first
//! a majority, then every node, loses power at once: each disk keeps only what was synced (and a
//! seeded part of the rest). After the restarts nothing acknowledged is missing, every node
//! holds the same state, and what the clients saw of one register is linearizable.
//!
//! Each test runs `RAFT_POWER_LOSS_SEEDS` seeds (default 20) from `RAFT_TEST_SEED` (default
//! fixed) on a clock paused from the start; a failure prints its seed and the command that
//! replays it.

use integration_tests::in_process::{DiskModel, InProcessCluster, POLL_INTERVAL};
use integration_tests::linearizability::{check_register, RegisterOperation, TimedOperation};
use raft_types::NodeId;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::report::SeedReport;
use test_support::seed::seed_range;
use test_support::{this_test, TestId};
use tokio::time::Instant;

const ELECTION_BOUND: Duration = Duration::from_secs(5);
const CATCH_UP_BOUND: Duration = Duration::from_secs(10);
const DEFAULT_SEED: u64 = 10;
const DEFAULT_SEEDS: u64 = 20;
/// Clients of the register, besides the stream of unique keys.
const REGISTER_CLIENTS: usize = 2;

/// `RAFT_POWER_LOSS_SEEDS` seeds (default [`DEFAULT_SEEDS`]) from `RAFT_TEST_SEED` (default
/// [`DEFAULT_SEED`]).
fn seeds() -> Vec<u64> {
    seed_range(DEFAULT_SEED, "RAFT_POWER_LOSS_SEEDS", DEFAULT_SEEDS)
}

/// What one seed's run recorded.
#[derive(Default)]
struct Histories {
    /// Unique keys: the value of every write the client was told succeeded.
    acknowledged: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Writes whose outcome is unknown, and refused ones, by key.
    not_acknowledged: RefCell<BTreeMap<String, Vec<u8>>>,
    register: RefCell<Vec<TimedOperation>>,
}

/// Writes unique keys through the leader until `stop`.
async fn unique_key_writer(cluster: &InProcessCluster, histories: &Histories, stop: &Cell<bool>) {
    let mut sequence = 0u64;
    while !stop.get() {
        let Some(leader) = cluster.leader().await else {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        };
        let key = format!("key-{sequence}");
        let value = format!("value-{sequence}").into_bytes();
        sequence += 1;
        match cluster.put(leader, &key, &value).await {
            Ok(_) => {
                histories.acknowledged.borrow_mut().insert(key, value);
            }
            Err(_) => {
                histories.not_acknowledged.borrow_mut().insert(key, value);
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

/// Alternates writes of unique values and linearizable reads of the register `r` through the
/// leader, recording each operation with the instants it was invoked and answered.
async fn register_client(
    client: usize,
    cluster: &InProcessCluster,
    histories: &Histories,
    stop: &Cell<bool>,
) {
    let mut sequence = 0usize;
    while !stop.get() {
        let Some(leader) = cluster.leader().await else {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        };
        sequence += 1;
        let invoked = Instant::now().into_std();
        if sequence % 2 == 1 {
            let value = format!("{client}-{sequence}").into_bytes();
            let answered = match cluster.put(leader, "r", &value).await {
                Ok(_) => Some(Instant::now().into_std()),
                Err(error) if error.definitely_not_applied() => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                    continue;
                }
                Err(_) => None,
            };
            histories.register.borrow_mut().push(TimedOperation {
                client,
                operation: RegisterOperation::Write { value },
                invoked,
                answered,
            });
        } else {
            let Ok(value) = cluster.get(leader, "r").await else {
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            };
            histories.register.borrow_mut().push(TimedOperation {
                client,
                operation: RegisterOperation::Read { value },
                invoked,
                answered: Some(Instant::now().into_std()),
            });
        }
    }
}

/// What the seeds of one test add up to, printed at its end.
#[derive(Debug, Default)]
struct Figures {
    seeds: u64,
    acknowledged_writes: usize,
    register_operations: usize,
    power_losses: u64,
    /// Power losses that found written but unsynced data in a node's page cache.
    power_losses_with_unsynced_data: u64,
}

/// One seed: a 3-node cluster on simulated disks under load; `victims` picks, per outage, the
/// nodes that lose power together; two outages; then the checks.
async fn run_seed(
    seed: u64,
    victims: impl Fn(&InProcessCluster, NodeId) -> Vec<NodeId>,
    figures: &mut Figures,
) {
    let cluster = InProcessCluster::start_on(3, seed, DiskModel::Simulated);
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    let histories = Histories::default();
    let stop = Cell::new(false);
    let faults = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let leader = cluster
                .wait_for_leader(ELECTION_BOUND)
                .await
                .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
            let nodes = victims(&cluster, leader);
            cluster.power_loss(&nodes).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            for node in nodes {
                cluster.restart(node);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.set(true);
    };
    let clients = futures_join_all(&cluster, &histories, &stop);
    tokio::join!(
        unique_key_writer(&cluster, &histories, &stop),
        clients,
        faults
    );

    let applied = cluster
        .wait_for_convergence(CATCH_UP_BOUND)
        .await
        .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    let acknowledged = histories.acknowledged.borrow().clone();
    assert!(
        acknowledged.len() >= 5,
        "seed {seed}: too few writes were acknowledged to prove anything: {}",
        acknowledged.len()
    );
    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    for (key, value) in &acknowledged {
        assert_eq!(
            cluster.get(leader, key).await,
            Ok(Some(value.clone())),
            "seed {seed}: acknowledged write {key} is missing after power loss (leader {leader}, \
             applied through {applied})"
        );
        for node in cluster.members().to_vec() {
            assert_eq!(
                cluster.local_get(node, key).await,
                Ok(Some(value.clone())),
                "seed {seed}: acknowledged write {key} on node {node}"
            );
        }
    }
    let not_acknowledged = histories.not_acknowledged.borrow().clone();
    for (key, value) in &not_acknowledged {
        let held = cluster.get(leader, key).await;
        assert!(
            matches!(&held, Ok(None)) || held.as_ref() == Ok(&Some(value.clone())),
            "seed {seed}: write {key} of unknown outcome holds {held:?}"
        );
    }
    let register = histories.register.borrow().clone();
    check_register(&register).unwrap_or_else(|error| {
        panic!("seed {seed}: the register history is not linearizable: {error}")
    });
    figures.seeds += 1;
    figures.acknowledged_writes += acknowledged.len();
    figures.register_operations += register.len();
    for node in cluster.members().to_vec() {
        let statistics = cluster
            .disk_statistics(node)
            .expect("the nodes run on simulated disks");
        figures.power_losses += statistics.power_losses;
        figures.power_losses_with_unsynced_data += statistics.power_losses_with_unsynced_data;
    }
}

/// Runs the register clients side by side.
async fn futures_join_all(cluster: &InProcessCluster, histories: &Histories, stop: &Cell<bool>) {
    let clients: Vec<_> = (0..REGISTER_CLIENTS)
        .map(|client| register_client(client, cluster, histories, stop))
        .collect();
    futures::future::join_all(clients).await;
}

/// Runs `run_seed` for every seed, each under a report that replays it, and prints the figures.
async fn run_seeds(
    test: TestId,
    fault: &str,
    victims: impl Fn(&InProcessCluster, NodeId) -> Vec<NodeId>,
) {
    test_support::init_tracing();
    let mut figures = Figures::default();
    let seeds = seeds();
    for &seed in &seeds {
        let _report = SeedReport::new(test.clone().with_env("RAFT_POWER_LOSS_SEEDS", 1), seed);
        run_seed(seed, &victims, &mut figures).await;
    }
    println!(
        "power loss of {fault}, seeds from {}: {figures:?}; 0 acknowledged writes lost",
        seeds[0]
    );
}

/// A majority (the leader and one follower) loses power at once, twice, under load.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn power_loss_of_a_majority_loses_no_acknowledged_write() {
    run_seeds(this_test!(), "a majority", |cluster, leader| {
        let follower = *cluster
            .members()
            .iter()
            .find(|node| **node != leader)
            .expect("three members");
        vec![leader, follower]
    })
    .await;
}

/// Every node loses power at once, twice, under load.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn power_loss_of_every_node_loses_no_acknowledged_write() {
    run_seeds(this_test!(), "every node", |cluster, _| {
        cluster.members().to_vec()
    })
    .await;
}
