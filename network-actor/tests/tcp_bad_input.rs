//! Hostile and broken input on the TCP listener: garbage instead of a handshake, a handshake
//! from another cluster, and after a valid handshake garbage, a 4 GiB length prefix and a
//! truncated frame. Each time that one connection is closed, a counter moves, a log line says
//! why, and the node keeps serving its good peer.

mod support;

use actix::Addr;
use network_actor::frame::append_frame;
use network_actor::handshake::{Handshake, HandshakeReply, MAX_HANDSHAKE_BYTES, PROTOCOL_VERSION};
use network_actor::TcpNetwork;
use raft_proto::network::{GetNetworkStats, NetworkStats, PeerEvent, SendMessage};
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(10);

/// Node 1 under attack, node 2 its good peer, and node 3 a configured member that the raw
/// test socket pretends to be. The test thread's log lines are captured while it lives.
struct Cluster {
    address_1: SocketAddr,
    network_1: Addr<TcpNetwork>,
    inbox_1: Inbox,
    network_2: Addr<TcpNetwork>,
    next_number: u64,
    logs: CapturedLogs,
    _log_guard: tracing::subscriber::DefaultGuard,
}

impl Cluster {
    async fn start() -> Cluster {
        let logs = CapturedLogs::default();
        let log_guard = logs.install();
        let listener_1 = bind_loopback("127.0.0.1").await;
        let listener_2 = bind_loopback("127.0.0.2").await;
        let unused_3 = std::net::TcpListener::bind("127.0.0.3:0").expect("bindable");
        let peers = BTreeMap::from([
            (NodeId(1), listener_1.local_addr().expect("bound")),
            (NodeId(2), listener_2.local_addr().expect("bound")),
            (NodeId(3), unused_3.local_addr().expect("bound")),
        ]);
        drop(unused_3);
        let mut config_1 = test_config(1, peers[&NodeId(1)], &peers);
        config_1.max_frame_bytes = 1024 * 1024;
        config_1.handshake_timeout = Duration::from_secs(1);
        let (network_1, inbox_1) = start_tcp_network(config_1, listener_1);
        let (network_2, inbox_2) =
            start_tcp_network(test_config(2, peers[&NodeId(2)], &peers), listener_2);
        let connected = PeerEvent::Connected { peer: NodeId(1) };
        wait_until("node 2 connected to node 1", PATIENCE, || {
            inbox_2.saw_event(connected)
        })
        .await;
        Cluster {
            address_1: peers[&NodeId(1)],
            network_1,
            inbox_1,
            network_2,
            next_number: 0,
            logs,
            _log_guard: log_guard,
        }
    }

    async fn stats(&self) -> NetworkStats {
        self.network_1.send(GetNetworkStats).await.expect("alive")
    }

    /// The good peer still gets through after the attack.
    async fn assert_good_peer_still_served(&mut self) {
        self.next_number += 1;
        let number = self.next_number;
        self.network_2.do_send(SendMessage {
            to: NodeId(1),
            message: numbered_message(number),
        });
        let inbox = &self.inbox_1;
        wait_until("node 1 to keep receiving from node 2", PATIENCE, || {
            inbox
                .received_from(NodeId(2))
                .iter()
                .any(|message| message_number(message) == number)
        })
        .await;
    }

    /// A raw socket that introduces itself as `node` of `cluster_id`.
    async fn raw_peer(&self, node: u64, cluster_id: &str) -> (TcpStream, HandshakeReply) {
        let mut stream = TcpStream::connect(self.address_1)
            .await
            .expect("node 1 listens");
        let handshake = Handshake {
            protocol_version: PROTOCOL_VERSION,
            cluster_id: cluster_id.to_string(),
            node_id: NodeId(node),
        };
        let mut buffer = Vec::new();
        append_frame(&mut buffer, &handshake, MAX_HANDSHAKE_BYTES).expect("small");
        stream.write_all(&buffer).await.expect("writable");
        let reply: HandshakeReply =
            network_actor::frame::read_value(&mut stream, MAX_HANDSHAKE_BYTES)
                .await
                .expect("a well-formed reply")
                .expect("a reply before any close");
        (stream, reply)
    }

    /// Node 1 closes `stream` (end of stream or reset, within the deadline) and logs a line
    /// with every one of `fragments` saying why.
    async fn assert_closed_with_log(&self, stream: &mut TcpStream, fragments: &[&str]) {
        let mut sink = [0u8; 1024];
        let closed = tokio::time::timeout(PATIENCE, async {
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the node did not close the connection");
        wait_until(&format!("a log line with {fragments:?}"), PATIENCE, || {
            self.logs.contains_line_with(fragments)
        })
        .await;
    }
}

#[actix_rt::test]
async fn garbage_instead_of_a_handshake_is_refused() {
    let mut cluster = Cluster::start().await;
    let mut stream = TcpStream::connect(cluster.address_1)
        .await
        .expect("listens");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: raft\r\n\r\n")
        .await
        .expect("writable");
    cluster
        .assert_closed_with_log(
            &mut stream,
            &["refused inbound connection", "exceeds the limit"],
        )
        .await;
    assert_eq!(cluster.stats().await.connections_rejected, 1);
    cluster.assert_good_peer_still_served().await;
}

#[actix_rt::test]
async fn a_handshake_from_another_cluster_is_refused() {
    let mut cluster = Cluster::start().await;
    let (mut stream, reply) = cluster.raw_peer(3, "some-other-cluster").await;
    assert!(
        matches!(&reply, HandshakeReply::Refused { reason } if reason.contains("cluster_id")),
        "{reply:?}"
    );
    cluster
        .assert_closed_with_log(
            &mut stream,
            &["refused inbound connection", "some-other-cluster"],
        )
        .await;
    assert_eq!(cluster.stats().await.connections_rejected, 1);
    cluster.assert_good_peer_still_served().await;
}

#[actix_rt::test]
async fn a_handshake_from_an_unknown_node_is_refused() {
    let mut cluster = Cluster::start().await;
    let (mut stream, reply) = cluster.raw_peer(42, CLUSTER_ID).await;
    assert!(matches!(reply, HandshakeReply::Refused { .. }), "{reply:?}");
    cluster
        .assert_closed_with_log(&mut stream, &["refused inbound connection", "node 42"])
        .await;
    cluster.assert_good_peer_still_served().await;
}

#[actix_rt::test]
async fn garbage_frame_after_the_handshake_closes_the_connection() {
    let mut cluster = Cluster::start().await;
    let (mut stream, reply) = cluster.raw_peer(3, CLUSTER_ID).await;
    assert!(matches!(reply, HandshakeReply::Accepted(_)), "{reply:?}");
    let mut frame = 8u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[
        raft_types::WIRE_FORMAT_VERSION,
        0xc1,
        0xff,
        0x00,
        1,
        2,
        3,
        4,
    ]);
    stream.write_all(&frame).await.expect("writable");
    cluster
        .assert_closed_with_log(&mut stream, &["bad frame", "undecodable", "peer=3"])
        .await;
    assert_eq!(cluster.stats().await.connections_closed_on_bad_frame, 1);
    cluster.assert_good_peer_still_served().await;
}

#[actix_rt::test]
async fn a_four_gibibyte_length_prefix_closes_the_connection() {
    let mut cluster = Cluster::start().await;
    let (mut stream, _) = cluster.raw_peer(3, CLUSTER_ID).await;
    stream
        .write_all(&u32::MAX.to_be_bytes())
        .await
        .expect("writable");
    cluster
        .assert_closed_with_log(
            &mut stream,
            &["bad frame", "4294967295 bytes exceeds the limit"],
        )
        .await;
    assert_eq!(cluster.stats().await.connections_closed_on_bad_frame, 1);
    cluster.assert_good_peer_still_served().await;
}

#[actix_rt::test]
async fn a_truncated_frame_closes_the_connection() {
    let mut cluster = Cluster::start().await;
    let (mut stream, _) = cluster.raw_peer(3, CLUSTER_ID).await;
    let mut frame = Vec::new();
    append_frame(&mut frame, &numbered_message(5), 1024).expect("small");
    frame.truncate(frame.len() - 3);
    stream.write_all(&frame).await.expect("writable");
    stream.shutdown().await.expect("half-close");
    cluster
        .assert_closed_with_log(&mut stream, &["bad frame", "closed inside a frame"])
        .await;
    assert_eq!(cluster.stats().await.connections_closed_on_bad_frame, 1);
    cluster.assert_good_peer_still_served().await;
}

#[actix_rt::test]
async fn a_silent_connection_is_refused_at_the_handshake_timeout() {
    let mut cluster = Cluster::start().await;
    // Node 1's handshake timeout is one second; this connection says nothing at all.
    let mut stream = TcpStream::connect(cluster.address_1)
        .await
        .expect("listens");
    cluster.assert_good_peer_still_served().await;
    cluster
        .assert_closed_with_log(
            &mut stream,
            &["refused inbound connection", "no handshake within 1000 ms"],
        )
        .await;
}

#[actix_rt::test]
async fn a_valid_raw_peer_is_delivered_with_its_handshaken_id() {
    let mut cluster = Cluster::start().await;
    let (mut stream, reply) = cluster.raw_peer(3, CLUSTER_ID).await;
    assert!(matches!(reply, HandshakeReply::Accepted(_)), "{reply:?}");
    let mut frames = Vec::new();
    for number in [11, 12] {
        append_frame(&mut frames, &numbered_message(number), 1024).expect("small");
    }
    stream.write_all(&frames).await.expect("writable");
    let inbox = &cluster.inbox_1;
    wait_until("both frames from the raw peer", PATIENCE, || {
        inbox.received_from(NodeId(3)).len() == 2
    })
    .await;
    cluster.assert_good_peer_still_served().await;
}
