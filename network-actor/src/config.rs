//! `NetworkConfig`: who this node is, where it listens, where its peers are, and the limits
//! that keep a slow or hostile peer from costing more than a bounded amount of memory.

use crate::peer_tls::PeerTls;
use raft_types::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The ids a handshake admits: the members of the configuration in force (`SetPeers`), or the
/// configured peers before the first update. Shared by every clone of the configuration, so
/// the listener's connection tasks see an update at once.
#[derive(Debug, Clone, Default)]
pub struct AdmittedPeers(Arc<RwLock<BTreeSet<NodeId>>>);

impl AdmittedPeers {
    /// Whether a peer presenting `id` is admitted.
    pub fn contains(&self, id: NodeId) -> bool {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&id)
    }

    /// Admits exactly `ids` from now on.
    pub fn set(&self, ids: impl IntoIterator<Item = NodeId>) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = ids.into_iter().collect();
    }
}

/// The default largest frame accepted or sent: large enough for an AppendEntries batch or a
/// snapshot chunk, small enough that a garbage length cannot exhaust memory.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

/// The default bound on inbound connections not yet through the handshake: far more than a
/// cluster's peers ever open at once, far fewer than a file descriptor limit.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 64;

/// The default bound on them per remote IP (a peer opens one connection to each node).
pub const DEFAULT_MAX_PENDING_HANDSHAKES_PER_IP: usize = 8;

/// Everything a [`crate::TcpNetwork`] needs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// This server's id; sent in every handshake so peers know who is talking.
    pub node_id: NodeId,
    /// Peers presenting another cluster id are refused, so two clusters sharing hosts never mix.
    pub cluster_id: String,
    /// Where Raft traffic is accepted. Its IP is also the source address of every outbound
    /// connection, so a firewall rule between two addresses cuts two nodes apart completely.
    pub peer_addr: SocketAddr,
    /// Every other member and the address it listens on, at startup. An entry for `node_id`
    /// is ignored. `SetPeers` replaces the set while the network runs.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The ids the handshake admits now; starts as `peers`' and follows `SetPeers`.
    pub admitted: AdmittedPeers,
    /// The largest frame payload accepted or sent; a longer announced length closes the
    /// connection before anything is allocated for it.
    pub max_frame_bytes: u32,
    /// Messages queued per peer while its connection is busy or being re-established. When
    /// the queue is full further messages are dropped (Raft re-sends).
    pub peer_queue_capacity: usize,
    /// Encoded bytes queued per peer, the second bound on the same queue: a peer that stops
    /// reading costs at most this much memory (or one frame, which always fits when the queue
    /// is empty).
    pub peer_queue_bytes: usize,
    /// Queued messages are coalesced into writes of up to about this many bytes.
    pub write_batch_bytes: usize,
    /// The first delay before reconnecting to a peer; it doubles on each failure.
    pub reconnect_backoff_min: Duration,
    /// The cap on the reconnection delay.
    pub reconnect_backoff_max: Duration,
    /// How long a TCP connect may take before it counts as a failure (a firewall that drops
    /// packets would otherwise hold the attempt for minutes).
    pub connect_timeout: Duration,
    /// How long either side waits for the other's handshake (the TLS handshake and the
    /// connection handshake each get this long). An inbound connection silent for longer is
    /// closed, which frees its slot among `max_pending_handshakes`.
    pub handshake_timeout: Duration,
    /// Inbound connections accepted but not yet through the handshake, at most. Further ones
    /// are closed at once, so a flood of idle or half-open connections costs a bounded number
    /// of sockets and tasks, and the file descriptors real peers need stay free.
    pub max_pending_handshakes: usize,
    /// The same bound per remote IP, so one misbehaving host cannot take every pending slot
    /// while real peers (on other hosts) reconnect.
    pub max_pending_handshakes_per_ip: usize,
    /// Mutual TLS on every peer connection, in both directions; `None` is plaintext.
    pub tls: Option<PeerTls>,
    /// A connection whose peer stops acknowledging (a firewall dropping packets, a frozen
    /// host) is closed after about this long, by TCP keepalive and `TCP_USER_TIMEOUT`, so the
    /// sender reconnects once the path heals instead of waiting out TCP's ~15-minute default.
    pub dead_connection_timeout: Duration,
    /// Run the socket tasks on a thread of the network's own instead of the thread the actor
    /// was started on. Off by default: a node's consensus actor and network actor share the
    /// System's thread, and keeping the sockets there too saves two thread wake-ups per message
    /// each way (about 70 µs per replicated write on a 2-core machine, see
    /// docs/PERFORMANCE.md). A node with many peers and spare cores may prefer its own thread.
    pub own_io_thread: bool,
}

/// A configuration value that cannot work; the message names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("node_id must not be 0")]
    ZeroNodeId,
    #[error("cluster_id must not be empty")]
    EmptyClusterId,
    #[error("peer {peer} has id 0, which is reserved")]
    ZeroPeerId { peer: NodeId },
    #[error("max_frame_bytes must be at least 1024, got {max_frame_bytes}")]
    FrameLimitTooSmall { max_frame_bytes: u32 },
    #[error("peer_queue_capacity must be at least 1")]
    ZeroQueueCapacity,
    #[error("reconnect_backoff_min ({min:?}) must be > 0 and <= reconnect_backoff_max ({max:?})")]
    BackoffRange { min: Duration, max: Duration },
    #[error("max_pending_handshakes and max_pending_handshakes_per_ip must be at least 1")]
    ZeroPendingHandshakes,
    #[error("handshake_timeout must be at least 10 ms, got {timeout:?}")]
    HandshakeTimeoutTooShort { timeout: Duration },
    #[error("dead_connection_timeout must be at least 1 s, got {timeout:?}")]
    DeadConnectionTimeoutTooShort { timeout: Duration },
}

impl NetworkConfig {
    /// A configuration with the documented defaults for every limit.
    pub fn new(
        node_id: NodeId,
        cluster_id: impl Into<String>,
        peer_addr: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> NetworkConfig {
        let admitted = AdmittedPeers::default();
        admitted.set(peers.keys().copied());
        NetworkConfig {
            node_id,
            cluster_id: cluster_id.into(),
            peer_addr,
            peers,
            admitted,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            peer_queue_capacity: 4096,
            peer_queue_bytes: 64 * 1024 * 1024,
            write_batch_bytes: 256 * 1024,
            reconnect_backoff_min: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(5),
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            max_pending_handshakes_per_ip: DEFAULT_MAX_PENDING_HANDSHAKES_PER_IP,
            tls: None,
            dead_connection_timeout: Duration::from_secs(10),
            own_io_thread: false,
        }
    }

    /// Checks every value; the wiring code reports the error and refuses to start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.0 == 0 {
            return Err(ConfigError::ZeroNodeId);
        }
        if self.cluster_id.is_empty() {
            return Err(ConfigError::EmptyClusterId);
        }
        if let Some(peer) = self.peers.keys().find(|peer| peer.0 == 0) {
            return Err(ConfigError::ZeroPeerId { peer: *peer });
        }
        if self.max_frame_bytes < 1024 {
            return Err(ConfigError::FrameLimitTooSmall {
                max_frame_bytes: self.max_frame_bytes,
            });
        }
        if self.peer_queue_capacity == 0 {
            return Err(ConfigError::ZeroQueueCapacity);
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return Err(ConfigError::BackoffRange {
                min: self.reconnect_backoff_min,
                max: self.reconnect_backoff_max,
            });
        }
        if self.max_pending_handshakes == 0 || self.max_pending_handshakes_per_ip == 0 {
            return Err(ConfigError::ZeroPendingHandshakes);
        }
        if self.handshake_timeout < Duration::from_millis(10) {
            return Err(ConfigError::HandshakeTimeoutTooShort {
                timeout: self.handshake_timeout,
            });
        }
        if self.dead_connection_timeout < Duration::from_secs(1) {
            return Err(ConfigError::DeadConnectionTimeoutTooShort {
                timeout: self.dead_connection_timeout,
            });
        }
        Ok(())
    }

    /// The peers this node sends to: every configured member except itself.
    pub fn remote_peers(&self) -> impl Iterator<Item = (NodeId, SocketAddr)> + '_ {
        self.peers
            .iter()
            .filter(|(peer, _)| **peer != self.node_id)
            .map(|(peer, address)| (*peer, *address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NetworkConfig {
        let address: SocketAddr = "127.0.0.1:7001".parse().expect("valid literal");
        NetworkConfig::new(NodeId(1), "test", address, BTreeMap::new())
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_values() {
        let mut bad = config();
        bad.node_id = NodeId(0);
        assert_eq!(bad.validate(), Err(ConfigError::ZeroNodeId));
        let mut bad = config();
        bad.cluster_id.clear();
        assert_eq!(bad.validate(), Err(ConfigError::EmptyClusterId));
        let mut bad = config();
        bad.reconnect_backoff_min = Duration::from_secs(10);
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::BackoffRange { .. })
        ));
        let mut bad = config();
        bad.max_pending_handshakes_per_ip = 0;
        assert_eq!(bad.validate(), Err(ConfigError::ZeroPendingHandshakes));
        let mut bad = config();
        bad.peer_queue_capacity = 0;
        assert_eq!(bad.validate(), Err(ConfigError::ZeroQueueCapacity));
    }
}
