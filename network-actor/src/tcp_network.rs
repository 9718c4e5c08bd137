//! `TcpNetwork`: the network port over TCP, for real nodes.
//!
//! The actor itself only routes: a `SendMessage` is encoded into the bounded [`Outbox`] of its
//! peer (never waiting, so the consensus actor's mailbox keeps moving); a full outbox drops
//! the message and counts it. The sockets live in tasks the actor starts and aborts: one
//! [`InboundListener`] (and its connection tasks) and one [`OutboundPeer`] per peer.
//!
//! Those tasks run on the thread the actor was started on (in a node, the System's thread,
//! shared with the consensus actor): a message then reaches its socket, and a received frame
//! the consensus actor, without waking another thread. With `NetworkConfig::own_io_thread`
//! they run on a thread of their own (an `Arbiter` the actor owns) instead, so reading,
//! decoding and writing never wait for the consensus actor's turn on its thread.
//!
//! Stopping the actor (`StopNetwork`, or dropping every address) closes the listener and every
//! connection, so a node can be restarted on the same address.
//!
//! The peer set follows the configuration in force: `SetPeers` starts an outbox and a sending
//! task for each new peer, stops those of a peer that left (its queue is dropped), reconnects a
//! peer whose address changed, and makes the handshake admit exactly the new set.

use crate::backoff::Backoff;
use crate::config::{ConfigError, NetworkConfig};
use crate::counters::{add, NetworkCounters};
use crate::inbound::InboundListener;
use crate::outbound::OutboundPeer;
use crate::outbox::{Outbox, OutboxLimits, QueueError};
use actix::{Actor, Arbiter, Context, Handler, Message, MessageResult};
use futures::future::{AbortHandle, Abortable};
use raft_proto::network::{GetNetworkStats, SendMessage, SendMessages, SetPeers};
use raft_proto::ports::NetworkPorts;
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::instrument::WithSubscriber;
use tracing::{debug, error, info, warn, Instrument};

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

fn outbox_limits(config: &NetworkConfig) -> OutboxLimits {
    OutboxLimits {
        capacity_messages: config.peer_queue_capacity,
        capacity_bytes: config.peer_queue_bytes,
        chunk_bytes: config.write_batch_bytes,
        max_frame_bytes: config.max_frame_bytes,
    }
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
    /// Taken when the actor starts. Held as a std socket because it moves to the network
    /// thread, whose runtime registers it anew.
    listener: Option<std::net::TcpListener>,
    outboxes: BTreeMap<NodeId, Arc<Outbox>>,
    /// Where each peer is reached, and its sending task.
    peer_addresses: BTreeMap<NodeId, SocketAddr>,
    outbound_tasks: BTreeMap<NodeId, AbortHandle>,
    /// The thread the socket tasks run on with `own_io_thread`; started with the actor,
    /// stopped with it.
    io_thread: Option<Arbiter>,
    tasks: Vec<AbortHandle>,
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
        let outboxes = config
            .remote_peers()
            .map(|(peer, _)| (peer, Arc::new(Outbox::new(outbox_limits(&config)))))
            .collect();
        let peer_addresses = config.remote_peers().collect();
        Ok(TcpNetwork {
            config: Arc::new(config),
            ports,
            counters,
            local_addr,
            listener: Some(listener.into_std().map_err(|source| NetworkError::Listen {
                address: local_addr,
                source,
            })?),
            outboxes,
            peer_addresses,
            outbound_tasks: BTreeMap::new(),
            io_thread: None,
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
        let inbound = InboundListener {
            config: self.config.clone(),
            counters: self.counters.clone(),
            received: self.ports.received.clone(),
        };
        self.spawn_on_io_thread(async move {
            // Registered with the network thread's runtime, which polls it from now on.
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => inbound.run(listener).await,
                Err(error) => {
                    error!(%error, "cannot register the peer listener; accepting no connections")
                }
            }
        });
        let peers: Vec<NodeId> = self.outboxes.keys().copied().collect();
        for peer in peers {
            self.start_sending_to(peer);
        }
    }

    fn stopped(&mut self, _context: &mut Context<Self>) {
        for outbox in self.outboxes.values() {
            outbox.close();
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Some(io_thread) = self.io_thread.take() {
            // The aborted tasks drop their sockets at the thread's next turn; the thread ends
            // once they are gone.
            io_thread.stop();
        }
        info!(node = %self.config.node_id, "network stopped");
    }
}

impl TcpNetwork {
    /// Starts the sending task of `peer`, whose outbox and address are known.
    fn start_sending_to(&mut self, peer: NodeId) {
        let outbound = OutboundPeer {
            config: self.config.clone(),
            peer,
            peer_address: self.peer_addresses[&peer],
            outbox: self.outboxes[&peer].clone(),
            counters: self
                .counters
                .peer(peer)
                .expect("a peer's counters exist before its sending task starts"),
            peer_events: self.ports.peer_events.clone(),
            backoff: Backoff::new(
                self.config.reconnect_backoff_min,
                self.config.reconnect_backoff_max,
                rand::random(),
            ),
        };
        let task = self.spawn_on_io_thread(outbound.run());
        self.outbound_tasks.insert(peer, task);
    }

    /// Stops sending to `peer`: its queue is dropped and its connection closed.
    fn stop_sending_to(&mut self, peer: NodeId) {
        if let Some(outbox) = self.outboxes.remove(&peer) {
            outbox.close();
        }
        if let Some(task) = self.outbound_tasks.remove(&peer) {
            task.abort();
        }
        self.peer_addresses.remove(&peer);
    }

    /// Runs `task` on the network thread (started on first use) until the actor stops. The
    /// task logs through the actor's subscriber and inside its current span, as if it ran on
    /// the actor's thread (a test's scoped subscriber, a node's id span).
    fn spawn_on_io_thread(
        &mut self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> AbortHandle {
        let task = task
            .instrument(tracing::Span::current())
            .with_current_subscriber();
        let (abort, registration) = AbortHandle::new_pair();
        let task = async move {
            // Err(Aborted) is the actor stopping: nothing to report.
            let _ = Abortable::new(task, registration).await;
        };
        if self.config.own_io_thread {
            self.io_thread.get_or_insert_with(Arbiter::new).spawn(task);
        } else {
            actix::spawn(task);
        }
        self.tasks.push(abort.clone());
        abort
    }

    /// Queues `send` for its peer, or drops and counts it.
    fn route(&self, send: SendMessage) {
        let Some(outbox) = self.outboxes.get(&send.to) else {
            add(&self.counters.messages_to_unknown_peer, 1);
            warn!(to = %send.to, kind = send.message.kind(), "dropped a message to a node that is not a configured peer");
            return;
        };
        if let Err(error) = outbox.push(&send.message) {
            let peer_counters = self
                .counters
                .peer(send.to)
                .expect("every peer with an outbox has counters");
            add(&peer_counters.messages_dropped, 1);
            match error {
                QueueError::Full { .. } => {
                    debug!(to = %send.to, %error, "dropped a message")
                }
                QueueError::Frame(_) => {
                    warn!(to = %send.to, kind = send.message.kind(), %error, "dropped a message that cannot be sent")
                }
            }
        }
    }
}

impl Handler<SendMessage> for TcpNetwork {
    type Result = ();

    fn handle(&mut self, send: SendMessage, _context: &mut Context<Self>) {
        self.route(send);
    }
}

impl Handler<SendMessages> for TcpNetwork {
    type Result = ();

    fn handle(&mut self, batch: SendMessages, _context: &mut Context<Self>) {
        for send in batch.messages {
            self.route(send);
        }
    }
}

impl Handler<SetPeers> for TcpNetwork {
    type Result = ();

    fn handle(&mut self, set: SetPeers, _context: &mut Context<Self>) {
        let own_id = self.config.node_id;
        let wanted: BTreeMap<NodeId, SocketAddr> = set
            .peers
            .into_iter()
            .filter(|(peer, _)| *peer != own_id && peer.0 != 0)
            .collect();
        if wanted == self.peer_addresses {
            return;
        }
        info!(node = %own_id, peers = ?wanted, "peer set changed");
        // Admit the new set first, so a new peer's first connection is not refused.
        self.config.admitted.set(wanted.keys().copied());
        let stale: Vec<NodeId> = self
            .peer_addresses
            .iter()
            .filter(|(peer, address)| wanted.get(peer) != Some(address))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in stale {
            self.stop_sending_to(peer);
        }
        self.counters.set_peers(wanted.keys().copied());
        for (peer, address) in wanted {
            if self.outboxes.contains_key(&peer) {
                continue;
            }
            self.outboxes
                .insert(peer, Arc::new(Outbox::new(outbox_limits(&self.config))));
            self.peer_addresses.insert(peer, address);
            // The listener is taken when the actor starts: until then `started` starts the
            // sending tasks of every peer it finds.
            if self.listener.is_none() {
                self.start_sending_to(peer);
            }
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
