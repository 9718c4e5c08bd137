//! The messages of the simulated network beyond the network port: node registration, the
//! sender-stamped send, fault injection and statistics.
//!
//! Partitions are per direction: `Partition::one_way([a], [b])` stops `a -> b` and leaves
//! `b -> a` working, which is how asymmetric network failures (and their Raft corner cases,
//! like a leader that can send but not hear) are produced.

use super::link_faults::LinkFaults;
use actix::Message;
use raft_proto::network::NetworkStats;
use raft_proto::ports::NetworkPorts;
use raft_types::{NodeId, RaftMessage};
use std::collections::BTreeSet;

/// Adds `node` (or replaces it, when a node restarts) with the recipients it delivers to.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterNode {
    pub node: NodeId,
    pub ports: NetworkPorts,
}

/// A `SendMessage` with its sender attached; sent by a node's [`super::SimEndpoint`].
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SimSend {
    pub from: NodeId,
    pub to: NodeId,
    pub message: RaftMessage,
}

/// Which directed links between two groups a partition or heal applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Only the links from `from` to `to`.
    OneWay,
    /// Both `from -> to` and `to -> from`.
    BothWays,
}

/// The directed links between two groups of nodes that a [`Partition`] or [`Heal`] acts on:
/// from every node of `from` to every node of `to` (and back, when `direction` is
/// `BothWays`). A node is never linked to itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSet {
    pub from: BTreeSet<NodeId>,
    pub to: BTreeSet<NodeId>,
    pub direction: Direction,
}

/// Disconnects the links of `links`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Partition {
    pub links: LinkSet,
}

/// Reconnects the links a [`Partition`] with the same link set would cut; other faults stay.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Heal {
    pub links: LinkSet,
}

/// Reconnects every link; other faults stay.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct HealAll;

/// Disconnects `node` from every other registered node, in both directions.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Isolate {
    pub node: NodeId,
}

/// Replaces the fault model of the one directed link `from -> to`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SetLinkFaults {
    pub from: NodeId,
    pub to: NodeId,
    pub faults: LinkFaults,
}

/// Replaces the fault model of every link, keeping each link's connected state.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SetDefaultLinkFaults {
    pub faults: LinkFaults,
}

/// Asks for one node's counters in the shape of the network port's `NetworkStats`; a node's
/// [`super::SimEndpoint`] answers `GetNetworkStats` with it, so metrics code works unchanged.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "NetworkStats")]
pub struct GetNodeStats {
    pub node: NodeId,
}

/// Asks for the simulated network's counters.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "SimStats")]
pub struct GetSimStats;

/// What happened to the messages the simulated network was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// `SimSend`s received.
    pub sent: u64,
    /// Copies handed to a destination's `Recipient<ReceivedMessages>`.
    pub delivered: u64,
    /// Lost to a link's `drop_probability`.
    pub dropped_by_chance: u64,
    /// Lost because the link was disconnected when sent or when due.
    pub dropped_disconnected: u64,
    /// Addressed to a node that was never registered.
    pub dropped_unknown_node: u64,
    /// Extra copies created by `duplicate_probability`.
    pub duplicated: u64,
    /// Copies waiting for their delivery time.
    pub in_flight: u64,
}

impl LinkSet {
    pub fn new(
        from: impl IntoIterator<Item = NodeId>,
        to: impl IntoIterator<Item = NodeId>,
        direction: Direction,
    ) -> LinkSet {
        LinkSet {
            from: from.into_iter().collect(),
            to: to.into_iter().collect(),
            direction,
        }
    }

    /// The directed links of this set, in a deterministic order.
    pub(crate) fn directed_links(&self) -> Vec<(NodeId, NodeId)> {
        let mut links = Vec::new();
        for source in &self.from {
            for destination in self.to.iter().filter(|destination| *destination != source) {
                links.push((*source, *destination));
                if self.direction == Direction::BothWays {
                    links.push((*destination, *source));
                }
            }
        }
        links
    }
}

impl Partition {
    pub fn one_way(
        from: impl IntoIterator<Item = NodeId>,
        to: impl IntoIterator<Item = NodeId>,
    ) -> Partition {
        Partition {
            links: LinkSet::new(from, to, Direction::OneWay),
        }
    }

    pub fn both_ways(
        from: impl IntoIterator<Item = NodeId>,
        to: impl IntoIterator<Item = NodeId>,
    ) -> Partition {
        Partition {
            links: LinkSet::new(from, to, Direction::BothWays),
        }
    }
}

impl Heal {
    pub fn one_way(
        from: impl IntoIterator<Item = NodeId>,
        to: impl IntoIterator<Item = NodeId>,
    ) -> Heal {
        Heal {
            links: LinkSet::new(from, to, Direction::OneWay),
        }
    }

    pub fn both_ways(
        from: impl IntoIterator<Item = NodeId>,
        to: impl IntoIterator<Item = NodeId>,
    ) -> Heal {
        Heal {
            links: LinkSet::new(from, to, Direction::BothWays),
        }
    }
}
