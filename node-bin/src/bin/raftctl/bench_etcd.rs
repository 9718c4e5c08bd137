//! `raftctl bench --target etcd`: the bench workload against an etcd cluster through its native
//! gRPC client (the `etcd-client` crate, behind the `etcd` cargo feature so the default build
//! does not need protoc or tonic). Requests map one to one: a linearizable get is etcd's default
//! range request, `get-local` a serializable one, a put a put, and a compare-and-swap a
//! transaction comparing the value (or, for an absent key, version 0) before putting.
//!
//! Each client thread gets its own connection and a single-threaded runtime, as the HTTP
//! clients get their own keep-alive connection, so the two systems are driven alike.

use super::bench::{Executor, ExecutorFactory, Outcome, Request};
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

impl Executor for EtcdExecutor {
    fn execute(&mut self, request: &Request<'_>) -> Outcome {
        let client = &mut self.client;
        let result = self.runtime.block_on(async {
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
                    let transaction = Txn::new().when([compare]).and_then([TxnOp::put(
                        *key,
                        value.to_vec(),
                        None,
                    )]);
                    client.txn(transaction).await.map(|answer| {
                        if answer.succeeded() {
                            Outcome::Swapped
                        } else {
                            Outcome::Answered
                        }
                    })
                }
            }
        });
        result.unwrap_or_else(|error| classify(&error))
    }
}
