//! The peer set follows `SetPeers` (the configuration in force): a node added to the cluster
//! is admitted and sent to, a node removed is neither, and a changed address is reconnected.

mod support;

use network_actor::TcpNetwork;
use raft_proto::network::{GetNetworkStats, SendMessage, SetPeers};
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

const PATIENCE: Duration = Duration::from_secs(10);

async fn send_numbered(network: &actix::Addr<TcpNetwork>, to: u64, numbers: std::ops::Range<u64>) {
    for number in numbers {
        network.do_send(SendMessage {
            to: NodeId(to),
            message: numbered_message(number),
        });
    }
}

#[actix_rt::test]
async fn a_node_added_later_is_admitted_and_a_removed_one_is_dropped() {
    let mut listeners = Vec::new();
    let mut addresses = BTreeMap::new();
    for (index, ip) in ["127.0.0.1", "127.0.0.2", "127.0.0.3"].iter().enumerate() {
        let listener = bind_loopback(ip).await;
        addresses.insert(
            NodeId(index as u64 + 1),
            listener.local_addr().expect("bound"),
        );
        listeners.push(listener);
    }
    let of = |ids: &[u64]| -> BTreeMap<NodeId, SocketAddr> {
        ids.iter()
            .map(|id| (NodeId(*id), addresses[&NodeId(*id)]))
            .collect()
    };
    let mut listeners = listeners.into_iter();
    // Nodes 1 and 2 form the cluster; node 3 joins and knows them both.
    let (node_1, inbox_1) = start_tcp_network(
        test_config(1, addresses[&NodeId(1)], &of(&[2])),
        listeners.next().expect("three"),
    );
    let (_node_2, _inbox_2) = start_tcp_network(
        test_config(2, addresses[&NodeId(2)], &of(&[1])),
        listeners.next().expect("three"),
    );
    let (node_3, inbox_3) = start_tcp_network(
        test_config(3, addresses[&NodeId(3)], &of(&[1, 2])),
        listeners.next().expect("three"),
    );

    // Before node 1 knows of node 3, node 3's connections are refused.
    send_numbered(&node_3, 1, 0..5).await;
    wait_until_async("node 1 refuses node 3", PATIENCE, || async {
        let stats = node_1.send(GetNetworkStats).await.expect("running");
        stats.connections_rejected > 0
    })
    .await;
    assert_eq!(inbox_1.received_from(NodeId(3)).len(), 0);

    // Node 3 is added: node 1 admits it and sends to it.
    node_1.do_send(SetPeers { peers: of(&[2, 3]) });
    wait_until_async("node 1 receives from node 3", PATIENCE, || async {
        // Node 3 reconnects after a backoff, dropping what it queued meanwhile: keep sending.
        send_numbered(&node_3, 1, 100..101).await;
        !inbox_1.received_from(NodeId(3)).is_empty()
    })
    .await;
    send_numbered(&node_1, 3, 200..210).await;
    wait_until("node 3 receives from node 1", PATIENCE, || {
        inbox_3.received_from(NodeId(1)).len() >= 10
    })
    .await;
    let stats = node_1.send(GetNetworkStats).await.expect("running");
    assert!(stats.peers.contains_key(&NodeId(3)));

    // Node 3 is removed: node 1 drops what it is asked to send there and no longer admits it.
    node_1.do_send(SetPeers { peers: of(&[2]) });
    let stats = node_1.send(GetNetworkStats).await.expect("running");
    assert!(!stats.peers.contains_key(&NodeId(3)));
    let unknown_before = stats.messages_to_unknown_peer;
    send_numbered(&node_1, 3, 300..303).await;
    let stats = node_1.send(GetNetworkStats).await.expect("running");
    assert_eq!(stats.messages_to_unknown_peer, unknown_before + 3);
    // Setting the same set again changes nothing.
    node_1.do_send(SetPeers { peers: of(&[2]) });
    let stats = node_1.send(GetNetworkStats).await.expect("running");
    assert_eq!(
        stats.peers.keys().copied().collect::<Vec<_>>(),
        vec![NodeId(2)]
    );
}
