//! Helpers shared by the network tests: a collecting consensus stand-in, condition polling
//! with deadlines, loopback listeners, test messages and log capture.

#![allow(dead_code)]

use actix::{Actor, Addr, Context, Handler};
use network_actor::{NetworkConfig, TcpNetwork};
use raft_proto::network::{PeerEvent, ReceivedMessages};
use raft_proto::ports::NetworkPorts;
use raft_types::{NodeId, RaftMessage, RequestVoteResponse, Term};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

/// Locks a mutex shared with actors of the same test; a poisoned one means the test already
/// failed elsewhere.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("no test thread panicked")
}

/// What a stand-in consensus actor saw, shared with the test body.
#[derive(Clone, Default)]
pub struct Inbox {
    pub received: Arc<Mutex<Vec<(NodeId, RaftMessage)>>>,
    /// How many `ReceivedMessages` batches carried them.
    pub deliveries: Arc<Mutex<usize>>,
    pub peer_events: Arc<Mutex<Vec<PeerEvent>>>,
}

impl Inbox {
    pub fn received(&self) -> Vec<(NodeId, RaftMessage)> {
        locked(&self.received).clone()
    }

    pub fn received_count(&self) -> usize {
        locked(&self.received).len()
    }

    pub fn deliveries(&self) -> usize {
        *locked(&self.deliveries)
    }

    pub fn received_from(&self, from: NodeId) -> Vec<RaftMessage> {
        self.received()
            .into_iter()
            .filter(|(sender, _)| *sender == from)
            .map(|(_, message)| message)
            .collect()
    }

    pub fn saw_event(&self, event: PeerEvent) -> bool {
        locked(&self.peer_events).contains(&event)
    }
}

/// Stands in for the consensus actor: records everything the network delivers.
pub struct Collector {
    inbox: Inbox,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ReceivedMessages> for Collector {
    type Result = ();
    fn handle(&mut self, received: ReceivedMessages, _: &mut Context<Self>) {
        let from = received.from;
        *locked(&self.inbox.deliveries) += 1;
        locked(&self.inbox.received)
            .extend(received.messages.into_iter().map(|message| (from, message)));
    }
}

impl Handler<PeerEvent> for Collector {
    type Result = ();
    fn handle(&mut self, event: PeerEvent, _: &mut Context<Self>) {
        locked(&self.inbox.peer_events).push(event);
    }
}

/// Starts a collector and returns the ports to hand a network actor, and what it will see.
pub fn collector() -> (NetworkPorts, Inbox, Addr<Collector>) {
    let inbox = Inbox::default();
    let address = Collector {
        inbox: inbox.clone(),
    }
    .start();
    let ports = NetworkPorts {
        received: address.clone().recipient(),
        peer_events: address.clone().recipient(),
    };
    (ports, inbox, address)
}

// Not every test binary uses both.
#[allow(unused_imports)]
pub use test_support::wait::{poll_until as wait_until, wait_until_async};

/// A small message whose term tells tests which one it is.
pub fn numbered_message(number: u64) -> RaftMessage {
    RaftMessage::RequestVoteResponse(RequestVoteResponse {
        term: Term(number),
        vote_granted: true,
    })
}

pub fn message_number(message: &RaftMessage) -> u64 {
    message.term().0
}

/// Binds an ephemeral port on one loopback address (127.0.0.x).
pub async fn bind_loopback(ip: &str) -> TcpListener {
    TcpListener::bind((ip, 0))
        .await
        .expect("loopback addresses 127.0.0.0/8 are bindable")
}

pub const CLUSTER_ID: &str = "network-test";

/// A configuration with short backoff so tests reconnect quickly.
pub fn test_config(
    node: u64,
    address: SocketAddr,
    peers: &BTreeMap<NodeId, SocketAddr>,
) -> NetworkConfig {
    let mut config = NetworkConfig::new(NodeId(node), CLUSTER_ID, address, peers.clone());
    config.reconnect_backoff_min = Duration::from_millis(10);
    config.reconnect_backoff_max = Duration::from_millis(200);
    config
}

/// Starts a TCP network actor on `listener` with a collector standing in for its consensus
/// actor; the network's ports keep the collector alive.
pub fn start_tcp_network(
    config: NetworkConfig,
    listener: TcpListener,
) -> (Addr<TcpNetwork>, Inbox) {
    let (ports, inbox, _collector) = collector();
    let network = TcpNetwork::with_listener(config, listener, ports).expect("valid config");
    (network.start(), inbox)
}

/// Collects formatted log lines so a test can assert that a rejection was explained.
#[derive(Clone, Default)]
pub struct CapturedLogs {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&locked(&self.bytes)).into_owned()
    }

    pub fn contains_line_with(&self, fragments: &[&str]) -> bool {
        self.text()
            .lines()
            .any(|line| fragments.iter().all(|fragment| line.contains(fragment)))
    }

    /// Captures this thread's tracing output until the guard is dropped. Actix runs the test's
    /// actors on the test's thread, and a network actor hands this thread's subscriber to the
    /// tasks on its own thread, so this sees all of the network's logs.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer_target = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer_target.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        locked(&self.bytes).extend_from_slice(buffer);
        // Through the test harness's capture: shown only when the test fails.
        eprint!("{}", String::from_utf8_lossy(buffer));
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
