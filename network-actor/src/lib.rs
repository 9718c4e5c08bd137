//! The peer network: the actors behind the network port of `raft_proto::network`.
//!
//! Two interchangeable implementations handle the same port messages (`SendMessage(s)` in,
//! `ReceivedMessages` and `PeerEvent` out), so the wiring code picks one and the consensus actor
//! never knows which:
//!
//! - [`TcpNetwork`]: real nodes. A listener on `peer_addr`, one outbound connection per peer
//!   bound to this node's own IP, a handshake (protocol version, `cluster_id`, node id),
//!   length-prefixed frames, a bounded queue per peer, reconnection with capped exponential
//!   backoff and jitter.
//! - [`sim::SimNetwork`]: in-process clusters. Per directed link: connect/disconnect, drop
//!   probability, delay range, reordering and duplication, all drawn from one seeded RNG and
//!   timed on the tokio clock, so it runs on a paused clock and a seed replays a run.
//!
//! # Wiring
//!
//! ```no_run
//! # async fn wire(
//! #     config: network_actor::NetworkConfig,
//! #     ports: raft_proto::ports::NetworkPorts,
//! #     sim_ports: raft_proto::ports::NetworkPorts,
//! # ) -> Result<(), network_actor::NetworkError> {
//! use actix::{Actor, Recipient};
//! use network_actor::sim::{Partition, SimEndpoint, SimNetwork};
//! use network_actor::TcpNetwork;
//! use raft_proto::network::SendMessages;
//! use raft_types::NodeId;
//!
//! // A real node: hand the consensus actor the TCP actor's recipient.
//! let tcp = TcpNetwork::bind(config, ports).await?.start();
//! let to_peers: Recipient<SendMessages> = tcp.recipient();
//!
//! // An in-process cluster: one simulated network, one endpoint per node, the same port.
//! let network = SimNetwork::new(42).start();
//! let endpoint = SimEndpoint::start_for(&network, NodeId(1), sim_ports);
//! let to_peers: Recipient<SendMessages> = endpoint.recipient();
//! network.do_send(Partition::one_way([NodeId(1)], [NodeId(2)]));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! Public: what the wiring code needs ([`TcpNetwork`], [`NetworkConfig`], [`StopNetwork`] and
//! their errors), the wire protocol a second implementation or a bad-input test speaks
//! ([`frame`], [`handshake`]), and the simulated network ([`sim`]). Private, behind them:
//!
//! - `config`: `NetworkConfig`, what a TCP network actor needs to know.
//! - `counters`: the atomic counters behind `NetworkStats`.
//! - `backoff`: capped exponential reconnection delays with jitter.
//! - `outbox`: the bounded queue of encoded frames between the actor and one peer's task.
//! - `outbound`: the task that owns the connection for sending to one peer.
//! - `inbound`: the listener and the tasks that read from connections peers opened.
//! - `socket_options`: nodelay, keepalive and user timeout on every peer connection.
//! - `tcp_network`: the `TcpNetwork` actor that ties them together.

mod backoff;
mod config;
mod counters;
pub mod frame;
pub mod handshake;
mod inbound;
mod outbound;
mod outbox;
pub mod sim;
mod socket_options;
mod tcp_network;

pub use config::{AdmittedPeers, ConfigError, NetworkConfig};
pub use tcp_network::{NetworkError, StopNetwork, TcpNetwork};
