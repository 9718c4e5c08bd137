//! The receiving side: the listener on `peer_addr` and one task per connection a peer opened.
//!
//! Each connection first completes the handshake (which names the peer), then only receives:
//! every read's complete frames are decoded and delivered together as
//! `ReceivedMessages { from: <handshaken id>, .. }`. Bad input closes that one connection with
//! a warning naming the remote address and the reason, and bumps a counter; the listener and
//! every other connection carry on.

use crate::config::NetworkConfig;
use crate::counters::{add, NetworkCounters};
use crate::frame::{FrameError, FrameReader};
use crate::handshake;
use crate::socket_options;
use actix::Recipient;
use raft_proto::network::ReceivedMessages;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::instrument::WithSubscriber;
use tracing::{info, warn, Instrument};

/// What the listener's task needs besides the listener: where it delivers, and its limits.
pub struct InboundListener {
    pub config: Arc<NetworkConfig>,
    pub counters: Arc<NetworkCounters>,
    pub received: Recipient<ReceivedMessages>,
}

impl InboundListener {
    /// Accepts until aborted; aborting it also aborts every connection task it started (they
    /// live in its `JoinSet`), so stopping the actor closes every inbound connection.
    pub async fn run(self, listener: TcpListener) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        // Spawned tasks do not inherit the subscriber or span: pass both on.
                        let connection = serve_connection(
                            stream,
                            remote,
                            self.config.clone(),
                            self.counters.clone(),
                            self.received.clone(),
                        )
                        .in_current_span()
                        .with_current_subscriber();
                        connections.spawn_local(connection);
                    }
                    Err(error) => {
                        // Usually out of file descriptors; pausing lets connections close.
                        warn!(%error, "accepting a peer connection failed; pausing 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }
}

/// Handshakes, then delivers every frame until the connection ends or misbehaves.
async fn serve_connection(
    mut stream: TcpStream,
    remote: SocketAddr,
    config: Arc<NetworkConfig>,
    counters: Arc<NetworkCounters>,
    received: Recipient<ReceivedMessages>,
) {
    if let Err(error) = socket_options::configure(&stream, config.dead_connection_timeout) {
        warn!(%remote, %error, "cannot set socket options; closing the connection");
        return;
    }
    let peer = match handshake::accept(&mut stream, &config).await {
        Ok(peer) => peer,
        Err(error) => {
            add(&counters.connections_rejected, 1);
            warn!(%remote, %error, "refused inbound connection: bad handshake");
            return;
        }
    };
    info!(%peer, %remote, "accepted connection from peer");
    let Some(peer_counters) = counters.peer(peer) else {
        // Removed from the configuration between its handshake and now.
        add(&counters.connections_rejected, 1);
        warn!(%peer, %remote, "refused inbound connection: no longer a peer");
        return;
    };
    let mut frames = FrameReader::new(config.max_frame_bytes);
    loop {
        let mut messages = Vec::new();
        let outcome = frames.read_batch(&mut stream, &mut messages).await;
        if let Ok(Some(frame_bytes)) = outcome {
            add(&peer_counters.bytes_received, frame_bytes as u64);
        }
        // On a bad frame, the good frames before it in the same read are still delivered.
        if !messages.is_empty() {
            add(&peer_counters.messages_received, messages.len() as u64);
            received.do_send(ReceivedMessages {
                from: peer,
                messages,
            });
        }
        match outcome {
            Ok(Some(_)) => {}
            Ok(None) => {
                info!(%peer, %remote, "peer closed its connection");
                return;
            }
            Err(FrameError::Io { source }) => {
                info!(%peer, %remote, error = %source, "connection from peer failed");
                return;
            }
            Err(error) => {
                add(&counters.connections_closed_on_bad_frame, 1);
                warn!(%peer, %remote, %error, "closed connection from peer: bad frame");
                return;
            }
        }
    }
}
