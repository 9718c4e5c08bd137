//! Seeded partitions of a three-node in-process cluster under a stream of writes, checking what
//! each client answer promises: `Ok` means the write is in the final state, `NotLeader` and
//! `Unavailable` mean it is definitely not. Set `RAFT_TEST_SEED` to replay a schedule (the
//! actors' timing still varies from run to run; the seed fixes the faults and the writes).

mod common;

use applier_actor::KvOutput;
use common::*;
use raft_proto::client::{ClientError, Role};
use raft_types::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use tokio::sync::oneshot;

type Answer = oneshot::Receiver<Result<Vec<u8>, ClientError>>;

fn seed() -> u64 {
    std::env::var("RAFT_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(7)
}

#[actix::test]
async fn client_answers_match_the_final_state_under_partitions() {
    let seed = seed();
    println!("RAFT_TEST_SEED={seed}");
    let mut random = ChaCha8Rng::seed_from_u64(seed);
    let (nodes, switches) = start_cluster(3).await;
    let all: Vec<&TestNode> = nodes.iter().collect();
    wait_for_leader(&all).await;

    let mut writes: Vec<(String, Vec<u8>, Answer)> = Vec::new();
    for round in 0..20 {
        // Cut off at most one node at a time, so a majority can always make progress.
        let isolated = NodeId(random.gen_range(0..=3));
        for node in &nodes {
            switches.set_isolated(node.id, node.id == isolated);
        }
        for _ in 0..random.gen_range(1..=10) {
            // Mostly to a node that believes it leads (possibly a stale, isolated one).
            let believed_leader = nodes
                .iter()
                .find(|node| node.metrics.snapshot().role == Role::Leader);
            let target = match believed_leader {
                Some(leader) if random.gen_bool(0.8) => leader,
                _ => &nodes[random.gen_range(0..nodes.len())],
            };
            let key = format!("key-{}", writes.len());
            let value = format!("round-{round}").into_bytes();
            let answer = propose(&target.raft, put_command(&key, &value));
            writes.push((key, value, answer));
        }
        tokio::time::sleep(Duration::from_millis(random.gen_range(5..60))).await;
    }
    for node in &nodes {
        switches.set_isolated(node.id, false);
    }
    // A proposal is answered once the committed log reaches its index; a stale leader's log
    // may have run ahead of the cluster's, so write until the commit index passes every log.
    let mut longest_log = raft_types::LogIndex::ZERO;
    for node in &nodes {
        longest_log = longest_log.max(status(&node.raft).await.last_log_index);
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for filler in 0.. {
        let leader = cluster_leader(&nodes).await;
        if status(&leader.raft).await.commit_index > longest_log {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seed {seed}: the commit index never passed {longest_log}"
        );
        // A filler can itself be lost to a leader change; it is only there to grow the log.
        let filler_key = format!("filler-{filler}");
        let filler_write = put(&leader.raft, &filler_key, b"");
        let _ = tokio::time::timeout(Duration::from_millis(200), filler_write).await;
    }

    let (mut applied, mut refused, mut overwritten, mut unknown) = (0, 0, 0, 0);
    for (key, value, answer) in writes {
        let outcome = tokio::time::timeout(DEADLINE, answer).await;
        let read = cluster_get(&nodes, &key).await;
        match outcome {
            Ok(Ok(Ok(_))) => {
                applied += 1;
                assert_eq!(
                    read,
                    KvOutput::Value(Some(value)),
                    "seed {seed}: acknowledged {key} lost"
                );
            }
            Ok(Ok(Err(
                error @ (ClientError::NotLeader { .. } | ClientError::Unavailable { .. }),
            ))) => {
                if matches!(error, ClientError::Unavailable { .. }) {
                    overwritten += 1;
                } else {
                    refused += 1;
                }
                assert_eq!(
                    read,
                    KvOutput::Value(None),
                    "seed {seed}: refused {key} was applied"
                );
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

/// A linearizable read from whichever node leads, retried while leadership moves.
async fn cluster_get(nodes: &[TestNode], key: &str) -> KvOutput {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let leader = cluster_leader(nodes).await;
        match linearizable_get(&leader.raft, key).await {
            Ok(output) => return output,
            Err(error) => assert!(
                tokio::time::Instant::now() < deadline,
                "read of {key} kept failing: {error:?}"
            ),
        }
    }
}
