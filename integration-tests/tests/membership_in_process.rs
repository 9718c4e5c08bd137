//! Membership change on in-process clusters, every actor of every node real, on the paused
//! clock: while key-value clients run, new servers join as learners, are promoted, and voters
//! (the leader among them) are removed, with a crash and a restart in the middle. The history
//! must be linearizable (with a final read of every key, so an acknowledged write cannot be
//! lost), and every remaining node must end in the same committed, non-joint configuration.
//!
//! Bounds are virtual time; a failing seed prints its replay command
//! (`RAFT_TEST_SEED=N cargo test -p integration-tests --test membership_in_process`).

use integration_tests::in_process::{seed_report, InProcessCluster};
use integration_tests::kv_linearizability::{check_kv, KvVerdict, SearchBudget};
use integration_tests::kv_workload::{final_reads, run_client, ClientSpec};
use raft_proto::admin::AdminError;
use raft_types::{MembershipChange, MembershipChangeError, NodeId};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;
use test_support::this_test;

const WITHIN: Duration = Duration::from_secs(30);

/// Asks the leader for `change` until it is done. A refusal that means "not now" (no leader,
/// a change in progress, a learner catching up, a transfer) is retried; a refusal that means
/// "already so" after an answer was lost (the id exists, the learner is a voter, the member is
/// gone) counts as done.
async fn until_done(cluster: &InProcessCluster, change: MembershipChange) {
    let started = tokio::time::Instant::now();
    let mut attempted = false;
    loop {
        assert!(
            started.elapsed() < WITHIN,
            "seed {}: {change:?} not done within {WITHIN:?}",
            cluster.seed()
        );
        let Some(leader) = cluster.leader().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        match cluster.change_membership(leader, change.clone()).await {
            Ok(_) => return,
            Err(AdminError::Refused(
                MembershipChangeError::IdReused { .. }
                | MembershipChangeError::AlreadyVoter { .. }
                | MembershipChangeError::NoSuchMember { .. },
            )) if attempted => return,
            Err(
                AdminError::NotLeader { .. }
                | AdminError::Unavailable { .. }
                | AdminError::TransferInProgress { .. }
                | AdminError::Refused(
                    MembershipChangeError::ChangeInProgress
                    | MembershipChangeError::LeaderNotReady
                    | MembershipChangeError::LearnerNotReady { .. }
                    | MembershipChangeError::NotEnoughReachableVoters { .. },
                ),
            ) => {}
            Err(AdminError::OutcomeUnknown { .. }) => attempted = true,
            Err(error) => panic!("seed {}: {change:?}: {error}", cluster.seed()),
        }
        attempted = attempted || matches!(change, MembershipChange::AddLearner { .. });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add_and_promote(cluster: &InProcessCluster) -> NodeId {
    let id = cluster.add_joining_node();
    until_done(
        cluster,
        MembershipChange::AddLearner {
            id,
            address: InProcessCluster::address_of(id),
        },
    )
    .await;
    until_done(cluster, MembershipChange::PromoteLearner { id }).await;
    id
}

/// The membership script: grow 3 -> 5 (with a follower crashed and restarted meanwhile), then
/// shrink back to 3 by removing the leader and another voter. Returns the removed ids.
async fn reconfigure(cluster: &InProcessCluster) -> Vec<NodeId> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    add_and_promote(cluster).await;
    let leader = cluster.wait_for_leader(WITHIN).await.expect("a leader");
    let follower = cluster
        .running_members()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    cluster.crash(follower).await;
    add_and_promote(cluster).await;
    cluster.restart(follower);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leader = cluster.wait_for_leader(WITHIN).await.expect("a leader");
    until_done(cluster, MembershipChange::RemoveMember { id: leader }).await;
    let leader = cluster.wait_for_leader(WITHIN).await.expect("a new leader");
    let voters = cluster
        .membership(leader)
        .await
        .expect("running")
        .membership
        .voters;
    let other = voters
        .into_iter()
        .find(|id| *id != leader)
        .expect("another voter");
    until_done(cluster, MembershipChange::RemoveMember { id: other }).await;
    vec![other]
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn grow_and_shrink_under_key_value_clients_is_linearizable() {
    test_support::init_tracing();
    let test = this_test!();
    for seed in test_support::seed::seeds(1500, 4) {
        let _report = seed_report(test.clone(), seed);
        let cluster = InProcessCluster::start(3, seed);
        cluster.wait_for_leader(WITHIN).await.expect("a leader");
        let history = Rc::new(RefCell::new(Vec::new()));
        let clients = futures::future::join_all((0..4).map(|number| {
            let spec = ClientSpec {
                number,
                seed,
                operations: 120,
                request_bound: Duration::from_millis(600),
            };
            run_client(&cluster, spec, Rc::clone(&history))
        }));
        let ((), _removed) = tokio::join!(
            async {
                clients.await;
            },
            reconfigure(&cluster)
        );

        // Every node still a member agrees on one committed configuration of three voters.
        let leader = cluster.wait_for_leader(WITHIN).await.expect("a leader");
        let status = cluster.membership(leader).await.expect("running");
        let members = status.membership.all_members();
        assert!(!status.membership.is_joint(), "seed {seed}");
        assert_eq!(
            status.membership.voters.len(),
            3,
            "seed {seed}: {}",
            status.membership
        );
        for id in &members {
            let mut agreed = false;
            for _ in 0..100 {
                let theirs = cluster.membership(*id).await.expect("running");
                if theirs.membership == status.membership && theirs.committed {
                    agreed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(agreed, "seed {seed}: node {id} holds another configuration");
        }
        let removed: BTreeSet<NodeId> = cluster
            .node_ids()
            .into_iter()
            .filter(|id| !members.contains(id))
            .collect();
        assert_eq!(removed.len(), 2, "seed {seed}: {removed:?}");
        for id in &removed {
            let status = cluster.status(*id).await.expect("running");
            assert!(
                status.removed,
                "seed {seed}: node {id} knows it was removed"
            );
        }

        final_reads(&cluster, leader, &history).await;
        let history = history.borrow().clone();
        match check_kv(&history, SearchBudget::default()) {
            KvVerdict::Linearizable { .. } => {}
            KvVerdict::Violation(violation) => {
                let directory = std::env::temp_dir().join("membership-kv-linearizability");
                let written = violation.write_files(&directory);
                panic!("seed {seed}: {violation}\nfiles: {written:?}");
            }
            KvVerdict::Unknown { key, reason } => {
                panic!("seed {seed}: no verdict for {key}: {reason}")
            }
        }
        println!(
            "seed {seed}: {} operations, configuration {}",
            history.len(),
            status.membership
        );
    }
}
