//! A large InstallSnapshot transfer through whole in-process nodes (issue 12, acceptance 2):
//! a follower cut off while the others commit and compact 60 MiB catches up through a snapshot
//! of more than 50 MiB sent in 1 MiB chunks; no election happens during the transfer, and a
//! link cut in the middle of it resumes from the bytes the follower already holds instead of
//! from zero.
//!
//! Bounds are virtual time (`PausedSystem`); a failing run prints its seed, and
//! `RAFT_TEST_SEED=<seed>` replays it.

use integration_tests::in_process::{
    seed_report, test_seed, ClusterOptions, InProcessCluster, SnapshotOptions,
};
use raft_types::NodeId;
use std::time::Duration;
use test_support::this_test;
use test_support::wait::poll_until;

const VALUE_BYTES: usize = 1024 * 1024;
const VALUES: usize = 70;
const CHUNK_BYTES: u64 = 1024 * 1024;

fn value(index: usize) -> Vec<u8> {
    let mut value = format!("value {index} ").into_bytes();
    value.resize(VALUE_BYTES, b'a' + (index % 26) as u8);
    value
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn a_fifty_mebibyte_snapshot_reaches_a_lagging_follower_without_an_election_and_resumes_after_a_cut(
) {
    test_support::init_tracing();
    let seed = test_seed(12);
    let _report = seed_report(this_test!(), seed);
    let options = ClusterOptions {
        snapshots: SnapshotOptions {
            threshold_entries: Some(20),
            trailing_entries: 4,
            chunk_bytes: CHUNK_BYTES,
        },
        ..ClusterOptions::default()
    };
    let cluster = InProcessCluster::start_with(3, seed, options);
    let leader = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .expect("a leader");
    let follower = *cluster
        .members()
        .iter()
        .find(|member| **member != leader)
        .expect("a follower");
    let others: Vec<NodeId> = cluster
        .members()
        .iter()
        .copied()
        .filter(|member| *member != follower)
        .collect();
    cluster.partition(&others, &[follower]).await;
    for index in 0..VALUES {
        cluster
            .put(leader, &format!("big/{index:02}"), &value(index))
            .await
            .unwrap_or_else(|error| panic!("put {index}: {error:?}"));
    }
    let leader_metrics = |cluster: &InProcessCluster| cluster.metrics(leader).expect("leader up");
    poll_until(
        "the leader snapshots and compacts",
        Duration::from_secs(60),
        || {
            let metrics = leader_metrics(&cluster);
            // 50 entries hold at least 49 values of 1 MiB: a snapshot of more than 50 MB.
            metrics.snapshot_index.0 >= 50 && metrics.first_log_index.0 > 2
        },
    )
    .await;
    let compacted = leader_metrics(&cluster);
    let snapshot = cluster
        .newest_snapshot(leader)
        .expect("the leader has a snapshot");
    assert!(
        snapshot.size_bytes >= 50_000_000,
        "the snapshot to send is {} bytes, not at least 50 MB",
        snapshot.size_bytes
    );
    let term = compacted.current_term;
    let elections_before: u64 = cluster
        .members()
        .iter()
        .filter_map(|node| cluster.metrics(*node))
        .map(|metrics| metrics.elections_started_total)
        .sum();
    eprintln!(
        "leader {leader}: {snapshot}, log from {}; follower {follower} lags at {}",
        compacted.first_log_index,
        cluster.metrics(follower).expect("up").last_log_index
    );

    // Heal: the follower needs purged entries, so it is sent the snapshot.
    cluster.heal().await;
    let follower_metrics = |cluster: &InProcessCluster| cluster.metrics(follower).expect("up");
    poll_until(
        "a third of the snapshot arrives",
        Duration::from_secs(30),
        || follower_metrics(&cluster).snapshot_received_bytes > 20 * CHUNK_BYTES,
    )
    .await;
    // Cut the link for less than an election timeout: the chunks in flight are lost.
    cluster.partition(&others, &[follower]).await;
    let held_at_cut = follower_metrics(&cluster).snapshot_received_bytes;
    let chunks_sent_at_cut = leader_metrics(&cluster).snapshot_chunks_sent_total;
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.heal().await;
    poll_until(
        "the follower installs the snapshot",
        Duration::from_secs(60),
        || follower_metrics(&cluster).snapshots_restored_total >= 1,
    )
    .await;
    let installed = follower_metrics(&cluster);
    let sent = leader_metrics(&cluster);
    let chunks_after_cut = sent.snapshot_chunks_sent_total - chunks_sent_at_cut;
    let total_chunks = sent.snapshot_chunks_sent_total;
    eprintln!(
        "follower {follower} held {held_at_cut} bytes at the cut; the leader sent {chunks_after_cut} \
         more chunks after it ({total_chunks} in all) and the follower installed snapshot {}",
        installed.snapshot_index
    );
    let sent_snapshot = cluster
        .newest_snapshot(follower)
        .expect("the follower holds the snapshot it installed");
    assert!(
        sent_snapshot.size_bytes >= 50_000_000,
        "the snapshot sent is {} bytes, not at least 50 MB",
        sent_snapshot.size_bytes
    );
    let lacking_chunks = (sent_snapshot.size_bytes - held_at_cut).div_ceil(CHUNK_BYTES);
    // Resumed, not restarted: starting over would send every chunk of the file again after
    // the cut; resuming sends what the follower lacked then, plus at most two windows (4
    // chunks each) lost at the cut and resent.
    let file_chunks = sent_snapshot.size_bytes.div_ceil(CHUNK_BYTES);
    assert!(
        chunks_after_cut <= lacking_chunks + 2 * 4 && chunks_after_cut < file_chunks,
        "after the cut the leader sent {chunks_after_cut} chunks, a whole file's worth \
         ({file_chunks}): the transfer started over instead of resuming from {held_at_cut}"
    );
    eprintln!(
        "resumed from {held_at_cut} of {} bytes: {lacking_chunks} chunks were missing, \
         {chunks_after_cut} sent ({} resent), where starting over would have sent {file_chunks}",
        sent_snapshot.size_bytes,
        chunks_after_cut.saturating_sub(lacking_chunks)
    );
    assert!(
        held_at_cut >= 20 * CHUNK_BYTES,
        "the cut came after {held_at_cut} bytes were durable on the follower"
    );
    // No election during the transfer: same term, same leader, no candidacy anywhere.
    let elections_after: u64 = cluster
        .members()
        .iter()
        .filter_map(|node| cluster.metrics(*node))
        .map(|metrics| metrics.elections_started_total)
        .sum();
    assert_eq!(
        elections_after, elections_before,
        "an election started during the transfer"
    );
    assert_eq!(
        leader_metrics(&cluster).current_term,
        term,
        "the term changed"
    );
    assert_eq!(cluster.leader().await, Some(leader), "leadership moved");

    // The follower serves what the others hold.
    let converged = cluster
        .wait_for_convergence(Duration::from_secs(30))
        .await
        .expect("the cluster converges");
    eprintln!("converged at index {converged}");
    for index in [0, VALUES / 2, VALUES - 1] {
        let local = cluster
            .local_get(follower, &format!("big/{index:02}"))
            .await
            .expect("a local read");
        assert_eq!(local, Some(value(index)), "value {index} on the follower");
    }
    cluster.assert_no_actor_died();
}
