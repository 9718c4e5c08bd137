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

/// Persistence through every crash / restart combination of `size` nodes: for each non-empty
/// subset, crash it, restart it, and every acknowledged write is still there.
async fn persistence_through_every_combination(cluster: &InProcessCluster) {
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
    agree(cluster, "persistence").await;
}

/// Persistence through every crash / restart combination of three nodes.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn persistence_through_every_crash_and_restart_combination_of_three() {
    let (_report, cluster) = start(this_test!(), 1540, 3);
    persistence_through_every_combination(&cluster).await;
}

/// Persistence through every crash / restart combination of five nodes (31 subsets).
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn persistence_through_every_crash_and_restart_combination_of_five() {
    let (_report, cluster) = start(this_test!(), 1545, 5);
    persistence_through_every_combination(&cluster).await;
}

/// Rejoin of a partitioned leader: writes sent to it while it is cut off never commit, the
/// rest elect a new leader and commit, and after the heal the old leader's uncommitted
/// entries are discarded in favour of the new leader's.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn a_partitioned_leader_rejoins_and_its_uncommitted_entries_are_discarded() {
    let (_report, cluster) = start(this_test!(), 1550, 3);
    let old_leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    cluster
        .put(old_leader, "before", b"1")
        .await
        .expect("a first write");
    cluster.isolate(old_leader).await;
    let mut stranded = Vec::new();
    for number in 0..3 {
        stranded.push(
            cluster
                .send_put(old_leader, &format!("stranded-{number}"), b"x")
                .expect("sent"),
        );
    }
    let new_leader = cluster
        .wait_for_leader_among(&others(&cluster, old_leader), ELECTION_BOUND)
        .await
        .expect("a new leader");
    cluster
        .put(new_leader, "after", b"2")
        .await
        .expect("the new leader commits");
    cluster.heal().await;
    for pending in stranded {
        assert!(
            pending.put_answer(Duration::from_secs(3)).await.is_err(),
            "a write sent to the isolated leader was acknowledged"
        );
    }
    agree(&cluster, "rejoin").await;
    for node in cluster.members().to_vec() {
        for number in 0..3 {
            assert_eq!(
                cluster.local_get(node, &format!("stranded-{number}")).await,
                Ok(None),
                "node {node} applied an entry of the isolated leader"
            );
        }
        assert_eq!(
            cluster.local_get(node, "after").await,
            Ok(Some(b"2".to_vec()))
        );
    }
}

/// Concurrent proposals: many clients propose at once through the leader; every one is
/// acknowledged at its own index and applied on every node.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn concurrent_proposals_get_distinct_indexes_and_apply_everywhere() {
    let (_report, cluster) = start(this_test!(), 1560, 3);
    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    let pending: Vec<_> = (0..50)
        .map(|number| {
            cluster
                .send_put(leader, &format!("concurrent-{number}"), b"v")
                .expect("sent")
        })
        .collect();
    let mut indexes = Vec::new();
    for answer in pending {
        indexes.push(
            answer
                .put_answer(Duration::from_secs(5))
                .await
                .expect("acknowledged"),
        );
    }
    let mut distinct = indexes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        indexes.len(),
        "two proposals share an index"
    );
    agree(&cluster, "concurrent proposals").await;
    for node in cluster.members().to_vec() {
        for number in 0..50 {
            assert_eq!(
                cluster
                    .local_get(node, &format!("concurrent-{number}"))
                    .await,
                Ok(Some(b"v".to_vec()))
            );
        }
    }
}

/// Figure 8 and churn: leaders crash soon after proposals, nodes restart and links turn
/// lossy (`unreliable`); every acknowledged write survives and every node agrees at the end.
async fn leaders_crash_after_proposals(cluster: &InProcessCluster, unreliable: bool, churn: bool) {
    let mut random = ChaCha8Rng::seed_from_u64(cluster.seed() ^ 0xF18);
    let members = cluster.members().to_vec();
    let majority = members.len() / 2 + 1;
    if unreliable {
        cluster
            .set_all_link_faults(network_actor::sim::LinkFaults {
                drop_probability: 0.1,
                duplicate_probability: 0.05,
                reorder_probability: 0.3,
                delay_min: Duration::from_millis(1),
                delay_max: Duration::from_millis(20),
                ..network_actor::sim::LinkFaults::reliable()
            })
            .await;
    }
    let mut acknowledged = Vec::new();
    for round in 0..80 {
        let running = cluster.running_members();
        let target = match cluster.wait_for_leader(ELECTION_BOUND).await {
            Ok(leader) => leader,
            Err(_) => running[random.gen_range(0..running.len())],
        };
        let key = format!("round-{round}");
        if let Ok(pending) = cluster.send_put(target, &key, key.as_bytes()) {
            // Figure 8: the leader may die before or after its entry reaches a majority.
            tokio::time::sleep(Duration::from_millis(random.gen_range(0..40))).await;
            if random.gen_bool(0.5) && cluster.running_members().len() > majority {
                cluster.crash(target).await;
            }
            if let Ok(index) = pending.put_answer(Duration::from_secs(1)).await {
                acknowledged.push((key, index));
            }
        }
        if churn && random.gen_bool(0.3) {
            let victim = members[random.gen_range(0..members.len())];
            if cluster.is_running(victim) && cluster.running_members().len() > majority {
                cluster.crash(victim).await;
            }
        }
        // Bring back nodes now and then, never leaving fewer than a majority running.
        for node in members.clone() {
            if !cluster.is_running(node)
                && (random.gen_bool(0.5) || cluster.running_members().len() < majority)
            {
                cluster.restart(node);
            }
        }
    }
    cluster
        .set_all_link_faults(network_actor::sim::LinkFaults::reliable())
        .await;
    for node in members {
        if !cluster.is_running(node) {
            cluster.restart(node);
        }
    }
    agree(cluster, "leaders crashing after proposals").await;
    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    for (key, index) in &acknowledged {
        assert_eq!(
            cluster.get(leader, key).await,
            Ok(Some(key.as_bytes().to_vec())),
            "{key}, acknowledged at index {index}, was lost"
        );
    }
    println!("{} acknowledged writes survived", acknowledged.len());
}

/// Figure 8, reliable network: five nodes, leaders crash right after proposing.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn figure_8_reliable() {
    let (_report, cluster) = start(this_test!(), 1570, 5);
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    leaders_crash_after_proposals(&cluster, false, false).await;
}

/// Figure 8 over lossy, duplicating, reordering links.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn figure_8_unreliable() {
    let (_report, cluster) = start(this_test!(), 1575, 5);
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    leaders_crash_after_proposals(&cluster, true, false).await;
}

/// Churn, reliable network: besides leaders, random nodes crash and restart.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn churn_reliable() {
    let (_report, cluster) = start(this_test!(), 1580, 5);
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    leaders_crash_after_proposals(&cluster, false, true).await;
}

/// Churn over lossy links.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn churn_unreliable() {
    let (_report, cluster) = start(this_test!(), 1585, 5);
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    leaders_crash_after_proposals(&cluster, true, true).await;
}

/// Divergent-log backup (the classic "backup" test): a leader and a follower cut off with many
/// uncommitted entries; the other three commit many of their own; then the old pair and one
/// of the three form the majority: the pair backs up over its divergent entries and takes the
/// committed ones, which survive, while the stranded ones are gone everywhere.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn leader_backs_up_quickly_over_divergent_logs() {
    let (_report, cluster) = start(this_test!(), 1590, 5);
    let old_leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    let old_follower = others(&cluster, old_leader)[0];
    let pair = [old_leader, old_follower];
    let three: Vec<NodeId> = cluster
        .members()
        .iter()
        .copied()
        .filter(|node| !pair.contains(node))
        .collect();
    cluster.partition(&pair, &three).await;
    for number in 0..30 {
        // Never committed: only two of five hold them.
        let _ = cluster.send_put(old_leader, &format!("stranded-{number}"), b"x");
    }
    let leader_of_three = cluster
        .wait_for_leader_among(&three, ELECTION_BOUND)
        .await
        .expect("the three elect a leader");
    for number in 0..30 {
        cluster
            .put(leader_of_three, &format!("first-{number}"), b"1")
            .await
            .expect("the three commit");
    }
    // The old pair and one of the three now make the majority.
    let third = *three
        .iter()
        .find(|node| **node != leader_of_three)
        .expect("another of the three");
    let majority = [old_leader, old_follower, third];
    let minority: Vec<NodeId> = three
        .iter()
        .copied()
        .filter(|node| *node != third)
        .collect();
    cluster.heal().await;
    cluster.partition(&majority, &minority).await;
    let new_leader = cluster
        .wait_for_leader_among(&majority, ELECTION_BOUND)
        .await
        .expect("the new majority elects a leader");
    assert_eq!(
        new_leader, third,
        "only the node holding the committed entries can win (§5.4.1)"
    );
    for number in 0..30 {
        cluster
            .put(new_leader, &format!("second-{number}"), b"2")
            .await
            .expect("the new majority commits");
    }
    cluster.heal().await;
    agree(&cluster, "backup").await;
    for node in cluster.members().to_vec() {
        for number in 0..30 {
            assert_eq!(
                cluster.local_get(node, &format!("stranded-{number}")).await,
                Ok(None),
                "node {node} kept an uncommitted divergent entry"
            );
            assert_eq!(
                cluster.local_get(node, &format!("first-{number}")).await,
                Ok(Some(b"1".to_vec()))
            );
            assert_eq!(
                cluster.local_get(node, &format!("second-{number}")).await,
                Ok(Some(b"2".to_vec()))
            );
        }
    }
}

/// Re-election: a cut-off leader is replaced within 5 s; its return does not disturb the new
/// leader; with no quorum reachable nobody is elected; once a quorum is back a leader is
/// elected within 5 s.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn re_election_after_leader_and_quorum_losses() {
    let (_report, cluster) = start(this_test!(), 1595, 3);
    let first = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader");
    cluster.isolate(first).await;
    let second = cluster
        .wait_for_leader_among(&others(&cluster, first), ELECTION_BOUND)
        .await
        .expect("a new leader within 5 s");
    // The old leader returns: the new one keeps leading (pre-vote, leader stickiness).
    cluster.heal().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cluster.leader().await,
        Some(second),
        "the returning old leader disturbed the new one"
    );
    // No quorum: the leader and one follower cut off, the third alone elects nobody.
    let alone = others(&cluster, second)
        .into_iter()
        .find(|node| *node != first)
        .expect("a third node");
    cluster.isolate(second).await;
    cluster.isolate(first).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statuses = cluster.statuses().await;
    assert!(
        statuses[&alone].role != raft_proto::client::Role::Leader,
        "node {alone} was elected alone"
    );
    // A quorum is back: a leader within 5 s.
    cluster.heal().await;
    cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .expect("a leader once a quorum is back");
    agree(&cluster, "re-election").await;
}
