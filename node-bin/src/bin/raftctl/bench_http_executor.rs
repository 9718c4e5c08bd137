//! The thread-per-client HTTP executor of `raftctl bench`: for `https://` endpoints (reqwest,
//! with raftctl's TLS settings and token) and for the failover trial (`bench_http`'s blocking
//! connections); and how an HTTP answer or failure becomes an `Outcome`, for it and for the
//! task clients of `bench_http_tasks`.

use super::bench::{Executor, Outcome, Request, Target};
use super::bench_http::{HttpConnection, HttpFailure};
use node_bin::security::client_flags::ClientSecurity;
use serde_json::json;
use std::time::Duration;

/// The node's HTTP API, as `--target leader|any|round-robin` send to it.
pub(crate) struct HttpExecutor {
    client: usize,
    sequence: usize,
    targets: Vec<String>,
    target: Target,
    transport: HttpTransport,
}

/// How an `HttpExecutor` talks to the nodes.
enum HttpTransport {
    /// Plain `http://`: one connection of our own per target, on this thread.
    Direct(Vec<HttpConnection>),
    /// `https://` (or any target `bench_http` does not take): reqwest with raftctl's TLS
    /// settings and token.
    Reqwest(reqwest::blocking::Client),
}

impl HttpExecutor {
    pub(crate) fn new(
        client: usize,
        targets: Vec<String>,
        target: Target,
        security: &ClientSecurity,
        timeout: Duration,
    ) -> HttpExecutor {
        let direct: Option<Vec<HttpConnection>> = targets
            .iter()
            .map(|endpoint| {
                HttpConnection::new(endpoint, security.token.as_deref(), timeout, timeout)
            })
            .collect();
        let transport = match direct {
            Some(connections) => HttpTransport::Direct(connections),
            None => HttpTransport::Reqwest(
                security
                    .apply(
                        reqwest::blocking::Client::builder()
                            .no_proxy()
                            .timeout(timeout),
                    )
                    .build()
                    .expect("an HTTP client with loaded TLS settings builds"),
            ),
        };
        HttpExecutor {
            client,
            sequence: 0,
            targets,
            target,
            transport,
        }
    }
}

/// The outcome of one request sent by our own HTTP client (`bench_http`, on a thread or a
/// task).
pub(crate) fn outcome_of(sent: Result<u16, HttpFailure>, request: &Request<'_>) -> Outcome {
    match sent {
        Ok(status) => classify_status(status, request),
        Err(HttpFailure::Connect) => Outcome::Connect,
        // A write that timed out may still be applied; a read is merely lost.
        Err(HttpFailure::Timeout) if !matches!(request, Request::Get { .. }) => Outcome::Unknown,
        Err(HttpFailure::Timeout | HttpFailure::Broken(_)) => Outcome::Other,
    }
}

/// The outcome of an answer with this HTTP status.
fn classify_status(status: u16, request: &Request<'_>) -> Outcome {
    match status {
        200 if matches!(request, Request::Cas { .. }) => Outcome::Swapped,
        // 404 is a read of a key not written yet, 409 a CAS that found another value: both
        // are answers the cluster gave.
        200 | 404 | 409 => Outcome::Answered,
        503 => Outcome::Unavailable,
        504 => Outcome::Unknown,
        _ => Outcome::OtherStatus,
    }
}

impl Executor for HttpExecutor {
    fn execute(&mut self, request: &Request<'_>) -> Outcome {
        self.sequence += 1;
        let index = match self.target {
            Target::Leader => 0,
            Target::Any | Target::Etcd => self.client % self.targets.len(),
            Target::RoundRobin => (self.client + self.sequence) % self.targets.len(),
        };
        let cas_body = |expect: &Option<&[u8]>, value: &[u8]| {
            json!({
                "expect": expect.map(|bytes| String::from_utf8_lossy(bytes).into_owned()),
                "value": String::from_utf8_lossy(value),
            })
        };
        match &mut self.transport {
            HttpTransport::Direct(connections) => {
                let connection = &mut connections[index];
                let sent = match request {
                    Request::Get { key, local } => {
                        let local = if *local { "?consistency=local" } else { "" };
                        connection.send("GET", &format!("/v1/kv/{key}{local}"), None, b"")
                    }
                    Request::Put { key, value } => {
                        connection.send("PUT", &format!("/v1/kv/{key}"), None, value)
                    }
                    Request::Cas { key, expect, value } => connection.send(
                        "POST",
                        &format!("/v1/cas/{key}"),
                        Some("application/json"),
                        cas_body(expect, value).to_string().as_bytes(),
                    ),
                };
                outcome_of(sent, request)
            }
            HttpTransport::Reqwest(http) => {
                let base = &self.targets[index];
                let sent = match request {
                    Request::Get { key, local } => {
                        let local = if *local { "?consistency=local" } else { "" };
                        http.get(format!("{base}/v1/kv/{key}{local}")).send()
                    }
                    Request::Put { key, value } => http
                        .put(format!("{base}/v1/kv/{key}"))
                        .body(value.to_vec())
                        .send(),
                    Request::Cas { key, expect, value } => http
                        .post(format!("{base}/v1/cas/{key}"))
                        .json(&cas_body(expect, value))
                        .send(),
                };
                match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes();
                        classify_status(status, request)
                    }
                    Err(error) if error.is_connect() => Outcome::Connect,
                    Err(error) if error.is_timeout() && !matches!(request, Request::Get { .. }) => {
                        Outcome::Unknown
                    }
                    Err(_) => Outcome::Other,
                }
            }
        }
    }
}
