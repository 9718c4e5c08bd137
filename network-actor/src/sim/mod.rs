//! The simulated network: the network port for in-process clusters, with seeded faults.
//!
//! One [`SimNetwork`] actor carries the traffic of a whole cluster. Each node gets its own
//! [`SimEndpoint`] actor, which handles `SendMessage` like a real network actor and forwards it
//! with the sender's id attached, so the consensus actor is wired exactly as with TCP and a
//! node cannot send under another node's name.
//!
//! Every directed link `from -> to` has its own [`LinkFaults`]: connected or not, a drop
//! probability, a delay range, a reordering probability and a duplication probability. Every
//! random choice comes from one ChaCha RNG seeded at construction, and every delay is a tokio
//! timer, so on a paused clock (`tokio::time::pause`) a run is a pure function of the seed and
//! the order of the inputs: the same seed replays the same delivery sequence.
//!
//! Without reordering a link is FIFO like a TCP connection (a message never overtakes an
//! earlier one on the same link, whatever its drawn delay). A message still in flight when its
//! link is cut is lost, as a reset connection would lose it.
//!
//! # Layout
//!
//! - [`link_faults`]: `LinkFaults`, the fault model of one directed link.
//! - [`control`]: the messages that register nodes, inject faults and read statistics.
//! - [`sim_network`]: the `SimNetwork` actor: links, the in-flight queue, the RNG.
//! - [`sim_endpoint`]: the `SimEndpoint` actor, one per node.

pub mod control;
pub mod link_faults;
pub mod sim_endpoint;
pub mod sim_network;

pub use control::{
    Direction, GetNodeStats, GetSimStats, Heal, HealAll, Isolate, LinkSet, Partition, RegisterNode,
    SetDefaultLinkFaults, SetLinkFaults, SimSend, SimStats,
};
pub use link_faults::LinkFaults;
pub use sim_endpoint::SimEndpoint;
pub use sim_network::SimNetwork;
