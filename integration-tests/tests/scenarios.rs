//! Named fault scenarios on whole in-process nodes, each with its bounds in virtual time and
//! each ending with every node agreeing within 10 s of virtual time after the last fault
//! (issue 17). The names follow the classic Raft test suites.
//!
//! A failing seed prints its replay command (`RAFT_TEST_SEED=<seed>`).

use integration_tests::in_process::{seed_report, test_seed, InProcessCluster, RequestError};
use raft_types::{NodeId, Term};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use test_support::{this_test, TestId};

/// Every node agrees within this much virtual time after the last fault.
const AGREEMENT_BOUND: Duration = Duration::from_secs(10);
/// A leader is elected within this much virtual time.
const ELECTION_BOUND: Duration = Duration::from_secs(5);

fn start(test: TestId, default_seed: u64, size: usize) -> (impl Drop, InProcessCluster) {
    test_support::init_tracing();
    let seed = test_seed(default_seed);
    let report = seed_report(test, seed);
    (report, InProcessCluster::start(size, seed))
}

fn others(cluster: &InProcessCluster, node: NodeId) -> Vec<NodeId> {
    cluster
        .members()
        .iter()
        .copied()
        .filter(|member| *member != node)
        .collect()
}

/// The scenario's verdict: every node applies the same log, and a write through the leader
/// commits and is read back.
async fn agree(cluster: &InProcessCluster, tag: &str) {
    cluster
        .wait_for_convergence(AGREEMENT_BOUND)
        .await
        .unwrap_or_else(|error| panic!("{tag}: no agreement: {error}"));
    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .unwrap_or_else(|error| panic!("{tag}: no leader: {error}"));
    cluster
        .put(leader, "agreed", tag.as_bytes())
        .await
        .unwrap_or_else(|error| panic!("{tag}: a write after the faults failed: {error}"));
    cluster
        .wait_for_convergence(AGREEMENT_BOUND)
        .await
        .unwrap_or_else(|error| panic!("{tag}: no agreement after the last write: {error}"));
}

async fn terms(cluster: &InProcessCluster) -> Vec<Term> {
    cluster
        .statuses()
        .await
        .values()
        .map(|status| status.term)
        .collect()
}

/// Initial election: a leader within 5 s, and no term changes over 2 s of idleness.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn initial_election_then_no_term_change_while_idle() {
    let (_report, cluster) = start(this_test!(), 1500, 3);
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    let before = terms(&cluster).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        terms(&cluster).await,
        before,
        "a term changed in an idle cluster"
    );
    agree(&cluster, "initial election").await;
}

/// Many elections: 7 nodes, 9 rounds of isolating 3 random nodes; a leader among the other 4
/// each round; every node agrees at the end.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn many_elections_among_seven_nodes() {
    let (_report, cluster) = start(this_test!(), 1510, 7);
    let mut random = ChaCha8Rng::seed_from_u64(cluster.seed());
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    for round in 0..9 {
        let mut members = cluster.members().to_vec();
        for position in (1..members.len()).rev() {
            members.swap(position, random.gen_range(0..=position));
        }
        let (cut, rest) = members.split_at(3);
        for node in cut {
            cluster.isolate(*node).await;
        }
        cluster
            .wait_for_leader_among(rest, ELECTION_BOUND)
            .await
            .unwrap_or_else(|error| panic!("round {round}: no leader among {rest:?}: {error}"));
        cluster.heal().await;
    }
    agree(&cluster, "many elections").await;
}

/// No commit in a minority: a leader cut off with one follower of five accepts a write that
/// never commits; the majority elects a leader and commits; after the heal the minority's
/// entry is gone and its client learns nothing false.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn no_commit_in_a_minority_and_its_entries_are_discarded_on_rejoin() {
    let (_report, cluster) = start(this_test!(), 1520, 5);
    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    let follower = others(&cluster, leader)[0];
    let minority = [leader, follower];
    let majority: Vec<NodeId> = cluster
        .members()
        .iter()
        .copied()
        .filter(|node| !minority.contains(node))
        .collect();
    cluster.partition(&minority, &majority).await;
    let stranded = cluster
        .put_within(leader, "minority", b"never", Duration::from_secs(1))
        .await;
    assert!(
        matches!(
            stranded,
            Err(RequestError::TimedOut { .. }) | Err(RequestError::Client { .. })
        ),
        "a write in a minority must not be acknowledged: {stranded:?}"
    );
    let new_leader = cluster
        .wait_for_leader_among(&majority, ELECTION_BOUND)
        .await
        .expect("the majority elects a leader");
    cluster
        .put(new_leader, "majority", b"committed")
        .await
        .expect("the majority commits");
    cluster.heal().await;
    agree(&cluster, "no commit in a minority").await;
    for node in cluster.members().to_vec() {
        assert_eq!(
            cluster.local_get(node, "minority").await,
            Ok(None),
            "node {node} applied the minority's uncommitted write"
        );
        assert_eq!(
            cluster.local_get(node, "majority").await,
            Ok(Some(b"committed".to_vec()))
        );
    }
}

/// A client on the minority side: its put and get do not complete within 1 s while the
/// partition lasts, and do within 3 s once it heals.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn a_minority_side_client_completes_only_after_the_heal() {
    let (_report, cluster) = start(this_test!(), 1530, 5);
    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    let stranded_node = others(&cluster, leader)[0];
    let rest = others(&cluster, stranded_node);
    cluster.partition(&[stranded_node], &rest).await;
    let put = cluster.send_put(stranded_node, "k", b"v").expect("sent");
    let get = cluster.send_get(stranded_node, "k").expect("sent");
    // Held or refused (the node knows no leader it can reach): neither completes within 1 s.
    let early_put = put.put_answer(Duration::from_secs(1)).await;
    assert!(
        early_put.is_err(),
        "a minority-side put completed: {early_put:?}"
    );
    let early_get = get.get_answer(Duration::from_millis(10)).await;
    assert!(
        early_get.is_err(),
        "a minority-side get completed: {early_get:?}"
    );
    cluster.heal().await;
    // The client retries after the heal, through the node or the leader it names: both
    // complete within 3 s.
    let healed = tokio::time::Instant::now();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(3))
        .await
        .expect("a leader");
    let bound = Duration::from_secs(3).saturating_sub(healed.elapsed());
    let target = if cluster
        .put_within(stranded_node, "k", b"v", bound)
        .await
        .is_ok()
    {
        stranded_node
    } else {
        let bound = Duration::from_secs(3).saturating_sub(healed.elapsed());
        cluster
            .put_within(leader, "k", b"v", bound)
            .await
            .expect("the put completes within 3 s of the heal");
        leader
    };
    assert_eq!(
        cluster.get(target, "k").await,
        Ok(Some(b"v".to_vec())),
        "the get completes after the heal"
    );
    assert!(
        healed.elapsed() <= Duration::from_secs(3),
        "the minority-side client took {:?} after the heal",
        healed.elapsed()
    );
    agree(&cluster, "minority client").await;
}

/// Persistence through every crash / restart combination of three nodes: for each non-empty
/// subset, crash it, restart it, and every acknowledged write is still there.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn persistence_through_every_crash_and_restart_combination_of_three() {
    let (_report, cluster) = start(this_test!(), 1540, 3);
    let members = cluster.members().to_vec();
    let mut written = Vec::new();
    for subset in 1u32..(1 << members.len()) {
        let leader = cluster
            .wait_for_leader(ELECTION_BOUND)
            .await
            .expect("a leader");
        let key = format!("k{subset}");
        cluster
            .put(leader, &key, key.as_bytes())
            .await
            .expect("a write before the crash");
        written.push(key);
        let crashed: Vec<NodeId> = members
            .iter()
            .enumerate()
            .filter(|(position, _)| subset & (1 << position) != 0)
            .map(|(_, node)| *node)
            .collect();
        for node in &crashed {
            cluster.crash(*node).await;
        }
        for node in &crashed {
            cluster.restart(*node);
        }
        let leader = cluster
            .wait_for_leader(ELECTION_BOUND)
            .await
            .expect("a leader");
        for key in &written {
            assert_eq!(
                cluster.get(leader, key).await,
                Ok(Some(key.as_bytes().to_vec())),
                "after crashing {crashed:?}: {key} lost"
            );
        }
    }
    agree(&cluster, "persistence").await;
}
