//! `raftctl bench --kill-leader COMMAND`: one failover trial (issue 14: "kill -9 of the leader
//! under load, time to the first successful write").
//!
//! 1. `--clients` threads put keys as fast as they can, each request to the next endpoint in
//!    turn (so a dead node holds up only the requests sent to it), each with a short timeout
//!    (`--request-timeout-ms`, 1 s by default). After an error a client waits 1 ms and goes on
//!    with the next endpoint; an endpoint that refuses connections is skipped for 100 ms.
//! 2. After `--warmup` seconds of load the leader is found (raft-node: `/v1/status`, confirmed
//!    by the leader itself; etcd: the endpoint whose member id is the leader's).
//! 3. COMMAND runs through `sh -c` with `LEADER_INDEX` (the leader's 1-based position in
//!    `--endpoints`) and `LEADER_ENDPOINT` in its environment, e.g.
//!    `kill -9 $(cat /tmp/run/pid-$LEADER_INDEX)`. The clock starts when the command returns:
//!    by then `kill -9` has delivered the signal, so no request sent later can be served by the
//!    old leader (while the command runs, the old leader may still answer).
//! 4. The failover time is from that moment to the earliest completion of a successful write
//!    sent after it. A little more load follows (so a slightly earlier success still being
//!    recorded by another thread is not missed), then the clients stop.
//!
//! Prints the time, the leader killed and the counts (`-w json`: one document). Exit 0 with a
//! time, 3 when no write succeeded within `--failover-timeout`, 2 when the leader cannot be
//! found or the command fails. Restarting the killed member is the caller's job
//! (`bench/compare.sh` runs five trials, restarting it between them).

use super::bench::{key_name, BenchOptions, Errors, Executor, Outcome, Request};
use super::{print_json, Output, EXIT_UNAVAILABLE, EXIT_USAGE};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an endpoint that refused a connection is left alone.
const REFUSED_ENDPOINT_PAUSE: Duration = Duration::from_millis(100);
/// The pause after a failed request before the next one.
const RETRY_PAUSE: Duration = Duration::from_millis(1);
/// Load kept up after the first success, for successes completed earlier but recorded later.
const SETTLE: Duration = Duration::from_millis(100);
/// Marks "not yet" in the shared nanosecond clocks.
const NOT_YET: u64 = u64::MAX;

/// Makes a client thread's executor for one endpoint (by position), on that thread; `None`
/// when it cannot be made now (the endpoint is then treated as refusing).
pub(crate) type EndpointExecutorFactory =
    Arc<dyn Fn(usize, usize) -> Option<Box<dyn Executor>> + Send + Sync>;

/// The system under test, as the failover trial needs it.
pub(crate) struct System {
    pub endpoints: Vec<String>,
    /// `(client, endpoint position) -> executor` for that one endpoint.
    pub executor: EndpointExecutorFactory,
    /// The position in `endpoints` of the current leader, if one is known.
    pub find_leader: Box<dyn Fn() -> Option<usize>>,
}

/// What the client threads share.
struct Shared {
    started: Instant,
    stop: AtomicBool,
    /// Nanoseconds from `started` to the moment the kill command returned.
    killed_at: AtomicU64,
    /// Nanoseconds from `started` to the earliest completion of a successful write sent after
    /// `killed_at`.
    first_success_at: AtomicU64,
    ok_before: AtomicU64,
    ok_after: AtomicU64,
    errors: Errors,
}

impl Shared {
    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

/// Runs one trial; returns the exit code.
pub(crate) fn failover(
    system: System,
    command: &str,
    options: &BenchOptions,
    output: Output,
) -> u8 {
    let shared = Arc::new(Shared {
        started: Instant::now(),
        stop: AtomicBool::new(false),
        killed_at: AtomicU64::new(NOT_YET),
        first_success_at: AtomicU64::new(NOT_YET),
        ok_before: AtomicU64::new(0),
        ok_after: AtomicU64::new(0),
        errors: Errors::default(),
    });
    let endpoint_count = system.endpoints.len();
    let threads: Vec<_> = (0..options.clients)
        .map(|client| {
            let shared = Arc::clone(&shared);
            let factory = Arc::clone(&system.executor);
            let options = options.clone();
            std::thread::spawn(move || {
                put_load(client, endpoint_count, &factory, &options, &shared);
            })
        })
        .collect();
    let stop_clients = |threads: Vec<std::thread::JoinHandle<()>>| {
        shared.stop.store(true, Ordering::SeqCst);
        for thread in threads {
            thread.join().expect("a failover client panicked");
        }
    };

    std::thread::sleep(Duration::from_secs_f64(options.warmup));
    let Some(leader) = (system.find_leader)() else {
        stop_clients(threads);
        eprintln!(
            "raftctl bench: no leader found at {:?}; nothing killed",
            system.endpoints
        );
        return EXIT_USAGE;
    };
    let leader_endpoint = &system.endpoints[leader];
    let command_started = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("LEADER_INDEX", (leader + 1).to_string())
        .env("LEADER_ENDPOINT", leader_endpoint)
        .status();
    // The clock starts here: the kill has happened.
    shared.killed_at.store(shared.now(), Ordering::SeqCst);
    let command_took = command_started.elapsed();
    match status {
        Ok(status) if status.success() => {}
        other => {
            stop_clients(threads);
            eprintln!("raftctl bench: --kill-leader command failed ({other:?}): {command}");
            return EXIT_USAGE;
        }
    }
    let give_up = Instant::now() + Duration::from_secs_f64(options.failover_timeout);
    while shared.first_success_at.load(Ordering::SeqCst) == NOT_YET && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(1));
    }
    if shared.first_success_at.load(Ordering::SeqCst) != NOT_YET {
        std::thread::sleep(SETTLE);
    }
    stop_clients(threads);

    let killed_at = shared.killed_at.load(Ordering::SeqCst);
    let first_success_at = shared.first_success_at.load(Ordering::SeqCst);
    let failover_ms = (first_success_at != NOT_YET)
        .then(|| first_success_at.saturating_sub(killed_at) as f64 / 1e6);
    let ok_before = shared.ok_before.load(Ordering::Relaxed);
    let ok_after = shared.ok_after.load(Ordering::Relaxed);
    let command_ms = command_took.as_secs_f64() * 1000.0;
    match output {
        Output::Json => print_json(&json!({
            "mode": "failover",
            "clients": options.clients,
            "failover_ms": failover_ms,
            "leader_index": leader + 1,
            "leader_endpoint": leader_endpoint,
            "kill_command_ms": command_ms,
            "ok_before_kill": ok_before,
            "ok_after_kill": ok_after,
            "errors": shared.errors.to_json(),
        })),
        Output::Table => {
            match failover_ms {
                Some(milliseconds) => println!(
                    "failover: leader {} ({leader_endpoint}) killed; the first write sent after \
                     the kill succeeded {milliseconds:.1} ms later",
                    leader + 1
                ),
                None => println!(
                    "failover: leader {} ({leader_endpoint}) killed; no write succeeded within \
                     {} s",
                    leader + 1,
                    options.failover_timeout
                ),
            }
            println!(
                "kill command {command_ms:.1} ms; writes ok {ok_before} before the kill, \
                 {ok_after} after; {}",
                shared.errors.describe()
            );
        }
    }
    if failover_ms.is_some() {
        0
    } else {
        EXIT_UNAVAILABLE
    }
}

/// One client: puts, each to the next endpoint that is not being skipped.
fn put_load(
    client: usize,
    endpoint_count: usize,
    factory: &EndpointExecutorFactory,
    options: &BenchOptions,
    shared: &Shared,
) {
    let mut executors: Vec<Option<Box<dyn Executor>>> = (0..endpoint_count).map(|_| None).collect();
    let mut skip_until: Vec<Option<Instant>> = vec![None; endpoint_count];
    let mut next_endpoint = client % endpoint_count;
    let value = vec![b'x'; options.value_bytes];
    let mut sequence = client as u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let chosen = (0..endpoint_count)
            .map(|step| (next_endpoint + step) % endpoint_count)
            .find(|&endpoint| skip_until[endpoint].is_none_or(|until| now >= until));
        let Some(endpoint) = chosen else {
            std::thread::sleep(RETRY_PAUSE);
            continue;
        };
        next_endpoint = (endpoint + 1) % endpoint_count;
        if executors[endpoint].is_none() {
            executors[endpoint] = factory(client, endpoint);
        }
        let Some(executor) = executors[endpoint].as_mut() else {
            shared.errors.record(&Outcome::Connect);
            skip_until[endpoint] = Some(now + REFUSED_ENDPOINT_PAUSE);
            continue;
        };
        // Keys spread over the key space, different per client.
        sequence = sequence.wrapping_add(options.clients as u64);
        let key = key_name(sequence % options.key_space, options.key_bytes);
        let sent_at = shared.now();
        let outcome = executor.execute(&Request::Put {
            key: &key,
            value: &value,
        });
        let completed_at = shared.now();
        if shared.errors.record(&outcome) {
            if matches!(outcome, Outcome::Connect) {
                skip_until[endpoint] = Some(Instant::now() + REFUSED_ENDPOINT_PAUSE);
            }
            std::thread::sleep(RETRY_PAUSE);
            continue;
        }
        let killed_at = shared.killed_at.load(Ordering::SeqCst);
        if killed_at != NOT_YET && sent_at >= killed_at {
            shared.ok_after.fetch_add(1, Ordering::Relaxed);
            shared
                .first_success_at
                .fetch_min(completed_at, Ordering::SeqCst);
        } else {
            shared.ok_before.fetch_add(1, Ordering::Relaxed);
        }
    }
}
