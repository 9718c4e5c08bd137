//! The network port: how the consensus actor talks to its peers.
//!
//! # Correctness
//!
//! - Delivery is best effort: a message may be lost, delayed or (on reconnect) duplicated,
//!   but never corrupted or delivered to the wrong node. Raft tolerates loss and the core
//!   re-sends, so the network drops rather than blocks when a peer is slow or down.
//! - `SendMessage` never blocks the sender: the network actor queues it per peer.
//! - `ReceivedMessage::from` is the peer's id as authenticated by the connection handshake,
//!   never a value read from the message body.
//! - Messages to one peer leave in the order they were sent on a single connection.

use actix::Message;
use raft_types::{NodeId, RaftMessage};

/// Sent by the consensus actor: deliver `message` to peer `to`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SendMessage {
    pub to: NodeId,
    pub message: RaftMessage,
}

/// Sent by the network actor to the consensus actor: `message` arrived from peer `from`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ReceivedMessage {
    pub from: NodeId,
    pub message: RaftMessage,
}

/// Sent by the network actor when a peer connection comes up or goes down. Informational
/// (status, metrics); Raft's correctness never depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub enum PeerEvent {
    Connected { peer: NodeId },
    Disconnected { peer: NodeId },
}
