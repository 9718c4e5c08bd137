//! One function per route of the client API.
//!
//! A write becomes a `KvCommand` proposed to the consensus actor; a read a `KvQuery` sent as a
//! `Read` (linearizable, the default) or as a `Query` straight to the applier
//! (`?consistency=local`). When the consensus actor answers "not the leader" with a known
//! leader, the request is forwarded there and the leader's answer relayed.

use crate::http_api::api_error::ApiError;
use crate::http_api::api_state::ApiState;
use crate::http_api::forwarder::Effect;
use crate::http_api::kv_key::key_from_path;
use crate::http_api::list_route;
use crate::http_api::query::{no_query_parameters, query_parameters};
use crate::http_api::snapshot_routes::snapshot_status;
use crate::metrics::process::ProcessFigures;
use crate::metrics::{ConsistencyFigures, Scrape};
use actix::Recipient;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use applier_actor::{KvCommand, KvOutput, KvQuery};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use raft_proto::applier::Query;
use raft_proto::client::{ClientError, GetStatus, Propose, RaftStatus, Read};
use raft_proto::network::GetNetworkStats;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use tokio::sync::oneshot;

const KV_PREFIX: &str = "/v1/kv/";
const CAS_PREFIX: &str = "/v1/cas/";

/// Room for the JSON syntax and the `expect` value around a CAS value.
const CAS_BODY_OVERHEAD_BYTES: usize = 4096;

pub async fn put(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_path(request.uri().path(), KV_PREFIX)?;
    no_query_parameters(&request)?;
    let body = read_body(&request, payload, state.max_value_bytes, &state).await?;
    let command = KvCommand::Put {
        key,
        value: body.to_vec(),
    };
    write(&request, body, &state, command).await
}

pub async fn delete(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_path(request.uri().path(), KV_PREFIX)?;
    no_query_parameters(&request)?;
    write(&request, Bytes::new(), &state, KvCommand::Delete { key }).await
}

/// The body of `POST /v1/cas/{key}`. Each value comes as a JSON string (`expect`, `value`:
/// its UTF-8 bytes) or as standard base64 (`expect_base64`, `value_base64`: any bytes), one
/// form per field. `expect: null` means "only if absent".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    // `Option<Option<_>>` tells a missing `expect` from an explicit `null`: a typo in the
    // field's name must not be read as "only if absent".
    #[serde(default, deserialize_with = "present")]
    expect: Option<Option<String>>,
    expect_base64: Option<String>,
    value: Option<String>,
    value_base64: Option<String>,
}

/// A field that is present (possibly `null`) deserializes to `Some`, a missing one to the
/// `default`, `None`.
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A CAS body decoded into bytes.
#[derive(Debug, PartialEq, Eq)]
struct CasValues {
    expect: Option<Vec<u8>>,
    value: Vec<u8>,
}

pub async fn compare_and_swap(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_path(request.uri().path(), CAS_PREFIX)?;
    no_query_parameters(&request)?;
    // Two values, each up to 4/3 larger in base64, plus the JSON around them.
    let body_limit = state
        .max_value_bytes
        .saturating_mul(3)
        .saturating_add(CAS_BODY_OVERHEAD_BYTES);
    let body = read_body(&request, payload, body_limit, &state).await?;
    let parsed = parse_cas_body(&body)?;
    if parsed.value.len() > state.max_value_bytes {
        return Err(state.payload_too_large());
    }
    let command = KvCommand::CompareAndSwap {
        key,
        expect: parsed.expect,
        value: parsed.value,
    };
    write(&request, body, &state, command).await
}

fn bad_cas(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_json", message)
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| bad_cas(format!("`{field}` is not standard padded base64: {error}")))
}

fn parse_cas_body(body: &[u8]) -> Result<CasValues, ApiError> {
    let parsed: CasBody = serde_json::from_slice(body)
        .map_err(|error| bad_cas(format!("invalid CAS body: {error}")))?;
    let expect = match (parsed.expect, parsed.expect_base64) {
        (Some(_), Some(_)) => return Err(bad_cas("give `expect` or `expect_base64`, not both")),
        (Some(expect), None) => expect.map(String::into_bytes),
        (None, Some(encoded)) => Some(decode_base64("expect_base64", &encoded)?),
        (None, None) => {
            return Err(bad_cas(
                "missing field `expect` (use null for \"only if absent\") or `expect_base64`",
            ))
        }
    };
    let value = match (parsed.value, parsed.value_base64) {
        (Some(_), Some(_)) => return Err(bad_cas("give `value` or `value_base64`, not both")),
        (Some(value), None) => value.into_bytes(),
        (None, Some(encoded)) => decode_base64("value_base64", &encoded)?,
        (None, None) => return Err(bad_cas("missing field `value` or `value_base64`")),
    };
    Ok(CasValues { expect, value })
}

pub async fn get(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_path(request.uri().path(), KV_PREFIX)?;
    let query = KvQuery::Get { key }.encode();
    let consistency = consistency(&request)?;
    if consistency == Consistency::Linearizable {
        state.refuse_when_alarmed()?;
    }
    match consistency {
        Consistency::Local => {
            let (responder, answer) = oneshot::channel();
            let message = Query { query, responder };
            send(&state.ports.local_query, message)?;
            let output = await_answer(answer, state.request_timeout, Effect::Read).await?;
            respond(decode_output(&output)?)
        }
        Consistency::Linearizable => {
            let (responder, answer) = oneshot::channel();
            send(&state.ports.read, Read { query, responder })?;
            answer_or_forward(
                &request,
                Bytes::new(),
                answer,
                &state,
                Effect::Read,
                respond,
            )
            .await
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consistency {
    Linearizable,
    Local,
}

fn consistency(request: &HttpRequest) -> Result<Consistency, ApiError> {
    let mut consistency = Consistency::Linearizable;
    for (_name, value) in query_parameters(request, &["consistency"])? {
        consistency = parse_consistency(&value)?;
    }
    Ok(consistency)
}

/// The value of a `consistency` query parameter.
pub(crate) fn parse_consistency(value: &str) -> Result<Consistency, ApiError> {
    match value {
        "local" => Ok(Consistency::Local),
        "linearizable" => Ok(Consistency::Linearizable),
        other => Err(ApiError::bad_request(
            "bad_query",
            format!("consistency={other}: expected \"linearizable\" or \"local\""),
        )),
    }
}

pub async fn status(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    let status = fetch_status(&state).await?;
    let mut body = serde_json::to_value(&status).map_err(|error| ApiError::Internal {
        message: error.to_string(),
    })?;
    body["leader_client_addr"] = json!(status
        .leader_id
        .and_then(|leader| state.forwarder.client_addr(leader))
        .map(|address| address.to_string()));
    body["alarms"] = json!(state.consistency.alarms.to_json());
    // Every member's client address, so a client given one endpoint can find the others.
    let member_client_addrs: serde_json::Map<String, serde_json::Value> = status
        .members
        .iter()
        .filter_map(|member| {
            let address = state.forwarder.client_addr(*member)?;
            Some((member.to_string(), json!(address.to_string())))
        })
        .collect();
    body["member_client_addrs"] = serde_json::Value::Object(member_client_addrs);
    // The newest snapshot and the log after it, flattened beside the consensus fields.
    let snapshot = snapshot_status(&state).await;
    if let (Some(body), Ok(serde_json::Value::Object(fields))) =
        (body.as_object_mut(), serde_json::to_value(&snapshot))
    {
        body.extend(fields);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `503` with the alarm while one is raised, else `200` once a leader is known.
pub async fn health(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    state.refuse_when_alarmed()?;
    let status = fetch_status(&state).await?;
    match status.leader_id {
        Some(leader) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "ok", "leader_id": leader.0 })))
        }
        None => Err(state.forwarder.not_leader(None)),
    }
}

pub async fn metrics(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    Ok(metrics_response(&state).await)
}

async fn metrics_response(state: &ApiState) -> HttpResponse {
    let network = match &state.ports.network_stats {
        Some(network) => {
            match tokio::time::timeout(Duration::from_secs(1), network.send(GetNetworkStats)).await
            {
                Ok(Ok(stats)) => Some(stats),
                _ => None,
            }
        }
        None => None,
    };
    let consistency = &state.consistency;
    let alarm = consistency.alarms.corruption();
    let scrape = Scrape {
        raft: state
            .raft_metrics
            .as_ref()
            .map(|metrics| metrics.snapshot()),
        storage: state
            .storage_metrics
            .as_ref()
            .map(|metrics| metrics.snapshot()),
        network,
        snapshots: snapshot_status(state).await,
        consistency: ConsistencyFigures {
            alarm_raised: alarm.is_some(),
            alarm_index: alarm.map_or(0, |alarm| alarm.index.0),
            latest_checkpoint_index: consistency
                .checkpoints
                .snapshot()
                .checkpoints
                .last()
                .map_or(0, |checkpoint| checkpoint.index.0),
            comparisons_total: consistency.stats.comparisons_total(),
            peer_errors_total: consistency.stats.peer_errors_total(),
        },
        process: ProcessFigures::read(),
        build: Scrape::build_labels(),
    };
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render(scrape, &state.counters))
}

/// `GET /version`: what this build is.
pub async fn version(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    Ok(HttpResponse::Ok().json(crate::build_info::BUILD))
}

/// This node's applied-state checkpoints, for its peers' consistency check.
pub async fn checkpoints(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    no_query_parameters(&request)?;
    Ok(HttpResponse::Ok().json(state.consistency.reply()))
}

pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        code: "not_found",
        message: format!("no route for {} {}", request.method(), request.uri().path()),
    })
}

pub async fn method_not_allowed(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: request.method().to_string(),
    })
}

/// Proposes `command`; forwards to the leader when this node is not it.
async fn write(
    request: &HttpRequest,
    body: Bytes,
    state: &ApiState,
    command: KvCommand,
) -> Result<HttpResponse, ApiError> {
    state.refuse_when_alarmed()?;
    let (responder, answer) = oneshot::channel();
    let message = Propose {
        command: command.encode(),
        responder,
    };
    send(&state.ports.propose, message)?;
    answer_or_forward(request, body, answer, state, Effect::Write, respond).await
}

/// Hands `message` to an actor. A stopped actor never got it: `503`. (`do_send` does not wait
/// on a full mailbox; an overloaded node answers late, and the request timeout turns that into
/// `504`, the conservative answer for a write that may still be queued.)
pub(crate) fn send<M>(recipient: &Recipient<M>, message: M) -> Result<(), ApiError>
where
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    if !recipient.connected() {
        return Err(ApiError::unavailable("the node is stopping"));
    }
    recipient.do_send(message);
    Ok(())
}

pub(crate) type Answer = oneshot::Receiver<Result<Vec<u8>, ClientError>>;

/// The HTTP answer for the consensus actor's `answer` to `request`, rendered by `render`.
/// When this node is not the leader but knows another node that is, the request (with `body`)
/// goes there instead (`Forwarder::forward` refuses a hint naming this node itself).
pub(crate) async fn answer_or_forward(
    request: &HttpRequest,
    body: Bytes,
    answer: Answer,
    state: &ApiState,
    effect: Effect,
    render: impl FnOnce(KvOutput) -> Result<HttpResponse, ApiError>,
) -> Result<HttpResponse, ApiError> {
    match await_answer(answer, state.request_timeout, effect).await {
        Ok(bytes) => render(decode_output(&bytes)?),
        Err(ApiError::NotLeader {
            leader_id: Some(leader),
            ..
        }) => state.forwarder.forward(request, body, leader, effect).await,
        Err(ApiError::NotLeader {
            leader_id: None, ..
        }) => Err(state.forwarder.not_leader(None)),
        Err(error @ ApiError::Unavailable { .. }) => Err(removed_or(state, error).await),
        Err(error) => Err(error),
    }
}

/// `error`, or `503 removed` when the refusal came from this node being out of the cluster:
/// asked only on this (rare) path, so a write costs no extra round trip to the consensus actor.
pub(crate) async fn removed_or(state: &ApiState, error: ApiError) -> ApiError {
    match fetch_status(state).await {
        Ok(status) if status.removed => ApiError::Removed {
            message: format!(
                "node {} was removed from the cluster; it serves no writes or linearizable                  reads (ask a current member)",
                state.node_id
            ),
        },
        _ => error,
    }
}

/// Waits for the actor's answer, at most `timeout`. A write that is not answered in time, or
/// whose responder is dropped unanswered, may still be applied: `504`. A read not answered in
/// time is `504` too (whether it would have been served is unknown); a read whose responder
/// was dropped was never served, which a read changing nothing makes a plain `503`.
pub(crate) async fn await_answer(
    answer: Answer,
    timeout: Duration,
    effect: Effect,
) -> Result<Vec<u8>, ApiError> {
    let unknown = |message: &str| match effect {
        Effect::Write => {
            ApiError::outcome_unknown(format!("{message}; the write may still be applied"))
        }
        Effect::Read => ApiError::outcome_unknown(message.to_string()),
    };
    match tokio::time::timeout(timeout, answer).await {
        Err(_elapsed) => Err(unknown(&format!(
            "not answered within request_timeout_ms ({} ms)",
            timeout.as_millis()
        ))),
        Ok(Err(_dropped)) => Err(match effect {
            Effect::Write => unknown("the node dropped the request"),
            Effect::Read => ApiError::unavailable("the node dropped the read"),
        }),
        Ok(Ok(Err(error))) => Err(client_error(error)),
        Ok(Ok(Ok(bytes))) => Ok(bytes),
    }
}

fn client_error(error: ClientError) -> ApiError {
    match error {
        ClientError::NotLeader { leader_hint } => ApiError::NotLeader {
            message: "not the leader".to_string(),
            leader_id: leader_hint,
            leader_client_addr: None,
        },
        ClientError::Unavailable { reason } => ApiError::unavailable(reason),
        ClientError::OutcomeUnknown { reason } => ApiError::outcome_unknown(reason),
    }
}

pub(crate) fn decode_output(bytes: &[u8]) -> Result<KvOutput, ApiError> {
    KvOutput::decode(bytes).map_err(|error| ApiError::Internal {
        message: format!("cannot decode the state machine's answer: {error}"),
    })
}

/// The HTTP answer for a state machine output.
pub(crate) fn respond(output: KvOutput) -> Result<HttpResponse, ApiError> {
    Ok(match output {
        KvOutput::Put { index } => HttpResponse::Ok().json(json!({ "index": index.0 })),
        KvOutput::Deleted { index, existed } => {
            HttpResponse::Ok().json(json!({ "index": index.0, "deleted": existed }))
        }
        KvOutput::Swapped { index } => {
            HttpResponse::Ok().json(json!({ "swapped": true, "index": index.0 }))
        }
        KvOutput::CasFailed { current } => {
            // `current` is the value as a string (null when absent); a value that is not UTF-8
            // comes as `current_base64` instead, never as a lossy string.
            let mut body = json!({ "swapped": false });
            match current {
                None => body["current"] = serde_json::Value::Null,
                Some(value) => {
                    let (field, value) = list_route::value_json(&value);
                    let field = if field == "value" {
                        "current"
                    } else {
                        "current_base64"
                    };
                    body[field] = value;
                }
            }
            HttpResponse::build(StatusCode::CONFLICT).json(body)
        }
        KvOutput::Value(Some(value)) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(value),
        KvOutput::Listed { entries, more } => {
            HttpResponse::Ok().json(list_route::listed_json(&entries, more, false))
        }
        KvOutput::Value(None) => {
            return Err(ApiError::NotFound {
                code: "key_not_found",
                message: "no such key".to_string(),
            })
        }
        KvOutput::Invalid { reason } => {
            return Err(ApiError::Internal {
                message: format!("the state machine refused the request: {reason}"),
            })
        }
    })
}

pub(crate) async fn fetch_status(state: &ApiState) -> Result<RaftStatus, ApiError> {
    match tokio::time::timeout(state.request_timeout, state.ports.status.send(GetStatus)).await {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(_)) => Err(ApiError::unavailable("the consensus actor is gone")),
        Err(_) => Err(ApiError::unavailable("the consensus actor did not answer")),
    }
}

/// Reads the whole body, at most `limit` bytes; more is `413` naming `max_value_bytes`.
/// A declared `Content-Length` over the limit is refused before reading any of it, so the
/// client gets its `413` instead of a connection closed mid-upload; otherwise reading stops at
/// the first chunk past the limit, so an oversized upload is never buffered whole.
pub(crate) async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    state: &ApiState,
) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(state.payload_too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::bad_request("bad_body", format!("cannot read the body: {error}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(state.payload_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<CasValues, String> {
        parse_cas_body(body.as_bytes()).map_err(|error| error.to_string())
    }

    #[test]
    fn cas_bodies_take_strings_or_base64_one_form_per_field() {
        assert_eq!(
            parse(r#"{"expect": null, "value": "v"}"#).expect("absent"),
            CasValues {
                expect: None,
                value: b"v".to_vec()
            }
        );
        assert_eq!(
            parse(r#"{"expect_base64": "AP8=", "value_base64": "AQI="}"#).expect("binary"),
            CasValues {
                expect: Some(vec![0, 255]),
                value: vec![1, 2]
            }
        );
        assert_eq!(
            parse(r#"{"expect": "a", "value_base64": ""}"#).expect("mixed"),
            CasValues {
                expect: Some(b"a".to_vec()),
                value: vec![]
            }
        );
        for (body, named) in [
            (r#"{"value": "v"}"#, "missing field `expect`"),
            (r#"{"expect": null}"#, "missing field `value`"),
            (
                r#"{"expect": "a", "expect_base64": "AA==", "value": "v"}"#,
                "not both",
            ),
            (
                r#"{"expect": null, "value": "v", "value_base64": "AA=="}"#,
                "not both",
            ),
            (
                r#"{"expect_base64": "not base64!", "value": "v"}"#,
                "`expect_base64`",
            ),
            (
                r#"{"expect": null, "value": "v", "ttl": 5}"#,
                "unknown field `ttl`",
            ),
            (r#"{"expect": null, "value": 5}"#, "invalid CAS body"),
            ("not json", "invalid CAS body"),
        ] {
            let error = parse(body).expect_err(body);
            assert!(error.contains(named), "{body}: {error}");
        }
    }
}
