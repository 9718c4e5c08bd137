//! `raftctl bench` against plain `http://` endpoints with every client a task of one small
//! runtime, the way `--etcd-connections` drives etcd (`bench_etcd::run_shared`).
//!
//! HTTP/1.1 answers one request at a time per connection, so each client keeps a keep-alive
//! connection of its own (per endpoint it sends to); what the tasks share is the runtime's two
//! threads. A blocked thread per client (the thread-per-client executor) makes the node wake a
//! sleeping thread for every answer it sends, which on a small machine costs the node more CPU
//! than the answer itself; a task waiting on a socket of an already running runtime costs the
//! node nothing extra. etcd is driven by tasks, so the node is too.
//!
//! The request and answer framing is `bench_http`'s (`parse_response`); errors are classified
//! exactly as the thread executor classifies them.

use super::bench::{
    run_driven, BenchOptions, ClientPlan, ClientRecord, LoadState, Outcome, Request, Target,
};
use super::bench_http::{parse_response, write_request, HttpFailure, Parse, RequestHead};
use super::bench_http_executor::outcome_of;
use super::Output;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Worker threads of the runtime all clients share (as for etcd).
const RUNTIME_THREADS: usize = 2;

/// One keep-alive connection to one `http://host:port` endpoint, used by one task.
struct TaskConnection {
    authority: String,
    authorization: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    request: Vec<u8>,
}

/// How one attempt on one connection ended, when it gave no status.
enum Attempt {
    /// Closed (or reset) before any byte of an answer: safe to send once more.
    ClosedBeforeAnswer,
    Failed(HttpFailure),
}

impl TaskConnection {
    /// `endpoint` is `http://host:port`; `None` for anything else.
    fn new(endpoint: &str, token: Option<&str>, timeout: Duration) -> Option<TaskConnection> {
        let authority = endpoint.strip_prefix("http://")?.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return None;
        }
        Some(TaskConnection {
            authority: authority.to_string(),
            authorization: token
                .map(|token| format!("Authorization: Bearer {token}\r\n"))
                .unwrap_or_default(),
            timeout,
            stream: None,
            buffer: Vec::with_capacity(4096),
            request: Vec::with_capacity(512),
        })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<u16, HttpFailure> {
        write_request(
            &mut self.request,
            RequestHead {
                method,
                path_and_query: path,
                authority: &self.authority,
                authorization: &self.authorization,
                content_type,
            },
            body,
        );
        let reused = self.stream.is_some();
        let timeout = self.timeout;
        let first = match tokio::time::timeout(timeout, self.exchange()).await {
            Ok(result) => result,
            Err(_) => Err(Attempt::Failed(HttpFailure::Timeout)),
        };
        let result = match first {
            // A kept connection the server closed meanwhile: once more on a new one.
            Err(Attempt::ClosedBeforeAnswer) if reused => {
                match tokio::time::timeout(timeout, self.exchange()).await {
                    Ok(result) => result,
                    Err(_) => Err(Attempt::Failed(HttpFailure::Timeout)),
                }
            }
            other => other,
        };
        result.map_err(|attempt| match attempt {
            Attempt::ClosedBeforeAnswer => HttpFailure::Broken("connection closed".into()),
            Attempt::Failed(failure) => failure,
        })
    }

    async fn exchange(&mut self) -> Result<u16, Attempt> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.authority)
                    .await
                    .map_err(|_| Attempt::Failed(HttpFailure::Connect))?;
                stream
                    .set_nodelay(true)
                    .map_err(|_| Attempt::Failed(HttpFailure::Connect))?;
                stream
            }
        };
        self.buffer.clear();
        if stream.write_all(&self.request).await.is_err() {
            return Err(Attempt::ClosedBeforeAnswer);
        }
        let mut chunk = [0u8; 4096];
        let mut at_end_of_file = false;
        loop {
            match parse_response(&self.buffer, at_end_of_file) {
                Ok(Parse::Complete(response)) => {
                    if !response.close && response.consumed == self.buffer.len() {
                        self.stream = Some(stream);
                    }
                    return Ok(response.status);
                }
                Ok(Parse::Incomplete) if at_end_of_file => {
                    return Err(if self.buffer.is_empty() {
                        Attempt::ClosedBeforeAnswer
                    } else {
                        Attempt::Failed(HttpFailure::Broken("answer cut short".into()))
                    });
                }
                Ok(Parse::Incomplete) => {}
                Err(error) => return Err(Attempt::Failed(HttpFailure::Broken(error))),
            }
            match stream.read(&mut chunk).await {
                Ok(0) => at_end_of_file = true,
                Ok(read) => self.buffer.extend_from_slice(&chunk[..read]),
                Err(_) if self.buffer.is_empty() => return Err(Attempt::ClosedBeforeAnswer),
                Err(error) => return Err(Attempt::Failed(HttpFailure::Broken(error.to_string()))),
            }
        }
    }
}

/// Whether every target is plain `http://` (the only kind the tasks speak).
pub(crate) fn applies_to(targets: &[String]) -> bool {
    targets
        .iter()
        .all(|target| TaskConnection::new(target, None, Duration::from_secs(1)).is_some())
}

/// Runs the load with every client a task; prints the summary and returns the exit code.
pub(crate) fn run_tasks(
    targets: Vec<String>,
    target: Target,
    token: Option<String>,
    options: &BenchOptions,
    output: Output,
) -> u8 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let timeout = options.request_timeout();
    run_driven(options, output, move |state| {
        vec![std::thread::spawn(move || {
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..state.options.clients)
                    .map(|client| {
                        let connections: Vec<TaskConnection> = targets
                            .iter()
                            .map(|endpoint| {
                                TaskConnection::new(endpoint, token.as_deref(), timeout)
                                    .expect("checked by applies_to")
                            })
                            .collect();
                        let state = Arc::clone(&state);
                        tokio::spawn(run_task(client, connections, target, state))
                    })
                    .collect();
                let mut records = Vec::new();
                for task in tasks {
                    records.push(task.await.expect("a bench task panicked"));
                }
                records
            })
        })]
    })
}

/// One client as a task: the thread client's loop, awaiting instead of blocking.
async fn run_task(
    client: usize,
    mut connections: Vec<TaskConnection>,
    target: Target,
    state: Arc<LoadState>,
) -> ClientRecord {
    let mut record = ClientRecord::new();
    let mut plan = ClientPlan::new(client, &state.options);
    let pace = state.pace();
    let mut next_start = tokio::time::Instant::now();
    let mut sequence = 0usize;
    while let Some(ticket) = state.next_ticket() {
        if let Some(pace) = pace {
            tokio::time::sleep_until(next_start).await;
            next_start += pace;
        }
        sequence += 1;
        let index = match target {
            Target::Leader => 0,
            Target::Any | Target::Etcd => client % connections.len(),
            Target::RoundRobin => (client + sequence) % connections.len(),
        };
        let planned = plan.next(ticket);
        let begun = std::time::Instant::now();
        let request = plan.request(&planned);
        let outcome = execute(&mut connections[index], &request).await;
        record.record(&state, &outcome, begun);
        plan.finished(planned, &outcome);
    }
    record
}

async fn execute(connection: &mut TaskConnection, request: &Request<'_>) -> Outcome {
    let sent = match request {
        Request::Get { key, local } => {
            let local = if *local { "?consistency=local" } else { "" };
            connection
                .send("GET", &format!("/v1/kv/{key}{local}"), None, b"")
                .await
        }
        Request::Put { key, value } => {
            connection
                .send("PUT", &format!("/v1/kv/{key}"), None, value)
                .await
        }
        Request::Cas { key, expect, value } => {
            let body = json!({
                "expect": expect.map(|bytes| String::from_utf8_lossy(bytes).into_owned()),
                "value": String::from_utf8_lossy(value),
            });
            connection
                .send(
                    "POST",
                    &format!("/v1/cas/{key}"),
                    Some("application/json"),
                    body.to_string().as_bytes(),
                )
                .await
        }
    };
    outcome_of(sent, request)
}
