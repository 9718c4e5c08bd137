//! Client histories of the whole key-value model (get, put, delete, compare-and-swap) against
//! in-process clusters under faults, checked by `integration_tests::kv_linearizability`.
//!
//! Several clients run concurrently against a few hot keys, each sending to the node it last
//! believed was the leader, while a fault script isolates the leader, crashes nodes and heals.
//! Every answer is recorded with its virtual-time interval: answered operations as they were
//! answered, timeouts and dropped requests of mutations as unknown outcomes, refusals
//! (`NotLeader`, `Unavailable`: definitely not applied) left out. The verdict must be
//! linearizable; "unknown" (the search budget ran out) fails the test too, so a pass is never
//! assumed. A violation writes the failing key's history and timeline into the system temp
//! directory and names the files.
//!
//! Bounds are virtual time; a failing seed prints its replay command.

use integration_tests::in_process::{seed_report, test_seed, InProcessCluster};
use integration_tests::kv_linearizability::{check_kv, KvVerdict, SearchBudget};
use integration_tests::kv_workload::{run_client, ClientSpec};
use raft_types::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use test_support::this_test;

/// Isolates the leader, crashes and restarts a node, heals: over and over.
async fn faults(cluster: &InProcessCluster, seed: u64) {
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
    for _round in 0..4 {
        tokio::time::sleep(Duration::from_millis(random.gen_range(100..400))).await;
        if let Some(leader) = cluster.leader().await {
            if random.gen_bool(0.5) {
                cluster.isolate(leader).await;
                tokio::time::sleep(Duration::from_millis(random.gen_range(200..600))).await;
                cluster.heal().await;
            } else {
                cluster.crash(leader).await;
                tokio::time::sleep(Duration::from_millis(random.gen_range(200..600))).await;
                cluster.restart(leader);
            }
        }
        let members = cluster.members().to_vec();
        let victim: NodeId = members[random.gen_range(0..members.len())];
        if cluster.is_running(victim) && random.gen_bool(0.5) {
            cluster.crash(victim).await;
            tokio::time::sleep(Duration::from_millis(random.gen_range(50..300))).await;
            cluster.restart(victim);
        }
    }
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn kv_histories_under_leader_isolation_and_crashes_are_linearizable() {
    test_support::init_tracing();
    let test = this_test!();
    let first = test_seed(1300);
    let seeds: Vec<u64> = if std::env::var("RAFT_TEST_SEED").is_ok() {
        vec![first]
    } else {
        (first..first + 4).collect()
    };
    for seed in seeds {
        let _report = seed_report(test.clone(), seed);
        let cluster = InProcessCluster::start(3, seed);
        cluster
            .wait_for_leader(Duration::from_secs(5))
            .await
            .expect("a leader");
        let history = Rc::new(RefCell::new(Vec::new()));
        let clients = futures::future::join_all((0..4).map(|number| {
            let spec = ClientSpec {
                number,
                seed,
                operations: 60,
                request_bound: Duration::from_millis(600),
            };
            run_client(&cluster, spec, Rc::clone(&history))
        }));
        tokio::join!(clients, faults(&cluster, seed));
        let history = history.borrow().clone();
        let answered = history
            .iter()
            .filter(|event| event.answered.is_some())
            .count();
        match check_kv(&history, SearchBudget::default()) {
            KvVerdict::Linearizable { keys, operations } => println!(
                "seed {seed}: {operations} operations on {keys} keys ({answered} answered, {} \
                 unknown) are linearizable",
                operations - answered
            ),
            KvVerdict::Violation(violation) => {
                let directory = std::env::temp_dir().join(format!("kv-linearizability-{seed}"));
                let written = violation.write_files(&directory);
                panic!("seed {seed}: {violation}\nfiles: {written:?}");
            }
            KvVerdict::Unknown { key, reason } => {
                panic!("seed {seed}: no verdict for key {key:?}: {reason}")
            }
        }
        cluster.assert_no_actor_died();
    }
}

/// The checker bites: one node is broken on purpose (it answers linearizable reads from its own
/// state, without ReadIndex: `RaftActorConfig::serve_stale_reads_for_tests`). Cut off, it lags;
/// a write committed by the others and then read from it is read stale, and the checker
/// reports the violation with the stale read marked.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn a_node_serving_stale_reads_is_caught_by_the_checker() {
    use integration_tests::in_process::ClusterOptions;
    use integration_tests::kv_linearizability::{KvEvent, KvOperation};
    test_support::init_tracing();
    let seed = test_seed(1350);
    let _report = seed_report(this_test!(), seed);
    let broken = NodeId(3);
    let options = ClusterOptions {
        stale_reader: Some(broken),
        ..ClusterOptions::default()
    };
    let cluster = InProcessCluster::start_with(3, seed, options);
    cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .expect("a leader");
    let rest: Vec<NodeId> = cluster
        .members()
        .iter()
        .copied()
        .filter(|node| *node != broken)
        .collect();
    cluster.partition(&[broken], &rest).await;
    let leader = cluster
        .wait_for_leader_among(&rest, Duration::from_secs(5))
        .await
        .expect("the others lead");
    let now = || tokio::time::Instant::now().into_std();
    let mut history = Vec::new();
    let invoked = now();
    cluster.put(leader, "k", b"new").await.expect("committed");
    history.push(KvEvent {
        client: 0,
        key: "k".to_string(),
        operation: KvOperation::Put {
            value: b"new".to_vec(),
        },
        invoked,
        answered: Some(now()),
    });
    // Strictly after the put's answer: operations at one instant count as concurrent.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let invoked = now();
    let stale = cluster
        .get(broken, "k")
        .await
        .expect("the broken node answers");
    history.push(KvEvent {
        client: 1,
        key: "k".to_string(),
        operation: KvOperation::Get { value: stale },
        invoked,
        answered: Some(now()),
    });
    match check_kv(&history, SearchBudget::default()) {
        KvVerdict::Violation(violation) => {
            println!("{violation}");
            assert!(
                violation.timeline.contains(">> #1"),
                "{}",
                violation.timeline
            );
        }
        other => panic!("the stale read was not caught: {other:?}"),
    }
}
