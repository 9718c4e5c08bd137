//! `ConsistencyChecker`: every `consistency.check_interval_ms`, fetches each peer's
//! checkpoints from `GET /v1/internal/checkpoints` on its client address and compares them
//! with this node's at the indexes both have.
//!
//! # Correctness
//!
//! - Only checkpoints at the same index are compared, and each covers the whole history up to
//!   it, so two correct replicas never differ (see `applier_actor::applied_checkpoints`); a
//!   difference is proof that one of the two applied something else.
//! - A reply from another node id or another cluster than expected is an error, never a
//!   comparison: a misconfigured address must not raise a false alarm.
//! - A peer that cannot be reached is counted and skipped: the check is about state, not
//!   liveness, which Raft already handles.
//! - Every connection binds to the IP of this node's `peer_addr`, like all node-to-node
//!   traffic (docs/API.md).

use crate::consistency::corruption_alarm::CorruptionAlarm;
use crate::consistency::ConsistencyState;
use crate::http_api::forwarder::node_to_node_client;
use applier_actor::{compare_checkpoints, CheckpointComparison, CheckpointsSnapshot};
use raft_types::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The path peers serve their checkpoints on.
pub const CHECKPOINTS_PATH: &str = "/v1/internal/checkpoints";

/// The JSON of `GET /v1/internal/checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointsReply {
    pub node_id: NodeId,
    pub cluster_id: String,
    #[serde(flatten)]
    pub snapshot: CheckpointsSnapshot,
}

/// Counters of the check, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConsistencyStats {
    /// Peer replies compared that shared at least one checkpoint index with this node.
    comparisons_total: AtomicU64,
    /// Peer fetches that failed (unreachable, bad answer, another node or cluster).
    peer_errors_total: AtomicU64,
}

impl ConsistencyStats {
    pub fn comparisons_total(&self) -> u64 {
        self.comparisons_total.load(Ordering::Relaxed)
    }

    pub fn peer_errors_total(&self) -> u64 {
        self.peer_errors_total.load(Ordering::Relaxed)
    }
}

/// Why one peer could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum PeerCheckError {
    #[error("cannot fetch the checkpoints of node {peer}: {source}")]
    Fetch {
        peer: NodeId,
        source: reqwest::Error,
    },
    #[error("node {peer} answered {status} for its checkpoints")]
    Status { peer: NodeId, status: u16 },
    #[error("the address of node {peer} answered as node {answered} of cluster {cluster_id:?}")]
    WrongNode {
        peer: NodeId,
        answered: NodeId,
        cluster_id: String,
    },
}

pub struct ConsistencyChecker {
    state: ConsistencyState,
    /// Every peer's client address (this node excluded).
    peers: BTreeMap<NodeId, SocketAddr>,
    client: reqwest::Client,
    /// `http`, or `https` with TLS on; and the token to present when `[auth]` is on.
    scheme: &'static str,
    token: Option<String>,
    /// When set, the peers of each round come from here instead (members added after the
    /// start are compared too, removed ones no longer).
    address_book: Option<crate::address_book::AddressBook>,
}

/// A peer slower than this to answer is skipped for this round: the next round comes soon.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

impl ConsistencyChecker {
    /// `bind_ip` is the IP of this node's `peer_addr`; `peers` maps each other member to its
    /// client address.
    pub fn new(
        state: ConsistencyState,
        bind_ip: IpAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> Result<ConsistencyChecker, reqwest::Error> {
        let client = node_to_node_client(bind_ip, FETCH_TIMEOUT)?;
        Ok(ConsistencyChecker {
            state,
            peers,
            client,
            scheme: "http",
            token: None,
            address_book: None,
        })
    }

    /// [`ConsistencyChecker::new`] over HTTPS and with a token, as `access` says.
    pub fn secured(
        state: ConsistencyState,
        bind_ip: IpAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
        access: &crate::security::NodeToNode,
    ) -> Result<ConsistencyChecker, reqwest::Error> {
        Ok(ConsistencyChecker {
            state,
            peers,
            client: access.client(bind_ip, FETCH_TIMEOUT)?,
            scheme: access.scheme(),
            token: access.token.clone(),
            address_book: None,
        })
    }

    /// Takes each round's peers from `book` (every member but this node with a known client
    /// address), so the check follows the configuration in force.
    pub fn following(mut self, book: crate::address_book::AddressBook) -> ConsistencyChecker {
        self.address_book = Some(book);
        self
    }

    /// Checks every peer each `interval`, forever (the task ends with the node's System).
    pub async fn run(self, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        // A round slowed by an unreachable peer is not made up for with a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.check_all_peers().await;
        }
    }

    /// One round: every peer fetched concurrently, each compared with this node's
    /// checkpoints; a mismatch raises the alarm. Returns each peer's outcome.
    pub async fn check_all_peers(
        &self,
    ) -> BTreeMap<NodeId, Result<CheckpointComparison, PeerCheckError>> {
        let peers = match &self.address_book {
            Some(book) => book.client_addrs_except(self.state.node_id),
            None => self.peers.clone(),
        };
        let checks = peers
            .into_iter()
            .map(|(peer, address)| async move { (peer, self.check_peer(peer, address).await) });
        let outcomes: BTreeMap<_, _> = futures::future::join_all(checks)
            .await
            .into_iter()
            .collect();
        for (peer, outcome) in &outcomes {
            if let Err(error) = outcome {
                self.state
                    .stats
                    .peer_errors_total
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer = peer.0, %error, "consistency check skipped a peer");
            }
        }
        outcomes
    }

    async fn check_peer(
        &self,
        peer: NodeId,
        address: SocketAddr,
    ) -> Result<CheckpointComparison, PeerCheckError> {
        let reply = self.fetch(peer, address).await?;
        if reply.node_id != peer || reply.cluster_id != self.state.cluster_id {
            return Err(PeerCheckError::WrongNode {
                peer,
                answered: reply.node_id,
                cluster_id: reply.cluster_id,
            });
        }
        let local = self.state.checkpoints.snapshot();
        let comparison = compare_checkpoints(&local.checkpoints, &reply.snapshot.checkpoints);
        if comparison.shared_indexes > 0 {
            self.state
                .stats
                .comparisons_total
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(mismatch) = comparison.mismatch {
            let alarm = CorruptionAlarm::new(self.state.node_id, peer, mismatch);
            self.state.alarms.raise_corruption(alarm);
        }
        Ok(comparison)
    }

    async fn fetch(
        &self,
        peer: NodeId,
        address: SocketAddr,
    ) -> Result<CheckpointsReply, PeerCheckError> {
        let fetch_error = |source| PeerCheckError::Fetch { peer, source };
        let mut request = self
            .client
            .get(format!("{}://{address}{CHECKPOINTS_PATH}", self.scheme));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(fetch_error)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(PeerCheckError::Status { peer, status });
        }
        response.json().await.map_err(fetch_error)
    }
}
