//! A key-value client workload over HTTP for [`crate::process_cluster::ProcessCluster`]s, whose
//! history the [`crate::kv_linearizability`] checker judges: client threads get, put and
//! compare-and-swap three hot keys through every node (the nodes forward to the leader), and
//! record every operation with its wall-clock interval.
//!
//! The nodes to talk to can change while the clients run ([`HttpKvWorkload::set_endpoints`]):
//! a test that adds or removes servers points the clients at the members.
//!
//! Recorded as answered: reads (200, 404), acknowledged puts and swaps (200), refused swaps
//! (409, with the current value). Left out: refusals that mean "definitely not applied" (503,
//! 400, 413) and requests that never reached a node. Everything else (504, a timeout, a broken
//! connection) is a mutation of unknown outcome.

use crate::kv_linearizability::SearchBudget;
use crate::kv_linearizability::{check_kv, CasOutcome, KvEvent, KvOperation, KvVerdict};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The hot keys every client works on.
pub const KEYS: [&str; 3] = ["a", "b", "c"];

/// Client threads running the workload until [`HttpKvWorkload::finish`].
pub struct HttpKvWorkload {
    stop: Arc<AtomicBool>,
    endpoints: Arc<RwLock<Vec<String>>>,
    threads: Vec<JoinHandle<Vec<KvEvent>>>,
}

impl HttpKvWorkload {
    /// Starts `clients` threads against `endpoints` (base URLs such as `http://127.0.0.11:4000`).
    pub fn start(clients: usize, endpoints: Vec<String>) -> HttpKvWorkload {
        let stop = Arc::new(AtomicBool::new(false));
        let endpoints = Arc::new(RwLock::new(endpoints));
        let threads = (0..clients)
            .map(|client| {
                let stop = Arc::clone(&stop);
                let endpoints = Arc::clone(&endpoints);
                std::thread::spawn(move || run_client(client, clients, &stop, &endpoints))
            })
            .collect();
        HttpKvWorkload {
            stop,
            endpoints,
            threads,
        }
    }

    /// Points every client at `endpoints` from its next request on.
    pub fn set_endpoints(&self, endpoints: Vec<String>) {
        *self
            .endpoints
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = endpoints;
    }

    /// Stops the clients and returns the whole history.
    pub fn finish(self) -> Vec<KvEvent> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .flat_map(|thread| thread.join().expect("client thread"))
            .collect()
    }
}

fn run_client(
    client: usize,
    clients: usize,
    stop: &AtomicBool,
    endpoints: &RwLock<Vec<String>>,
) -> Vec<KvEvent> {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let mut history = Vec::new();
    let mut sequence = 0usize;
    while !stop.load(Ordering::SeqCst) {
        sequence += 1;
        let url = {
            let endpoints = endpoints
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if endpoints.is_empty() {
                drop(endpoints);
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            endpoints[(client + sequence) % endpoints.len()].clone()
        };
        let key = KEYS[(client * 7 + sequence) % KEYS.len()];
        let value = format!("{client}-{sequence}").into_bytes();
        if let Some(event) = one_operation(&http, &url, client, clients, sequence, key, value) {
            history.push(event);
        }
    }
    history
}

/// Runs one operation; `None` when it is left out of the history.
fn one_operation(
    http: &reqwest::blocking::Client,
    url: &str,
    client: usize,
    clients: usize,
    sequence: usize,
    key: &str,
    value: Vec<u8>,
) -> Option<KvEvent> {
    let invoked = Instant::now();
    let (operation, status, body) = match sequence % 5 {
        0 | 1 => {
            let response = http.get(format!("{url}/v1/kv/{key}")).send().ok()?;
            let status = response.status().as_u16();
            let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
            let operation = match status {
                200 => KvOperation::Get { value: Some(body) },
                404 => KvOperation::Get { value: None },
                _ => return None,
            };
            (operation, status, Vec::new())
        }
        2 | 3 => {
            let sent = http
                .put(format!("{url}/v1/kv/{key}"))
                .body(value.clone())
                .send();
            let status = match sent {
                Ok(response) => response.status().as_u16(),
                Err(error) if error.is_connect() => return None,
                Err(_) => 0,
            };
            (KvOperation::Put { value }, status, Vec::new())
        }
        _ => {
            // Expect a value some client wrote a little earlier, or absence.
            let expect = sequence.is_multiple_of(2).then(|| {
                format!(
                    "{}-{}",
                    (client + 1) % clients.max(1),
                    sequence.saturating_sub(3)
                )
            });
            let body = serde_json::json!({
                "expect": expect,
                "value": String::from_utf8_lossy(&value),
            });
            let sent = http.post(format!("{url}/v1/cas/{key}")).json(&body).send();
            let (status, answer) = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (
                        status,
                        response.bytes().map(|b| b.to_vec()).unwrap_or_default(),
                    )
                }
                Err(error) if error.is_connect() => return None,
                Err(_) => (0, Vec::new()),
            };
            let operation = KvOperation::CompareAndSwap {
                expect: expect.map(String::into_bytes),
                value,
                outcome: CasOutcome::Unknown,
            };
            (operation, status, answer)
        }
    };
    let answered = Instant::now();
    let (operation, answered) = match (operation, status) {
        (operation @ KvOperation::Get { .. }, _) => (operation, Some(answered)),
        (operation @ KvOperation::Put { .. }, 200) => (operation, Some(answered)),
        (KvOperation::CompareAndSwap { expect, value, .. }, 200) => (
            KvOperation::CompareAndSwap {
                expect,
                value,
                outcome: CasOutcome::Swapped,
            },
            Some(answered),
        ),
        (KvOperation::CompareAndSwap { expect, value, .. }, 409) => {
            let answer: serde_json::Value =
                serde_json::from_slice(&body).expect("a 409 body is JSON");
            let current = answer["current"]
                .as_str()
                .map(|text| text.as_bytes().to_vec());
            (
                KvOperation::CompareAndSwap {
                    expect,
                    value,
                    outcome: CasOutcome::Refused { current },
                },
                Some(answered),
            )
        }
        // Definitely not applied.
        (_, 503) | (_, 400) | (_, 413) => return None,
        // 504, a timeout, a broken connection: may or may not take effect.
        (operation, _) => (operation, None),
    };
    Some(KvEvent {
        client,
        key: key.to_string(),
        operation,
        invoked,
        answered,
    })
}

/// Appends a final linearizable read of every hot key through `url` to `history`: the state
/// every acknowledged write must be visible in.
pub fn final_reads(url: &str, history: &mut Vec<KvEvent>) {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for key in KEYS {
        let invoked = Instant::now();
        let response = http
            .get(format!("{url}/v1/kv/{key}"))
            .send()
            .unwrap_or_else(|error| panic!("the final read of {key} failed: {error}"));
        let value = match response.status().as_u16() {
            200 => Some(response.bytes().expect("body").to_vec()),
            404 => None,
            status => panic!("the final read of {key} failed with {status}"),
        };
        history.push(KvEvent {
            client: usize::MAX,
            key: key.to_string(),
            operation: KvOperation::Get { value },
            invoked,
            answered: Some(Instant::now()),
        });
    }
}

/// Prints the history's size and asserts it is linearizable under the key-value model (the
/// failing key's history is written to files under the temp directory).
pub fn assert_linearizable(history: &[KvEvent], minimum_operations: usize) {
    let unknown = history
        .iter()
        .filter(|event| event.answered.is_none())
        .count();
    println!(
        "history: {} operations, {unknown} of unknown outcome",
        history.len()
    );
    assert!(
        history.len() >= minimum_operations,
        "too little happened: {} operations",
        history.len()
    );
    match check_kv(history, SearchBudget::default()) {
        KvVerdict::Linearizable { .. } => {}
        KvVerdict::Violation(violation) => {
            let directory = std::env::temp_dir().join("process-kv-linearizability");
            let written = violation.write_files(&directory);
            panic!("{violation}\nfiles: {written:?}");
        }
        KvVerdict::Unknown { key, reason } => panic!("no verdict for {key}: {reason}"),
    }
}
