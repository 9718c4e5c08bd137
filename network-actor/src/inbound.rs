//! The receiving side: the listener on `peer_addr` and one task per connection a peer opened.
//!
//! Each connection first completes the handshake (which names the peer), then only receives:
//! every read's complete frames are decoded and delivered together as
//! `ReceivedMessages { from: <handshaken id>, .. }`. Bad input closes that one connection with
//! a warning naming the remote address and the reason, and bumps a counter; the listener and
//! every other connection carry on.
//!
//! Admission: at most `max_pending_handshakes` accepted connections (and
//! `max_pending_handshakes_per_ip` from one IP) may be waiting for their handshake; one more is
//! closed as soon as it is accepted. Each waits at most `handshake_timeout` (for TLS, then again
//! for the connection handshake). So a flood of idle connections holds a bounded number of
//! sockets for a bounded time, and a real peer's reconnection finds a slot.
//!
//! With TLS on, the TLS handshake (which checks the dialer's certificate chain) comes first,
//! and the connection handshake then checks that the certificate names the node id claimed.

use crate::config::NetworkConfig;
use crate::counters::{add, NetworkCounters};
use crate::frame::{FrameError, FrameReader};
use crate::handshake;
use crate::peer_tls::san_uris;
use crate::socket_options;
use actix::Recipient;
use raft_proto::network::ReceivedMessages;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::instrument::WithSubscriber;
use tracing::{debug, info, warn, Instrument};

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
        let pending = Arc::new(PendingHandshakes::new(
            self.config.max_pending_handshakes,
            self.config.max_pending_handshakes_per_ip,
        ));
        // Refusals are logged at most every ten seconds, with how many there were: a flood
        // must not flood the log too.
        let mut last_warning: Option<tokio::time::Instant> = None;
        let mut refused_since_warning = 0u64;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let Some(slot) = PendingHandshakes::admit(&pending, remote.ip()) else {
                            // Dropping the stream closes it: no task, no buffer, fd freed now.
                            add(&self.counters.connections_rejected, 1);
                            refused_since_warning += 1;
                            let due = last_warning
                                .is_none_or(|at| at.elapsed() >= Duration::from_secs(10));
                            if due {
                                warn!(%remote, refused = refused_since_warning,
                                    limit = self.config.max_pending_handshakes,
                                    per_ip = self.config.max_pending_handshakes_per_ip,
                                    "too many connections waiting for their handshake; \
                                     closing new ones until some complete or time out");
                                last_warning = Some(tokio::time::Instant::now());
                                refused_since_warning = 0;
                            } else {
                                debug!(%remote, "closed a connection over the pending-handshake limit");
                            }
                            continue;
                        };
                        // Spawned tasks do not inherit the subscriber or span: pass both on.
                        let connection = serve_connection(
                            stream,
                            remote,
                            slot,
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

/// The connections waiting for their handshake, in total and per remote IP.
struct PendingHandshakes {
    limit: usize,
    per_ip_limit: usize,
    counts: Mutex<(usize, BTreeMap<IpAddr, usize>)>,
}

/// One admitted connection's place among the pending ones; released when dropped (the
/// handshake completed, failed or timed out, or the task was aborted).
struct PendingSlot {
    pending: Arc<PendingHandshakes>,
    ip: IpAddr,
}

impl PendingHandshakes {
    fn new(limit: usize, per_ip_limit: usize) -> PendingHandshakes {
        PendingHandshakes {
            limit,
            per_ip_limit,
            counts: Mutex::new((0, BTreeMap::new())),
        }
    }

    fn admit(pending: &Arc<PendingHandshakes>, ip: IpAddr) -> Option<PendingSlot> {
        let mut counts = pending
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (total, per_ip) = &mut *counts;
        let from_ip = per_ip.entry(ip).or_insert(0);
        if *total >= pending.limit || *from_ip >= pending.per_ip_limit {
            if *from_ip == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *from_ip += 1;
        *total += 1;
        Some(PendingSlot {
            pending: Arc::clone(pending),
            ip,
        })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut counts = self
            .pending
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (total, per_ip) = &mut *counts;
        *total -= 1;
        if let Some(from_ip) = per_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Handshakes (TLS first when configured), then delivers every frame until the connection
/// ends or misbehaves.
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    slot: PendingSlot,
    config: Arc<NetworkConfig>,
    counters: Arc<NetworkCounters>,
    received: Recipient<ReceivedMessages>,
) {
    if let Err(error) = socket_options::configure(&stream, config.dead_connection_timeout) {
        warn!(%remote, %error, "cannot set socket options; closing the connection");
        return;
    }
    let Some(tls) = config.tls.clone() else {
        return receive(stream, None, remote, slot, config, counters, received).await;
    };
    let accepted = tokio::time::timeout(config.handshake_timeout, tls.acceptor().accept(stream));
    let stream = match accepted.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            add(&counters.connections_rejected, 1);
            warn!(%remote, %error, "refused inbound connection: TLS handshake failed");
            return;
        }
        Err(_) => {
            add(&counters.connections_rejected, 1);
            warn!(%remote, "refused inbound connection: no TLS handshake within the timeout");
            return;
        }
    };
    let names = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(san_uris)
        .unwrap_or_default();
    receive(
        stream,
        Some(names),
        remote,
        slot,
        config,
        counters,
        received,
    )
    .await;
}

/// The connection handshake, then frames until the end. `names` are the SAN URIs of the
/// dialer's certificate on a TLS connection.
async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    names: Option<Vec<String>>,
    remote: SocketAddr,
    slot: PendingSlot,
    config: Arc<NetworkConfig>,
    counters: Arc<NetworkCounters>,
    received: Recipient<ReceivedMessages>,
) {
    let accepted = handshake::accept_verified(&mut stream, &config, names.as_deref()).await;
    // Through the handshake (or refused): no longer pending.
    drop(slot);
    let peer = match accepted {
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
