//! Client histories of the whole key-value model (get, put, delete, compare-and-swap) against
//! in-process clusters under faults, checked by `integration_tests::kv_linearizability`.
//!
//! Several clients run concurrently against a few hot keys, each sending to the node it last
//! believed was the leader, while a fault script isolates the leader, crashes nodes and heals.
//! Every answer is recorded with its virtual-time interval: answered operations as they were
//! answered, timeouts and dropped requests of mutations as unknown outcomes, refusals
//! (`NotLeader`, `Unavailable`: definitely not applied) left out. The verdict must be
//! linearizable; "unknown" (the search budget ran out) fails the test too, so a pass is never
//! assumed. A violation writes the failing key's history and timeline into the system temp
//! directory and names the files.
//!
//! Bounds are virtual time; a failing seed prints its replay command.

use applier_actor::{KvCommand, KvOutput};
use integration_tests::in_process::{seed_report, test_seed, InProcessCluster, RequestError};
use integration_tests::kv_linearizability::{
    check_kv, CasOutcome, KvEvent, KvOperation, KvVerdict, SearchBudget,
};
use raft_proto::client::ClientError;
use raft_types::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use test_support::this_test;

const CLIENTS: usize = 4;
const KEYS: [&str; 3] = ["a", "b", "c"];
const OPERATIONS_PER_CLIENT: usize = 60;
const REQUEST_BOUND: Duration = Duration::from_millis(600);

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
async fn client(
    cluster: &InProcessCluster,
    number: usize,
    seed: u64,
    history: Rc<RefCell<Vec<KvEvent>>>,
) {
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ (number as u64 * 7919));
    let members = cluster.members().to_vec();
    let mut target = members[number % members.len()];
    for sequence in 0..OPERATIONS_PER_CLIENT {
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
                Ok(pending) => classify(pending.output(REQUEST_BOUND).await),
                Err(error) => classify(Err(error)),
            };
            (Some(KvOperation::Put { value }), answer)
        } else if choice < 8 {
            let command = KvCommand::Delete {
                key: key.to_string(),
            };
            let answer = match cluster.send_command(target, command) {
                Ok(pending) => classify(pending.output(REQUEST_BOUND).await),
                Err(error) => classify(Err(error)),
            };
            (Some(KvOperation::Delete { existed: None }), answer)
        } else {
            // Expect what this client last wrote somewhere, or absence.
            let expect = (random.gen_bool(0.5))
                .then(|| format!("{}-{}", random.gen_range(0..CLIENTS), sequence / 2).into_bytes());
            let command = KvCommand::CompareAndSwap {
                key: key.to_string(),
                expect: expect.clone(),
                value: value.clone(),
            };
            let answer = match cluster.send_command(target, command) {
                Ok(pending) => classify(pending.output(REQUEST_BOUND).await),
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
                target = members[random.gen_range(0..members.len())]
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

/// Isolates the leader, crashes and restarts a node, heals: over and over.
async fn faults(cluster: &InProcessCluster, seed: u64) {
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
    for _round in 0..4 {
        tokio::time::sleep(Duration::from_millis(random.gen_range(100..400))).await;
        if let Some(leader) = cluster.leader().await {
            if random.gen_bool(0.5) {
                cluster.isolate(leader).await;
                tokio::time::sleep(Duration::from_millis(random.gen_range(200..600))).await;
                cluster.heal().await;
            } else {
                cluster.crash(leader).await;
                tokio::time::sleep(Duration::from_millis(random.gen_range(200..600))).await;
                cluster.restart(leader);
            }
        }
        let members = cluster.members().to_vec();
        let victim: NodeId = members[random.gen_range(0..members.len())];
        if cluster.is_running(victim) && random.gen_bool(0.5) {
            cluster.crash(victim).await;
            tokio::time::sleep(Duration::from_millis(random.gen_range(50..300))).await;
            cluster.restart(victim);
        }
    }
}

#[actix_rt::test(system = "integration_tests::in_process::PausedSystem")]
async fn kv_histories_under_leader_isolation_and_crashes_are_linearizable() {
    test_support::init_tracing();
    let test = this_test!();
    let first = test_seed(1300);
    let seeds: Vec<u64> = if std::env::var("RAFT_TEST_SEED").is_ok() {
        vec![first]
    } else {
        (first..first + 4).collect()
    };
    for seed in seeds {
        let _report = seed_report(test.clone(), seed);
        let cluster = InProcessCluster::start(3, seed);
        cluster
            .wait_for_leader(Duration::from_secs(5))
            .await
            .expect("a leader");
        let history = Rc::new(RefCell::new(Vec::new()));
        let clients = futures::future::join_all(
            (0..CLIENTS).map(|number| client(&cluster, number, seed, Rc::clone(&history))),
        );
        tokio::join!(clients, faults(&cluster, seed));
        let history = history.borrow().clone();
        let answered = history
            .iter()
            .filter(|event| event.answered.is_some())
            .count();
        match check_kv(&history, SearchBudget::default()) {
            KvVerdict::Linearizable { keys, operations } => println!(
                "seed {seed}: {operations} operations on {keys} keys ({answered} answered, {} \
                 unknown) are linearizable",
                operations - answered
            ),
            KvVerdict::Violation(violation) => {
                let directory = std::env::temp_dir().join(format!("kv-linearizability-{seed}"));
                let written = violation.write_files(&directory);
                panic!("seed {seed}: {violation}\nfiles: {written:?}");
            }
            KvVerdict::Unknown { key, reason } => {
                panic!("seed {seed}: no verdict for key {key:?}: {reason}")
            }
        }
        cluster.assert_no_actor_died();
    }
}
