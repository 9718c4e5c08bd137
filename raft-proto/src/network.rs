//! The network port: how the consensus actor talks to its peers.
//!
//! Two actors implement it in `network-actor`: the TCP transport used by real nodes and a
//! seeded simulated network for in-process clusters. The wiring code hands the consensus actor
//! a `Recipient<SendMessages>` from either; nothing else changes.
//!
//! # Correctness
//!
//! - Delivery is best effort: a message may be lost, delayed or (on reconnect) duplicated,
//!   but never corrupted or delivered to the wrong node. Raft tolerates loss and the core
//!   re-sends, so the network drops rather than blocks when a peer is slow or down.
//! - Sending never blocks the sender: the network actor queues each message per peer, in a
//!   bounded queue; when the queue is full the message is dropped and counted in [`PeerStats`].
//! - A slow or dead peer never delays messages to other peers: each peer has its own queue and
//!   its own connection.
//! - `ReceivedMessages::from` is the peer's id as authenticated by the connection handshake,
//!   never a value read from the message body.
//! - The messages of one `ReceivedMessages` came from that one peer, in the order it sent
//!   them; a batch is whatever arrived together, so its size carries no meaning.
//! - A connection is only accepted from a peer that presents the same protocol version and
//!   `cluster_id` and a member's node id (the members as of the latest [`SetPeers`], or the
//!   configured ones before any); anything else is refused, logged and counted.
//! - Malformed input (an over-limit frame length, a truncated frame, an undecodable payload)
//!   closes that one connection, is logged and counted, and never stops the node.
//! - Messages to one peer leave in the order they were sent on a single connection.
//! - `PeerEvent` is informational (status, metrics, and a hint that lets followers replace a
//!   crashed leader early); Raft's correctness never depends on it.

use actix::Message;
use raft_types::{NodeId, RaftMessage};
use std::collections::BTreeMap;

/// Deliver `message` to peer `to`: one message, for tools and tests, and the element of
/// [`SendMessages`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SendMessage {
    /// The peer to deliver to.
    pub to: NodeId,
    /// The message to deliver.
    pub message: RaftMessage,
}

/// Sent by the consensus actor: deliver each message to its peer. Messages to one peer leave
/// in this order.
///
/// A batch, because the consensus actor produces its messages a flush at a time (a follower
/// answering a burst of appends answers each one): one mailbox hop for the whole flush costs
/// far less than one per message. Every network actor handles both this and [`SendMessage`].
#[derive(Debug, Default, Message)]
#[rtype(result = "()")]
pub struct SendMessages {
    /// The messages, in sending order.
    pub messages: Vec<SendMessage>,
}

/// Sent by the node when the configuration in force changes: the peers to send to and to
/// accept connections from are now exactly `peers` (this node excluded), at these addresses.
/// A peer no longer listed has its connection closed and its queue dropped; a new one gets a
/// connection; a listed peer whose address changed is reconnected there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct SetPeers {
    /// Every peer of this node, by id.
    pub peers: BTreeMap<NodeId, std::net::SocketAddr>,
}

/// Sent by the network actor to the consensus actor: `messages` arrived from peer `from`, in
/// this order.
///
/// A batch, not one message per actor message, because a fast peer's frames arrive many to a
/// read: one mailbox hop for all of them costs the consensus actor (and the allocator) far less
/// than one each, and the consensus actor steps through the batch before it flushes once.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ReceivedMessages {
    /// The sending peer, as authenticated by the connection handshake.
    pub from: NodeId,
    /// The messages, in the order the peer sent them.
    pub messages: Vec<RaftMessage>,
}

/// Sent by the network actor when its connection for sending to a peer comes up or goes down.
/// Informational (status, metrics; a lost leader's `Disconnected` lets the followers elect a
/// new one early, see `Raft::peer_connection_lost`); Raft's correctness never depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum PeerEvent {
    /// The connection for sending to `peer` is up.
    Connected {
        /// The peer the connection goes to.
        peer: NodeId,
    },
    /// The connection for sending to `peer` went down.
    Disconnected {
        /// The peer the connection went to.
        peer: NodeId,
    },
}

/// Asks the network actor for its counters, for `/metrics` and for tests.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "NetworkStats")]
pub struct GetNetworkStats;

/// A snapshot of a network actor's counters. Counters only grow; a reader computes rates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// One entry per configured peer, ordered by id.
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Inbound connections refused at the handshake (wrong cluster, version, unknown node,
    /// garbage instead of a handshake, or no handshake in time).
    pub connections_rejected: u64,
    /// Inbound connections closed after the handshake because of a bad frame (over-limit
    /// length, truncated frame, undecodable payload).
    pub connections_closed_on_bad_frame: u64,
    /// `SendMessage`s addressed to a node that is not a configured peer, dropped.
    pub messages_to_unknown_peer: u64,
}

/// Counters for one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Messages written to the peer's connection.
    pub messages_sent: u64,
    /// Bytes written to the peer's connection, frame headers included.
    pub bytes_sent: u64,
    /// Messages dropped for this peer: queue full, peer unreachable, or over the frame limit.
    pub messages_dropped: u64,
    /// Messages received from this peer and delivered to the consensus actor.
    pub messages_received: u64,
    /// Bytes received from this peer, frame headers included.
    pub bytes_received: u64,
    /// Outbound connections established (handshake completed) to this peer.
    pub connections_established: u64,
}
