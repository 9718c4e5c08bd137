//! `raftctl bench --target etcd`: the bench workload against an etcd cluster through its native
//! gRPC client (the `etcd-client` crate, behind the `etcd` cargo feature so the default build
//! does not need protoc or tonic). Requests map one to one: a linearizable get is etcd's default
//! range request, `get-local` a serializable one, a put a put, and a compare-and-swap a
//! transaction comparing the value (or, for an absent key, version 0) before putting.
//!
//! The clients are tasks of one two-thread runtime sharing `--etcd-connections` connections (4
//! by default; etcd's own benchmark tool shares `--conns` connections between its clients the
//! same way): gRPC multiplexes requests on a connection. With `--etcd-connections 0` each
//! client thread has a connection and a single-threaded runtime of its own instead, like the
//! HTTP clients' keep-alive connections; measured on 2 cores with 64 clients that costs the
//! load generator about 110 µs of CPU per put against about 32 µs shared, and etcd ran at
//! ~5k puts/s instead of ~8.5k: the load generator shares the cores with the cluster, so the
//! cheaper way is the fairer one. Failover trials use one connection per client and endpoint.

use super::bench::{
    run_driven, BenchOptions, ClientPlan, ClientRecord, Executor, ExecutorFactory, LoadState,
    Outcome, Request,
};
use super::{Output, EXIT_UNAVAILABLE};
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use std::sync::Arc;
use std::time::Duration;

/// One client thread's connection to etcd.
struct EtcdExecutor {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded tokio runtime builds")
}

fn connect(
    runtime: &tokio::runtime::Runtime,
    endpoints: &[String],
    timeout: Duration,
) -> Result<Client, String> {
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2).min(timeout))
        .with_timeout(timeout);
    runtime
        .block_on(Client::connect(endpoints, Some(options)))
        .map_err(|error| error.to_string())
}

/// Checks that the cluster answers (its status, from the first endpoint that gives it), then
/// returns a factory of per-thread connections.
pub(crate) fn factory(endpoints: &[String], timeout: Duration) -> Result<ExecutorFactory, String> {
    let endpoints: Vec<String> = endpoints.to_vec();
    let probe = runtime();
    let mut client = connect(&probe, &endpoints, timeout)?;
    let status = probe
        .block_on(client.status())
        .map_err(|error| error.to_string())?;
    if status.leader() == 0 {
        return Err("etcd reports no leader".to_string());
    }
    Ok(Arc::new(move |_client| {
        let runtime = runtime();
        let client = connect(&runtime, &endpoints, timeout)
            .unwrap_or_else(|error| panic!("etcd connect: {error}"));
        Box::new(EtcdExecutor { runtime, client })
    }))
}

/// For `--kill-leader`: one connection per endpoint per client, and the leader found by asking
/// every endpoint for its status (the leader is the member whose id is the leader id).
pub(crate) fn failover_system(
    endpoints: &[String],
    timeout: Duration,
) -> Result<super::bench_failover::System, String> {
    let endpoints: Vec<String> = endpoints.to_vec();
    factory(&endpoints, timeout)?;
    let executor_endpoints = endpoints.clone();
    let leader_endpoints = endpoints.clone();
    Ok(super::bench_failover::System {
        endpoints,
        executor: Arc::new(move |_client, endpoint| {
            let runtime = runtime();
            let client =
                connect(&runtime, &executor_endpoints[endpoint..=endpoint], timeout).ok()?;
            let executor: Box<dyn Executor> = Box::new(EtcdExecutor { runtime, client });
            Some(executor)
        }),
        find_leader: Box::new(move || leader_index(&leader_endpoints)),
    })
}

fn leader_index(endpoints: &[String]) -> Option<usize> {
    let runtime = runtime();
    endpoints.iter().position(|endpoint| {
        let Ok(mut client) = connect(
            &runtime,
            std::slice::from_ref(endpoint),
            Duration::from_secs(1),
        ) else {
            return false;
        };
        runtime.block_on(client.status()).is_ok_and(|status| {
            status.leader() != 0
                && status
                    .header()
                    .is_some_and(|header| header.member_id() == status.leader())
        })
    })
}

fn classify(error: &etcd_client::Error) -> Outcome {
    match error {
        etcd_client::Error::GRpcStatus(status) => match i32::from(status.code()) {
            GRPC_UNAVAILABLE => Outcome::Unavailable,
            // tonic ends a request that passed the client's timeout as cancelled: as with a
            // deadline, a write may or may not have been applied.
            GRPC_DEADLINE_EXCEEDED | GRPC_CANCELLED => Outcome::Unknown,
            _ => Outcome::OtherStatus,
        },
        etcd_client::Error::TransportError(_) => Outcome::Connect,
        _ => Outcome::Other,
    }
}

/// The gRPC status codes the classification names (the protocol's numbers; etcd-client does
/// not re-export tonic's `Code`).
const GRPC_CANCELLED: i32 = 1;
const GRPC_DEADLINE_EXCEEDED: i32 = 4;
const GRPC_UNAVAILABLE: i32 = 14;

/// Worker threads of the runtime shared by all clients with `--etcd-connections` (the machine
/// the comparison was written for has two cores).
const SHARED_RUNTIME_THREADS: usize = 2;

/// `--etcd-connections N`: every client a task on one runtime, the tasks sharing N
/// connections round robin; prints the summary and returns the exit code.
pub(crate) fn run_shared(endpoints: &[String], options: &BenchOptions, output: Output) -> u8 {
    let timeout = options.request_timeout();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SHARED_RUNTIME_THREADS)
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let connected: Result<Vec<Client>, String> = (0..options.etcd_connections)
        .map(|_| connect(&runtime, endpoints, timeout))
        .collect();
    let status = connected.and_then(|connections| {
        let mut probe = connections[0].clone();
        let status = runtime
            .block_on(probe.status())
            .map_err(|error| error.to_string())?;
        if status.leader() == 0 {
            return Err("etcd reports no leader".to_string());
        }
        Ok(connections)
    });
    let connections = match status {
        Ok(connections) => connections,
        Err(error) => {
            eprintln!("raftctl bench: etcd at {endpoints:?} does not answer: {error}");
            return EXIT_UNAVAILABLE;
        }
    };
    run_driven(options, output, move |state| {
        vec![std::thread::spawn(move || {
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..state.options.clients)
                    .map(|client| {
                        let connection = connections[client % connections.len()].clone();
                        let state = Arc::clone(&state);
                        tokio::spawn(run_task(client, connection, state))
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

/// One client as a task: `bench.rs`'s client loop, awaiting instead of blocking.
async fn run_task(client: usize, mut connection: Client, state: Arc<LoadState>) -> ClientRecord {
    let mut record = ClientRecord::new();
    let mut plan = ClientPlan::new(client, &state.options);
    let pace = state.pace();
    let mut next_start = tokio::time::Instant::now();
    while let Some(ticket) = state.next_ticket() {
        if let Some(pace) = pace {
            tokio::time::sleep_until(next_start).await;
            next_start += pace;
        }
        let planned = plan.next(ticket);
        let begun = std::time::Instant::now();
        let outcome = execute(&mut connection, &plan.request(&planned)).await;
        record.record(&state, &outcome, begun);
        plan.finished(planned, &outcome);
    }
    record
}

impl Executor for EtcdExecutor {
    fn execute(&mut self, request: &Request<'_>) -> Outcome {
        self.runtime.block_on(execute(&mut self.client, request))
    }
}

/// One request on one connection.
async fn execute(client: &mut Client, request: &Request<'_>) -> Outcome {
    let result = async {
        match request {
            Request::Get { key, local } => {
                let options = local.then(|| GetOptions::new().with_serializable());
                client.get(*key, options).await.map(|_| Outcome::Answered)
            }
            Request::Put { key, value } => client
                .put(*key, value.to_vec(), None)
                .await
                .map(|_| Outcome::Answered),
            Request::Cas { key, expect, value } => {
                let compare = match expect {
                    Some(expect) => Compare::value(*key, CompareOp::Equal, expect.to_vec()),
                    None => Compare::version(*key, CompareOp::Equal, 0),
                };
                let transaction =
                    Txn::new()
                        .when([compare])
                        .and_then([TxnOp::put(*key, value.to_vec(), None)]);
                client.txn(transaction).await.map(|answer| {
                    if answer.succeeded() {
                        Outcome::Swapped
                    } else {
                        Outcome::Answered
                    }
                })
            }
        }
    }
    .await;
    result.unwrap_or_else(|error| classify(&error))
}
