//! The bundles of `Recipient`s handed to each actor when the node is wired together.
//!
//! Only the wiring code (node-bin, integration-tests) names concrete actor types; everything
//! else sees these.

use crate::applier::{Applied, ApplyEntries, Query, RestoreSnapshot};
use crate::network::{PeerEvent, ReceivedMessages, SendMessages};
use crate::snapshot::SnapshotStore;
use crate::storage::{StorageEvent, StorageRequest};
use actix::Recipient;
use std::sync::Arc;

/// What the consensus actor may send.
#[derive(Clone)]
pub struct RaftPorts {
    /// The storage actor: the one ordered path to disk.
    pub storage: Recipient<StorageRequest>,
    /// The network actor: messages to peers.
    pub network: Recipient<SendMessages>,
    /// The applier: committed entries.
    pub apply: Recipient<ApplyEntries>,
    /// The applier: linearizable reads, once ready.
    pub query: Recipient<Query>,
    /// The applier: restore a snapshot a leader sent. The same actor as `apply`, so the
    /// restore is ordered with the entries around it (one mailbox).
    pub restore: Recipient<RestoreSnapshot>,
    /// Where this node's snapshot files are, for reading the chunks a leader sends. `None`
    /// for a node that never compacts its log and never sends a snapshot (it can still
    /// receive one: the storage actor writes those).
    pub snapshot_store: Option<Arc<dyn SnapshotStore>>,
}

/// Where the storage actor sends its events (the consensus actor).
#[derive(Clone)]
pub struct StoragePorts {
    /// Completions and the failure report.
    pub events: Recipient<StorageEvent>,
}

/// Where the network actor delivers what it receives (the consensus actor).
#[derive(Clone)]
pub struct NetworkPorts {
    /// Messages received from peers.
    pub received: Recipient<ReceivedMessages>,
    /// Connection up and down events, informational.
    pub peer_events: Recipient<PeerEvent>,
}

/// Where the applier reports progress (the consensus actor).
#[derive(Clone)]
pub struct ApplierPorts {
    /// Apply progress.
    pub applied: Recipient<Applied>,
}
