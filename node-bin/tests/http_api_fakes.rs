//! The client API served by real actix-web servers against fake consensus actors: status
//! codes, JSON errors, key rules, local reads, forwarding, the 503-versus-504 rule, and the
//! consistency check's endpoint and corruption alarm.

use actix::{Actor, Context, Handler, MessageResult};
use applier_actor::{
    AppliedCheckpoints, Checkpoint, CheckpointPolicy, HistoryHash, KvStore, StateMachine,
};
use node_bin::consistency::consistency_checker::PeerCheckError;
use node_bin::consistency::{ConsistencyChecker, ConsistencyState};
use node_bin::http_api::forwarder::Forwarder;
use node_bin::http_api::{app, ApiCounters, ApiPorts, ApiState};
use node_bin::raft_client::{ClientFailure, RaftClient};
use raft_proto::applier::{Query, TakeSnapshot};
use raft_proto::client::{ClientError, GetStatus, Propose, RaftStatus, Read, Role};
use raft_proto::snapshot::SnapshotStore;
use raft_types::{LogId, LogIndex, NodeId, Term};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use storage_actor::MemSnapshotStore;

/// How the fake consensus actor behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Leader: applies every command at once.
    Leader,
    /// Follower of `leader` (or of nobody).
    Follower { leader: Option<NodeId> },
    /// Leader that accepts proposals but never commits them.
    Stuck,
    /// Has an address in the member table, but nothing listens there.
    Absent,
}

/// Stands in for consensus actor and applier at once, over a real `KvStore`.
struct FakeNode {
    id: NodeId,
    behaviour: Behaviour,
    store: KvStore,
    last_index: u64,
    /// Answers of `Stuck` proposals are kept (not dropped) so the client times out.
    held: Vec<raft_proto::client::ClientResponder>,
    /// Where `TakeSnapshot` writes, and what `GET /v1/snapshot` serves.
    snapshots: Arc<dyn SnapshotStore>,
}

impl Actor for FakeNode {
    type Context = Context<Self>;
}

impl FakeNode {
    fn not_leader(&self) -> Option<ClientError> {
        match self.behaviour {
            Behaviour::Follower { leader } => Some(ClientError::NotLeader {
                leader_hint: leader,
            }),
            Behaviour::Leader | Behaviour::Stuck | Behaviour::Absent => None,
        }
    }
}

impl Handler<Propose> for FakeNode {
    type Result = ();
    fn handle(&mut self, message: Propose, _ctx: &mut Context<Self>) {
        if let Some(error) = self.not_leader() {
            let _ = message.responder.send(Err(error));
            return;
        }
        if self.behaviour == Behaviour::Stuck {
            self.held.push(message.responder);
            return;
        }
        self.last_index += 1;
        let log_id = LogId::new(Term(1), LogIndex(self.last_index));
        let output = self.store.apply(log_id, &message.command);
        let _ = message.responder.send(Ok(output));
    }
}

impl Handler<Read> for FakeNode {
    type Result = ();
    fn handle(&mut self, message: Read, _ctx: &mut Context<Self>) {
        if let Some(error) = self.not_leader() {
            let _ = message.responder.send(Err(error));
            return;
        }
        let _ = message.responder.send(Ok(self.store.query(&message.query)));
    }
}

impl Handler<Query> for FakeNode {
    type Result = ();
    fn handle(&mut self, message: Query, _ctx: &mut Context<Self>) {
        let _ = message.responder.send(Ok(self.store.query(&message.query)));
    }
}

/// Bytes of the fake's snapshot payload: several download chunks, so `GET /v1/snapshot`
/// streams it in more than one read, and not a multiple of the chunk size.
const FAKE_SNAPSHOT_PAYLOAD_BYTES: usize = (5 << 20) / 2 + 7;

impl Handler<TakeSnapshot> for FakeNode {
    type Result = ();
    fn handle(&mut self, message: TakeSnapshot, _ctx: &mut Context<Self>) {
        // Like the applier: nothing applied is nothing to snapshot.
        if self.last_index == 0 {
            let _ = message
                .responder
                .send(Err("nothing has been applied yet".to_string()));
            return;
        }
        let taken = (|| {
            let log_id = LogId::new(Term(1), LogIndex(self.last_index));
            let mut writer = self
                .snapshots
                .begin(
                    log_id,
                    raft_types::Membership::with_voters([NodeId(1), NodeId(2)]),
                )
                .map_err(|error| error.to_string())?;
            let payload: Vec<u8> = (0..FAKE_SNAPSHOT_PAYLOAD_BYTES)
                .map(|position| (position * 31 + self.last_index as usize) as u8)
                .collect();
            std::io::Write::write_all(&mut writer, &payload).map_err(|error| error.to_string())?;
            writer.finish().map_err(|error| error.to_string())
        })();
        let _ = message.responder.send(taken);
    }
}

impl Handler<GetStatus> for FakeNode {
    type Result = MessageResult<GetStatus>;
    fn handle(&mut self, _message: GetStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let (role, leader_id) = match self.behaviour {
            Behaviour::Leader | Behaviour::Stuck | Behaviour::Absent => {
                (Role::Leader, Some(self.id))
            }
            Behaviour::Follower { leader } => (Role::Follower, leader),
        };
        MessageResult(RaftStatus {
            id: self.id,
            role,
            term: Term(1),
            leader_id,
            commit_index: LogIndex(self.last_index),
            last_applied: LogIndex(self.last_index),
            last_log_index: LogIndex(self.last_index),
            members: vec![NodeId(1), NodeId(2)],
            removed: false,
        })
    }
}

struct TestCluster {
    addresses: BTreeMap<NodeId, SocketAddr>,
    /// Each node's checkpoints and alarms, as its HTTP API sees them.
    consistency: BTreeMap<NodeId, ConsistencyState>,
    client: reqwest::Client,
}

const MAX_VALUE_BYTES: usize = 1024;
const CLUSTER_ID: &str = "test";

/// Starts one HTTP server per `(id, behaviour)`, each over its own fake node.
fn start(nodes: &[(u64, Behaviour)], request_timeout: Duration) -> TestCluster {
    let listeners: Vec<(NodeId, TcpListener)> = nodes
        .iter()
        .map(|(id, _)| {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            (NodeId(*id), listener)
        })
        .collect();
    let addresses: BTreeMap<NodeId, SocketAddr> = listeners
        .iter()
        .map(|(id, listener)| (*id, listener.local_addr().expect("address")))
        .collect();
    let mut consistency_states = BTreeMap::new();
    for ((id, listener), (_, behaviour)) in listeners.into_iter().zip(nodes) {
        if *behaviour == Behaviour::Absent {
            drop(listener);
            continue;
        }
        let checkpoints = Arc::new(AppliedCheckpoints::new(CheckpointPolicy::default()));
        let consistency = ConsistencyState::new(id, CLUSTER_ID.to_string(), checkpoints);
        consistency_states.insert(id, consistency.clone());
        let snapshot_store: Arc<dyn SnapshotStore> = Arc::new(MemSnapshotStore::new());
        let fake = FakeNode {
            id,
            behaviour: *behaviour,
            store: KvStore::new(),
            last_index: 0,
            held: Vec::new(),
            snapshots: Arc::clone(&snapshot_store),
        }
        .start();
        let ports = ApiPorts {
            propose: fake.clone().recipient(),
            read: fake.clone().recipient(),
            status: fake.clone().recipient(),
            local_query: fake.clone().recipient(),
            network_stats: None,
            take_snapshot: fake.recipient(),
        };
        let counters = ApiCounters::default();
        let client_addrs = addresses.clone();
        let server = actix_web::HttpServer::new(move || {
            let forwarder = Forwarder::new(
                id,
                "127.0.0.1".parse().expect("ip"),
                client_addrs.clone(),
                request_timeout + Duration::from_secs(1),
            )
            .expect("client");
            app(ApiState {
                node_id: id,
                ports: ports.clone(),
                forwarder,
                request_timeout,
                max_value_bytes: MAX_VALUE_BYTES,
                raft_metrics: None,
                storage_metrics: None,
                counters: counters.clone(),
                consistency: consistency.clone(),
                snapshot_store: Arc::clone(&snapshot_store),
                snapshot_metrics: None,
                wal_directory: None,
            })
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        actix_rt::spawn(server);
    }
    TestCluster {
        addresses,
        consistency: consistency_states,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
    }
}

impl TestCluster {
    fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{path}", self.addresses[&NodeId(id)])
    }

    async fn call(
        &self,
        method: reqwest::Method,
        id: u64,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Vec<u8>) {
        let response = self
            .client
            .request(method, self.url(id, path))
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    async fn json(&self, method: reqwest::Method, id: u64, path: &str, body: &str) -> (u16, Value) {
        let (status, bytes) = self.call(method, id, path, body.to_string()).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().expect("error.code")
}

use reqwest::Method;

#[actix_web::test]
async fn put_get_delete_and_cas_on_the_leader() {
    let cluster = start(&[(1, Behaviour::Leader)], Duration::from_secs(2));
    let (status, body) = cluster
        .json(Method::PUT, 1, "/v1/kv/app/config/x", "v1")
        .await;
    assert_eq!((status, body), (200, json!({ "index": 1 })));
    let (status, value) = cluster
        .call(Method::GET, 1, "/v1/kv/app%2Fconfig/x", "")
        .await;
    assert_eq!((status, value), (200, b"v1".to_vec()));

    let (status, body) = cluster
        .json(
            Method::POST,
            1,
            "/v1/cas/app/config/x",
            r#"{"expect":"v1","value":"v2"}"#,
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "swapped": true, "index": 2 }))
    );
    let (status, body) = cluster
        .json(
            Method::POST,
            1,
            "/v1/cas/app/config/x",
            r#"{"expect":null,"value":"v3"}"#,
        )
        .await;
    assert_eq!(
        (status, body),
        (409, json!({ "swapped": false, "current": "v2" }))
    );
    let (status, body) = cluster
        .json(
            Method::POST,
            1,
            "/v1/cas/new",
            r#"{"expect":null,"value":"n"}"#,
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "swapped": true, "index": 4 }))
    );

    let (status, body) = cluster
        .json(Method::DELETE, 1, "/v1/kv/app/config/x", "")
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "index": 5, "deleted": true }))
    );
    let (status, body) = cluster
        .json(Method::DELETE, 1, "/v1/kv/app/config/x", "")
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "index": 6, "deleted": false }))
    );
    let (status, body) = cluster
        .json(Method::GET, 1, "/v1/kv/app/config/x", "")
        .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "key_not_found");
}

#[actix_web::test]
async fn bad_requests_get_json_errors() {
    let cluster = start(&[(1, Behaviour::Leader)], Duration::from_secs(2));
    let cases: [(Method, &str, String, u16, &str); 15] = [
        (Method::PUT, "/v1/kv/", "v".into(), 400, "bad_key"),
        (Method::PUT, "/v1/kv/%FF%FE", "v".into(), 400, "bad_key"),
        (
            Method::PUT,
            &*Box::leak(format!("/v1/kv/{}", "k".repeat(1025)).into_boxed_str()),
            "v".into(),
            400,
            "bad_key",
        ),
        (
            Method::PUT,
            "/v1/kv/big",
            "x".repeat(MAX_VALUE_BYTES + 1),
            413,
            "value_too_large",
        ),
        (
            Method::POST,
            "/v1/cas/k",
            "{not json".into(),
            400,
            "bad_json",
        ),
        (
            Method::POST,
            "/v1/cas/k",
            r#"{"value":"v"}"#.into(),
            400,
            "bad_json",
        ),
        (
            Method::POST,
            "/v1/cas/k",
            format!(
                r#"{{"expect":null,"value":"{}"}}"#,
                "x".repeat(MAX_VALUE_BYTES + 1)
            ),
            413,
            "value_too_large",
        ),
        (Method::GET, "/v2/nothing", String::new(), 404, "not_found"),
        // The key routes match by prefix: no key, or a longer first segment, is no route.
        (Method::GET, "/v1/kv", String::new(), 404, "not_found"),
        (Method::GET, "/v1/kvx/k", String::new(), 404, "not_found"),
        (Method::POST, "/v1/cas", String::new(), 404, "not_found"),
        (
            Method::GET,
            "/v1/cas/k",
            String::new(),
            405,
            "method_not_allowed",
        ),
        (
            Method::PATCH,
            "/v1/kv/k",
            String::new(),
            405,
            "method_not_allowed",
        ),
        (Method::GET, "/v1/kv/", String::new(), 400, "bad_key"),
        (
            Method::GET,
            "/v1/kv/k?consistency=eventual",
            String::new(),
            400,
            "bad_query",
        ),
    ];
    for (method, path, body, expected_status, expected_code) in cases {
        let (status, json) = cluster.json(method.clone(), 1, path, &body).await;
        assert_eq!(status, expected_status, "{method} {path}: {json}");
        assert_eq!(error_code(&json), expected_code, "{method} {path}");
    }
    let (status, json) = cluster.json(Method::POST, 1, "/v1/kv/k", "").await;
    assert_eq!((status, error_code(&json)), (405, "method_not_allowed"));
    // The node is still serving.
    let (status, _) = cluster.json(Method::PUT, 1, "/v1/kv/k", "v").await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_follower_forwards_to_the_leader_and_reads_locally_on_request() {
    let cluster = start(
        &[
            (1, Behaviour::Leader),
            (
                2,
                Behaviour::Follower {
                    leader: Some(NodeId(1)),
                },
            ),
        ],
        Duration::from_secs(2),
    );
    let (status, body) = cluster.json(Method::PUT, 2, "/v1/kv/a", "1").await;
    assert_eq!((status, body), (200, json!({ "index": 1 })));
    let (status, value) = cluster.call(Method::GET, 2, "/v1/kv/a", "").await;
    assert_eq!((status, value), (200, b"1".to_vec()));
    let (status, body) = cluster
        .json(
            Method::POST,
            2,
            "/v1/cas/a",
            r#"{"expect":"1","value":"2"}"#,
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({ "swapped": true, "index": 2 }))
    );
    // The follower's own (fake) state machine never saw the write: a local read says so.
    let (status, body) = cluster
        .json(Method::GET, 2, "/v1/kv/a?consistency=local", "")
        .await;
    assert_eq!((status, error_code(&body)), (404, "key_not_found"));
    let (status, value) = cluster
        .call(Method::GET, 1, "/v1/kv/a?consistency=local", "")
        .await;
    assert_eq!((status, value), (200, b"2".to_vec()));

    let (status, body) = cluster.json(Method::GET, 2, "/v1/status", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["role"], "follower");
    assert_eq!(body["leader_id"], 1);
    assert_eq!(
        body["leader_client_addr"],
        cluster.addresses[&NodeId(1)].to_string()
    );
    let (status, _) = cluster.json(Method::GET, 2, "/health", "").await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_listing_is_forwarded_to_the_leader_and_binary_safe() {
    let cluster = start(
        &[
            (1, Behaviour::Leader),
            (
                2,
                Behaviour::Follower {
                    leader: Some(NodeId(1)),
                },
            ),
        ],
        Duration::from_secs(2),
    );
    for (key, value) in [("d/a", &b"1"[..]), ("d/b", &[0, 255][..]), ("e", b"x")] {
        let response = cluster
            .call(Method::PUT, 1, &format!("/v1/kv/{key}"), value.to_vec())
            .await;
        assert_eq!(response.0, 200);
    }
    // Linearizable (the default) on a follower: served by the leader's store.
    let (status, body) = cluster
        .json(Method::GET, 2, "/v1/list?prefix=d%2F&limit=1", "")
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"entries": [{"key": "d/a", "value": "1"}], "more": true, "next_start_after": "d/a"})
        )
    );
    let (status, body) = cluster
        .json(Method::GET, 2, "/v1/list?prefix=d%2F&start_after=d%2Fa", "")
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"entries": [{"key": "d/b", "value_base64": "AP8="}], "more": false, "next_start_after": null})
        )
    );
    // Local on the follower: its own (empty) store.
    let (status, body) = cluster
        .json(Method::GET, 2, "/v1/list?prefix=d%2F&consistency=local", "")
        .await;
    assert_eq!((status, &body["entries"]), (200, &json!([])));
    // A CAS on the binary value, in base64 both ways.
    let (status, body) = cluster
        .json(
            Method::POST,
            2,
            "/v1/cas/d/b",
            r#"{"expect":"1","value":"2"}"#,
        )
        .await;
    assert_eq!(
        (status, body),
        (409, json!({"swapped": false, "current_base64": "AP8="}))
    );
    let (status, body) = cluster
        .json(
            Method::POST,
            2,
            "/v1/cas/d/b",
            r#"{"expect_base64":"AP8=","value_base64":"/w=="}"#,
        )
        .await;
    assert_eq!((status, body["swapped"].clone()), (200, json!(true)));
    let (status, value) = cluster.call(Method::GET, 1, "/v1/kv/d/b", "").await;
    assert_eq!((status, value), (200, vec![255]));
    let (status, body) = cluster.json(Method::GET, 1, "/v1/list?limit=0", "").await;
    assert_eq!((status, error_code(&body)), (400, "bad_query"));
}

#[actix_web::test]
async fn without_a_leader_requests_are_refused_with_503() {
    let cluster = start(
        &[(2, Behaviour::Follower { leader: None })],
        Duration::from_secs(2),
    );
    for (method, path) in [
        (Method::PUT, "/v1/kv/a"),
        (Method::GET, "/v1/kv/a"),
        (Method::GET, "/health"),
    ] {
        let (status, body) = cluster.json(method.clone(), 2, path, "v").await;
        assert_eq!(
            (status, error_code(&body)),
            (503, "no_leader"),
            "{method} {path}"
        );
    }
    let (status, body) = cluster.json(Method::GET, 2, "/v1/status", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["leader_id"], Value::Null);
}

#[actix_web::test]
async fn a_forward_to_an_unreachable_leader_is_503_and_no_ping_pong() {
    // Node 2 believes node 1 leads, but nothing listens at node 1's address.
    let cluster = start(
        &[
            (1, Behaviour::Absent),
            (
                2,
                Behaviour::Follower {
                    leader: Some(NodeId(1)),
                },
            ),
            (
                3,
                Behaviour::Follower {
                    leader: Some(NodeId(2)),
                },
            ),
        ],
        Duration::from_secs(2),
    );
    let (status, body) = cluster.json(Method::PUT, 2, "/v1/kv/a", "1").await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"), "{body}");
    // 3 forwards to 2, which does not forward again.
    let (status, body) = cluster.json(Method::PUT, 3, "/v1/kv/a", "1").await;
    assert_eq!((status, error_code(&body)), (503, "not_leader"), "{body}");
    assert_eq!(body["error"]["leader_id"], 1);
}

#[actix_web::test]
async fn a_write_not_committed_in_time_is_504() {
    let cluster = start(&[(1, Behaviour::Stuck)], Duration::from_millis(300));
    let (status, body) = cluster.json(Method::PUT, 1, "/v1/kv/a", "1").await;
    assert_eq!(
        (status, error_code(&body)),
        (504, "outcome_unknown"),
        "{body}"
    );
}

#[actix_web::test]
async fn metrics_are_prometheus_text() {
    let cluster = start(&[(1, Behaviour::Leader)], Duration::from_secs(2));
    cluster.json(Method::PUT, 1, "/v1/kv/a", "1").await;
    let (status, body) = cluster.call(Method::GET, 1, "/metrics", "").await;
    let text = String::from_utf8(body).expect("utf-8");
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE http_responses_total counter"),
        "{text}"
    );
    assert!(
        text.contains("http_responses_total{code=\"200\"} 1"),
        "{text}"
    );
}

fn checkpoint(index: u64, hash: u64) -> Checkpoint {
    Checkpoint {
        index: LogIndex(index),
        hash: HistoryHash(hash),
    }
}

impl TestCluster {
    /// A consistency checker for node `id` that takes `peers` (id, whose address) as its peers.
    fn checker(&self, id: u64, peers: &[(u64, u64)]) -> ConsistencyChecker {
        let peers = peers
            .iter()
            .map(|(peer, address_of)| (NodeId(*peer), self.addresses[&NodeId(*address_of)]))
            .collect();
        ConsistencyChecker::new(
            self.consistency[&NodeId(id)].clone(),
            "127.0.0.1".parse().expect("ip"),
            peers,
        )
        .expect("client")
    }

    fn record(&self, id: u64, due: &[Checkpoint], latest: Checkpoint) {
        self.consistency[&NodeId(id)]
            .checkpoints
            .record(due, latest);
    }

    async fn metrics(&self, id: u64) -> String {
        let (status, body) = self.call(Method::GET, id, "/metrics", "").await;
        assert_eq!(status, 200);
        String::from_utf8(body).expect("utf-8")
    }
}

#[actix_web::test]
async fn the_checkpoints_endpoint_serves_what_the_applier_recorded() {
    let cluster = start(&[(1, Behaviour::Leader)], Duration::from_secs(2));
    let (status, body) = cluster
        .json(Method::GET, 1, "/v1/internal/checkpoints", "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "node_id": 1, "cluster_id": "test", "interval_entries": 10,
                "latest": null, "checkpoints": [] })
    );
    cluster.record(
        1,
        &[checkpoint(10, 0xa), checkpoint(20, 0xb)],
        checkpoint(23, 0xc),
    );
    let (_, body) = cluster
        .json(Method::GET, 1, "/v1/internal/checkpoints", "")
        .await;
    assert_eq!(
        body,
        json!({
            "node_id": 1,
            "cluster_id": "test",
            "interval_entries": 10,
            "latest": { "index": 23, "hash": "000000000000000c" },
            "checkpoints": [
                { "index": 10, "hash": "000000000000000a" },
                { "index": 20, "hash": "000000000000000b" },
            ],
        })
    );
    let (status, body) = cluster
        .json(Method::POST, 1, "/v1/internal/checkpoints", "")
        .await;
    assert_eq!((status, error_code(&body)), (405, "method_not_allowed"));
}

#[actix_web::test]
async fn a_checkpoint_mismatch_raises_a_sticky_alarm_that_refuses_writes_and_linearizable_reads() {
    let cluster = start(
        &[(1, Behaviour::Leader), (2, Behaviour::Leader)],
        Duration::from_secs(2),
    );
    let (status, _) = cluster.json(Method::PUT, 1, "/v1/kv/a", "1").await;
    assert_eq!(status, 200);
    cluster.record(1, &[checkpoint(10, 1)], checkpoint(14, 4));
    cluster.record(2, &[checkpoint(10, 1)], checkpoint(10, 1));

    // Agreeing nodes: compared, no alarm.
    let outcomes = cluster.checker(1, &[(2, 2)]).check_all_peers().await;
    let comparison = outcomes[&NodeId(2)].as_ref().expect("compared");
    assert_eq!((comparison.shared_indexes, comparison.mismatch), (1, None));
    // An address that answers as another node is never compared.
    let outcomes = cluster.checker(1, &[(3, 2)]).check_all_peers().await;
    assert!(
        matches!(outcomes[&NodeId(3)], Err(PeerCheckError::WrongNode { .. })),
        "{outcomes:?}"
    );
    let (status, body) = cluster.json(Method::GET, 1, "/v1/status", "").await;
    assert_eq!((status, &body["alarms"]), (200, &json!([])));
    let metrics = cluster.metrics(1).await;
    for line in [
        "raft_corruption_alarm 0\n",
        "raft_corruption_alarm_index 0\n",
        "raft_consistency_checkpoint_index 10\n",
        "raft_consistency_comparisons_total 1\n",
        "raft_consistency_peer_errors_total 1\n",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }

    // Index 20 holds different histories on the two nodes.
    cluster.record(1, &[checkpoint(20, 0x21)], checkpoint(20, 0x21));
    cluster.record(2, &[checkpoint(20, 0x22)], checkpoint(22, 0x23));
    let checker = cluster.checker(1, &[(2, 2)]);
    let outcomes = checker.check_all_peers().await;
    let mismatch = outcomes[&NodeId(2)]
        .as_ref()
        .expect("compared")
        .mismatch
        .expect("the hashes differ at 20");
    assert_eq!(mismatch.index, LogIndex(20));
    let expected_alarm = json!({
        "kind": "corruption",
        "index": 20,
        "local_hash": "0000000000000021",
        "peer_id": 2,
        "peer_hash": "0000000000000022",
        "last_matching_index": 10,
    });
    // Sticky: a later round changes nothing.
    checker.check_all_peers().await;

    let (status, body) = cluster.json(Method::GET, 1, "/v1/status", "").await;
    assert_eq!((status, &body["alarms"]), (200, &json!([expected_alarm])));
    let (status, body) = cluster.json(Method::GET, 1, "/health", "").await;
    assert_eq!((status, error_code(&body)), (503, "corruption_alarm"));
    assert_eq!(body["error"]["alarm"], expected_alarm);
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("index 20") && message.contains("node 2"),
        "{message}"
    );
    let metrics = cluster.metrics(1).await;
    for line in [
        "raft_corruption_alarm 1\n",
        "raft_corruption_alarm_index 20\n",
        "raft_consistency_checkpoint_index 20\n",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }

    for (method, path, body) in [
        (Method::PUT, "/v1/kv/a", "2"),
        (Method::DELETE, "/v1/kv/a", ""),
        (Method::POST, "/v1/cas/a", r#"{"expect":"1","value":"3"}"#),
        (Method::GET, "/v1/kv/a", ""),
        (Method::GET, "/v1/kv/a?consistency=linearizable", ""),
    ] {
        let (status, json) = cluster.json(method.clone(), 1, path, body).await;
        assert_eq!(
            (status, error_code(&json)),
            (503, "corruption_alarm"),
            "{method} {path}: {json}"
        );
        assert_eq!(json["error"]["alarm"], expected_alarm, "{method} {path}");
    }
    // A local read is still served: it never claimed to be linearizable.
    let (status, value) = cluster
        .call(Method::GET, 1, "/v1/kv/a?consistency=local", "")
        .await;
    assert_eq!((status, value), (200, b"1".to_vec()));
    // Node 2 never checked, so it raised nothing.
    let (status, _) = cluster.json(Method::GET, 2, "/health", "").await;
    assert_eq!(status, 200);

    // raftctl's client does not wait out its deadline for an alarm that lasts until restart.
    let endpoint = cluster.url(1, "");
    let deadline = Duration::from_secs(60);
    let (failure, elapsed) = tokio::task::spawn_blocking(move || {
        let client = RaftClient::new(&[endpoint], Duration::from_secs(5), deadline);
        let started = std::time::Instant::now();
        (client.put("a", b"4"), started.elapsed())
    })
    .await
    .expect("the client thread");
    match failure {
        Err(ClientFailure::Unavailable { last_error }) => {
            assert!(last_error.contains("corruption_alarm"), "{last_error}")
        }
        other => panic!("expected the alarm, got {other:?}"),
    }
    assert!(elapsed < deadline, "gave up only at the deadline");
}

#[actix_web::test]
async fn post_snapshot_takes_one_and_get_snapshot_streams_it_whole() {
    let cluster = start(&[(1, Behaviour::Leader)], Duration::from_secs(2));
    // No snapshot yet: 404 for the download, 503 for a node with nothing applied.
    let (status, body) = cluster.json(Method::GET, 1, "/v1/snapshot", "").await;
    assert_eq!((status, error_code(&body)), (404, "no_snapshot"), "{body}");
    let (status, body) = cluster.json(Method::POST, 1, "/v1/snapshot", "").await;
    assert_eq!((status, error_code(&body)), (503, "unavailable"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("nothing has been applied")),
        "{body}"
    );
    // Strict like every route: an unknown parameter is named, an unknown method is 405.
    let (status, body) = cluster
        .json(Method::POST, 1, "/v1/snapshot?force=1", "")
        .await;
    assert_eq!((status, error_code(&body)), (400, "bad_query"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("`force`"));
    let (status, _) = cluster.json(Method::DELETE, 1, "/v1/snapshot", "").await;
    assert_eq!(status, 405);

    let (status, _) = cluster.json(Method::PUT, 1, "/v1/kv/a", "1").await;
    assert_eq!(status, 200);
    let (status, taken) = cluster.json(Method::POST, 1, "/v1/snapshot", "").await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(
        (taken["index"].clone(), taken["term"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(taken["members"], json!([1, 2]));
    let size_bytes = taken["size_bytes"].as_u64().expect("size_bytes");
    let checksum = taken["file_checksum"].as_str().expect("file_checksum");
    assert_eq!(checksum.len(), 8, "{checksum}");
    assert!(size_bytes > FAKE_SNAPSHOT_PAYLOAD_BYTES as u64);

    let response = cluster
        .client
        .get(cluster.url(1, "/v1/snapshot"))
        .send()
        .await
        .expect("download");
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("ASCII")
            .to_string()
    };
    assert_eq!(header("content-type"), "application/octet-stream");
    assert_eq!(header("content-length"), size_bytes.to_string());
    assert_eq!(header("x-raft-snapshot-index"), "1");
    assert_eq!(header("x-raft-snapshot-term"), "1");
    assert_eq!(header("x-raft-snapshot-size-bytes"), size_bytes.to_string());
    assert_eq!(header("x-raft-snapshot-file-checksum"), checksum);
    assert_eq!(header("x-raft-snapshot-members"), "1,2");
    let bytes = response.bytes().await.expect("the whole file");
    assert_eq!(bytes.len() as u64, size_bytes);
    // The bytes are the store's file exactly: the format's own verifier accepts them.
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("backup.snap");
    std::fs::write(&path, &bytes).expect("write");
    let meta = storage_actor::snapshot_file::verify_file(&path).expect("a valid snapshot file");
    assert_eq!(meta.last_log_id, LogId::new(Term(1), LogIndex(1)));
    assert_eq!(format!("{:08x}", meta.file_checksum), checksum);

    // Status and metrics describe it.
    let (status, body) = cluster.json(Method::GET, 1, "/v1/status", "").await;
    assert_eq!(status, 200);
    assert_eq!(body["snapshot_index"], json!(1), "{body}");
    assert_eq!(body["snapshot_term"], json!(1), "{body}");
    assert_eq!(body["snapshot_size_bytes"], json!(size_bytes), "{body}");
    for field in [
        "snapshot_last_write_duration_ms",
        "snapshot_write_in_progress",
        "snapshots_taken_total",
        "snapshot_failures_total",
        "snapshots_restored_total",
        "log_first_index",
        "log_entries",
        "log_size_bytes",
    ] {
        assert!(body.get(field).is_some(), "status has no {field}: {body}");
    }
    // The fake has no write-ahead log: its size is unknown, not zero.
    assert_eq!(body["log_size_bytes"], Value::Null);
    let (status, text) = cluster.call(Method::GET, 1, "/metrics", "").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(text).expect("UTF-8");
    for line in [
        "# TYPE raft_snapshot_index gauge",
        "raft_snapshot_index 1\n",
        "raft_snapshot_term 1\n",
        &format!("raft_snapshot_size_bytes {size_bytes}\n"),
        "# TYPE raft_snapshots_taken_total counter",
        "# TYPE raft_snapshot_last_write_duration_seconds gauge",
        "# TYPE raft_log_entries gauge",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(!text.contains("raft_log_size_bytes"), "no WAL, no size");
}
