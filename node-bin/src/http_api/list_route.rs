//! `GET /v1/list`: one page of the keys under a prefix, with their values, in key order.
//!
//! The read goes through the same paths as `GET /v1/kv` (ReadIndex on the leader by default,
//! forwarded when this node is a follower; `?consistency=local` straight to this node's
//! applier). Values are any bytes, while JSON strings are Unicode, so each entry carries its
//! value as `value` (a string) when the bytes are UTF-8 and as `value_base64` otherwise; a
//! client tells the two apart by which field is present, never by guessing.

use crate::http_api::api_error::ApiError;
use crate::http_api::api_state::ApiState;
use crate::http_api::forwarder::Effect;
use crate::http_api::handlers::{
    answer_or_forward, await_answer, decode_output, parse_consistency, respond, send, Consistency,
};
use crate::http_api::query::query_parameters;
use actix_web::{web, HttpRequest, HttpResponse};
use applier_actor::{KvQuery, ListedEntry};
use base64::Engine;
use bytes::Bytes;
use raft_proto::applier::Query;
use raft_proto::client::Read;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Entries in one page when `limit` is not given.
pub const DEFAULT_LIST_LIMIT: u32 = 1000;
/// The largest `limit` accepted: a page is built in memory on the leader and sent whole, so
/// its size is bounded (10,000 values of `max_value_bytes` each is still a lot; most keys
/// are small).
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// The parameters of one listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListRequest {
    prefix: String,
    start_after: Option<String>,
    limit: u32,
    keys_only: bool,
    consistency: Consistency,
}

fn list_request(request: &HttpRequest) -> Result<ListRequest, ApiError> {
    let mut list = ListRequest {
        prefix: String::new(),
        start_after: None,
        limit: DEFAULT_LIST_LIMIT,
        keys_only: false,
        consistency: Consistency::Linearizable,
    };
    let parameters = query_parameters(
        request,
        &["prefix", "start_after", "limit", "keys_only", "consistency"],
    )?;
    for (name, value) in parameters {
        match name.as_str() {
            "prefix" => list.prefix = value,
            "start_after" => list.start_after = Some(value),
            "limit" => list.limit = parse_limit(&value)?,
            "keys_only" => {
                list.keys_only = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::bad_request(
                            "bad_query",
                            format!("keys_only={other}: expected \"true\" or \"false\""),
                        ))
                    }
                }
            }
            "consistency" => list.consistency = parse_consistency(&value)?,
            _ => unreachable!("query_parameters accepts only the names above"),
        }
    }
    Ok(list)
}

fn parse_limit(value: &str) -> Result<u32, ApiError> {
    let refused = || {
        ApiError::bad_request(
            "bad_query",
            format!("limit={value}: expected a whole number from 1 to {MAX_LIST_LIMIT}"),
        )
    };
    // Parsed as u64 first so that a huge number is "out of range", not "not a number".
    let limit: u64 = value.parse().map_err(|_| refused())?;
    if limit == 0 || limit > u64::from(MAX_LIST_LIMIT) {
        return Err(refused());
    }
    Ok(limit as u32)
}

pub async fn list(
    request: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let list = list_request(&request)?;
    let query = KvQuery::List {
        prefix: list.prefix,
        start_after: list.start_after,
        limit: list.limit,
    }
    .encode();
    // `keys_only` is applied here and not in the store: the leader answers the same page
    // either way, and a forwarded request carries the parameter to the leader's own handler.
    match list.consistency {
        Consistency::Local => {
            let (responder, answer) = oneshot::channel();
            send(&state.ports.local_query, Query { query, responder })?;
            let output = await_answer(answer, state.request_timeout, Effect::Read).await?;
            respond_listed(decode_output(&output)?, list.keys_only)
        }
        Consistency::Linearizable => {
            state.refuse_when_alarmed()?;
            let (responder, answer) = oneshot::channel();
            send(&state.ports.read, Read { query, responder })?;
            answer_or_forward(
                &request,
                Bytes::new(),
                answer,
                &state,
                Effect::Read,
                |output| respond_listed(output, list.keys_only),
            )
            .await
        }
    }
}

fn respond_listed(
    output: applier_actor::KvOutput,
    keys_only: bool,
) -> Result<HttpResponse, ApiError> {
    match output {
        applier_actor::KvOutput::Listed { entries, more } => {
            Ok(HttpResponse::Ok().json(listed_json(&entries, more, keys_only)))
        }
        other => respond(other),
    }
}

/// The JSON body of a page (docs/API.md, "List keys").
pub fn listed_json(entries: &[ListedEntry], more: bool, keys_only: bool) -> Value {
    let next_start_after = if more {
        entries.last().map(|entry| entry.key.clone())
    } else {
        None
    };
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut json = json!({ "key": entry.key });
            if !keys_only {
                let (field, value) = value_json(&entry.value);
                json[field] = value;
            }
            json
        })
        .collect();
    json!({
        "entries": entries,
        "more": more,
        "next_start_after": next_start_after,
    })
}

/// A value for a JSON body: `("value", string)` for UTF-8 bytes, else
/// `("value_base64", standard padded base64)`. Control characters are valid UTF-8 and stay
/// strings (JSON escapes them).
pub fn value_json(bytes: &[u8]) -> (&'static str, Value) {
    match std::str::from_utf8(bytes) {
        Ok(text) => ("value", json!(text)),
        Err(_) => (
            "value_base64",
            json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn parse(query: &str) -> Result<ListRequest, String> {
        let request = TestRequest::get()
            .uri(&format!("/v1/list?{query}"))
            .to_http_request();
        list_request(&request).map_err(|error| error.to_string())
    }

    #[test]
    fn parameters_are_parsed_and_bounded() {
        let list =
            parse("prefix=a%2F&start_after=a%2Fb&limit=5&consistency=local").expect("accepted");
        assert_eq!(list.prefix, "a/");
        assert_eq!(list.start_after.as_deref(), Some("a/b"));
        assert_eq!(list.limit, 5);
        assert_eq!(list.consistency, Consistency::Local);
        assert_eq!(parse("").expect("defaults").limit, DEFAULT_LIST_LIMIT);
        assert_eq!(parse("limit=10000").expect("the maximum").limit, 10_000);
        for (query, named) in [
            ("limit=10001", "limit=10001"),
            ("limit=0", "limit=0"),
            ("limit=-1", "limit=-1"),
            ("limit=99999999999999999999", "limit=9999"),
            ("keys_only=yes", "keys_only=yes"),
            ("recurse=true", "unknown query parameter `recurse`"),
            ("consistency=stale", "consistency=stale"),
        ] {
            let error = parse(query).expect_err(query);
            assert!(error.contains(named), "{query}: {error}");
        }
    }

    #[test]
    fn values_are_strings_when_utf8_and_base64_otherwise() {
        let entries = [
            ListedEntry {
                key: "a".to_string(),
                value: b"1".to_vec(),
            },
            ListedEntry {
                key: "b".to_string(),
                // 0xff never occurs in UTF-8.
                value: vec![0, 255],
            },
        ];
        assert_eq!(
            listed_json(&entries, true, false),
            json!({
                "entries": [{"key": "a", "value": "1"}, {"key": "b", "value_base64": "AP8="}],
                "more": true,
                "next_start_after": "b",
            })
        );
        assert_eq!(
            listed_json(&entries, false, true),
            json!({
                "entries": [{"key": "a"}, {"key": "b"}],
                "more": false,
                "next_start_after": null,
            })
        );
    }
}
