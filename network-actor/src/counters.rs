//! The atomic counters behind [`raft_proto::network::NetworkStats`].
//!
//! Shared (`Arc`) between the actor and its connection tasks, which bump them without going
//! through the actor's mailbox. Counters only grow; `Relaxed` ordering suffices because no
//! decision depends on reading two counters consistently.

use raft_proto::network::{NetworkStats, PeerStats};
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for one peer; see [`PeerStats`] for what each counts.
#[derive(Debug, Default)]
pub struct PeerCounters {
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub messages_dropped: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_received: AtomicU64,
    pub connections_established: AtomicU64,
}

/// Counters for a whole network actor; see [`NetworkStats`].
#[derive(Debug, Default)]
pub struct NetworkCounters {
    peers: BTreeMap<NodeId, PeerCounters>,
    pub connections_rejected: AtomicU64,
    pub connections_closed_on_bad_frame: AtomicU64,
    pub messages_to_unknown_peer: AtomicU64,
}

/// Adds `amount` to `counter`.
pub fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

impl PeerCounters {
    pub fn snapshot(&self) -> PeerStats {
        PeerStats {
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            messages_dropped: self.messages_dropped.load(Ordering::Relaxed),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            connections_established: self.connections_established.load(Ordering::Relaxed),
        }
    }
}

impl NetworkCounters {
    /// Counters for exactly these peers; the set is fixed for the actor's life.
    pub fn new(peers: impl IntoIterator<Item = NodeId>) -> NetworkCounters {
        NetworkCounters {
            peers: peers
                .into_iter()
                .map(|peer| (peer, PeerCounters::default()))
                .collect(),
            ..NetworkCounters::default()
        }
    }

    /// The counters of `peer`, or `None` when it is not a configured peer.
    pub fn peer(&self, peer: NodeId) -> Option<&PeerCounters> {
        self.peers.get(&peer)
    }

    pub fn snapshot(&self) -> NetworkStats {
        NetworkStats {
            peers: self
                .peers
                .iter()
                .map(|(peer, counters)| (*peer, counters.snapshot()))
                .collect(),
            connections_rejected: self.connections_rejected.load(Ordering::Relaxed),
            connections_closed_on_bad_frame: self
                .connections_closed_on_bad_frame
                .load(Ordering::Relaxed),
            messages_to_unknown_peer: self.messages_to_unknown_peer.load(Ordering::Relaxed),
        }
    }
}
