//! `Forwarder`: relays a request a follower cannot serve to the leader's client API.
//!
//! Every connection it opens binds to the IP of this node's `peer_addr` (docs/API.md), so a
//! firewall rule between two node addresses also cuts forwarded requests. A forwarded request
//! carries [`FORWARDED_BY_HEADER`]; a node receiving one that is not the leader answers `503`
//! instead of forwarding again, so two nodes with stale leader hints cannot bounce a request
//! between them.
//!
//! # Correctness
//!
//! - A connection that cannot be opened means nothing was sent: `503`, safe to retry.
//! - A failure after the request may have reached the leader (timeout, reset, a cut link) is
//!   `504` for a write (it may have entered the log) and `503` for a read (reads change nothing).
//! - The leader's answer is relayed with its status, content type and body unchanged.
//!
//! With TLS on the forwarder speaks HTTPS, presenting this node's certificate; the client's
//! `Authorization` header travels with the request, so the leader checks the client's own
//! token (a follower never lends its authority to a request).

use crate::address_book::AddressBook;
use crate::http_api::api_error::ApiError;
use crate::security::NodeToNode;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use raft_types::NodeId;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Marks a request relayed by another node; the value is that node's id.
pub const FORWARDED_BY_HEADER: &str = "x-raft-forwarded-by";

/// Whether a request can change state, which decides what a broken forward means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Write,
}

/// An HTTP client for requests to other nodes' client APIs (forwarding, the consistency
/// check). Every connection binds to `bind_ip`, the IP of this node's `peer_addr`, so that a
/// firewall rule between two node addresses cuts all their traffic (docs/API.md); a second is
/// plenty to connect on any network a cluster runs on, and `timeout` bounds the whole request.
pub fn node_to_node_client(
    bind_ip: IpAddr,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .local_address(bind_ip)
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(timeout)
        .build()
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    own_id: NodeId,
    client: reqwest::Client,
    /// Shared with the node's membership watch, so a leader added after this node started is
    /// found too.
    addresses: AddressBook,
    /// `http`, or `https` with TLS on.
    scheme: &'static str,
}

impl Forwarder {
    /// `bind_ip` is the IP of this node's `peer_addr`. `request_timeout` should exceed the
    /// leader's own request timeout, so its `504` reaches the client rather than ours.
    pub fn new(
        own_id: NodeId,
        bind_ip: IpAddr,
        client_addrs: BTreeMap<NodeId, SocketAddr>,
        request_timeout: Duration,
    ) -> Result<Forwarder, reqwest::Error> {
        Forwarder::secured(
            own_id,
            bind_ip,
            AddressBook::from_client_addrs(client_addrs),
            request_timeout,
            &NodeToNode::default(),
        )
    }

    /// As [`Forwarder::new`], looking addresses up in `addresses`, which the node keeps
    /// following the configuration in force.
    pub fn with_address_book(
        own_id: NodeId,
        bind_ip: IpAddr,
        addresses: AddressBook,
        request_timeout: Duration,
    ) -> Result<Forwarder, reqwest::Error> {
        Forwarder::secured(
            own_id,
            bind_ip,
            addresses,
            request_timeout,
            &NodeToNode::default(),
        )
    }

    /// [`Forwarder::with_address_book`] over HTTPS when `access` has TLS.
    pub fn secured(
        own_id: NodeId,
        bind_ip: IpAddr,
        addresses: AddressBook,
        request_timeout: Duration,
        access: &NodeToNode,
    ) -> Result<Forwarder, reqwest::Error> {
        let client = access.client(bind_ip, request_timeout)?;
        Ok(Forwarder {
            own_id,
            client,
            addresses,
            scheme: access.scheme(),
        })
    }

    pub fn client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addresses.client_addr(id)
    }

    /// The address book this forwarder looks leaders up in.
    pub fn address_book(&self) -> &AddressBook {
        &self.addresses
    }

    /// Was this request already forwarded by another node?
    pub fn was_forwarded(request: &HttpRequest) -> bool {
        request.headers().contains_key(FORWARDED_BY_HEADER)
    }

    /// The error for a request this node cannot serve and will not forward.
    pub fn not_leader(&self, leader_id: Option<NodeId>) -> ApiError {
        let message = match leader_id {
            Some(leader) => format!("node {} is not the leader; node {leader} is", self.own_id),
            None => format!(
                "node {} knows no leader (election in progress?)",
                self.own_id
            ),
        };
        ApiError::NotLeader {
            message,
            leader_id,
            leader_client_addr: leader_id.and_then(|id| self.client_addr(id)),
        }
    }

    /// Sends `request` (with `body`) to `leader` and relays its answer.
    pub async fn forward(
        &self,
        request: &HttpRequest,
        body: Bytes,
        leader: NodeId,
        effect: Effect,
    ) -> Result<HttpResponse, ApiError> {
        self.forward_within(request, body, leader, effect, None)
            .await
    }

    /// As [`Forwarder::forward`], with `timeout` in place of the client's own when given:
    /// admin requests wait for a change to complete, which may take longer than a write.
    pub async fn forward_within(
        &self,
        request: &HttpRequest,
        body: Bytes,
        leader: NodeId,
        effect: Effect,
        timeout: Option<Duration>,
    ) -> Result<HttpResponse, ApiError> {
        if leader == self.own_id || Forwarder::was_forwarded(request) {
            return Err(self.not_leader(Some(leader)));
        }
        let Some(address) = self.client_addr(leader) else {
            return Err(self.not_leader(Some(leader)));
        };
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", |path| path.as_str());
        let url = format!("{}://{address}{path_and_query}", self.scheme);
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|_| ApiError::unavailable("cannot forward this method"))?;
        let mut outgoing = self
            .client
            .request(method, &url)
            .header(FORWARDED_BY_HEADER, self.own_id.0.to_string())
            .body(body);
        if let Some(content_type) = request.headers().get("content-type") {
            outgoing = outgoing.header("content-type", content_type.as_bytes());
        }
        if let Some(authorization) = request.headers().get("authorization") {
            outgoing = outgoing.header("authorization", authorization.as_bytes());
        }
        if let Some(timeout) = timeout {
            outgoing = outgoing.timeout(timeout);
        }
        tracing::debug!(%leader, %url, "forwarding to the leader");
        let response = outgoing
            .send()
            .await
            .map_err(|error| self.broken(leader, effect, &error))?;
        let status = StatusCode::from_u16(response.status().as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = response.headers().get("content-type").cloned();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.broken(leader, effect, &error))?;
        let mut relayed = HttpResponse::build(status);
        if let Some(content_type) = content_type {
            relayed.insert_header(("content-type", content_type.as_bytes()));
        }
        Ok(relayed.body(bytes))
    }

    fn broken(&self, leader: NodeId, effect: Effect, error: &reqwest::Error) -> ApiError {
        if error.is_connect() {
            return ApiError::unavailable(format!(
                "cannot reach the leader (node {leader}): {error}"
            ));
        }
        match effect {
            Effect::Read => ApiError::unavailable(format!(
                "the path to the leader (node {leader}) broke: {error}"
            )),
            Effect::Write => ApiError::outcome_unknown(format!(
                "the path to the leader (node {leader}) broke after forwarding; \
                 the write may still be applied: {error}"
            )),
        }
    }
}
