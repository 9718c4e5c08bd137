//! `raftctl bench`: a load generator in the spirit of etcd's `benchmark` tool.
//!
//! Workloads: `put`, `get` (linearizable), `get-local` (`?consistency=local`), `mixed` (gets
//! with probability `--read-ratio`, puts otherwise) and `cas` (compare-and-swap of a key from
//! the value this client last wrote there). `--clients` clients, each with its own keep-alive
//! HTTP connection, run until `--total` requests are done or `--duration` has passed, paced to
//! `--rate` requests per second overall when given. Keys are `--key-space` distinct keys
//! (`bench/<n>`, padded to `--key-bytes`), drawn at random or, with `--sequential-keys`, in
//! order; values are `--value-bytes` long.
//!
//! Targets: `leader` (every request to the leader, found before the run), `any` (each client
//! sticks to one endpoint; followers forward), `round-robin` (each request to the next
//! endpoint), and `etcd`: the same workload against the etcd cluster at `--endpoints` through
//! its native gRPC client (`bench_etcd.rs`, the `etcd` cargo feature), so that both systems
//! are measured by one tool. Before the run every endpoint is asked for `/v1/status` (etcd: its
//! status); none answering is exit 3. Latencies go into an HDR histogram (1 µs .. 60 s, 3 significant digits); the
//! summary gives throughput, p50 / p90 / p99 / p99.9 / max and errors by kind (503, 504, other
//! HTTP status, connect, other), as a table or with `-w json` as one JSON document.
//!
//! Plain `http://` endpoints are driven by a small HTTP/1.1 client of our own, every client a
//! task of one 2-thread runtime with a keep-alive connection of its own (`bench_http_tasks.rs`,
//! framing from `bench_http.rs`), as the etcd clients are tasks sharing gRPC connections: the
//! load generator leaves the CPU to the cluster, and the node does not pay for waking a
//! sleeping client thread with every answer. `https://` endpoints are driven by reqwest on a
//! thread per client, with the TLS settings and token of raftctl's flags. Either way every
//! request carries the bearer token when one is given. The failover trial keeps a thread per
//! client, each with `bench_http.rs`'s blocking connections.
//!
//! `--window N` records when each request completed and prints the rate of every consecutive
//! window of N successful requests, and the last full window's rate as a share of the first's
//! (`bench/sustained.sh`: does the rate hold over a million puts?).
//!
//! `--kill-leader COMMAND` is the failover trial instead (`bench_failover.rs`): a put load
//! spread over every endpoint, the leader killed by COMMAND, and the time from the kill to the
//! first successful write sent after it.

use super::bench_http_executor::HttpExecutor;
use super::bench_windows::window_rates;
use super::{print_json, Output, EXIT_UNAVAILABLE, EXIT_USAGE};
use hdrhistogram::Histogram;
use node_bin::security::client_flags::ClientSecurity;
use serde_json::json;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `raftctl bench` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Put,
    Get,
    GetLocal,
    Mixed,
    Cas,
}

/// Where requests go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Leader,
    Any,
    RoundRobin,
    /// An etcd cluster (raftctl built with `--features etcd`).
    Etcd,
}

/// One request of the workload, whatever the system under test.
pub(crate) enum Request<'a> {
    Get {
        key: &'a str,
        local: bool,
    },
    Put {
        key: &'a str,
        value: &'a [u8],
    },
    Cas {
        key: &'a str,
        expect: Option<&'a [u8]>,
        value: &'a [u8],
    },
}

/// What became of one request.
pub(crate) enum Outcome {
    /// Answered: a value, an absent key, a put done, a swap refused.
    Answered,
    /// A compare-and-swap that swapped.
    Swapped,
    /// Refused before it could take effect (HTTP 503, gRPC unavailable).
    Unavailable,
    /// May or may not have taken effect (HTTP 504, a deadline passed).
    Unknown,
    /// Another error answer.
    OtherStatus,
    /// The connection could not be made.
    Connect,
    /// Anything else.
    Other,
}

/// Carries out requests against one system: one per client thread, made on that thread.
pub(crate) trait Executor {
    fn execute(&mut self, request: &Request<'_>) -> Outcome;
}

/// Makes each client thread's executor.
pub(crate) type ExecutorFactory = Arc<dyn Fn(usize) -> Box<dyn Executor> + Send + Sync>;

/// The options of one run.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchOptions {
    /// The workload.
    #[arg(long, value_enum, default_value_t = Workload::Put)]
    pub workload: Workload,
    /// Concurrent clients (threads, one connection each).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Requests in all; the run ends when they are done (unless `--duration` ends it first).
    #[arg(long, alias = "requests", default_value_t = 10_000)]
    pub total: u64,
    /// Run for this many seconds instead of a fixed total.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Requests per second overall (0: as fast as the clients go).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    pub key_space: u64,
    /// Bytes per key (padded with `_`; 0: no padding).
    #[arg(long, default_value_t = 16)]
    pub key_bytes: usize,
    /// Keys in order (request N uses key N modulo `--key-space`) instead of at random.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Bytes per value.
    #[arg(long, alias = "value-bytes-per-put", default_value_t = 64)]
    pub value_bytes: usize,
    /// For `mixed`: the share of requests that are gets.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Where requests go.
    #[arg(long, value_enum, default_value_t = Target::Leader)]
    pub target: Target,
    /// How long one request may take before it counts as failed (default: 10 s; 1 s with
    /// `--kill-leader`).
    #[arg(long, value_name = "MILLISECONDS")]
    pub request_timeout_ms: Option<u64>,
    /// Print the rate of each consecutive window of this many successful requests, and the
    /// last full window's rate as a share of the first's.
    #[arg(long, value_name = "REQUESTS")]
    pub window: Option<u64>,
    /// Failover trial: under a put load spread over every endpoint, find the leader, run this
    /// shell command (`sh -c`) with LEADER_INDEX (its 1-based position in --endpoints) and
    /// LEADER_ENDPOINT set, and measure from the moment the command returns to the first
    /// successful write sent after it. `--clients` and `--key-space` apply; `--total`,
    /// `--duration`, `--workload` and `--target` (beyond `etcd`) do not.
    #[arg(long, value_name = "COMMAND")]
    pub kill_leader: Option<String>,
    /// With `--target etcd`: run the clients as tasks of one runtime sharing this many gRPC
    /// connections (as etcd's own benchmark runs its clients over `--conns`); 0: each client
    /// thread with a connection and a runtime of its own (which costs the client about three
    /// times the CPU per request). Failover trials always use one connection per client and
    /// endpoint.
    #[arg(long, default_value_t = 4, value_name = "CONNECTIONS")]
    pub etcd_connections: usize,
    /// With `--kill-leader`: seconds of load before the kill.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub warmup: f64,
    /// With `--kill-leader`: give up when no write succeeds this many seconds after the kill.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub failover_timeout: f64,
}

impl BenchOptions {
    /// The per-request timeout: `--request-timeout-ms`, else 1 s for failover trials (a
    /// request to the dead leader must not hold a client for long) and 10 s for the rest.
    pub(crate) fn request_timeout(&self) -> Duration {
        let default = if self.kill_leader.is_some() {
            1_000
        } else {
            10_000
        };
        Duration::from_millis(self.request_timeout_ms.unwrap_or(default).max(1))
    }
}

/// What went wrong with requests, by kind.
#[derive(Default)]
pub(crate) struct Errors {
    unavailable: AtomicU64,
    outcome_unknown: AtomicU64,
    other_status: AtomicU64,
    connect: AtomicU64,
    other: AtomicU64,
}

impl Errors {
    /// Counts `outcome` if it is an error; tells whether it was.
    pub(crate) fn record(&self, outcome: &Outcome) -> bool {
        let counter = match outcome {
            Outcome::Answered | Outcome::Swapped => return false,
            Outcome::Unavailable => &self.unavailable,
            Outcome::Unknown => &self.outcome_unknown,
            Outcome::OtherStatus => &self.other_status,
            Outcome::Connect => &self.connect,
            Outcome::Other => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        true
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        json!({
            "unavailable_503": count(&self.unavailable),
            "outcome_unknown_504": count(&self.outcome_unknown),
            "other_status": count(&self.other_status),
            "connect": count(&self.connect),
            "other": count(&self.other),
        })
    }

    pub(crate) fn describe(&self) -> String {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        format!(
            "errors: 503 {}  504 {}  other status {}  connect {}  other {}",
            count(&self.unavailable),
            count(&self.outcome_unknown),
            count(&self.other_status),
            count(&self.connect),
            count(&self.other)
        )
    }

    pub(crate) fn total(&self) -> u64 {
        [
            &self.unavailable,
            &self.outcome_unknown,
            &self.other_status,
            &self.connect,
            &self.other,
        ]
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .sum()
    }
}

pub(crate) fn key_name(key: u64, key_bytes: usize) -> String {
    let mut name = format!("bench/{key}");
    while name.len() < key_bytes {
        name.push('_');
    }
    name
}

fn leader_url(
    http: &reqwest::blocking::Client,
    endpoints: &[String],
    scheme: &str,
) -> Option<String> {
    for endpoint in endpoints {
        let Ok(response) = http.get(format!("{endpoint}/v1/status")).send() else {
            continue;
        };
        let Ok(status) = response.json::<serde_json::Value>() else {
            continue;
        };
        let leader = status["leader_id"].as_u64()?;
        let addresses = status["member_client_addrs"].as_object()?;
        let address = addresses.get(&leader.to_string())?.as_str()?;
        return Some(format!("{scheme}://{address}"));
    }
    None
}

/// Runs the benchmark; returns the exit code.
pub fn bench(
    endpoints: &[String],
    options: &BenchOptions,
    output: Output,
    security: &ClientSecurity,
) -> u8 {
    if options.clients == 0 || options.key_space == 0 {
        eprintln!("raftctl bench: --clients and --key-space must be at least 1");
        return EXIT_USAGE;
    }
    if !(0.0..=1.0).contains(&options.read_ratio) {
        eprintln!("raftctl bench: --read-ratio must be within 0..=1");
        return EXIT_USAGE;
    }
    if options.warmup < 0.0 || options.failover_timeout <= 0.0 {
        eprintln!("raftctl bench: --warmup must be at least 0 and --failover-timeout above 0");
        return EXIT_USAGE;
    }
    if options.window == Some(0) {
        eprintln!("raftctl bench: --window must be at least 1");
        return EXIT_USAGE;
    }
    if options.target == Target::Etcd {
        return bench_etcd_target(endpoints, options, output);
    }
    let http = security
        .apply(
            reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(options.request_timeout()),
        )
        .build()
        .expect("an HTTP client with loaded TLS settings builds");
    // Pre-flight: the cluster answers.
    let answering: Vec<&String> = endpoints
        .iter()
        .filter(|endpoint| {
            http.get(format!("{endpoint}/v1/status"))
                .send()
                .is_ok_and(|response| response.status().is_success())
        })
        .collect();
    if answering.is_empty() {
        eprintln!("raftctl bench: no endpoint answers /v1/status: {endpoints:?}");
        return EXIT_UNAVAILABLE;
    }
    if let Some(command) = &options.kill_leader {
        let security = security.clone();
        let timeout = options.request_timeout();
        let executor_endpoints = endpoints.to_vec();
        let leader_endpoints = endpoints.to_vec();
        let system = super::bench_failover::System {
            endpoints: endpoints.to_vec(),
            executor: Arc::new(move |client, endpoint| {
                let executor: Box<dyn Executor> = Box::new(HttpExecutor::new(
                    client,
                    vec![executor_endpoints[endpoint].clone()],
                    Target::Leader,
                    &security,
                    timeout,
                ));
                Some(executor)
            }),
            find_leader: Box::new(move || leader_index(&http, &leader_endpoints)),
        };
        return super::bench_failover::failover(system, command, options, output);
    }
    let targets: Vec<String> = match options.target {
        Target::Leader => match leader_url(&http, endpoints, security.scheme()) {
            Some(leader) => vec![leader],
            None => {
                eprintln!("raftctl bench: no leader is known; try --target any");
                return EXIT_UNAVAILABLE;
            }
        },
        Target::Any | Target::RoundRobin | Target::Etcd => endpoints.to_vec(),
    };
    if super::bench_http_tasks::applies_to(&targets) {
        // Plain HTTP: every client a task of one small runtime, as etcd's clients are.
        return super::bench_http_tasks::run_tasks(
            targets,
            options.target,
            security.token.clone(),
            options,
            output,
        );
    }
    let security = security.clone();
    let target = options.target;
    let timeout = options.request_timeout();
    let factory: ExecutorFactory = Arc::new(move |client| {
        Box::new(HttpExecutor::new(
            client,
            targets.clone(),
            target,
            &security,
            timeout,
        ))
    });
    run_load(options, output, factory)
}

/// The position in `endpoints` of the leader, as the leader itself reports it (a follower's
/// view may be stale).
fn leader_index(http: &reqwest::blocking::Client, endpoints: &[String]) -> Option<usize> {
    let reported_leader = |endpoint: &str| -> Option<String> {
        let response = http.get(format!("{endpoint}/v1/status")).send().ok()?;
        let status = response.json::<serde_json::Value>().ok()?;
        status["leader_client_addr"].as_str().map(str::to_string)
    };
    let position_of = |address: &str| {
        endpoints.iter().position(|endpoint| {
            endpoint
                .split_once("://")
                .map_or(endpoint.as_str(), |(_, rest)| rest)
                .trim_end_matches('/')
                == address
        })
    };
    endpoints.iter().find_map(|endpoint| {
        let leader = position_of(&reported_leader(endpoint)?)?;
        let confirmed = reported_leader(&endpoints[leader])?;
        (position_of(&confirmed) == Some(leader)).then_some(leader)
    })
}

#[cfg(feature = "etcd")]
fn bench_etcd_target(endpoints: &[String], options: &BenchOptions, output: Output) -> u8 {
    if let Some(command) = &options.kill_leader {
        return match super::bench_etcd::failover_system(endpoints, options.request_timeout()) {
            Ok(system) => super::bench_failover::failover(system, command, options, output),
            Err(error) => {
                eprintln!("raftctl bench: etcd at {endpoints:?} does not answer: {error}");
                EXIT_UNAVAILABLE
            }
        };
    }
    if options.etcd_connections > 0 {
        return super::bench_etcd::run_shared(endpoints, options, output);
    }
    match super::bench_etcd::factory(endpoints, options.request_timeout()) {
        Ok(factory) => run_load(options, output, factory),
        Err(error) => {
            eprintln!("raftctl bench: etcd at {endpoints:?} does not answer: {error}");
            EXIT_UNAVAILABLE
        }
    }
}

#[cfg(not(feature = "etcd"))]
fn bench_etcd_target(_endpoints: &[String], _options: &BenchOptions, _output: Output) -> u8 {
    eprintln!(
        "raftctl bench: --target etcd needs raftctl built with the etcd feature: \
         cargo build --release -p node-bin --features etcd"
    );
    EXIT_USAGE
}

/// What every client of one run shares: the options, the request count, the errors and the
/// clock.
pub(crate) struct LoadState {
    pub(crate) options: BenchOptions,
    issued: AtomicU64,
    completed: AtomicU64,
    pub(crate) errors: Errors,
    stop: AtomicBool,
    started: Instant,
    deadline: Option<Instant>,
}

impl LoadState {
    fn new(options: &BenchOptions) -> LoadState {
        let started = Instant::now();
        LoadState {
            options: options.clone(),
            issued: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            errors: Errors::default(),
            stop: AtomicBool::new(false),
            started,
            deadline: options
                .duration
                .map(|seconds| started + Duration::from_secs_f64(seconds.max(0.0))),
        }
    }

    /// The next request's number, or `None` once the run is over.
    pub(crate) fn next_ticket(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed)
            || self.deadline.is_some_and(|end| Instant::now() >= end)
        {
            return None;
        }
        let ticket = self.issued.fetch_add(1, Ordering::Relaxed);
        (self.deadline.is_some() || ticket < self.options.total).then_some(ticket)
    }

    /// With `--rate`: the time between two requests of one client.
    pub(crate) fn pace(&self) -> Option<Duration> {
        (self.options.rate > 0).then(|| {
            Duration::from_secs_f64(self.options.clients as f64 / self.options.rate as f64)
        })
    }
}

/// What one client (or a group of them) measured.
pub(crate) struct ClientRecord {
    histogram: Histogram<u64>,
    /// With --window: when each successful request completed, in microseconds since the start.
    completed_at: Vec<u64>,
    /// When this client's last request (answered or not) ended: the run's length is measured
    /// to the last of these, not to when the summary noticed the clients were done.
    last_finished: Option<Instant>,
}

impl ClientRecord {
    pub(crate) fn new() -> ClientRecord {
        ClientRecord {
            histogram: Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
            completed_at: Vec::new(),
            last_finished: None,
        }
    }

    /// Counts `outcome`: an error by kind, a success with its latency (and completion time).
    pub(crate) fn record(&mut self, state: &LoadState, outcome: &Outcome, begun: Instant) {
        let finished = Instant::now();
        self.last_finished = Some(finished);
        if state.errors.record(outcome) {
            return;
        }
        let micros = finished.duration_since(begun).as_micros().max(1) as u64;
        self.histogram.saturating_record(micros);
        state.completed.fetch_add(1, Ordering::Relaxed);
        if state.options.window.is_some() {
            self.completed_at
                .push(finished.duration_since(state.started).as_micros() as u64);
        }
    }
}

/// One client's share of the workload: which request comes next, and for `cas` the value it
/// last swapped into each key.
pub(crate) struct ClientPlan {
    client: usize,
    options: BenchOptions,
    /// A small deterministic generator per client (no need for cryptographic randomness).
    random_state: u64,
    value: Vec<u8>,
    last_written: std::collections::BTreeMap<u64, Vec<u8>>,
    sequence: u64,
}

/// One planned request, owning its key and new value.
pub(crate) struct PlannedRequest {
    key_number: u64,
    key: String,
    kind: PlannedKind,
}

enum PlannedKind {
    Get { local: bool },
    Put,
    Cas { new_value: Vec<u8> },
}

impl ClientPlan {
    pub(crate) fn new(client: usize, options: &BenchOptions) -> ClientPlan {
        ClientPlan {
            client,
            options: options.clone(),
            random_state: 0x9E37_79B9_7F4A_7C15u64
                ^ (client as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            value: vec![b'x'; options.value_bytes],
            last_written: Default::default(),
            sequence: 0,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.random_state ^= self.random_state << 13;
        self.random_state ^= self.random_state >> 7;
        self.random_state ^= self.random_state << 17;
        self.random_state
    }

    /// The request with number `ticket`.
    pub(crate) fn next(&mut self, ticket: u64) -> PlannedRequest {
        self.sequence += 1;
        let key_number = if self.options.sequential_keys {
            ticket % self.options.key_space
        } else {
            self.next_random() % self.options.key_space
        };
        let read = match self.options.workload {
            Workload::Get | Workload::GetLocal => true,
            Workload::Put | Workload::Cas => false,
            Workload::Mixed => {
                (self.next_random() % 10_000) as f64 / 10_000.0 < self.options.read_ratio
            }
        };
        let kind = if read {
            PlannedKind::Get {
                local: self.options.workload == Workload::GetLocal,
            }
        } else if self.options.workload == Workload::Cas {
            let mut new_value = format!("{}-{}-", self.client, self.sequence).into_bytes();
            new_value.resize(self.options.value_bytes.max(new_value.len()), b'x');
            PlannedKind::Cas { new_value }
        } else {
            PlannedKind::Put
        };
        PlannedRequest {
            key_number,
            key: key_name(key_number, self.options.key_bytes),
            kind,
        }
    }

    pub(crate) fn request<'a>(&'a self, planned: &'a PlannedRequest) -> Request<'a> {
        match &planned.kind {
            PlannedKind::Get { local } => Request::Get {
                key: &planned.key,
                local: *local,
            },
            PlannedKind::Put => Request::Put {
                key: &planned.key,
                value: &self.value,
            },
            PlannedKind::Cas { new_value } => Request::Cas {
                key: &planned.key,
                expect: self
                    .last_written
                    .get(&planned.key_number)
                    .map(Vec::as_slice),
                value: new_value,
            },
        }
    }

    /// Remembers what a request that ended with `outcome` wrote, for the next swap of its key.
    pub(crate) fn finished(&mut self, planned: PlannedRequest, outcome: &Outcome) {
        if let (Outcome::Swapped, PlannedKind::Cas { new_value }) = (outcome, planned.kind) {
            self.last_written.insert(planned.key_number, new_value);
        }
    }
}

/// Runs `options.clients` threads, each with its own executor from `factory`, and prints the
/// summary; returns the exit code.
fn run_load(options: &BenchOptions, output: Output, factory: ExecutorFactory) -> u8 {
    run_driven(options, output, |state| {
        (0..state.options.clients)
            .map(|client| {
                let state = Arc::clone(&state);
                let factory = Arc::clone(&factory);
                std::thread::spawn(move || {
                    let mut executor = factory(client);
                    vec![run_client(client, executor.as_mut(), &state)]
                })
            })
            .collect()
    })
}

/// Runs the load `drive` starts (threads that end when `LoadState::next_ticket` says so, each
/// returning what its clients measured), shows progress on a terminal, and prints the
/// summary; returns the exit code.
pub(crate) fn run_driven(
    options: &BenchOptions,
    output: Output,
    drive: impl FnOnce(Arc<LoadState>) -> Vec<std::thread::JoinHandle<Vec<ClientRecord>>>,
) -> u8 {
    let state = Arc::new(LoadState::new(options));
    let threads = drive(Arc::clone(&state));
    let show_progress = std::io::stderr().is_terminal() && output == Output::Table;
    let mut last_progress = Instant::now();
    while threads.iter().any(|thread| !thread.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
        if show_progress && last_progress.elapsed() >= Duration::from_millis(200) {
            last_progress = Instant::now();
            let done = state.completed.load(Ordering::Relaxed);
            let goal = if state.deadline.is_some() {
                String::new()
            } else {
                format!(" of {}", options.total)
            };
            eprint!(
                "\r{done}{goal} done, {} errors, {:.1} s",
                state.errors.total(),
                state.started.elapsed().as_secs_f64()
            );
        }
    }
    if show_progress {
        eprintln!();
    }
    state.stop.store(true, Ordering::SeqCst);
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    let mut completions = Vec::new();
    let mut last_finished = None;
    for thread in threads {
        for record in thread.join().expect("a bench client panicked") {
            histogram.add(&record.histogram).expect("same bounds");
            completions.extend(record.completed_at);
            last_finished = last_finished.max(record.last_finished);
        }
    }
    // Measured to the last request's end: polling for the clients' end would add up to a poll
    // interval to every run (a 200 ms poll once capped short runs at round rates).
    let elapsed = last_finished
        .unwrap_or_else(Instant::now)
        .duration_since(state.started)
        .as_secs_f64()
        .max(1e-6);
    let errors = &state.errors;
    let windows = options
        .window
        .map(|window| window_rates(&mut completions, window));
    let ok = histogram.len();
    let milliseconds = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let mut summary = json!({
        "workload": format!("{:?}", options.workload).to_lowercase(),
        "clients": options.clients,
        "target": format!("{:?}", options.target).to_lowercase(),
        "ok": ok,
        "seconds": elapsed,
        "requests_per_second": ok as f64 / elapsed,
        "latency_ms": {
            "p50": milliseconds(0.50),
            "p90": milliseconds(0.90),
            "p99": milliseconds(0.99),
            "p99_9": milliseconds(0.999),
            "max": histogram.max() as f64 / 1000.0,
        },
        "errors": errors.to_json(),
    });
    if let Some(windows) = &windows {
        summary["windows"] = windows.to_json();
    }
    match output {
        Output::Json => print_json(&summary),
        Output::Table => {
            println!(
                "{:?} with {} clients to {:?}: {ok} ok in {elapsed:.2} s = {:.0} requests/s",
                options.workload,
                options.clients,
                options.target,
                ok as f64 / elapsed
            );
            println!(
                "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                milliseconds(0.5),
                milliseconds(0.9),
                milliseconds(0.99),
                milliseconds(0.999),
                histogram.max() as f64 / 1000.0
            );
            println!("{}", errors.describe());
            if let Some(windows) = &windows {
                windows.print();
            }
        }
    }
    if errors.total() == 0 {
        0
    } else {
        EXIT_UNAVAILABLE
    }
}

/// One client thread: requests from its plan through `executor` until the run is over.
fn run_client(client: usize, executor: &mut dyn Executor, state: &LoadState) -> ClientRecord {
    let mut record = ClientRecord::new();
    let mut plan = ClientPlan::new(client, &state.options);
    let pace = state.pace();
    let mut next_start = Instant::now();
    while let Some(ticket) = state.next_ticket() {
        if let Some(pace) = pace {
            let now = Instant::now();
            if next_start > now {
                std::thread::sleep(next_start - now);
            }
            next_start += pace;
        }
        let planned = plan.next(ticket);
        let begun = Instant::now();
        let outcome = executor.execute(&plan.request(&planned));
        record.record(state, &outcome, begun);
        plan.finished(planned, &outcome);
    }
    record
}
