//! Mutual TLS between TCP network actors on loopback, with throwaway certificates (rcgen):
//! nodes of one CA exchange messages; a certificate from another CA fails the TLS handshake;
//! a certificate naming another node than the one claimed is refused by the handshake; and a
//! flood of idle connections neither blocks a real peer nor holds more sockets than the limit.

mod support;

use network_actor::{NetworkConfig, PeerTls};
use raft_proto::network::{GetNetworkStats, PeerEvent, SendMessage};
use raft_types::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

const PATIENCE: Duration = Duration::from_secs(20);

/// A throwaway CA that signs node certificates.
struct TestCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).expect("self-signed CA");
        TestCa { certificate, key }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    /// A certificate naming `raft://<CLUSTER_ID>/node/<named>`, and the PeerTls around it.
    fn peer_tls(&self, named: u64, trusted: &[CertificateDer<'static>]) -> PeerTls {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        let uri = format!("raft://{CLUSTER_ID}/node/{named}");
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into().expect("ia5 URI")));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("signed");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        PeerTls::new(trusted, vec![certificate.der().clone()], key).expect("PeerTls")
    }
}

async fn connected(inbox: &Inbox, peer: u64) {
    let event = PeerEvent::Connected { peer: NodeId(peer) };
    wait_until(&format!("{event:?}"), PATIENCE, || inbox.saw_event(event)).await;
}

/// Three addresses on 127.0.0.1-3 and their listeners.
async fn three_listeners() -> (Vec<tokio::net::TcpListener>, BTreeMap<NodeId, SocketAddr>) {
    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for node in 1..=3u64 {
        let listener = bind_loopback(&format!("127.0.0.{node}")).await;
        peers.insert(NodeId(node), listener.local_addr().expect("bound"));
        listeners.push(listener);
    }
    (listeners, peers)
}

fn config_with(node: u64, peers: &BTreeMap<NodeId, SocketAddr>, tls: PeerTls) -> NetworkConfig {
    let mut config = test_config(node, peers[&NodeId(node)], peers);
    config.tls = Some(tls);
    config
}

#[actix_rt::test]
async fn nodes_of_one_ca_talk_and_impostors_are_refused() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let ca = TestCa::new("cluster CA");
    let other_ca = TestCa::new("another CA");
    let trusted = vec![ca.der()];
    let (listeners, peers) = three_listeners().await;
    let mut listeners = listeners.into_iter();
    let (one, inbox_1) = start_tcp_network(
        config_with(1, &peers, ca.peer_tls(1, &trusted)),
        listeners.next().expect("three"),
    );
    let (_two, inbox_2) = start_tcp_network(
        config_with(2, &peers, ca.peer_tls(2, &trusted)),
        listeners.next().expect("three"),
    );
    connected(&inbox_1, 2).await;
    connected(&inbox_2, 1).await;
    one.do_send(SendMessage {
        to: NodeId(2),
        message: numbered_message(7),
    });
    wait_until("node 2 received over TLS", PATIENCE, || {
        inbox_2
            .received_from(NodeId(1))
            .iter()
            .any(|message| message_number(message) == 7)
    })
    .await;

    // Node 3 with a certificate of another CA (trusting it too): refused inside TLS.
    let third = listeners.next().expect("three");
    let impostor = other_ca.peer_tls(3, &[ca.der(), other_ca.der()]);
    let (three, _inbox_3) = start_tcp_network(config_with(3, &peers, impostor), third);
    wait_until("a TLS refusal is logged", PATIENCE, || {
        logs.contains_line_with(&["refused inbound connection: TLS handshake failed"])
    })
    .await;
    assert!(!inbox_1.saw_event(PeerEvent::Connected { peer: NodeId(3) }));
    three.do_send(network_actor::StopNetwork);

    // Node 3 with the right CA but a certificate naming node 1: refused by the handshake.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = bind_loopback("127.0.0.3").await;
    let mut peers_3 = peers.clone();
    peers_3.insert(NodeId(3), third.local_addr().expect("bound"));
    let claims_other = ca.peer_tls(1, &trusted);
    let (three, _inbox_3) = start_tcp_network(config_with(3, &peers_3, claims_other), third);
    wait_until("a certificate mismatch is logged", PATIENCE, || {
        logs.contains_line_with(&["does not name raft://network-test/node/3"])
    })
    .await;
    assert!(!inbox_1.saw_event(PeerEvent::Connected { peer: NodeId(3) }));
    assert!(!inbox_2.saw_event(PeerEvent::Connected { peer: NodeId(3) }));
    three.do_send(network_actor::StopNetwork);
}

#[actix_rt::test]
async fn a_plaintext_dialer_is_refused_by_a_tls_listener() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let ca = TestCa::new("cluster CA");
    let trusted = vec![ca.der()];
    let (listeners, peers) = three_listeners().await;
    let mut listeners = listeners.into_iter();
    let (_one, inbox_1) = start_tcp_network(
        config_with(1, &peers, ca.peer_tls(1, &trusted)),
        listeners.next().expect("three"),
    );
    let plain = test_config(2, peers[&NodeId(2)], &peers);
    let (_two, _inbox_2) = start_tcp_network(plain, listeners.next().expect("three"));
    wait_until("a TLS refusal is logged", PATIENCE, || {
        logs.contains_line_with(&["refused inbound connection: TLS handshake failed"])
    })
    .await;
    assert!(!inbox_1.saw_event(PeerEvent::Connected { peer: NodeId(2) }));
}

#[actix_rt::test]
async fn idle_connections_beyond_the_limit_are_closed_and_peers_still_connect() {
    let (listeners, peers) = three_listeners().await;
    let mut listeners = listeners.into_iter();
    let mut config_1 = test_config(1, peers[&NodeId(1)], &peers);
    config_1.max_pending_handshakes = 16;
    config_1.max_pending_handshakes_per_ip = 4;
    config_1.handshake_timeout = Duration::from_secs(30);
    let (one, inbox_1) = start_tcp_network(config_1, listeners.next().expect("three"));
    // 200 idle connections from 127.0.0.9 that never say a word.
    let source = "127.0.0.9:0".parse::<SocketAddr>().expect("literal");
    let mut idle = Vec::new();
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(source).expect("bind");
        idle.push(socket.connect(peers[&NodeId(1)]).await.expect("connect"));
    }
    wait_until_async(
        "the extra connections are counted as rejected",
        PATIENCE,
        || {
            let one = one.clone();
            async move {
                let stats = one.send(GetNetworkStats).await.expect("stats");
                stats.connections_rejected >= 196
            }
        },
    )
    .await;
    // A real peer on another address connects although 4 idle ones still wait.
    let (_two, _inbox_2) = start_tcp_network(
        test_config(2, peers[&NodeId(2)], &peers),
        listeners.next().expect("three"),
    );
    connected(&inbox_1, 2).await;
    drop(idle);
}
