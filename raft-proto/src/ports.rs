//! The bundles of `Recipient`s handed to each actor when the node is wired together.
//!
//! Only the wiring code (node-bin, integration-tests) names concrete actor types; everything
//! else sees these.

use crate::applier::{Applied, ApplyEntries, Query};
use crate::network::{PeerEvent, ReceivedMessages, SendMessages};
use crate::storage::{StorageEvent, StorageRequest};
use actix::Recipient;

/// What the consensus actor may send.
#[derive(Clone)]
pub struct RaftPorts {
    pub storage: Recipient<StorageRequest>,
    pub network: Recipient<SendMessages>,
    pub apply: Recipient<ApplyEntries>,
    pub query: Recipient<Query>,
}

/// Where the storage actor sends its events (the consensus actor).
#[derive(Clone)]
pub struct StoragePorts {
    pub events: Recipient<StorageEvent>,
}

/// Where the network actor delivers what it receives (the consensus actor).
#[derive(Clone)]
pub struct NetworkPorts {
    pub received: Recipient<ReceivedMessages>,
    pub peer_events: Recipient<PeerEvent>,
}

/// Where the applier reports progress (the consensus actor).
#[derive(Clone)]
pub struct ApplierPorts {
    pub applied: Recipient<Applied>,
}
