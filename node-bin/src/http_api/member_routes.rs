//! The admin API of membership change (docs/API.md): `GET`/`POST /v1/members`, `POST
//! /v1/members/{id}/promote`, `DELETE /v1/members/{id}` and `POST /v1/leader/transfer`.
//!
//! Each goes to the consensus actor as a `raft-proto` admin message (`GetMembership`,
//! `ChangeMembership`, `TransferLeadership`); a node that is not the leader forwards the
//! request to the leader exactly like a write ([`Forwarder`](super::forwarder::Forwarder)), so
//! any node takes any admin request. `GET /v1/members` is forwarded too, because only the
//! leader knows each member's replication progress.
//!
//! # Correctness
//!
//! - A change is answered `200` only once the consensus actor reports it complete: its entry
//!   committed and any joint configuration it entered left. A transfer only once the target
//!   leads.
//! - Every refusal means nothing was done and names its cause; `504` (outcome unknown) is kept
//!   for a change that entered the log and was lost track of, or a forward that broke after
//!   sending.
//! - A removed node refuses (`503 removed`) instead of forwarding: it must not act as a member.

use crate::http_api::api_error::ApiError;
use crate::http_api::api_state::ApiState;
use crate::http_api::forwarder::Effect;
use crate::http_api::handlers::{read_body, removed_or, send};
use crate::http_api::query::no_query_parameters;
use actix::Recipient;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use raft_proto::admin::{
    AdminError, ChangeMembership, GetMembership, MembershipStatus, TransferLeadership,
};
use raft_types::{MemberAddress, MembershipChange, MembershipChangeError, NodeId};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a handler waits for the consensus actor's answer to a change or a transfer. The
/// actor itself gives up after `raft_actor::ADMIN_TIMEOUT` (30 s) and answers then, so this is
/// only a backstop against an actor that never answers.
const ADMIN_WAIT: Duration = Duration::from_secs(40);

/// A forwarded admin request waits for the leader's own answer, which comes within
/// [`ADMIN_WAIT`].
const ADMIN_FORWARD_TIMEOUT: Duration = Duration::from_secs(45);

/// The admin requests' recipients, registered as app data of their own (not in `ApiPorts`), so
/// an API served without them (the tests' fakes) answers `503` on these routes alone.
#[derive(Clone)]
pub struct AdminPorts {
    pub change: Recipient<ChangeMembership>,
    pub transfer: Recipient<TransferLeadership>,
    pub membership: Recipient<GetMembership>,
}

fn admin_ports(admin: Option<web::Data<AdminPorts>>) -> Result<web::Data<AdminPorts>, ApiError> {
    admin.ok_or_else(|| ApiError::unavailable("this node serves no admin API"))
}

fn bad_json(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_json", message)
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Refused {
        status,
        code,
        message: message.into(),
    }
}

/// `GET /v1/members`: the configuration in force with each member's progress, from the
/// leader.
pub async fn list_members(
    request: HttpRequest,
    admin: Option<web::Data<AdminPorts>>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let admin = admin_ports(admin)?;
    let status =
        match tokio::time::timeout(state.request_timeout, admin.membership.send(GetMembership))
            .await
        {
            Ok(Ok(status)) => status,
            Ok(Err(_)) => return Err(ApiError::unavailable("the consensus actor is gone")),
            Err(_) => return Err(ApiError::unavailable("the consensus actor did not answer")),
        };
    if status.removed {
        return Err(removed_or(&state, ApiError::unavailable("removed")).await);
    }
    if status.progress.is_some() && status.leader_last_index.is_some() {
        return Ok(HttpResponse::Ok().json(members_json(&status, &state)));
    }
    match status.leader_id {
        Some(leader) => {
            state
                .forwarder
                .forward(&request, Bytes::new(), leader, Effect::Read)
                .await
        }
        None => Err(state.forwarder.not_leader(None)),
    }
}

/// The body of `GET /v1/members` on the leader.
fn members_json(status: &MembershipStatus, state: &ApiState) -> serde_json::Value {
    let membership = &status.membership;
    let last_index = status.leader_last_index.map_or(0, |index| index.0);
    let progress = status.progress.as_deref().unwrap_or_default();
    let book = state.forwarder.address_book();
    let members: Vec<serde_json::Value> = membership
        .all_members()
        .into_iter()
        .map(|id| {
            let row = progress.iter().find(|row| row.id == id);
            let addrs = book.get(id);
            let match_index = row.map(|row| row.match_index.0);
            // Which halves of a joint configuration it votes in: an operator watching a
            // change sees who is coming and who is going.
            let joint = membership.outgoing_voters.as_ref().and_then(|outgoing| {
                match (membership.voters.contains(&id), outgoing.contains(&id)) {
                    (true, true) => Some("both"),
                    (true, false) => Some("incoming"),
                    (false, true) => Some("outgoing"),
                    (false, false) => None,
                }
            });
            json!({
                "id": id.0,
                "peer_addr": addrs.and_then(|a| a.peer_addr).map(|a| a.to_string()),
                "client_addr": addrs.and_then(|a| a.client_addr).map(|a| a.to_string()),
                "voter": membership.is_voter(id),
                "leader": status.leader_id == Some(id),
                "joint": joint,
                "match_index": match_index,
                "lag": match_index.map(|index| last_index.saturating_sub(index)),
                "last_contact_ms": row
                    .and_then(|row| row.last_contact)
                    .map(|contact| contact.as_millis() as u64),
            })
        })
        .collect();
    json!({
        "config_index": status.config_index.0,
        "committed": status.committed,
        "joint": membership.is_joint(),
        "leader_id": status.leader_id.map(|id| id.0),
        "leader_last_index": last_index,
        "members": members,
    })
}

/// The body of `POST /v1/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    id: u64,
    peer_addr: String,
    client_addr: String,
}

fn parse_address(field: &str, text: &str) -> Result<SocketAddr, ApiError> {
    text.parse().map_err(|error| {
        ApiError::bad_request(
            "bad_address",
            format!("`{field}` {text:?} is not IP:port: {error}"),
        )
    })
}

fn parse_add_body(body: &[u8]) -> Result<MembershipChange, ApiError> {
    let parsed: AddBody = serde_json::from_slice(body).map_err(|error| {
        bad_json(format!(
            "expected {{\"id\": N, \"peer_addr\": \"IP:port\", \"client_addr\": \"IP:port\"}}: \
             {error}"
        ))
    })?;
    if parsed.id == 0 {
        return Err(ApiError::bad_request("bad_id", "member ids start at 1"));
    }
    let peer_addr = parse_address("peer_addr", &parsed.peer_addr)?;
    let client_addr = parse_address("client_addr", &parsed.client_addr)?;
    if peer_addr == client_addr {
        return Err(ApiError::bad_request(
            "bad_address",
            "`peer_addr` and `client_addr` must differ",
        ));
    }
    Ok(MembershipChange::AddLearner {
        id: NodeId(parsed.id),
        address: MemberAddress {
            peer_addr: peer_addr.to_string(),
            client_addr: client_addr.to_string(),
        },
    })
}

/// The `{id}` of the path: a member id, > 0.
fn path_id(request: &HttpRequest) -> Result<NodeId, ApiError> {
    let text = request.match_info().get("id").unwrap_or_default();
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(NodeId(id)),
        _ => Err(ApiError::bad_request(
            "bad_id",
            format!("{text:?} is not a member id (an integer >= 1)"),
        )),
    }
}

/// `POST /v1/members`: add a learner.
pub async fn add_member(
    request: HttpRequest,
    payload: web::Payload,
    admin: Option<web::Data<AdminPorts>>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let admin = admin_ports(admin)?;
    let body = read_body(&request, payload, state.max_value_bytes, &state).await?;
    let change = parse_add_body(&body)?;
    change_membership(&request, body, change, &admin, &state).await
}

/// `POST /v1/members/{id}/promote`: make a caught-up learner a voter.
pub async fn promote_member(
    request: HttpRequest,
    admin: Option<web::Data<AdminPorts>>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let admin = admin_ports(admin)?;
    let id = path_id(&request)?;
    let change = MembershipChange::PromoteLearner { id };
    change_membership(&request, Bytes::new(), change, &admin, &state).await
}

/// `DELETE /v1/members/{id}`: remove a voter or a learner for good.
pub async fn remove_member(
    request: HttpRequest,
    admin: Option<web::Data<AdminPorts>>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let admin = admin_ports(admin)?;
    let id = path_id(&request)?;
    let change = MembershipChange::RemoveMember { id };
    change_membership(&request, Bytes::new(), change, &admin, &state).await
}

async fn change_membership(
    request: &HttpRequest,
    body: Bytes,
    change: MembershipChange,
    admin: &AdminPorts,
    state: &ApiState,
) -> Result<HttpResponse, ApiError> {
    state.refuse_when_alarmed()?;
    let (responder, answer) = oneshot::channel();
    send(&admin.change, ChangeMembership { change, responder })?;
    match await_admin(answer).await? {
        Ok(index) => Ok(HttpResponse::Ok().json(json!({ "index": index.0 }))),
        Err(error) => forward_or_refuse(request, body, error, state).await,
    }
}

/// The body of `POST /v1/leader/transfer`: `{"to": id}`, or `{}` (or nothing) for the most
/// up-to-date other voter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    #[serde(default)]
    to: Option<u64>,
}

fn parse_transfer_body(body: &[u8]) -> Result<Option<NodeId>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: TransferBody = serde_json::from_slice(body)
        .map_err(|error| bad_json(format!("expected {{\"to\": N}} or {{}}: {error}")))?;
    match parsed.to {
        Some(0) => Err(ApiError::bad_request("bad_id", "member ids start at 1")),
        to => Ok(to.map(NodeId)),
    }
}

/// `POST /v1/leader/transfer`: hand leadership over; answered once the new leader leads.
pub async fn transfer_leadership(
    request: HttpRequest,
    payload: web::Payload,
    admin: Option<web::Data<AdminPorts>>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let admin = admin_ports(admin)?;
    let body = read_body(&request, payload, state.max_value_bytes, &state).await?;
    let to = parse_transfer_body(&body)?;
    let (responder, answer) = oneshot::channel();
    send(&admin.transfer, TransferLeadership { to, responder })?;
    match await_admin(answer).await? {
        Ok(leader) => Ok(HttpResponse::Ok().json(json!({ "leader_id": leader.0 }))),
        Err(error) => forward_or_refuse(&request, body, error, &state).await,
    }
}

/// The consensus actor's answer, or `504` when it gives none.
async fn await_admin<T>(
    answer: oneshot::Receiver<Result<T, AdminError>>,
) -> Result<Result<T, AdminError>, ApiError> {
    match tokio::time::timeout(ADMIN_WAIT, answer).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(_dropped)) => Err(ApiError::outcome_unknown(
            "the node dropped the request; a change may still complete",
        )),
        Err(_elapsed) => Err(ApiError::outcome_unknown(format!(
            "not answered within {} s; a change may still complete",
            ADMIN_WAIT.as_secs()
        ))),
    }
}

/// Forwards to the leader when this node is not it (relaying its answer); otherwise the HTTP
/// refusal for `error`.
async fn forward_or_refuse(
    request: &HttpRequest,
    body: Bytes,
    error: AdminError,
    state: &ApiState,
) -> Result<HttpResponse, ApiError> {
    match error {
        AdminError::NotLeader {
            leader_hint: Some(leader),
        } => {
            state
                .forwarder
                .forward_within(
                    request,
                    body,
                    leader,
                    Effect::Write,
                    Some(ADMIN_FORWARD_TIMEOUT),
                )
                .await
        }
        AdminError::NotLeader { leader_hint: None } => Err(state.forwarder.not_leader(None)),
        AdminError::Unavailable { reason } => {
            Err(removed_or(state, ApiError::unavailable(reason)).await)
        }
        other => Err(admin_refusal(other)),
    }
}

/// The status and code of each refusal (docs/API.md).
fn admin_refusal(error: AdminError) -> ApiError {
    let message = error.to_string();
    match error {
        AdminError::Refused(refusal) => {
            let (status, code) = match refusal {
                MembershipChangeError::ChangeInProgress => {
                    (StatusCode::CONFLICT, "change_in_progress")
                }
                // Retryable at once, like any 503: nothing was done and the leader will be
                // ready after one round trip.
                MembershipChangeError::LeaderNotReady => {
                    (StatusCode::SERVICE_UNAVAILABLE, "leader_not_ready")
                }
                MembershipChangeError::IdReused { .. } => (StatusCode::CONFLICT, "id_reused"),
                MembershipChangeError::NoSuchMember { .. } => {
                    (StatusCode::NOT_FOUND, "no_such_member")
                }
                MembershipChangeError::AlreadyVoter { .. } => {
                    (StatusCode::CONFLICT, "already_voter")
                }
                MembershipChangeError::LastVoter { .. } => (StatusCode::CONFLICT, "last_voter"),
                MembershipChangeError::LearnerNotReady { .. } => {
                    (StatusCode::PRECONDITION_FAILED, "learner_not_ready")
                }
                MembershipChangeError::NotEnoughReachableVoters { .. } => (
                    StatusCode::PRECONDITION_FAILED,
                    "not_enough_reachable_voters",
                ),
            };
            refused(status, code, message)
        }
        AdminError::TransferInProgress { .. } => {
            refused(StatusCode::CONFLICT, "transfer_in_progress", message)
        }
        AdminError::NotAVoter { .. } => refused(StatusCode::NOT_FOUND, "not_a_voter", message),
        AdminError::NoTransferTarget => refused(
            StatusCode::PRECONDITION_FAILED,
            "no_transfer_target",
            message,
        ),
        AdminError::TransferFailed { .. } => {
            refused(StatusCode::SERVICE_UNAVAILABLE, "transfer_failed", message)
        }
        AdminError::Unavailable { .. } => ApiError::unavailable(message),
        AdminError::OutcomeUnknown { .. } => ApiError::outcome_unknown(message),
        AdminError::NotLeader { leader_hint } => ApiError::NotLeader {
            message,
            leader_id: leader_hint,
            leader_client_addr: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_bodies_need_an_id_and_two_ip_port_addresses() {
        assert!(matches!(
            parse_add_body(
                br#"{"id": 4, "peer_addr": "127.0.0.1:7004", "client_addr": "127.0.0.1:8004"}"#
            ),
            Ok(MembershipChange::AddLearner { id: NodeId(4), .. })
        ));
        for (body, code) in [
            (&br#"{"id": 4, "peer_addr": "localhost:7004", "client_addr": "127.0.0.1:8004"}"#[..], "bad_address"),
            (br#"{"id": 4, "peer_addr": "127.0.0.1:7004", "client_addr": "127.0.0.1"}"#, "bad_address"),
            (br#"{"id": 4, "peer_addr": "127.0.0.1:7004", "client_addr": "127.0.0.1:7004"}"#, "bad_address"),
            (br#"{"id": 0, "peer_addr": "127.0.0.1:7004", "client_addr": "127.0.0.1:8004"}"#, "bad_id"),
            (br#"{"id": 4, "peer_addr": "127.0.0.1:7004"}"#, "bad_json"),
            (br#"{"id": "4", "peer_addr": "127.0.0.1:7004", "client_addr": "127.0.0.1:8004"}"#, "bad_json"),
            (br#"{"id": 4, "peer_addr": "127.0.0.1:7004", "client_addr": "127.0.0.1:8004", "x": 1}"#, "bad_json"),
            (b"not json", "bad_json"),
        ] {
            let error = parse_add_body(body).expect_err("refused");
            assert_eq!(error.code(), code, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn transfer_bodies_name_a_target_or_none() {
        assert_eq!(parse_transfer_body(b"").unwrap(), None);
        assert_eq!(parse_transfer_body(b"{}").unwrap(), None);
        assert_eq!(
            parse_transfer_body(br#"{"to": 2}"#).unwrap(),
            Some(NodeId(2))
        );
        assert_eq!(
            parse_transfer_body(br#"{"to": 0}"#).unwrap_err().code(),
            "bad_id"
        );
        assert_eq!(
            parse_transfer_body(br#"{"too": 2}"#).unwrap_err().code(),
            "bad_json"
        );
        assert_eq!(parse_transfer_body(b"2").unwrap_err().code(), "bad_json");
    }
}
