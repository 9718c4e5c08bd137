//! The consensus actor in a three-node cluster (moved here from raft-actor's own forwarder-based
//! harness onto the in-process cluster, so there is one actor-level cluster harness): election,
//! replicated writes, reads, redirection, batching, a leader cut off from the others, and
//! seeded partitions under a stream of writes checking what each client answer promises.
//!
//! Every test runs on a clock paused from the start (`PausedSystem`); bounds are virtual time.
//! A failing test prints its seed and the command that replays it.

use integration_tests::in_process::{
    seed_report, test_seed, ClusterOptions, InProcessCluster, RequestError, SeedReport,
    POLL_INTERVAL,
};
use raft_proto::client::{ClientError, Role};
use raft_types::{LogIndex, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use test_support::{this_test, TestId};
use tokio::time::Instant;

/// A leader is elected (or re-elected after a fault) within this much virtual time.
const ELECTION_BOUND: Duration = Duration::from_secs(5);

/// A lagging or rejoining node catches up, and a pending answer arrives, within this much
/// virtual time.
const CATCH_UP_BOUND: Duration = Duration::from_secs(10);

/// The bound of the partition test's final phase (fillers, answers and reads).
const DEADLINE: Duration = Duration::from_secs(10);

/// Tracing, the seed (`RAFT_TEST_SEED`, else `default_seed`), the report that prints it if the
/// test fails (created first, so that it outlives the cluster), and three nodes.
fn start(
    test: TestId,
    default_seed: u64,
    options: ClusterOptions,
) -> (SeedReport, InProcessCluster) {
    test_support::init_tracing();
    let seed = test_seed(default_seed);
    let report = seed_report(test, seed);
    (report, InProcessCluster::start_with(3, seed, options))
}

/// Every member of `cluster` but `node`, in id order.
fn members_except(cluster: &InProcessCluster, node: NodeId) -> Vec<NodeId> {
    let members = cluster.members().iter().copied();
    members.filter(|member| *member != node).collect()
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn three_nodes_elect_a_leader_replicate_a_write_and_serve_a_read() {
    let (_report, cluster) = start(this_test!(), 1, ClusterOptions::default());
    let leader = cluster.wait_for_leader(ELECTION_BOUND).await.unwrap();

    let index = cluster
        .put(leader, "x", b"42")
        .await
        .expect("the leader accepts writes");
    let read = cluster
        .get(leader, "x")
        .await
        .expect("the leader serves reads");
    assert_eq!(read, Some(b"42".to_vec()));

    // Every node applies the write (followers learn the commit index from heartbeats).
    for &member in cluster.members() {
        cluster
            .wait_for_applied(member, index, CATCH_UP_BOUND)
            .await
            .expect("every node applied the write");
    }

    // A follower refuses client requests and names the leader.
    let follower = members_except(&cluster, leader)[0];
    let not_leader = RequestError::Client {
        node: follower,
        error: ClientError::NotLeader {
            leader_hint: Some(leader),
        },
    };
    let refused = cluster.put(follower, "y", b"1").await;
    assert_eq!(refused, Err(not_leader.clone()));
    let refused_read = cluster.get(follower, "x").await;
    assert_eq!(refused_read, Err(not_leader));
    let follower_status = cluster.status(follower).await.expect("running");
    assert_eq!(follower_status.role, Role::Follower);
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn proposals_arriving_together_share_one_append_entries_per_follower() {
    let options = ClusterOptions {
        count_replication: true,
        ..ClusterOptions::default()
    };
    let (_report, cluster) = start(this_test!(), 2, options);
    let leader = cluster.wait_for_leader(ELECTION_BOUND).await.unwrap();
    cluster
        .put(leader, "warm-up", b"0")
        .await
        .expect("accepted");
    let storage_appends = || {
        let metrics = cluster.metrics(leader).expect("the leader runs");
        metrics.storage_appends_total
    };
    let appends_before = storage_appends();
    let sent_before = cluster.appends_with_entries_sent();

    let pending: Vec<_> = (0..100)
        .map(|number| {
            let key = format!("key-{number}");
            cluster
                .send_put(leader, &key, b"v")
                .expect("the leader runs")
        })
        .collect();
    for answer in pending {
        answer.put_answer(CATCH_UP_BOUND).await.expect("applied");
    }
    let appends = storage_appends() - appends_before;
    let sent = cluster.appends_with_entries_sent() - sent_before;
    assert!(
        appends <= 2,
        "leader: {appends} storage appends for one batch"
    );
    // One AppendEntries per follower for the batch; the followers' own appends are not counted
    // here (they only send responses).
    assert!(sent <= 4, "{sent} AppendEntries with entries for one batch");
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn an_isolated_leader_loses_its_uncommitted_write_and_serves_no_reads() {
    let (_report, cluster) = start(this_test!(), 3, ClusterOptions::default());
    let old_leader = cluster.wait_for_leader(ELECTION_BOUND).await.unwrap();
    cluster
        .put(old_leader, "k", b"before")
        .await
        .expect("accepted");

    cluster.isolate(old_leader).await;
    // Accepted into the old leader's log, but it can never reach a majority.
    let lost_write = cluster.send_put(old_leader, "k", b"lost").expect("running");
    let stale_read = cluster.send_get(old_leader, "k").expect("running");

    let others = members_except(&cluster, old_leader);
    let new_leader = cluster
        .wait_for_leader_among(&others, ELECTION_BOUND)
        .await
        .unwrap();
    assert_ne!(new_leader, old_leader);
    let index = cluster
        .put(new_leader, "k", b"after")
        .await
        .expect("accepted");

    // The isolated leader never confirms leadership, so the read is refused, never served.
    let stale_answer = stale_read.get_answer(CATCH_UP_BOUND).await;
    assert!(
        matches!(
            stale_answer,
            Err(RequestError::Client {
                error: ClientError::NotLeader { .. },
                ..
            })
        ),
        "{stale_answer:?}"
    );

    cluster.heal().await;
    // Its entry is overwritten by the new leader's log: definitely not applied.
    let lost_answer = lost_write.put_answer(CATCH_UP_BOUND).await;
    assert!(
        matches!(
            lost_answer,
            Err(RequestError::Client {
                error: ClientError::Unavailable { .. },
                ..
            })
        ),
        "{lost_answer:?}"
    );
    cluster
        .wait_for_applied(old_leader, index, CATCH_UP_BOUND)
        .await
        .expect("the old leader caught up");
    let read = cluster.get(new_leader, "k").await.expect("served");
    assert_eq!(read, Some(b"after".to_vec()));
    let old_status = cluster.status(old_leader).await.expect("running");
    assert_eq!(old_status.leader_id, Some(new_leader));
    let old_metrics = cluster.metrics(old_leader).expect("running");
    assert!(old_metrics.leader_changes_total >= 2);
}

/// Seeded partitions of the cluster under a stream of writes, checking what each client answer
/// promises: `Ok` means the write is in the final state, `NotLeader` and `Unavailable` mean it
/// is definitely not. The seed fixes the faults, the writes and (on the paused clock) the
/// actors' timing.
#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn client_answers_match_the_final_state_under_partitions() {
    let (_report, cluster) = start(this_test!(), 7, ClusterOptions::default());
    let seed = cluster.seed();
    let mut random = ChaCha8Rng::seed_from_u64(seed);
    let members = cluster.members().to_vec();
    cluster.wait_for_leader(ELECTION_BOUND).await.unwrap();

    let mut writes = Vec::new();
    // A proposal is answered once the committed log reaches its index. A stale leader's log
    // may run ahead of the cluster's and is cut back as soon as it hears the newer leader, so
    // the longest log any node held is sampled before every heal: the cluster's log must grow
    // past it before every answer is due.
    let mut longest_log = LogIndex::ZERO;
    for round in 0..20 {
        // Cut off at most one node at a time, so a majority can always make progress.
        let isolated = NodeId(random.gen_range(0..=3));
        longest_log = longest_log.max(longest_log_of(&cluster).await);
        cluster.heal().await;
        if members.contains(&isolated) {
            cluster.isolate(isolated).await;
        }
        for _ in 0..random.gen_range(1..=10) {
            // Mostly to a node that believes it leads (possibly a stale, isolated one).
            let believed_leader = members.iter().copied().find(|node| {
                cluster.metrics(*node).map(|metrics| metrics.role) == Some(Role::Leader)
            });
            let target = match believed_leader {
                Some(leader) if random.gen_bool(0.8) => leader,
                _ => members[random.gen_range(0..members.len())],
            };
            let key = format!("key-{}", writes.len());
            let value = format!("round-{round}").into_bytes();
            let answer = cluster.send_put(target, &key, &value).expect("running");
            writes.push((key, value, answer));
        }
        tokio::time::sleep(Duration::from_millis(random.gen_range(5..60))).await;
    }
    longest_log = longest_log.max(longest_log_of(&cluster).await);
    cluster.heal().await;
    let deadline = Instant::now() + DEADLINE;
    for filler in 0.. {
        let leader = cluster.wait_for_leader(ELECTION_BOUND).await.unwrap();
        let leader_status = cluster.status(leader).await.expect("running");
        if leader_status.commit_index > longest_log {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the commit index never passed {longest_log}"
        );
        // A filler can itself be lost to a leader change; it is only there to grow the log.
        let filler_key = format!("filler-{filler}");
        let within = Duration::from_millis(200);
        let _ = cluster.put_within(leader, &filler_key, b"", within).await;
    }

    let (mut applied, mut refused, mut overwritten, mut unknown) = (0, 0, 0, 0);
    for (key, value, answer) in writes {
        let outcome = answer.put_answer(DEADLINE).await;
        let read = cluster_get(&cluster, &key).await;
        match outcome {
            Ok(_) => {
                applied += 1;
                assert_eq!(read, Some(value), "seed {seed}: acknowledged {key} lost");
            }
            Err(RequestError::Client {
                error: error @ (ClientError::NotLeader { .. } | ClientError::Unavailable { .. }),
                ..
            }) => {
                if matches!(error, ClientError::Unavailable { .. }) {
                    overwritten += 1;
                } else {
                    refused += 1;
                }
                assert_eq!(read, None, "seed {seed}: refused {key} was applied");
            }
            other => {
                unknown += 1;
                println!("seed {seed}: {key}: {other:?}");
            }
        }
    }
    println!(
        "seed {seed}: {applied} applied, {refused} refused, {overwritten} overwritten, \
         {unknown} unknown"
    );
    assert!(applied > 0, "seed {seed}: no write succeeded");
    assert_eq!(
        unknown, 0,
        "seed {seed}: every proposal is answered once its index commits"
    );
}

/// The longest log any running node holds now.
async fn longest_log_of(cluster: &InProcessCluster) -> LogIndex {
    cluster
        .statuses()
        .await
        .values()
        .map(|status| status.last_log_index)
        .fold(LogIndex::ZERO, LogIndex::max)
}

/// A linearizable read from whichever node leads, retried while leadership moves.
async fn cluster_get(cluster: &InProcessCluster, key: &str) -> Option<Vec<u8>> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let leader = cluster.wait_for_leader(ELECTION_BOUND).await.unwrap();
        match cluster.get(leader, key).await {
            Ok(value) => return value,
            Err(error) => assert!(
                Instant::now() < deadline,
                "read of {key} kept failing: {error:?}"
            ),
        }
        // On the paused clock a read refused at once would otherwise retry at one instant.
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
