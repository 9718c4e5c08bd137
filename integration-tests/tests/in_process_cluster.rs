//! Whole-node behaviour of in-process clusters (`integration_tests::in_process`): every actor of
//! every node in one actix System, on a paused tokio clock, over the seeded simulated network.
//!
//! Every bound below is virtual time; each test takes a second or two of real time. A failing
//! test prints its seed; `RAFT_TEST_SEED=<seed>` replays it.

use integration_tests::in_process::{test_seed, InProcessCluster, SeedReport, REQUEST_TIMEOUT};
use std::time::Duration;

/// A leader is elected (or re-elected after a fault) within this much virtual time.
const ELECTION_BOUND: Duration = Duration::from_secs(5);

/// A lagging or restarted node catches up within this much virtual time.
const CATCH_UP_BOUND: Duration = Duration::from_secs(10);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}

#[actix_rt::test]
async fn three_nodes_elect_a_leader_and_serve_a_put_from_every_node() {
    tokio::time::pause();
    init_tracing();
    let seed = test_seed(1);
    let _report = SeedReport::new(
        "three_nodes_elect_a_leader_and_serve_a_put_from_every_node",
        seed,
    );
    let cluster = InProcessCluster::start(3, seed);

    let leader = cluster
        .wait_for_leader(ELECTION_BOUND)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let index = cluster
        .put(leader, "greeting", b"hello")
        .await
        .unwrap_or_else(|error| panic!("put through leader {leader}: {error}"));

    assert_eq!(
        cluster.get(leader, "greeting").await,
        Ok(Some(b"hello".to_vec())),
        "linearizable read through the leader"
    );
    for node in cluster.members().to_vec() {
        cluster
            .wait_for_applied(node, index, CATCH_UP_BOUND)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
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
    let _ = REQUEST_TIMEOUT;
}
