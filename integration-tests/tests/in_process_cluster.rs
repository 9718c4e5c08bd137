//! Whole-node behaviour of in-process clusters (`integration_tests::in_process`): every actor of
//! every node in one actix System, on a tokio clock paused from the start (`PausedSystem`), over
//! the seeded simulated network.
//!
//! Every bound below is virtual time; each test takes a second or two of real time. A failing
//! test prints its seed; `RAFT_TEST_SEED=<seed>` replays it.

use integration_tests::in_process::{
    healthy_links, seed_report, test_seed, InProcessCluster, RequestError, SeedReport,
    NETWORK_DELAY_MIN, POLL_INTERVAL,
};
use integration_tests::write_history::WriteOutcome;
use network_actor::sim::LinkFaults;
use raft_types::NodeId;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::{this_test, TestId};

/// A leader is elected (or re-elected after a fault) within this much virtual time.
const ELECTION_BOUND: Duration = Duration::from_secs(5);

/// A lagging or restarted node catches up within this much virtual time.
const CATCH_UP_BOUND: Duration = Duration::from_secs(10);

/// What every test here starts with: tracing, its seed (`RAFT_TEST_SEED`, else `default_seed`),
/// the report that prints the seed if the test fails, and a cluster of `size` nodes. The report
/// comes first so that it outlives the cluster.
fn start_cluster(test: TestId, default_seed: u64, size: usize) -> (SeedReport, InProcessCluster) {
    test_support::init_tracing();
    let seed = test_seed(default_seed);
    let report = seed_report(test, seed);
    (report, InProcessCluster::start(size, seed))
}

/// Every member of `cluster` but `node`, in id order.
fn members_except(cluster: &InProcessCluster, node: NodeId) -> Vec<NodeId> {
    let members = cluster.members().iter().copied();
    members.filter(|member| *member != node).collect()
}

/// §5.2 (election), §5.3 (replication), thesis §6.4 (ReadIndex): a leader is elected, a write
/// through it is readable through it at once and, once applied, on every node.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn three_nodes_elect_a_leader_and_serve_a_put_from_every_node() {
    let (_report, cluster) = start_cluster(this_test!(), 1, 3);

    let leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    let index = expect(cluster.put(leader, "greeting", b"hello").await);

    assert_eq!(
        cluster.get(leader, "greeting").await,
        Ok(Some(b"hello".to_vec())),
        "linearizable read through the leader"
    );
    for node in cluster.members().to_vec() {
        expect(cluster.wait_for_applied(node, index, CATCH_UP_BOUND).await);
        assert_eq!(
            cluster.local_get(node, "greeting").await,
            Ok(Some(b"hello".to_vec())),
            "local read on node {node}"
        );
        if node != leader {
            // §8: only the leader serves linearizable reads.
            assert!(
                cluster.get(node, "greeting").await.is_err(),
                "follower {node} must not serve a linearizable read"
            );
        }
    }
}

/// §5.2, §6.2 (check quorum), thesis §6.4 (ReadIndex): an isolated leader is replaced by the
/// majority, which keeps accepting writes; the old leader cannot serve a linearizable read;
/// after the heal it catches up.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn isolated_leader_of_five_is_replaced_and_catches_up_after_heal() {
    let (_report, cluster) = start_cluster(this_test!(), 2, 5);
    let old_leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    expect(cluster.put(old_leader, "before", b"1").await);

    cluster.isolate(old_leader).await;
    let majority = members_except(&cluster, old_leader);
    let new_leader = expect(
        cluster
            .wait_for_leader_among(&majority, ELECTION_BOUND)
            .await,
    );
    let mut last_index = Default::default();
    for round in 0..10 {
        let key = format!("during-{round}");
        last_index = cluster
            .put(new_leader, &key, key.as_bytes())
            .await
            .unwrap_or_else(|error| panic!("majority leader {new_leader} refused {key}: {error}"));
    }
    match cluster.get(old_leader, "before").await {
        Ok(value) => {
            panic!("isolated old leader {old_leader} answered a linearizable read with {value:?}")
        }
        Err(error) => assert!(
            matches!(
                error,
                RequestError::Client { .. } | RequestError::TimedOut { .. }
            ),
            "unexpected failure of the isolated leader's read: {error}"
        ),
    }
    let old_status = cluster.status(old_leader).await.expect("not crashed");
    assert!(
        old_status.commit_index < last_index,
        "the isolated node cannot have committed the majority's writes: {old_status:?}"
    );

    cluster.heal().await;
    expect(
        cluster
            .wait_for_applied(old_leader, last_index, CATCH_UP_BOUND)
            .await,
    );
    for round in 0..10 {
        let key = format!("during-{round}");
        assert_eq!(
            cluster.local_get(old_leader, &key).await,
            Ok(Some(key.clone().into_bytes())),
            "old leader {old_leader} after the heal"
        );
    }
    let leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    assert_eq!(
        cluster.get(leader, "during-9").await,
        Ok(Some(b"during-9".to_vec()))
    );
}

/// §5.3, §5.4 (Figure 8's lesson): a leader cut off with a minority cannot commit; a write it
/// took during the partition is never applied once the majority's new leader has written over
/// that part of its log, and its client is told it was not applied.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn write_to_a_minority_leader_is_refused_and_never_applied() {
    let (_report, cluster) = start_cluster(this_test!(), 6, 5);
    let old_leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    expect(cluster.put(old_leader, "before", b"1").await);
    let (minority, majority): (Vec<NodeId>, Vec<NodeId>) = {
        let followers = members_except(&cluster, old_leader);
        (vec![old_leader, followers[0]], followers[1..].to_vec())
    };
    cluster.partition(&minority, &majority).await;

    let minority_write = cluster.put_within(old_leader, "minority", b"lost", CATCH_UP_BOUND * 2);
    let majority_side = async {
        let new_leader = expect(
            cluster
                .wait_for_leader_among(&majority, ELECTION_BOUND)
                .await,
        );
        for round in 0..5 {
            let key = format!("majority-{round}");
            expect(cluster.put(new_leader, &key, key.as_bytes()).await);
        }
        cluster.heal().await;
        expect(cluster.wait_for_convergence(CATCH_UP_BOUND).await)
    };
    let (minority_answer, _) = tokio::join!(minority_write, majority_side);

    match minority_answer {
        Err(error) if error.definitely_not_applied() => eprintln!("minority write: {error}"),
        other => panic!("the minority leader's write must be refused, got {other:?}"),
    }
    for node in cluster.members().to_vec() {
        assert_eq!(
            cluster.local_get(node, "minority").await,
            Ok(None),
            "node {node} applied the minority leader's write"
        );
        assert_eq!(
            cluster.local_get(node, "majority-4").await,
            Ok(Some(b"majority-4".to_vec())),
            "node {node}"
        );
    }
}

/// Durability across crashes (Figure 2's persistent state; docs/ARCHITECTURE.md ordering rules):
/// a follower and then the leader crash and restart under a stream of writes; every
/// acknowledged write is readable at the end, on every node.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn crash_and_restart_follower_then_leader_keeps_every_acknowledged_write() {
    let (_report, cluster) = start_cluster(this_test!(), 3, 3);
    let first_leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    let history = WriteLog::default();
    let stop = Cell::new(false);

    let faults = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let follower = *cluster
            .members()
            .iter()
            .find(|node| **node != first_leader)
            .expect("three members");
        cluster.crash(follower).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.restart(follower);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
        cluster.crash(leader).await;
        let survivors: Vec<NodeId> = cluster.running_members();
        expect(
            cluster
                .wait_for_leader_among(&survivors, ELECTION_BOUND)
                .await,
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.restart(leader);
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.set(true);
    };
    tokio::join!(write_stream(&cluster, "crash", &history, &stop), faults);

    check_every_acknowledged_write(&cluster, "crash", &history).await;
}

/// docs/ARCHITECTURE.md rule 2 (nothing is said that depends on data not yet durable): every node
/// crashes at the same instant under a stream of writes, losing whatever its disk had not yet
/// synced; after all restart, every acknowledged write is still there.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn whole_cluster_crash_loses_no_acknowledged_write() {
    let (_report, cluster) = start_cluster(this_test!(), 7, 3);
    expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    let history = WriteLog::default();
    let stop = Cell::new(false);
    let faults = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            for node in cluster.members().to_vec() {
                cluster.crash(node).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            for node in cluster.members().to_vec() {
                cluster.restart(node);
            }
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.set(true);
    };
    tokio::join!(write_stream(&cluster, "outage", &history, &stop), faults);

    check_every_acknowledged_write(&cluster, "outage", &history).await;
}

/// Raft over a lossy network (§5.3: AppendEntries is retried until it gets through): with
/// drops, delays and reordering on every link, acknowledged writes survive and every node
/// ends with the same applied state.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn lossy_links_keep_acknowledged_writes_and_replicas_identical() {
    let (_report, cluster) = start_cluster(this_test!(), 4, 5);
    expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    cluster
        .set_all_link_faults(LinkFaults {
            drop_probability: 0.1,
            reorder_probability: 0.2,
            ..LinkFaults::delayed(NETWORK_DELAY_MIN, Duration::from_millis(30))
        })
        .await;
    let history = WriteLog::default();
    let stop = Cell::new(false);
    let lossy_period = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.set(true);
    };
    tokio::join!(
        write_stream(&cluster, "lossy", &history, &stop),
        lossy_period
    );
    let stats = cluster.network_stats().await;
    assert!(
        stats.dropped_by_chance > 0,
        "the links were lossy: {stats:?}"
    );
    cluster.set_all_link_faults(healthy_links()).await;

    check_every_acknowledged_write(&cluster, "lossy", &history).await;
}

/// The harness's promise: on a paused clock a seed replays a run. The same faulty scenario
/// (lossy, duplicating, reordering links; a crash and a restart under writes) run twice with
/// one seed ends in the same place, message for message.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn same_seed_replays_the_same_run() {
    test_support::init_tracing();
    let seed = test_seed(5);
    let _report = seed_report(this_test!(), seed);
    let first = faulty_run_fingerprint(seed).await;
    let second = faulty_run_fingerprint(seed).await;
    assert_eq!(first, second, "two runs with seed {seed} diverged");
}

/// Runs a faulty scenario on a fresh cluster and describes where it ended: what each client
/// was told, each node's status, and what the network did.
async fn faulty_run_fingerprint(seed: u64) -> String {
    let cluster = InProcessCluster::start(3, seed);
    expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    cluster
        .set_all_link_faults(LinkFaults {
            drop_probability: 0.05,
            reorder_probability: 0.2,
            duplicate_probability: 0.05,
            ..LinkFaults::delayed(NETWORK_DELAY_MIN, Duration::from_millis(20))
        })
        .await;
    let history = WriteLog::default();
    let stop = Cell::new(false);
    let faults = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let victim = cluster.leader().await.unwrap_or(NodeId(1));
        cluster.crash(victim).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.restart(victim);
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.set(true);
    };
    tokio::join!(write_stream(&cluster, "replay", &history, &stop), faults);
    cluster.set_all_link_faults(healthy_links()).await;
    expect(cluster.wait_for_convergence(CATCH_UP_BOUND).await);
    let statuses = cluster.statuses().await;
    let network = cluster.network_stats().await;
    format!(
        "outcomes: {:?}\nstatuses: {statuses:?}\nnetwork: {network:?}",
        history.outcomes.borrow()
    )
}

/// What the clients of `write_stream` were told, per key (each key is written once).
#[derive(Default)]
struct WriteLog {
    outcomes: RefCell<BTreeMap<String, WriteOutcome>>,
}

impl WriteLog {
    fn record(&self, key: String, outcome: WriteOutcome) {
        let previous = self.outcomes.borrow_mut().insert(key, outcome);
        assert!(previous.is_none(), "write_stream writes each key once");
    }

    fn acknowledged_count(&self) -> usize {
        self.outcomes
            .borrow()
            .values()
            .filter(|outcome| matches!(outcome, WriteOutcome::Acknowledged(_)))
            .count()
    }
}

/// Writes unique keys `{prefix}-{n}` one after another through whichever node leads, until
/// `stop` is set, recording what each client was told.
async fn write_stream(
    cluster: &InProcessCluster,
    prefix: &str,
    history: &WriteLog,
    stop: &Cell<bool>,
) {
    let mut sequence = 0u64;
    while !stop.get() {
        let Some(leader) = cluster.leader().await else {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        };
        let key = format!("{prefix}-{sequence}");
        let value = format!("value-{sequence}").into_bytes();
        sequence += 1;
        let outcome = match cluster.put(leader, &key, &value).await {
            Ok(_index) => WriteOutcome::Acknowledged(value),
            Err(error) if error.definitely_not_applied() => WriteOutcome::Refused,
            Err(_) => WriteOutcome::Unknown(value),
        };
        let failed = !matches!(outcome, WriteOutcome::Acknowledged(_));
        history.record(key, outcome);
        if failed {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// Waits for the cluster to agree, then checks every key the stream tried on every node: an
/// acknowledged write holds its value, a refused one is absent, one with an unknown outcome
/// is either; every node holds the same; and a linearizable read through the leader sees
/// every acknowledged write.
async fn check_every_acknowledged_write(
    cluster: &InProcessCluster,
    prefix: &str,
    history: &WriteLog,
) {
    let outcomes = history.outcomes.borrow().clone();
    let acknowledged = history.acknowledged_count();
    assert!(
        acknowledged >= 10,
        "too few writes were acknowledged to prove anything: {acknowledged} of {}",
        outcomes.len()
    );
    let applied = expect(cluster.wait_for_convergence(CATCH_UP_BOUND).await);
    eprintln!(
        "{prefix}: {} writes tried, {acknowledged} acknowledged, every node applied through \
         {applied}; network: {:?}",
        outcomes.len(),
        cluster.network_stats().await
    );
    let leader = expect(cluster.wait_for_leader(ELECTION_BOUND).await);
    for (key, outcome) in &outcomes {
        if let WriteOutcome::Acknowledged(value) = outcome {
            assert_eq!(
                cluster.get(leader, key).await,
                Ok(Some(value.clone())),
                "acknowledged write {key} through leader {leader}"
            );
        }
    }
    let mut reference: Option<(NodeId, Vec<Option<Vec<u8>>>)> = None;
    for node in cluster.members().to_vec() {
        let status = cluster
            .status(node)
            .await
            .expect("every node runs at the end");
        assert_eq!(status.last_applied, applied, "node {node} applied through");
        let mut values = Vec::new();
        for (key, outcome) in &outcomes {
            let value = expect(cluster.local_get(node, key).await);
            match outcome {
                WriteOutcome::Acknowledged(written) => assert_eq!(
                    value.as_ref(),
                    Some(written),
                    "acknowledged write {key} on node {node}"
                ),
                WriteOutcome::Refused => {
                    assert_eq!(value, None, "refused write {key} applied on node {node}")
                }
                WriteOutcome::Unknown(written) => assert!(
                    value.is_none() || value.as_ref() == Some(written),
                    "write {key} of unknown outcome holds {value:?} on node {node}"
                ),
            }
            values.push(value);
        }
        match &reference {
            None => reference = Some((node, values)),
            Some((first, first_values)) => assert!(
                *first_values == values,
                "nodes {first} and {node} applied different states"
            ),
        }
    }
}

fn expect<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| panic!("{error}"))
}
