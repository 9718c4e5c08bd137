//! `RaftClient`: a blocking client of the HTTP API that finds its way to a working node.
//!
//! It tries the endpoints in order, goes straight to the leader when a node names it
//! (`error.leader_client_addr`), and retries while the cluster has no leader, until a deadline.
//! A corruption alarm lasts until the node restarts, so once every endpoint in a row has
//! answered with one (`503 corruption_alarm`) the call gives up at once instead.
//! It never retries a write whose outcome is unknown (a timeout after sending, a `504`): doing
//! so could apply it twice, so that case is reported to the caller as [`ClientFailure::Unknown`].
//! `raftctl` is a thin command line over it; the process tests use it too.

use crate::security::client_flags::ClientSecurity;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Everything but unreserved characters and `/` is escaped, so `app/config/x` stays readable
/// and any other key round-trips exactly.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a key for a request path.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ESCAPES).to_string()
}

/// The path of `key` under `prefix`, or a refusal for a key the server would refuse anyway
/// and that an HTTP library would silently rewrite on the way (`p/./q` sent as `p/q`): the
/// client never normalizes a key.
fn key_path(prefix: &str, key: &str) -> Result<String, ClientFailure> {
    if let Some(reason) = crate::http_api::kv_key::key_problem(key) {
        return Err(ClientFailure::Refused { reason });
    }
    Ok(format!("{prefix}{}", encode_key(key)))
}

/// How long every endpoint may refuse connections before a call gives up: a node starting or
/// restarting refuses them for a moment, a cluster that is down refuses them for good.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(3);

/// The most specific message in an error's chain ("Connection refused (os error 111)" rather
/// than "error sending request for url ...").
fn innermost_cause(error: &dyn std::error::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// An answer from a node: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// The endpoint that answered.
    pub endpoint: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `error.code` of an error body, or "".
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Why a request gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientFailure {
    /// No node accepted it before the deadline; it was definitely not applied.
    #[error("no node could serve the request: {last_error}")]
    Unavailable { last_error: String },
    /// A write was sent but its outcome is unknown; it may still be applied.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
    /// Refused before anything was sent (a key no node would accept); nothing happened.
    #[error("{reason}")]
    Refused { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Delete,
    Post,
}

impl Method {
    fn is_write(self) -> bool {
        !matches!(self, Method::Get)
    }

    fn reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Post => reqwest::Method::POST,
        }
    }
}

pub struct RaftClient {
    endpoints: Vec<String>,
    http: reqwest::blocking::Client,
    /// How long one call keeps retrying while no node can serve it.
    deadline: Duration,
    /// TLS and token (issue 16); the default is plain http without a token.
    security: ClientSecurity,
}

/// `127.0.0.1:8001` and `http://127.0.0.1:8001/` both become `http://127.0.0.1:8001`.
pub fn normalize_endpoint(endpoint: &str) -> String {
    normalize_endpoint_for(endpoint, "http")
}

/// [`normalize_endpoint`] with `scheme` for an endpoint given without one (`https` for a
/// client with TLS settings).
pub fn normalize_endpoint_for(endpoint: &str, scheme: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("{scheme}://{trimmed}")
    }
}

impl RaftClient {
    /// `request_timeout` bounds one HTTP exchange; `deadline` one call with its retries.
    pub fn new(endpoints: &[String], request_timeout: Duration, deadline: Duration) -> RaftClient {
        RaftClient::secured(
            endpoints,
            request_timeout,
            deadline,
            ClientSecurity::default(),
        )
    }

    /// [`RaftClient::new`] with TLS settings and a token.
    pub fn secured(
        endpoints: &[String],
        request_timeout: Duration,
        deadline: Duration,
        security: ClientSecurity,
    ) -> RaftClient {
        assert!(
            !endpoints.is_empty(),
            "a client needs at least one endpoint"
        );
        let builder = reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(request_timeout);
        let http = security
            .apply(builder)
            .build()
            .expect("an HTTP client with loaded TLS settings builds");
        let scheme = security.scheme();
        RaftClient {
            endpoints: endpoints
                .iter()
                .map(|e| normalize_endpoint_for(e, scheme))
                .collect(),
            http,
            deadline,
            security,
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// An address as an endpoint of this client: `https://` when it has TLS settings.
    pub fn normalize(&self, address: &str) -> String {
        normalize_endpoint_for(address, self.security.scheme())
    }

    /// Sends one request, moving between endpoints as described in the module docs. A reply
    /// with any status other than `503` is returned as is (including `504`: the caller decides).
    pub fn call(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Reply, ClientFailure> {
        let started = Instant::now();
        let mut rotation = 0;
        let mut leader_hint: Option<String> = None;
        let mut alarms_in_a_row = 0;
        // Connection failures in a row, with what each endpoint said last: when no endpoint
        // accepts a connection for a few rounds the cluster is down (or the endpoints are
        // wrong), and waiting out the whole deadline would only hide that.
        let mut unreachable_in_a_row = 0;
        let mut unreachable_since: Option<Instant> = None;
        let mut unreachable: Vec<String> = Vec::new();
        loop {
            let endpoint = match leader_hint.take() {
                Some(leader) => leader,
                None => {
                    rotation += 1;
                    self.endpoints[(rotation - 1) % self.endpoints.len()].clone()
                }
            };
            let url = format!("{endpoint}{path}");
            let sent = self
                .security
                .authorize(self.http.request(method.reqwest(), &url))
                .body(body.clone())
                .send();
            let last_error = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let bytes = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
                    let reply = Reply {
                        status,
                        body: bytes,
                        endpoint: endpoint.clone(),
                    };
                    unreachable_in_a_row = 0;
                    unreachable_since = None;
                    if status != 503 {
                        return Ok(reply);
                    }
                    if reply.json()["error"]["code"] == "corruption_alarm" {
                        alarms_in_a_row += 1;
                    } else {
                        alarms_in_a_row = 0;
                    }
                    if let Some(leader) = reply.json()["error"]["leader_client_addr"].as_str() {
                        let leader = normalize_endpoint_for(leader, self.security.scheme());
                        if leader != endpoint {
                            leader_hint = Some(leader);
                        }
                    }
                    format!("{endpoint}: {}", reply.text())
                }
                Err(error) if error.is_connect() => {
                    unreachable_in_a_row += 1;
                    unreachable_since.get_or_insert_with(Instant::now);
                    let said = format!("{endpoint}: {}", innermost_cause(&error));
                    unreachable.retain(|known| !known.starts_with(&format!("{endpoint}: ")));
                    unreachable.push(said.clone());
                    said
                }
                Err(error) if !method.is_write() => {
                    unreachable_in_a_row = 0;
                    unreachable_since = None;
                    format!("{endpoint}: {}", innermost_cause(&error))
                }
                Err(error) => {
                    return Err(ClientFailure::Unknown {
                        reason: format!("{endpoint}: {error}"),
                    })
                }
            };
            let all_unreachable = unreachable_in_a_row >= self.endpoints.len();
            if all_unreachable
                && unreachable_since.is_some_and(|since| since.elapsed() >= UNREACHABLE_GRACE)
            {
                return Err(ClientFailure::Unavailable {
                    last_error: format!("no node is reachable: {}", unreachable.join("; ")),
                });
            }
            if started.elapsed() >= self.deadline || alarms_in_a_row >= self.endpoints.len() {
                return Err(ClientFailure::Unavailable { last_error });
            }
            if leader_hint.is_none() && rotation % self.endpoints.len() == 0 {
                // Every endpoint refused: give an election time to finish.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    pub fn put(&self, key: &str, value: &[u8]) -> Result<Reply, ClientFailure> {
        self.call(Method::Put, &key_path("/v1/kv/", key)?, value.to_vec())
    }

    pub fn get(&self, key: &str, local: bool) -> Result<Reply, ClientFailure> {
        let query = if local { "?consistency=local" } else { "" };
        let path = key_path("/v1/kv/", key)?;
        self.call(Method::Get, &format!("{path}{query}"), Vec::new())
    }

    pub fn delete(&self, key: &str) -> Result<Reply, ClientFailure> {
        self.call(Method::Delete, &key_path("/v1/kv/", key)?, Vec::new())
    }

    /// `expect: None` swaps only if the key is absent. Values that are UTF-8 travel as JSON
    /// strings (`expect`, `value`), others as base64 (`expect_base64`, `value_base64`).
    pub fn compare_and_swap(
        &self,
        key: &str,
        expect: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Reply, ClientFailure> {
        let mut body = serde_json::json!({});
        match expect {
            None => body["expect"] = Value::Null,
            Some(expect) => {
                let (field, text) = crate::http_api::list_route::value_json(expect);
                let field = if field == "value" {
                    "expect"
                } else {
                    "expect_base64"
                };
                body[field] = text;
            }
        }
        let (field, text) = crate::http_api::list_route::value_json(value);
        body[field] = text;
        self.call(
            Method::Post,
            &key_path("/v1/cas/", key)?,
            body.to_string().into_bytes(),
        )
    }

    /// One page of `GET /v1/list` (docs/API.md): the keys under `prefix` after `start_after`.
    pub fn list(&self, page: &ListPage) -> Result<Reply, ClientFailure> {
        let encode = |text: &str| utf8_percent_encode(text, NON_ALPHANUMERIC).to_string();
        let mut path = format!(
            "/v1/list?prefix={}&limit={}",
            encode(&page.prefix),
            page.limit
        );
        if let Some(after) = &page.start_after {
            path.push_str(&format!("&start_after={}", encode(after)));
        }
        if page.keys_only {
            path.push_str("&keys_only=true");
        }
        if page.local {
            path.push_str("&consistency=local");
        }
        self.call(Method::Get, &path, Vec::new())
    }

    /// `/v1/status` of one endpoint (no failover: status is about that node).
    pub fn status_of(&self, endpoint: &str) -> Result<Value, String> {
        let url = format!("{}/v1/status", self.normalize(endpoint));
        let response = self
            .security
            .authorize(self.http.get(&url))
            .send()
            .map_err(|error| innermost_cause(&error))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .map_err(|error| format!("not a JSON answer: {}", innermost_cause(&error)))?;
        if status == 200 {
            Ok(body)
        } else {
            Err(format!("HTTP {status}: {body}"))
        }
    }
}

/// One request of a listing: see [`RaftClient::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub prefix: String,
    pub start_after: Option<String>,
    pub limit: u32,
    pub keys_only: bool,
    /// `?consistency=local`: the answering node's state, possibly stale.
    pub local: bool,
}

/// How one endpoint answered `GET /health`.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub healthy: bool,
    /// From sending the request to the whole answer.
    pub took: Duration,
    /// Why it is not healthy: the transport's innermost cause, or the node's error message.
    pub error: Option<String>,
}

impl RaftClient {
    /// `GET /health` of one endpoint, once (no failover): healthy when it answers `200`, that
    /// is when the node knows a leader and has no corruption alarm.
    pub fn health_of(&self, endpoint: &str) -> EndpointHealth {
        let endpoint = normalize_endpoint_for(endpoint, self.security.scheme());
        let started = Instant::now();
        let answer = self.http.get(format!("{endpoint}/health")).send();
        let (healthy, error) = match answer {
            Err(error) => (false, Some(innermost_cause(&error))),
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().unwrap_or(Value::Null);
                if status == 200 {
                    (true, None)
                } else {
                    let message = body["error"]["message"].as_str().unwrap_or("no message");
                    (false, Some(format!("HTTP {status}: {message}")))
                }
            }
        };
        EndpointHealth {
            endpoint,
            healthy,
            took: started.elapsed(),
            error,
        }
    }
}

/// Refuses an endpoint this client cannot talk to, naming why: raftctl speaks plain HTTP
/// (the nodes serve no TLS), and an `https://` URL would otherwise fail deep inside the HTTP
/// library with a message that does not say so.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    check_endpoint_for(endpoint, false)
}

/// [`check_endpoint`] for a client that has TLS settings (`tls`): `https://` is accepted then,
/// and an endpoint without a scheme means `https://`.
pub fn check_endpoint_for(endpoint: &str, tls: bool) -> Result<(), String> {
    let normalized = normalize_endpoint_for(endpoint, if tls { "https" } else { "http" });
    let (scheme, rest) = normalized
        .split_once("://")
        .expect("normalize_endpoint adds a scheme");
    if scheme == "https" && !tls {
        return Err(format!(
            "endpoint {endpoint:?}: unsupported URL scheme `https` without --cacert (give the \
             CA file of the nodes' certificates)"
        ));
    }
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "endpoint {endpoint:?}: unsupported URL scheme `{scheme}` (the nodes serve \
             http:// or, with TLS, https://)"
        ));
    }
    if rest.is_empty() || rest.contains('/') {
        return Err(format!(
            "endpoint {endpoint:?}: expected http://HOST:PORT with no path"
        ));
    }
    Ok(())
}

/// Why a snapshot request to one node gave no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFailure {
    /// The node could not be reached (or the connection broke before an answer).
    #[error("{endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The node answered with an error status; the reply holds its JSON error.
    #[error("{} answered {}: {}", reply.endpoint, reply.status, reply.text())]
    Refused { reply: Reply },
    /// The download started but is not the file the headers describe (cut short, too long,
    /// a header missing or unreadable).
    #[error("{endpoint}: {reason}")]
    Broken { endpoint: String, reason: String },
    /// Writing the downloaded bytes failed here.
    #[error("{0}")]
    Local(String),
}

/// What `GET /v1/snapshot`'s headers said about the file in its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotHeaders {
    pub index: u64,
    pub term: u64,
    pub size_bytes: u64,
    pub file_checksum: String,
    pub members: String,
}

/// How long a snapshot request may take: the server waits up to
/// `http_api::snapshot_routes::TAKE_SNAPSHOT_TIMEOUT` for one to be durable; a margin for the
/// answer to arrive.
const SNAPSHOT_REQUEST_TIMEOUT: Duration = Duration::from_secs(310);

/// Snapshot requests to one node: never failed over, since a snapshot is that node's own.
pub struct SnapshotClient {
    endpoint: String,
    http: reqwest::blocking::Client,
    security: ClientSecurity,
}

impl SnapshotClient {
    pub fn new(endpoint: &str) -> SnapshotClient {
        SnapshotClient::secured(endpoint, ClientSecurity::default())
    }

    /// [`SnapshotClient::new`] with TLS settings and a token.
    pub fn secured(endpoint: &str, security: ClientSecurity) -> SnapshotClient {
        // No overall timeout for the download: a large snapshot takes as long as the link
        // needs (interrupt raftctl to give up); taking one is bounded per request.
        let builder = reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(None);
        let http = security
            .apply(builder)
            .build()
            .expect("an HTTP client with loaded TLS settings builds");
        SnapshotClient {
            endpoint: normalize_endpoint_for(endpoint, security.scheme()),
            http,
            security,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn unreachable(&self, error: &reqwest::Error) -> SnapshotFailure {
        SnapshotFailure::Unreachable {
            endpoint: self.endpoint.clone(),
            reason: innermost_cause(error),
        }
    }

    /// `POST /v1/snapshot`: the node takes a snapshot now; its JSON description once durable.
    pub fn take(&self) -> Result<Value, SnapshotFailure> {
        let url = format!("{}/v1/snapshot", self.endpoint);
        let response = self
            .security
            .authorize(self.http.post(&url))
            .timeout(SNAPSHOT_REQUEST_TIMEOUT)
            .send()
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .map_err(|error| self.unreachable(&error))?
            .to_vec();
        let reply = Reply {
            status,
            body,
            endpoint: self.endpoint.clone(),
        };
        if status == 200 {
            Ok(reply.json())
        } else {
            Err(SnapshotFailure::Refused { reply })
        }
    }

    /// `GET /v1/snapshot`: streams the node's newest snapshot file into `output`, checking
    /// that exactly the announced number of bytes arrived.
    pub fn download(
        &self,
        output: &mut dyn std::io::Write,
    ) -> Result<SnapshotHeaders, SnapshotFailure> {
        let url = format!("{}/v1/snapshot", self.endpoint);
        let mut response = self
            .security
            .authorize(self.http.get(&url))
            .send()
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response
                .bytes()
                .map(|bytes| bytes.to_vec())
                .unwrap_or_default();
            return Err(SnapshotFailure::Refused {
                reply: Reply {
                    status,
                    body,
                    endpoint: self.endpoint.clone(),
                },
            });
        }
        let broken = |reason: String| SnapshotFailure::Broken {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let header = |name: &str| -> Result<String, SnapshotFailure> {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| broken(format!("the answer has no readable {name} header")))
        };
        let number = |name: &str| -> Result<u64, SnapshotFailure> {
            let text = header(name)?;
            text.parse()
                .map_err(|_| broken(format!("header {name}: {text:?} is not a number")))
        };
        let headers = SnapshotHeaders {
            index: number("x-raft-snapshot-index")?,
            term: number("x-raft-snapshot-term")?,
            size_bytes: number("x-raft-snapshot-size-bytes")?,
            file_checksum: header("x-raft-snapshot-file-checksum")?,
            members: header("x-raft-snapshot-members")?,
        };
        let mut counting = CountingWriter {
            inner: output,
            written: 0,
            failed: None,
        };
        let copied = response.copy_to(&mut counting);
        if let Some(error) = counting.failed.take() {
            return Err(SnapshotFailure::Local(error));
        }
        if let Err(error) = copied {
            return Err(broken(format!(
                "the download broke after {} of {} bytes: {}",
                counting.written,
                headers.size_bytes,
                innermost_cause(&error)
            )));
        }
        if counting.written != headers.size_bytes {
            return Err(broken(format!(
                "received {} bytes, but x-raft-snapshot-size-bytes says {}",
                counting.written, headers.size_bytes
            )));
        }
        Ok(headers)
    }
}

/// Counts what reaches the output and keeps the output's own error apart from the network's,
/// so a full disk is not reported as a broken download.
struct CountingWriter<'a> {
    inner: &'a mut dyn std::io::Write,
    written: u64,
    failed: Option<String>,
}

impl std::io::Write for CountingWriter<'_> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        match self.inner.write(buffer) {
            Ok(count) => {
                self.written += count as u64;
                Ok(count)
            }
            Err(error) => {
                self.failed = Some(error.to_string());
                Err(error)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|error| {
            self.failed = Some(error.to_string());
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_that_refuses_every_connection_fails_fast_and_says_so() {
        // Ports that were free a moment ago: nothing listens there.
        let closed: Vec<String> = (0..2)
            .map(|_| {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
                format!("http://{}", listener.local_addr().expect("bound"))
            })
            .collect();
        let deadline = Duration::from_secs(30);
        let client = RaftClient::new(&closed, Duration::from_secs(5), deadline);
        let started = Instant::now();
        let failure = client.put("a", b"1").expect_err("nothing listens");
        assert!(
            started.elapsed() < deadline,
            "waited out the whole deadline ({:?})",
            started.elapsed()
        );
        let message = failure.to_string();
        assert!(
            message.contains("no node is reachable") && message.contains(&closed[1]),
            "{message}"
        );
        assert!(matches!(failure, ClientFailure::Unavailable { .. }));
    }

    use super::*;

    #[test]
    fn keys_keep_slashes_and_escape_the_rest() {
        assert_eq!(encode_key("app/config/x"), "app/config/x");
        assert_eq!(encode_key("a b?c%"), "a%20b%3Fc%25");
        // Keys an HTTP library would rewrite are refused before anything is sent.
        for key in ["p/./q", "p/../q", "p//q", "", "."] {
            assert!(
                matches!(key_path("/v1/kv/", key), Err(ClientFailure::Refused { .. })),
                "{key:?}"
            );
        }
        assert_eq!(
            key_path("/v1/kv/", "app/.config").expect("dots inside a segment"),
            "/v1/kv/app/.config"
        );
        assert_eq!(encode_key("é"), "%C3%A9");
    }

    #[test]
    fn endpoints_with_another_scheme_or_a_path_are_refused_by_name() {
        assert_eq!(check_endpoint("127.0.0.1:8001"), Ok(()));
        let error = check_endpoint("https://127.0.0.1:8001").expect_err("https");
        assert!(error.contains("unsupported URL scheme `https`"), "{error}");
        assert!(check_endpoint("http://h:1/v1").is_err());
    }

    #[test]
    fn endpoints_are_normalized() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:8001"),
            "http://127.0.0.1:8001"
        );
        assert_eq!(
            normalize_endpoint("http://127.0.0.1:8001/"),
            "http://127.0.0.1:8001"
        );
    }
}
