//! A key-value client workload for in-process clusters whose histories the
//! [`crate::kv_linearizability`] checker judges: clients that get, put, delete and
//! compare-and-swap a few hot keys, follow the leader as real clients do (stay with the node
//! that answered, move to the leader a refusal names, or to another node when there is no
//! answer), and record every operation with its virtual-time interval.
//!
//! Answered operations are recorded as answered; timeouts and dropped requests of mutations as
//! unknown outcomes; refusals (`NotLeader`, `Unavailable`: definitely not applied) and reads
//! without an answer are left out.

use crate::in_process::{InProcessCluster, RequestError};
use crate::kv_linearizability::{CasOutcome, KvEvent, KvOperation};
use applier_actor::{KvCommand, KvOutput};
use raft_proto::client::ClientError;
use raft_types::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// A recorded history, shared by the clients of one run.
pub type SharedHistory = Rc<RefCell<Vec<KvEvent>>>;

/// What one client does.
#[derive(Clone, Copy, Debug)]
pub struct ClientSpec {
    /// The client's number, recorded with its operations.
    pub number: usize,
    /// Seeds the client's choices (mixed with its number).
    pub seed: u64,
    /// How many operations it runs.
    pub operations: usize,
    /// How long it waits for an answer before counting the outcome unknown.
    pub request_bound: Duration,
}

/// The hot keys every client works on.
pub const KEYS: [&str; 3] = ["a", "b", "c"];

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// What became of one request.
enum Answer {
    Output(KvOutput),
    /// Definitely not applied: leave it out. Carries the leader the node named, if any.
    Refused(Option<NodeId>),
    /// May or may not take effect.
    Unknown,
}

fn classify(result: Result<KvOutput, RequestError>) -> Answer {
    match result {
        Ok(output) => Answer::Output(output),
        Err(RequestError::Client {
            error: ClientError::NotLeader { leader_hint },
            ..
        }) => Answer::Refused(leader_hint),
        Err(RequestError::Client {
            error: ClientError::Unavailable { .. },
            ..
        })
        | Err(RequestError::Crashed { .. }) => Answer::Refused(None),
        Err(_) => Answer::Unknown,
    }
}

/// One client: random operations on the hot keys, recorded into `history`.
pub async fn run_client(cluster: &InProcessCluster, spec: ClientSpec, history: SharedHistory) {
    let ClientSpec {
        number,
        seed,
        operations,
        request_bound,
    } = spec;
    let clients = 4;
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ (number as u64 * 7919));
    let members = cluster.node_ids();
    let mut target = members[number % members.len()];
    for sequence in 0..operations {
        let key = KEYS[random.gen_range(0..KEYS.len())];
        let value = format!("{number}-{sequence}").into_bytes();
        let choice = random.gen_range(0..10);
        let invoked = now();
        let (operation, answer) = if choice < 4 {
            let answer = classify(cluster.get(target, key).await.map(KvOutput::Value));
            (None, answer)
        } else if choice < 7 {
            let command = KvCommand::Put {
                key: key.to_string(),
                value: value.clone(),
            };
            let answer = match cluster.send_command(target, command) {
                Ok(pending) => classify(pending.output(request_bound).await),
                Err(error) => classify(Err(error)),
            };
            (Some(KvOperation::Put { value }), answer)
        } else if choice < 8 {
            let command = KvCommand::Delete {
                key: key.to_string(),
            };
            let answer = match cluster.send_command(target, command) {
                Ok(pending) => classify(pending.output(request_bound).await),
                Err(error) => classify(Err(error)),
            };
            (Some(KvOperation::Delete { existed: None }), answer)
        } else {
            // Expect what this client last wrote somewhere, or absence.
            let expect = (random.gen_bool(0.5))
                .then(|| format!("{}-{}", random.gen_range(0..clients), sequence / 2).into_bytes());
            let command = KvCommand::CompareAndSwap {
                key: key.to_string(),
                expect: expect.clone(),
                value: value.clone(),
            };
            let answer = match cluster.send_command(target, command) {
                Ok(pending) => classify(pending.output(request_bound).await),
                Err(error) => classify(Err(error)),
            };
            let operation = KvOperation::CompareAndSwap {
                expect,
                value,
                outcome: CasOutcome::Unknown,
            };
            (Some(operation), answer)
        };
        let answered = now();
        // Follow the leader as a client would: stay with the node that answered, move to
        // the leader a refusal names, or to another node when there is no answer. A client
        // may so keep talking to a deposed leader for a while, as real ones do.
        match &answer {
            Answer::Output(_) => {}
            Answer::Refused(Some(leader)) => target = *leader,
            Answer::Refused(None) | Answer::Unknown => {
                // Nodes may have joined since: pick among the nodes there are now.
                let nodes = cluster.node_ids();
                target = nodes[random.gen_range(0..nodes.len())]
            }
        }
        let recorded = match (operation, answer) {
            (_, Answer::Refused(_)) => None,
            // A read that got no answer says nothing.
            (None, Answer::Unknown) => None,
            (None, Answer::Output(KvOutput::Value(value))) => {
                Some((KvOperation::Get { value }, Some(answered)))
            }
            (Some(operation), Answer::Unknown) => Some((operation, None)),
            (Some(operation), Answer::Output(output)) => {
                let operation = match (operation, output) {
                    (operation @ KvOperation::Put { .. }, KvOutput::Put { .. }) => operation,
                    (KvOperation::Delete { .. }, KvOutput::Deleted { existed, .. }) => {
                        KvOperation::Delete {
                            existed: Some(existed),
                        }
                    }
                    (
                        KvOperation::CompareAndSwap { expect, value, .. },
                        KvOutput::Swapped { .. },
                    ) => KvOperation::CompareAndSwap {
                        expect,
                        value,
                        outcome: CasOutcome::Swapped,
                    },
                    (
                        KvOperation::CompareAndSwap { expect, value, .. },
                        KvOutput::CasFailed { current },
                    ) => KvOperation::CompareAndSwap {
                        expect,
                        value,
                        outcome: CasOutcome::Refused { current },
                    },
                    (operation, output) => {
                        panic!("{operation:?} answered with {output:?}")
                    }
                };
                Some((operation, Some(answered)))
            }
            (None, Answer::Output(output)) => panic!("a get answered with {output:?}"),
        };
        if let Some((operation, answered)) = recorded {
            history.borrow_mut().push(KvEvent {
                client: number,
                key: key.to_string(),
                operation,
                invoked,
                answered,
            });
        }
        tokio::time::sleep(Duration::from_millis(random.gen_range(1..20))).await;
    }
}

/// After the faults, with the cluster converged: a linearizable read of every hot key through
/// the leader, recorded, so that a lost acknowledged write shows as a violation. A read the
/// node refuses (leadership moved on, a transfer still finishing) is asked again of whoever
/// leads then; a refused read changes nothing, so only the answered one is recorded.
pub async fn final_reads(cluster: &InProcessCluster, leader: NodeId, history: &SharedHistory) {
    let mut leader = leader;
    for key in KEYS {
        let mut attempts = 0;
        let (invoked, value) = loop {
            let invoked = now();
            match cluster.get(leader, key).await {
                Ok(value) => break (invoked, value),
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    tracing::debug!(%key, %error, "final read refused; asking the leader again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    leader = cluster
                        .wait_for_leader(Duration::from_secs(5))
                        .await
                        .unwrap_or(leader);
                }
                Err(error) => panic!("the final read of {key} failed: {error}"),
            }
        };
        history.borrow_mut().push(KvEvent {
            client: usize::MAX,
            key: key.to_string(),
            operation: KvOperation::Get { value },
            invoked,
            answered: Some(now()),
        });
    }
}
