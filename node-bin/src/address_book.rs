//! `AddressBook`: where each member is reached, as this node knows it now.
//!
//! Two sources: the static `[[members]]` of the configuration file (the bootstrap members,
//! whose addresses the log never carries, and for a joining server the servers to reach), and
//! the `addresses` of the configuration in force, which name every member added later. The
//! configuration in force wins where both name a member: it is what the cluster agreed on,
//! while a configuration file may be stale. Ids the configuration lists as removed are dropped,
//! so a request is never forwarded to, and no connection is kept to, a server that left.
//!
//! One book is shared by the HTTP workers (forwarding to the leader, `member_client_addrs`,
//! `GET /v1/members`) and updated by the node's membership watch; reads take a short read lock
//! and copy out what they need, so no lock is held across an await.

use actix::Recipient;
use raft_proto::network::SetPeers;
use raft_types::{Membership, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// How long a removed member stays in the network's peer set. The consensus core answers a
/// removed server that still campaigns with `MemberRemoved`, which is how a server cut off
/// before it saw its removal learns it (and says so in `/v1/status`); the answer can only
/// travel while the network still has a route to it.
pub const REMOVED_PEER_GRACE: Duration = Duration::from_secs(30);

/// A member's two addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberAddrs {
    /// Where its peer (Raft) listener is.
    pub peer_addr: Option<SocketAddr>,
    /// Where its client API is.
    pub client_addr: Option<SocketAddr>,
}

#[derive(Debug, Default)]
struct Book {
    /// From the configuration file: used when the configuration in force names no address.
    seeds: BTreeMap<NodeId, MemberAddrs>,
    /// Seeds overridden and extended by the configuration in force, removed ids dropped.
    entries: BTreeMap<NodeId, MemberAddrs>,
}

/// Shared, cheaply cloned; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    inner: Arc<RwLock<Book>>,
}

/// What [`AddressBook::update`] found: the peers to connect to and the members without a
/// peer address (which cannot be reached until one is known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSet {
    /// Every member but `own_id` with a known peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Members (not `own_id`) the book has no peer address for.
    pub unreachable: Vec<NodeId>,
}

impl AddressBook {
    /// A book seeded with `seeds` (the configuration file's members).
    pub fn new(seeds: impl IntoIterator<Item = (NodeId, MemberAddrs)>) -> AddressBook {
        let seeds: BTreeMap<_, _> = seeds.into_iter().collect();
        let book = Book {
            entries: seeds.clone(),
            seeds,
        };
        AddressBook {
            inner: Arc::new(RwLock::new(book)),
        }
    }

    /// A book of client addresses only (tests, and forwarders built from a fixed map).
    pub fn from_client_addrs(client_addrs: BTreeMap<NodeId, SocketAddr>) -> AddressBook {
        AddressBook::new(client_addrs.into_iter().map(|(id, client_addr)| {
            (
                id,
                MemberAddrs {
                    peer_addr: None,
                    client_addr: Some(client_addr),
                },
            )
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Book> {
        // A panic while holding the lock leaves a map that is still consistent (every write
        // replaces it whole), so a poisoned lock is used as it is.
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The addresses of `id`, if known.
    pub fn get(&self, id: NodeId) -> Option<MemberAddrs> {
        self.read().entries.get(&id).copied()
    }

    /// The client address of `id`, if known.
    pub fn client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.get(id).and_then(|addrs| addrs.client_addr)
    }

    /// Every known client address but `own_id`'s (the consistency check's peers).
    pub fn client_addrs_except(&self, own_id: NodeId) -> BTreeMap<NodeId, SocketAddr> {
        self.read()
            .entries
            .iter()
            .filter(|(id, _)| **id != own_id)
            .filter_map(|(id, addrs)| Some((*id, addrs.client_addr?)))
            .collect()
    }

    /// Rebuilds the book from the seeds and `membership` (the configuration in force) and
    /// returns the peer set `own_id` should be connected to: every member of the
    /// configuration but itself.
    pub fn update(&self, own_id: NodeId, membership: &Membership) -> PeerSet {
        let mut book = self
            .inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut entries = book.seeds.clone();
        for (id, address) in &membership.addresses {
            let seed = book.seeds.get(id).copied();
            let parsed = MemberAddrs {
                peer_addr: parse_address(*id, "peer_addr", &address.peer_addr)
                    .or(seed.and_then(|seed| seed.peer_addr)),
                client_addr: parse_address(*id, "client_addr", &address.client_addr)
                    .or(seed.and_then(|seed| seed.client_addr)),
            };
            entries.insert(*id, parsed);
        }
        for id in &membership.removed {
            entries.remove(id);
        }
        let mut peers = PeerSet::default();
        for id in membership.all_members() {
            if id == own_id {
                continue;
            }
            match entries.get(&id).and_then(|addrs| addrs.peer_addr) {
                Some(address) => {
                    peers.peers.insert(id, address);
                }
                None => peers.unreachable.push(id),
            }
        }
        book.entries = entries;
        peers
    }
}

/// Follows the configuration in force: after every change the address book is rebuilt and
/// the network told the exact peer set (every member but `own_id`, plus the members removed
/// less than [`REMOVED_PEER_GRACE`] ago), so members added later are connected to and
/// accepted, and removed ones dropped. Ends when the consensus actor stops.
pub async fn follow_membership(
    own_id: NodeId,
    mut watch: tokio::sync::watch::Receiver<raft_actor::MembershipInForce>,
    address_book: AddressBook,
    network: Recipient<SetPeers>,
) {
    let mut members: BTreeMap<NodeId, SocketAddr> = BTreeMap::new();
    let mut farewells: BTreeMap<NodeId, (SocketAddr, Instant)> = BTreeMap::new();
    let mut sent: Option<BTreeMap<NodeId, SocketAddr>> = None;
    loop {
        let (log_id, membership) = watch.borrow_and_update().clone();
        let peer_set = address_book.update(own_id, &membership);
        for id in &peer_set.unreachable {
            tracing::warn!(%id, config_index = %log_id.index,
                "a member of the configuration has no known peer address; it cannot be reached \
                 (add it to [[members]])");
        }
        let now = Instant::now();
        for (id, address) in &members {
            if membership.removed.contains(id) {
                farewells
                    .entry(*id)
                    .or_insert((*address, now + REMOVED_PEER_GRACE));
            }
        }
        farewells.retain(|_, (_, until)| *until > now);
        // A joining server starts with an empty configuration: until the leader's first
        // entries arrive it keeps the servers of its [[members]], or it would refuse the
        // leader that comes to add it.
        if !membership.all_members().is_empty() {
            members = peer_set.peers.clone();
            let mut peers = peer_set.peers;
            for (id, (address, _)) in &farewells {
                peers.entry(*id).or_insert(*address);
            }
            if sent.as_ref() != Some(&peers) {
                tracing::info!(config_index = %log_id.index, %membership,
                    peers = ?peers.keys().map(|id| id.0).collect::<Vec<_>>(),
                    "peer set follows the configuration in force");
                network.do_send(SetPeers {
                    peers: peers.clone(),
                });
                sent = Some(peers);
            }
        }
        let next_farewell = farewells.values().map(|(_, until)| *until).min();
        tokio::select! {
            changed = watch.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = sleep_until(next_farewell), if next_farewell.is_some() => {}
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// An address from the log. The admin API only accepts `IP:port`, but a configuration written
/// by another tool might hold anything: such an address is skipped with a warning rather than
/// stopping the node.
fn parse_address(id: NodeId, field: &str, text: &str) -> Option<SocketAddr> {
    match text.parse() {
        Ok(address) => Some(address),
        Err(error) => {
            tracing::warn!(%id, field, address = text, %error,
                "a member's address in the configuration is not IP:port; ignoring it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_types::MemberAddress;

    fn addrs(peer: u16, client: u16) -> MemberAddrs {
        MemberAddrs {
            peer_addr: Some(SocketAddr::from(([127, 0, 0, 1], peer))),
            client_addr: Some(SocketAddr::from(([127, 0, 0, 1], client))),
        }
    }

    #[test]
    fn the_configuration_in_force_extends_and_overrides_the_seeds_and_drops_removed_ids() {
        let book = AddressBook::new([
            (NodeId(1), addrs(7001, 8001)),
            (NodeId(2), addrs(7002, 8002)),
            (NodeId(3), addrs(7003, 8003)),
        ]);
        let mut membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(4)]);
        membership.learners.insert(NodeId(5));
        membership.removed.insert(NodeId(3));
        membership.addresses.insert(
            NodeId(4),
            MemberAddress {
                peer_addr: "127.0.0.1:7004".to_string(),
                client_addr: "127.0.0.1:8004".to_string(),
            },
        );
        membership.addresses.insert(
            NodeId(2),
            MemberAddress {
                peer_addr: "127.0.0.1:7102".to_string(),
                client_addr: "not an address".to_string(),
            },
        );
        let peers = book.update(NodeId(1), &membership);
        assert_eq!(
            peers.peers,
            BTreeMap::from([
                (NodeId(2), SocketAddr::from(([127, 0, 0, 1], 7102))),
                (NodeId(4), SocketAddr::from(([127, 0, 0, 1], 7004))),
            ])
        );
        assert_eq!(peers.unreachable, vec![NodeId(5)]);
        assert_eq!(book.get(NodeId(3)), None);
        // An unusable address from the log falls back to the seed.
        assert_eq!(
            book.client_addr(NodeId(2)),
            Some(SocketAddr::from(([127, 0, 0, 1], 8002)))
        );
        assert_eq!(
            book.client_addr(NodeId(4)),
            Some(SocketAddr::from(([127, 0, 0, 1], 8004)))
        );
        // The consistency check's peers: everyone known but this node, the removed 3 gone.
        let checked: Vec<u64> = book
            .client_addrs_except(NodeId(1))
            .keys()
            .map(|id| id.0)
            .collect();
        assert_eq!(checked, vec![2, 4]);
    }
}
