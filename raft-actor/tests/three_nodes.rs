//! Three consensus actors in one system, their messages routed by forwarding actors (no real
//! network): election, replicated writes, reads, redirection, batching, and a leader cut off
//! from the others.

mod common;

use applier_actor::KvOutput;
use common::*;
use raft_proto::client::{ClientError, Role};
use std::sync::atomic::Ordering;

#[actix::test]
async fn three_nodes_elect_a_leader_replicate_a_write_and_serve_a_read() {
    let (nodes, _switches) = start_cluster(3).await;
    let leader = cluster_leader(&nodes).await;
    let leader_id = leader.id;

    let output = put(&leader.raft, "x", b"42")
        .await
        .expect("the leader accepts writes");
    let KvOutput::Put { index } = output else {
        panic!("unexpected output {output:?}");
    };
    let read = linearizable_get(&leader.raft, "x")
        .await
        .expect("the leader serves reads");
    assert_eq!(read, KvOutput::Value(Some(b"42".to_vec())));

    // Every node applies the write (followers learn the commit index from heartbeats).
    for member in &nodes {
        wait_until("every node applied the write", || {
            let raft = member.raft.clone();
            async move { status(&raft).await.last_applied >= index }
        })
        .await;
    }

    // A follower refuses client requests and names the leader.
    let follower = nodes
        .iter()
        .find(|node| node.id != leader_id)
        .expect("two followers");
    let refused = put(&follower.raft, "y", b"1").await;
    assert_eq!(
        refused,
        Err(ClientError::NotLeader {
            leader_hint: Some(leader_id)
        })
    );
    let refused_read = linearizable_get(&follower.raft, "x").await;
    assert_eq!(
        refused_read,
        Err(ClientError::NotLeader {
            leader_hint: Some(leader_id)
        })
    );
    assert_eq!(status(&follower.raft).await.role, Role::Follower);
}

#[actix::test]
async fn proposals_arriving_together_share_one_append_entries_per_follower() {
    let (nodes, switches) = start_cluster(3).await;
    let leader = cluster_leader(&nodes).await;
    put(&leader.raft, "warm-up", b"0").await.expect("accepted");
    let appends_before = leader.storage_probe.appends.load(Ordering::SeqCst);
    let sent_before = switches.appends_with_entries.load(Ordering::SeqCst);

    let receivers: Vec<_> = (0..100)
        .map(|number| propose(&leader.raft, put_command(&format!("key-{number}"), b"v")))
        .collect();
    for receiver in receivers {
        receiver.await.expect("answered").expect("applied");
    }
    let appends = leader.storage_probe.appends.load(Ordering::SeqCst) - appends_before;
    let sent = switches.appends_with_entries.load(Ordering::SeqCst) - sent_before;
    assert!(
        appends <= 2,
        "leader: {appends} storage appends for one batch"
    );
    // One AppendEntries per follower for the batch; the followers' own appends are not counted
    // here (they only send responses).
    assert!(sent <= 4, "{sent} AppendEntries with entries for one batch");
}

#[actix::test]
async fn an_isolated_leader_loses_its_uncommitted_write_and_serves_no_reads() {
    let (nodes, switches) = start_cluster(3).await;
    let old_leader = cluster_leader(&nodes).await;
    let old_leader_id = old_leader.id;
    put(&old_leader.raft, "k", b"before")
        .await
        .expect("accepted");

    switches.set_isolated(old_leader_id, true);
    // Accepted into the old leader's log, but it can never reach a majority.
    let lost_write = propose(&old_leader.raft, put_command("k", b"lost"));
    let stale_read = {
        let (responder, receiver) = tokio::sync::oneshot::channel();
        let query = applier_actor::KvQuery::Get {
            key: "k".to_string(),
        }
        .encode();
        old_leader
            .raft
            .do_send(raft_proto::client::Read { query, responder });
        receiver
    };

    let others: Vec<&TestNode> = nodes
        .iter()
        .filter(|node| node.id != old_leader_id)
        .collect();
    let new_leader_id = wait_for_leader(&others).await;
    assert_ne!(new_leader_id, old_leader_id);
    let new_leader = member(&nodes, new_leader_id);
    let KvOutput::Put { index } = put(&new_leader.raft, "k", b"after")
        .await
        .expect("accepted")
    else {
        panic!("a put answers Put");
    };

    // The isolated leader never confirms leadership, so the read is refused, never served.
    let stale_answer = stale_read.await.expect("answered once leadership is lost");
    assert!(
        matches!(stale_answer, Err(ClientError::NotLeader { .. })),
        "{stale_answer:?}"
    );

    switches.set_isolated(old_leader_id, false);
    // Its entry is overwritten by the new leader's log: definitely not applied.
    let lost_answer = lost_write.await.expect("answered once overwritten");
    assert!(
        matches!(lost_answer, Err(ClientError::Unavailable { .. })),
        "{lost_answer:?}"
    );
    wait_until("the old leader caught up", || {
        let raft = old_leader.raft.clone();
        async move { status(&raft).await.last_applied >= index }
    })
    .await;
    let read = linearizable_get(&new_leader.raft, "k")
        .await
        .expect("served");
    assert_eq!(read, KvOutput::Value(Some(b"after".to_vec())));
    assert_eq!(
        status(&old_leader.raft).await.leader_id,
        Some(new_leader_id)
    );
    assert!(old_leader.metrics.snapshot().leader_changes_total >= 2);
}
