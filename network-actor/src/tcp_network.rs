//! `TcpNetwork`: the network port over TCP, for real nodes.
//!
//! The actor itself only routes: a `SendMessage` goes into the bounded queue of its peer with
//! `try_send` (never waiting, so the consensus actor's mailbox keeps moving); a full queue
//! drops the message and counts it. The sockets live in tasks the actor starts and aborts:
//! one [`InboundListener`] (and its connection tasks) and one [`OutboundPeer`] per peer.
//! Stopping the actor (`StopNetwork`, or dropping every address) closes the listener and every
//! connection, so a node can be restarted on the same address.

use crate::backoff::Backoff;
use crate::config::{ConfigError, NetworkConfig};
use crate::counters::{add, NetworkCounters};
use crate::inbound::InboundListener;
use crate::outbound::OutboundPeer;
use actix::{Actor, Context, Handler, Message, MessageResult};
use raft_proto::network::{GetNetworkStats, SendMessage};
use raft_proto::ports::NetworkPorts;
use raft_types::{NodeId, RaftMessage};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Why a `TcpNetwork` could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid network configuration: {source}")]
    Config {
        #[from]
        source: ConfigError,
    },
    #[error("cannot listen on peer_addr {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// Stops the network actor: closes its listener and every connection.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct StopNetwork;

/// The TCP network actor. See the module documentation.
pub struct TcpNetwork {
    config: Arc<NetworkConfig>,
    ports: NetworkPorts,
    counters: Arc<NetworkCounters>,
    local_addr: SocketAddr,
    /// Taken when the actor starts.
    listener: Option<TcpListener>,
    queues: BTreeMap<NodeId, mpsc::Sender<RaftMessage>>,
    /// The receiving ends of `queues`, handed to the outbound tasks when the actor starts.
    unstarted_receivers: BTreeMap<NodeId, mpsc::Receiver<RaftMessage>>,
    tasks: Vec<JoinHandle<()>>,
}

impl TcpNetwork {
    /// Binds `config.peer_addr` and prepares the actor; call `.start()` on the result.
    pub async fn bind(
        config: NetworkConfig,
        ports: NetworkPorts,
    ) -> Result<TcpNetwork, NetworkError> {
        config.validate()?;
        let address = config.peer_addr;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| NetworkError::Listen { address, source })?;
        TcpNetwork::with_listener(config, listener, ports)
    }

    /// Prepares the actor around a listener bound by the caller (tests bind port 0 first to
    /// learn every node's address before writing the configurations).
    pub fn with_listener(
        config: NetworkConfig,
        listener: TcpListener,
        ports: NetworkPorts,
    ) -> Result<TcpNetwork, NetworkError> {
        config.validate()?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| NetworkError::Listen {
                address: config.peer_addr,
                source,
            })?;
        let counters = Arc::new(NetworkCounters::new(
            config.remote_peers().map(|(peer, _)| peer),
        ));
        let mut queues = BTreeMap::new();
        let mut unstarted_receivers = BTreeMap::new();
        for (peer, _) in config.remote_peers() {
            let (sender, receiver) = mpsc::channel(config.peer_queue_capacity);
            queues.insert(peer, sender);
            unstarted_receivers.insert(peer, receiver);
        }
        Ok(TcpNetwork {
            config: Arc::new(config),
            ports,
            counters,
            local_addr,
            listener: Some(listener),
            queues,
            unstarted_receivers,
            tasks: Vec::new(),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live counters, for a metrics exporter that reads them without a message round trip.
    pub fn counters(&self) -> Arc<NetworkCounters> {
        self.counters.clone()
    }
}

impl Actor for TcpNetwork {
    type Context = Context<Self>;

    fn started(&mut self, _context: &mut Context<Self>) {
        let listener = self
            .listener
            .take()
            .expect("an actor starts once, and the listener is taken only here");
        info!(node = %self.config.node_id, address = %self.local_addr, "network listening for peers");
        self.tasks.push(actix::spawn(
            InboundListener {
                listener,
                config: self.config.clone(),
                counters: self.counters.clone(),
                received: self.ports.received.clone(),
            }
            .run(),
        ));
        let receivers = std::mem::take(&mut self.unstarted_receivers);
        for (peer, queue) in receivers {
            let peer_address = self.config.peers[&peer];
            let outbound = OutboundPeer {
                config: self.config.clone(),
                peer,
                peer_address,
                queue,
                counters: self.counters.clone(),
                peer_events: self.ports.peer_events.clone(),
                backoff: Backoff::new(
                    self.config.reconnect_backoff_min,
                    self.config.reconnect_backoff_max,
                    rand::random(),
                ),
            };
            self.tasks.push(actix::spawn(outbound.run()));
        }
    }

    fn stopped(&mut self, _context: &mut Context<Self>) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        info!(node = %self.config.node_id, "network stopped");
    }
}

impl Handler<SendMessage> for TcpNetwork {
    type Result = ();

    fn handle(&mut self, send: SendMessage, _context: &mut Context<Self>) {
        let Some(queue) = self.queues.get(&send.to) else {
            add(&self.counters.messages_to_unknown_peer, 1);
            warn!(to = %send.to, kind = send.message.kind(), "dropped a message to a node that is not a configured peer");
            return;
        };
        if let Err(error) = queue.try_send(send.message) {
            let peer_counters = self
                .counters
                .peer(send.to)
                .expect("every queued peer has counters");
            add(&peer_counters.messages_dropped, 1);
            debug!(to = %send.to, %error, "dropped a message: peer queue unavailable");
        }
    }
}

impl Handler<GetNetworkStats> for TcpNetwork {
    type Result = MessageResult<GetNetworkStats>;

    fn handle(&mut self, _: GetNetworkStats, _context: &mut Context<Self>) -> Self::Result {
        MessageResult(self.counters.snapshot())
    }
}

impl Handler<StopNetwork> for TcpNetwork {
    type Result = ();

    fn handle(&mut self, _: StopNetwork, context: &mut Context<Self>) {
        use actix::ActorContext;
        context.stop();
    }
}
