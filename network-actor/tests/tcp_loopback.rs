//! Loopback tests of the TCP network actor: every direction among three nodes, reconnection
//! after a restart, isolation of live peers from a dead one, and source-address binding.

mod support;

use actix::Addr;
use network_actor::{StopNetwork, TcpNetwork};
use raft_proto::network::{GetNetworkStats, PeerEvent, SendMessage, SendMessages};
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

const PATIENCE: Duration = Duration::from_secs(10);

async fn wait_connected(inbox: &Inbox, peers: &[u64]) {
    for peer in peers {
        let event = PeerEvent::Connected {
            peer: NodeId(*peer),
        };
        wait_until(&format!("{event:?}"), PATIENCE, || inbox.saw_event(event)).await;
    }
}

#[actix_rt::test]
async fn three_networks_exchange_messages_in_every_direction() {
    exchange_messages_in_every_direction(false).await;
}

/// The same with the sockets on a thread of the network's own (`own_io_thread`), the mode a
/// node may choose instead of sharing the consensus actor's thread.
#[actix_rt::test]
async fn three_networks_with_their_own_socket_threads_exchange_messages_in_every_direction() {
    exchange_messages_in_every_direction(true).await;
}

async fn exchange_messages_in_every_direction(own_io_thread: bool) {
    let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for (index, ip) in ips.iter().enumerate() {
        let listener = bind_loopback(ip).await;
        peers.insert(
            NodeId(index as u64 + 1),
            listener.local_addr().expect("bound"),
        );
        listeners.push(listener);
    }
    let mut networks: Vec<Addr<TcpNetwork>> = Vec::new();
    let mut inboxes = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let node = index as u64 + 1;
        let mut config = test_config(node, peers[&NodeId(node)], &peers);
        config.own_io_thread = own_io_thread;
        let (network, inbox) = start_tcp_network(config, listener);
        networks.push(network);
        inboxes.push(inbox);
    }
    for (index, inbox) in inboxes.iter().enumerate() {
        let others: Vec<u64> = (1..=3).filter(|peer| *peer != index as u64 + 1).collect();
        wait_connected(inbox, &others).await;
    }

    let per_direction = 200u64;
    for sequence in 0..per_direction {
        for from in 1..=3u64 {
            for to in (1..=3u64).filter(|to| *to != from) {
                networks[from as usize - 1].do_send(SendMessage {
                    to: NodeId(to),
                    message: numbered_message(from * 1_000_000 + to * 1_000 + sequence),
                });
            }
        }
    }
    for (index, inbox) in inboxes.iter().enumerate() {
        let expected = 2 * per_direction as usize;
        wait_until(
            &format!("node {} to receive {expected} messages", index + 1),
            PATIENCE,
            || inbox.received_count() >= expected,
        )
        .await;
    }
    for (index, inbox) in inboxes.iter().enumerate() {
        let to = index as u64 + 1;
        for from in (1..=3u64).filter(|from| *from != to) {
            let numbers: Vec<u64> = inbox
                .received_from(NodeId(from))
                .iter()
                .map(message_number)
                .collect();
            let expected: Vec<u64> = (0..per_direction)
                .map(|sequence| from * 1_000_000 + to * 1_000 + sequence)
                .collect();
            assert_eq!(numbers, expected, "messages {from} -> {to}, in send order");
        }
    }
    let stats = networks[0].send(GetNetworkStats).await.expect("alive");
    assert_eq!(stats.peers[&NodeId(2)].messages_sent, per_direction);
    assert_eq!(stats.peers[&NodeId(2)].messages_received, per_direction);
    assert_eq!(stats.peers[&NodeId(2)].messages_dropped, 0);
    assert!(stats.peers[&NodeId(3)].bytes_sent > 0);
}

#[actix_rt::test]
async fn a_burst_arrives_whole_and_in_order_in_a_few_deliveries() {
    let listener_1 = bind_loopback("127.0.0.1").await;
    let listener_2 = bind_loopback("127.0.0.2").await;
    let peers = BTreeMap::from([
        (NodeId(1), listener_1.local_addr().expect("bound")),
        (NodeId(2), listener_2.local_addr().expect("bound")),
    ]);
    let (network_1, _inbox_1) =
        start_tcp_network(test_config(1, peers[&NodeId(1)], &peers), listener_1);
    let (_network_2, inbox_2) =
        start_tcp_network(test_config(2, peers[&NodeId(2)], &peers), listener_2);
    let connected = PeerEvent::Connected { peer: NodeId(1) };
    wait_until("node 2 connected to node 1", PATIENCE, || {
        inbox_2.saw_event(connected)
    })
    .await;

    // One SendMessages, as a consensus actor hands over a flush, and the single-message form
    // after it: both go through the same queue, in order.
    let burst = 2_000u64;
    network_1.do_send(SendMessages {
        messages: (0..burst)
            .map(|number| SendMessage {
                to: NodeId(2),
                message: numbered_message(number),
            })
            .collect(),
    });
    network_1.do_send(SendMessage {
        to: NodeId(2),
        message: numbered_message(burst),
    });
    let expected = burst as usize + 1;
    wait_until(&format!("{expected} messages at node 2"), PATIENCE, || {
        inbox_2.received_count() >= expected
    })
    .await;
    let numbers: Vec<u64> = inbox_2
        .received_from(NodeId(1))
        .iter()
        .map(message_number)
        .collect();
    assert_eq!(numbers, (0..=burst).collect::<Vec<_>>(), "in send order");
    // About 60 KB leave in one write and arrive in a read or a few: one delivery per read,
    // not per frame.
    let deliveries = inbox_2.deliveries();
    assert!(
        deliveries <= expected / 10,
        "{expected} messages came in {deliveries} ReceivedMessages"
    );
}

#[actix_rt::test]
async fn a_restarted_peer_is_reconnected_and_traffic_resumes() {
    let listener_1 = bind_loopback("127.0.0.1").await;
    let listener_2 = bind_loopback("127.0.0.2").await;
    let address_2: SocketAddr = listener_2.local_addr().expect("bound");
    let peers = BTreeMap::from([
        (NodeId(1), listener_1.local_addr().expect("bound")),
        (NodeId(2), address_2),
    ]);
    let (network_1, inbox_1) =
        start_tcp_network(test_config(1, peers[&NodeId(1)], &peers), listener_1);
    let (network_2, inbox_2) = start_tcp_network(test_config(2, address_2, &peers), listener_2);
    wait_connected(&inbox_1, &[2]).await;
    network_1.do_send(SendMessage {
        to: NodeId(2),
        message: numbered_message(1),
    });
    wait_until("first message before the restart", PATIENCE, || {
        inbox_2.received_count() == 1
    })
    .await;

    network_2.do_send(StopNetwork);
    let disconnected = PeerEvent::Disconnected { peer: NodeId(2) };
    wait_until("node 1 to notice node 2 went away", PATIENCE, || {
        inbox_1.saw_event(disconnected)
    })
    .await;

    // The same address again, as a restarted process would; the old listener closes when the
    // stopped actor's tasks are dropped.
    let mut rebound = None;
    wait_until_async("node 2's address to be free again", PATIENCE, || {
        let attempt = std::net::TcpListener::bind(address_2);
        let bound = attempt.is_ok();
        if let Ok(listener) = attempt {
            listener.set_nonblocking(true).expect("socket option");
            rebound = Some(listener);
        }
        async move { bound }
    })
    .await;
    let listener_2 =
        tokio::net::TcpListener::from_std(rebound.expect("bound above")).expect("inside a runtime");
    let (network_2, inbox_2) = start_tcp_network(test_config(2, address_2, &peers), listener_2);

    // Messages sent while the link is down may be dropped (Raft re-sends), so keep sending.
    let mut number = 100;
    wait_until_async("traffic 1 -> 2 to resume", PATIENCE, || {
        number += 1;
        network_1.do_send(SendMessage {
            to: NodeId(2),
            message: numbered_message(number),
        });
        let resumed = inbox_2.received_count() > 0;
        async move { resumed }
    })
    .await;
    network_2.do_send(SendMessage {
        to: NodeId(1),
        message: numbered_message(7),
    });
    wait_until("traffic 2 -> 1 from the new incarnation", PATIENCE, || {
        inbox_1
            .received_from(NodeId(2))
            .iter()
            .any(|message| message_number(message) == 7)
    })
    .await;
    let stats = network_1.send(GetNetworkStats).await.expect("alive");
    assert!(stats.peers[&NodeId(2)].connections_established >= 2);
}

#[actix_rt::test]
async fn a_dead_peer_does_not_delay_messages_to_live_ones() {
    let listener_1 = bind_loopback("127.0.0.1").await;
    let listener_2 = bind_loopback("127.0.0.2").await;
    // Peer 3 accepts TCP connections (the kernel's backlog) but never answers the handshake:
    // the worst kind of dead, a hung process.
    let hung_peer = std::net::TcpListener::bind("127.0.0.3:0").expect("bindable");
    // Peer 4 refuses connections: a port nobody listens on.
    let refused_address = {
        let listener = std::net::TcpListener::bind("127.0.0.4:0").expect("bindable");
        listener.local_addr().expect("bound")
    };
    let peers = BTreeMap::from([
        (NodeId(1), listener_1.local_addr().expect("bound")),
        (NodeId(2), listener_2.local_addr().expect("bound")),
        (NodeId(3), hung_peer.local_addr().expect("bound")),
        (NodeId(4), refused_address),
    ]);
    let mut config_1 = test_config(1, peers[&NodeId(1)], &peers);
    config_1.peer_queue_capacity = 16;
    config_1.handshake_timeout = Duration::from_secs(30);
    let (network_1, inbox_1) = start_tcp_network(config_1, listener_1);
    let (_network_2, inbox_2) =
        start_tcp_network(test_config(2, peers[&NodeId(2)], &peers), listener_2);

    wait_connected(&inbox_1, &[2]).await;
    // Rounds of ten messages to each peer: every round must reach the live peer promptly even
    // though the queues of the dead peers are full and their connections hang or fail. The
    // whole run is bounded far below the 30 s the hung peer's handshake may take.
    let rounds = 100u64;
    let per_round = 10u64;
    let count = rounds * per_round;
    let started = tokio::time::Instant::now();
    for round in 0..rounds {
        for to in [3, 4, 2] {
            for number in round * per_round..(round + 1) * per_round {
                network_1.do_send(SendMessage {
                    to: NodeId(to),
                    message: numbered_message(number),
                });
            }
        }
        let expected = ((round + 1) * per_round) as usize;
        wait_until(
            "a round of messages to the live peer",
            Duration::from_secs(2),
            || inbox_2.received_count() == expected,
        )
        .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the live peer was delayed: {:?}",
        started.elapsed()
    );
    let numbers: Vec<u64> = inbox_2
        .received_from(NodeId(1))
        .iter()
        .map(message_number)
        .collect();
    assert_eq!(numbers, (0..count).collect::<Vec<_>>());
    let stats = network_1.send(GetNetworkStats).await.expect("alive");
    assert_eq!(stats.peers[&NodeId(2)].messages_dropped, 0);
    assert!(
        stats.peers[&NodeId(3)].messages_dropped >= count - 16,
        "{stats:?}"
    );
    assert!(
        stats.peers[&NodeId(4)].messages_dropped >= count - 16,
        "{stats:?}"
    );
    drop(hung_peer);
}

#[actix_rt::test]
async fn outbound_connections_come_from_the_nodes_own_ip() {
    let listener_1 = bind_loopback("127.0.0.2").await;
    let fake_peer = bind_loopback("127.0.0.3").await;
    let peers = BTreeMap::from([
        (NodeId(1), listener_1.local_addr().expect("bound")),
        (NodeId(2), fake_peer.local_addr().expect("bound")),
    ]);
    let (_network, _inbox) =
        start_tcp_network(test_config(1, peers[&NodeId(1)], &peers), listener_1);
    let (_stream, remote) = tokio::time::timeout(PATIENCE, fake_peer.accept())
        .await
        .expect("node 1 dials its peer")
        .expect("accept succeeds");
    assert_eq!(remote.ip().to_string(), "127.0.0.2");
}

#[actix_rt::test]
async fn a_message_to_an_unknown_node_is_counted_and_dropped() {
    let listener = bind_loopback("127.0.0.1").await;
    let peers = BTreeMap::from([(NodeId(1), listener.local_addr().expect("bound"))]);
    let (network, _inbox) = start_tcp_network(test_config(1, peers[&NodeId(1)], &peers), listener);
    network.do_send(SendMessage {
        to: NodeId(9),
        message: numbered_message(1),
    });
    let stats = network.send(GetNetworkStats).await.expect("alive");
    assert_eq!(stats.messages_to_unknown_peer, 1);
}

#[actix_rt::test]
async fn a_message_over_the_frame_limit_is_dropped_and_the_connection_survives() {
    let listener_1 = bind_loopback("127.0.0.1").await;
    let listener_2 = bind_loopback("127.0.0.2").await;
    let peers = BTreeMap::from([
        (NodeId(1), listener_1.local_addr().expect("bound")),
        (NodeId(2), listener_2.local_addr().expect("bound")),
    ]);
    let mut config_1 = test_config(1, peers[&NodeId(1)], &peers);
    config_1.max_frame_bytes = 1024;
    let (network_1, inbox_1) = start_tcp_network(config_1, listener_1);
    let (_network_2, inbox_2) =
        start_tcp_network(test_config(2, peers[&NodeId(2)], &peers), listener_2);
    wait_connected(&inbox_1, &[2]).await;
    let oversized = raft_types::RaftMessage::AppendEntries(raft_types::AppendEntriesRequest {
        term: raft_types::Term(1),
        leader_id: NodeId(1),
        prev_log_id: raft_types::LogId::ZERO,
        entries: vec![raft_types::Entry::new(
            raft_types::Term(1),
            raft_types::LogIndex(1),
            raft_types::EntryPayload::command(vec![1; 4096]),
        )],
        leader_commit: raft_types::LogIndex::ZERO,
        sequence: 1,
    });
    network_1.do_send(SendMessage {
        to: NodeId(2),
        message: oversized,
    });
    network_1.do_send(SendMessage {
        to: NodeId(2),
        message: numbered_message(2),
    });
    wait_until(
        "the small message after the oversized one",
        PATIENCE,
        || inbox_2.received_count() == 1,
    )
    .await;
    assert_eq!(message_number(&inbox_2.received()[0].1), 2);
    let stats = network_1.send(GetNetworkStats).await.expect("alive");
    assert_eq!(stats.peers[&NodeId(2)].messages_dropped, 1);
    assert_eq!(stats.peers[&NodeId(2)].connections_established, 1);
}

#[actix_rt::test]
async fn an_invalid_configuration_is_refused_before_binding() {
    let address: SocketAddr = "127.0.0.1:0".parse().expect("valid literal");
    let mut config = test_config(1, address, &BTreeMap::new());
    config.cluster_id.clear();
    let (ports, _inbox, _collector) = collector();
    let error = match TcpNetwork::bind(config, ports).await {
        Ok(_) => panic!("an empty cluster_id must be refused"),
        Err(error) => error,
    };
    assert!(error.to_string().contains("cluster_id"), "{error}");
}
