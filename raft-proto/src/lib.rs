//! The actor protocol: the messages that cross the actor boundaries of a Raft node's ports
//! (storage, network, applier, client), and the [`ports`] that bundle the `Recipient`s each
//! actor may send to. Messages that belong to one implementation stay with it: `GetDrainState`
//! (raft-actor, the node's graceful stop), `StopNetwork` (network-actor's TCP transport) and the
//! simulated network's fault controls (`network_actor::sim`).
//!
//! This is the page to read to learn who says what. Actors never name each other's concrete
//! types; they hold `Recipient<M>` for the messages below, so any actor that handles the same
//! messages (an in-memory store, a simulated network, another state machine) can be swapped in
//! by the wiring code alone.
//!
//! ```text
//!  client ──Propose/Read/GetStatus──▶ raft ──StorageRequest──▶ storage
//!                                     ▲  ◀──StorageEvent────────┘
//!                                     │ ──SendMessages────────▶ network ──▶ peers
//!                                     │ ◀──ReceivedMessages─────┘
//!                                     │ ──ApplyEntries/Query──▶ applier ──▶ client replies
//!                                     └──◀──Applied─────────────┘
//! ```
//!
//! Naming: requests are imperative (`StorageRequest::Append`), events past tense
//! (`StorageEvent::Persisted`).
//!
//! # Layout
//!
//! - [`storage`]: the log writer's port.
//! - [`snapshot`]: the snapshot store every actor that touches snapshot files shares.
//! - [`network`]: the peer network's port.
//! - [`applier`]: the state-machine applier's port.
//! - [`admin`]: membership change and leadership transfer requests, and their errors.
//! - [`client`]: requests from the client API to the consensus actor, and their errors.
//! - [`metrics`]: the latency histogram every actor reports with.
//! - [`ports`]: the `Recipient` bundles handed to each actor at wiring time.

#![warn(missing_docs)]

pub mod admin;
pub mod applier;
pub mod client;
pub mod metrics;
pub mod network;
pub mod ports;
pub mod snapshot;
pub mod storage;
