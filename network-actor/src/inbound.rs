//! The receiving side: the listener on `peer_addr` and one task per connection a peer opened.
//!
//! Each connection first completes the handshake (which names the peer), then only receives:
//! every frame is decoded and delivered as `ReceivedMessage { from: <handshaken id> }`. Bad
//! input closes that one connection with a warning naming the remote address and the reason,
//! and bumps a counter; the listener and every other connection carry on.

use crate::config::NetworkConfig;
use crate::counters::{add, NetworkCounters};
use crate::frame::{read_frame, FrameError};
use crate::handshake;
use crate::socket_options;
use actix::Recipient;
use raft_proto::network::ReceivedMessage;
use raft_types::{codec, RaftMessage};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{info, warn};

/// Read buffer per connection: many small frames are parsed from one system call.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The listener and where it delivers.
pub struct InboundListener {
    pub listener: TcpListener,
    pub config: Arc<NetworkConfig>,
    pub counters: Arc<NetworkCounters>,
    pub received: Recipient<ReceivedMessage>,
}

impl InboundListener {
    /// Accepts until aborted; aborting it also aborts every connection task it started (they
    /// live in its `JoinSet`), so stopping the actor closes every inbound connection.
    pub async fn run(self) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        connections.spawn_local(serve_connection(
                            stream,
                            remote,
                            self.config.clone(),
                            self.counters.clone(),
                            self.received.clone(),
                        ));
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
    received: Recipient<ReceivedMessage>,
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
    let peer_counters = counters
        .peer(peer)
        .expect("the handshake admits only configured peers, which all have counters");
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let mut payload = Vec::new();
    loop {
        let frame_bytes = match read_frame(&mut reader, config.max_frame_bytes, &mut payload).await
        {
            Ok(Some(frame_bytes)) => frame_bytes,
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
        };
        match codec::decode::<RaftMessage>(&payload) {
            Ok(message) => {
                add(&peer_counters.messages_received, 1);
                add(&peer_counters.bytes_received, frame_bytes as u64);
                received.do_send(ReceivedMessage {
                    from: peer,
                    message,
                });
            }
            Err(source) => {
                add(&counters.connections_closed_on_bad_frame, 1);
                let error = FrameError::Undecodable { source };
                warn!(%peer, %remote, %error, "closed connection from peer: bad frame");
                return;
            }
        }
    }
}
