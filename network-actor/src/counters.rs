//! The atomic counters behind [`raft_proto::network::NetworkStats`].
//!
//! Shared (`Arc`) between the actor and its connection tasks, which bump them without going
//! through the actor's mailbox. Counters only grow; `Relaxed` ordering suffices because no
//! decision depends on reading two counters consistently. The set of peers follows the
//! configuration in force (`SetPeers`): a peer's counters are created when it joins and
//! dropped when it leaves.

use raft_proto::network::{NetworkStats, PeerStats};
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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
    peers: RwLock<BTreeMap<NodeId, Arc<PeerCounters>>>,
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
    /// Counters for these peers.
    pub fn new(peers: impl IntoIterator<Item = NodeId>) -> NetworkCounters {
        let counters = NetworkCounters::default();
        counters.set_peers(peers);
        counters
    }

    /// The counters of `peer`, or `None` when it is not a peer (any more).
    pub fn peer(&self, peer: NodeId) -> Option<Arc<PeerCounters>> {
        self.read_peers().get(&peer).cloned()
    }

    /// Keeps the counters of the peers still in `peers`, starts new ones at zero, drops the
    /// rest.
    pub fn set_peers(&self, peers: impl IntoIterator<Item = NodeId>) {
        let peers: std::collections::BTreeSet<NodeId> = peers.into_iter().collect();
        let mut map = self
            .peers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.retain(|peer, _| peers.contains(peer));
        for peer in peers {
            map.entry(peer).or_default();
        }
    }

    fn read_peers(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, Arc<PeerCounters>>> {
        // Counters hold no invariant a panicking writer could break.
        self.peers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> NetworkStats {
        NetworkStats {
            peers: self
                .read_peers()
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
