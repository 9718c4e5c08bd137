//! The sending side of one peer: a task that drains the peer's [`Outbox`] into the one
//! connection this node opens to it.
//!
//! The task connects (from this node's own IP, so per-address firewall rules cut the link),
//! handshakes, then drains the outbox: it waits until frames are queued, takes the oldest chunk
//! of them (already encoded by the actor, up to about `write_batch_bytes`) and writes it with
//! one `write_all`, so a burst costs one system call per chunk instead of one per message. It also watches the connection for the peer
//! closing it (this direction only ever sends). When the connection breaks it reconnects after
//! a capped, jittered exponential backoff; while the peer cannot be reached what is queued is
//! discarded and counted, since Raft re-sends and a backlog of stale messages would only delay
//! fresh ones.

use crate::backoff::Backoff;
use crate::config::NetworkConfig;
use crate::counters::{add, PeerCounters};
use crate::handshake::{self, HandshakeError};
use crate::outbox::Outbox;
use crate::socket_options;
use actix::Recipient;
use raft_proto::network::PeerEvent;
use raft_types::NodeId;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tracing::{debug, info, warn};

/// Everything the sending task for one peer owns.
pub struct OutboundPeer {
    pub config: Arc<NetworkConfig>,
    pub peer: NodeId,
    pub peer_address: SocketAddr,
    pub outbox: Arc<Outbox>,
    pub counters: Arc<PeerCounters>,
    pub peer_events: Recipient<PeerEvent>,
    pub backoff: Backoff,
}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot bind the outgoing socket to {local}: {source}")]
    Bind {
        local: SocketAddr,
        source: std::io::Error,
    },
    #[error("connect failed: {source}")]
    Connect { source: std::io::Error },
    #[error("connect timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u128 },
    #[error("handshake failed: {source}")]
    Handshake {
        #[from]
        source: HandshakeError,
    },
}

/// Why an established connection ended.
enum ConnectionEnd {
    /// The actor stopped: nothing more will ever be queued.
    OutboxClosed,
    Broken {
        reason: String,
    },
}

impl OutboundPeer {
    /// Runs until the actor closes the outbox (or aborts the task).
    pub async fn run(mut self) {
        let mut failure_logged = false;
        loop {
            match self.connect().await {
                Ok(stream) => {
                    failure_logged = false;
                    self.backoff.reset();
                    add(&self.peer_counters().connections_established, 1);
                    info!(peer = %self.peer, address = %self.peer_address, "connected to peer");
                    self.peer_events
                        .do_send(PeerEvent::Connected { peer: self.peer });
                    let end = self.send_until_broken(stream).await;
                    self.peer_events
                        .do_send(PeerEvent::Disconnected { peer: self.peer });
                    match end {
                        ConnectionEnd::OutboxClosed => return,
                        ConnectionEnd::Broken { reason } => {
                            warn!(peer = %self.peer, %reason, "lost connection to peer")
                        }
                    }
                }
                Err(error) => {
                    if failure_logged {
                        debug!(peer = %self.peer, address = %self.peer_address, %error, "cannot reach peer");
                    } else {
                        warn!(peer = %self.peer, address = %self.peer_address, %error, "cannot reach peer; retrying with backoff");
                        failure_logged = true;
                    }
                    self.discard_queued();
                }
            }
            if self.outbox.is_closed() {
                return;
            }
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
    }

    fn peer_counters(&self) -> &PeerCounters {
        &self.counters
    }

    /// Opens a connection from this node's own IP and completes the handshake.
    async fn connect(&self) -> Result<TcpStream, ConnectError> {
        let local = SocketAddr::new(self.config.peer_addr.ip(), 0);
        let socket = if local.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .and_then(|socket| socket.bind(local).map(|()| socket))
        .map_err(|source| ConnectError::Bind { local, source })?;
        let mut stream = tokio::time::timeout(
            self.config.connect_timeout,
            socket.connect(self.peer_address),
        )
        .await
        .map_err(|_| ConnectError::Timeout {
            timeout_ms: self.config.connect_timeout.as_millis(),
        })?
        .map_err(|source| ConnectError::Connect { source })?;
        socket_options::configure(&stream, self.config.dead_connection_timeout)
            .map_err(|source| ConnectError::Connect { source })?;
        handshake::dial(&mut stream, &self.config, self.peer).await?;
        Ok(stream)
    }

    /// Writes queued frames in batches until the connection fails or the outbox closes.
    async fn send_until_broken(&mut self, stream: TcpStream) -> ConnectionEnd {
        let (mut reader, mut writer) = stream.into_split();
        let mut probe = [0u8; 1];
        loop {
            let chunk = tokio::select! {
                chunk = self.outbox.take() => match chunk {
                    Some(chunk) => chunk,
                    None => return ConnectionEnd::OutboxClosed,
                },
                read = reader.read(&mut probe) => {
                    let reason = match read {
                        Ok(0) => "peer closed the connection".to_string(),
                        Ok(_) => "peer sent bytes on a send-only connection".to_string(),
                        Err(error) => error.to_string(),
                    };
                    return ConnectionEnd::Broken { reason };
                }
            };
            let counters = self.peer_counters();
            if let Err(error) = writer.write_all(&chunk.frames).await {
                add(&counters.messages_dropped, chunk.messages as u64);
                return ConnectionEnd::Broken {
                    reason: error.to_string(),
                };
            }
            add(&counters.messages_sent, chunk.messages as u64);
            add(&counters.bytes_sent, chunk.frames.len() as u64);
            self.outbox.recycle(chunk);
        }
    }

    /// Drops everything queued while the peer is unreachable, counting it.
    fn discard_queued(&mut self) {
        let discarded = self.outbox.discard();
        add(&self.peer_counters().messages_dropped, discarded as u64);
    }
}
