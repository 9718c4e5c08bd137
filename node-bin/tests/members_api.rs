//! The membership admin API on real `raft-node` processes (three on loopback, free ports):
//! a joining fourth node added as a learner, caught up and promoted; a node removed, its
//! `/v1/status` saying so and its writes refused; leadership handed to a named voter and to
//! any; and every refusal that can be provoked from outside, by code, through the API and
//! through `raftctl`.
//!
//! Waits poll with generous deadlines and nothing asserts a speed: the machine may be a loaded
//! two-core one.

use node_bin::node_config::{to_toml, RawConfig, RawMember};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use test_support::wait::poll_real_time;

#[path = "support/ports.rs"]
mod ports;
use ports::free_address;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// One cluster at a time: each test starts three or four processes, and a 2-core machine
/// running several clusters at once would only make every election slower.
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `raft-node` processes on loopback, killed when dropped.
struct Cluster {
    directory: PathBuf,
    /// The bootstrap members (ids 1..=3).
    members: Vec<RawMember>,
    /// Every node started, by id (joiners included), with its process while it runs.
    nodes: Vec<(RawMember, Option<Child>)>,
}

impl Cluster {
    fn start(root: &Path) -> Cluster {
        let members: Vec<RawMember> = (1..=3)
            .map(|id| RawMember {
                id,
                peer_addr: free_address(),
                client_addr: free_address(),
            })
            .collect();
        let mut cluster = Cluster {
            directory: root.to_path_buf(),
            members: members.clone(),
            nodes: Vec::new(),
        };
        for member in &members {
            cluster.spawn(member.clone(), false);
        }
        let leader = cluster.wait_for_leader();
        // A new leader takes no membership change before it has committed an entry of its own
        // term (`409 change_in_progress`): one acknowledged write shows it has.
        let written = poll_real_time(Duration::from_secs(30), || {
            (put(&cluster.url(leader), "warm-up", "1").0 == 200).then_some(())
        });
        assert!(written.is_some(), "no write committed on the new cluster");
        cluster
    }

    fn spawn(&mut self, member: RawMember, join: bool) {
        let config = RawConfig {
            id: member.id,
            cluster_id: "members-api".to_string(),
            data_dir: self
                .directory
                .join(format!("node-{}", member.id))
                .display()
                .to_string(),
            peer_addr: member.peer_addr.clone(),
            client_addr: member.client_addr.clone(),
            join,
            members: self.members.clone(),
            ..RawConfig::default()
        };
        let path = self.directory.join(format!("node{}.toml", member.id));
        std::fs::write(&path, to_toml(&config)).expect("write config");
        let log = std::fs::File::create(self.directory.join(format!("node-{}.log", member.id)))
            .expect("node log");
        let child = Command::new(RAFT_NODE)
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn raft-node");
        self.nodes.push((member, Some(child)));
    }

    /// Starts node `id` in join mode on fresh ports; returns its addresses.
    fn start_joiner(&mut self, id: u64) -> RawMember {
        let member = RawMember {
            id,
            peer_addr: free_address(),
            client_addr: free_address(),
        };
        self.spawn(member.clone(), true);
        member
    }

    fn url(&self, id: u64) -> String {
        let (member, _) = self
            .nodes
            .iter()
            .find(|(member, _)| member.id == id)
            .expect("a started node");
        format!("http://{}", member.client_addr)
    }

    fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .map(|(member, _)| format!("http://{}", member.client_addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn dump_logs(&self) {
        for (member, _) in &self.nodes {
            let log =
                std::fs::read_to_string(self.directory.join(format!("node-{}.log", member.id)))
                    .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("--- node {} (last 40 lines) ---", member.id);
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{line}");
            }
        }
    }

    /// The leader's id, once the running bootstrap nodes agree on one.
    fn wait_for_leader(&self) -> u64 {
        let leader = poll_real_time(Duration::from_secs(30), || {
            self.nodes.iter().find_map(|(member, child)| {
                child.as_ref()?;
                let status = get_json(&format!("http://{}/v1/status", member.client_addr))?.1;
                (status["role"] == "leader").then(|| status["id"].as_u64())?
            })
        });
        match leader {
            Some(leader) => leader,
            None => {
                self.dump_logs();
                panic!("no leader");
            }
        }
    }

    fn kill(&mut self, id: u64) {
        for (member, child) in &mut self.nodes {
            if member.id == id {
                if let Some(mut child) = child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        let ids: Vec<u64> = self.nodes.iter().map(|(member, _)| member.id).collect();
        for id in ids {
            self.kill(id);
        }
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn get_json(url: &str) -> Option<(u16, Value)> {
    let response = http().get(url).send().ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().unwrap_or(Value::Null)))
}

/// One request: status code and JSON body (`null` when the body is not JSON).
fn request(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut builder = http().request(method, url);
    if let Some(body) = body {
        builder = builder
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = builder.send().expect("the node answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Retries `request` while it answers `503` (no leader yet, an election after a change),
/// up to a deadline; returns the last answer.
fn request_until_served(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
    let mut last = (0, Value::Null);
    let served = poll_real_time(Duration::from_secs(30), || {
        last = request(method, url, body);
        (last.0 != 503).then(|| last.clone())
    });
    served.unwrap_or(last)
}

/// `error.code` of an error body.
fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The message of an error body, which must name the cause.
fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

fn members(cluster: &Cluster, via: u64) -> Value {
    let (status, body) =
        request_until_served("GET", &format!("{}/v1/members", cluster.url(via)), None);
    assert_eq!(status, 200, "GET /v1/members: {body}");
    body
}

fn member(list: &Value, id: u64) -> Option<&Value> {
    list["members"]
        .as_array()?
        .iter()
        .find(|member| member["id"] == id)
}

fn ids(list: &Value, voter: bool) -> Vec<u64> {
    list["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|member| member["voter"] == voter)
        .filter_map(|member| member["id"].as_u64())
        .collect()
}

/// Waits until learner `id` is caught up (match index at the leader's last index, recently
/// heard from), then promotes it; promotion is retried while the leader still finds it lagging.
fn wait_caught_up_and_promote(cluster: &Cluster, id: u64) -> Value {
    let caught_up = poll_real_time(Duration::from_secs(60), || {
        let list = members(cluster, 1);
        let row = member(&list, id)?;
        (row["lag"] == 0 && row["match_index"].as_u64()? > 0).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "learner {id} never caught up: {}",
        members(cluster, 1)
    );
    let mut last = (0, Value::Null);
    let promoted = poll_real_time(Duration::from_secs(60), || {
        last = request(
            "POST",
            &format!("{}/v1/members/{id}/promote", cluster.url(1)),
            None,
        );
        match (last.0, code(&last.1)) {
            (200, _) => Some(last.1.clone()),
            (412, "learner_not_ready") | (503, _) | (409, "change_in_progress") => None,
            _ => panic!("promote {id}: {} {}", last.0, last.1),
        }
    });
    promoted.unwrap_or_else(|| panic!("promote {id} never accepted: {} {}", last.0, last.1))
}

fn put(url: &str, key: &str, value: &str) -> (u16, Value) {
    let response = http()
        .put(format!("{url}/v1/kv/{key}"))
        .body(value.to_string())
        .send()
        .expect("the node answers");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn status_of(url: &str) -> Value {
    get_json(&format!("{url}/v1/status")).expect("status").1
}

fn raftctl(arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(RAFTCTL)
        .args(arguments)
        .output()
        .expect("run raftctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_joining_node_is_added_caught_up_and_promoted_and_a_removed_node_says_so() {
    let _exclusive = exclusive();
    let directory = tempfile::tempdir().expect("temp dir");
    let mut cluster = Cluster::start(directory.path());
    for index in 0..20 {
        let (status, body) = put(&cluster.url(1), &format!("before-{index}"), "v");
        assert_eq!(status, 200, "{body}");
    }

    let joiner = cluster.start_joiner(4);
    // Asked of a follower or the leader alike: the node asked forwards to the leader.
    let body = json!({"id": 4, "peer_addr": joiner.peer_addr, "client_addr": joiner.client_addr});
    let (status, added) = request_until_served(
        "POST",
        &format!("{}/v1/members", cluster.url(2)),
        Some(&body.to_string()),
    );
    assert_eq!(status, 200, "add learner 4: {added}");
    assert!(added["index"].as_u64().is_some(), "{added}");
    let list = members(&cluster, 3);
    let row = member(&list, 4).expect("4 listed");
    assert_eq!(row["voter"], false, "{list}");
    assert_eq!(row["peer_addr"], joiner.peer_addr.as_str(), "{list}");
    assert_eq!(row["client_addr"], joiner.client_addr.as_str(), "{list}");

    let promoted = wait_caught_up_and_promote(&cluster, 4);
    assert!(
        promoted["index"].as_u64() > added["index"].as_u64(),
        "{promoted}"
    );
    let list = members(&cluster, 4);
    assert_eq!(list["joint"], false, "{list}");
    assert_eq!(ids(&list, true), vec![1, 2, 3, 4], "{list}");
    assert!(ids(&list, false).is_empty(), "{list}");
    for row in list["members"].as_array().expect("members") {
        for field in [
            "peer_addr",
            "client_addr",
            "match_index",
            "lag",
            "last_contact_ms",
        ] {
            assert!(row.get(field).is_some(), "{field} in {row}");
        }
    }
    // The new node serves what was written before it joined, and takes writes.
    let value = http()
        .get(format!("{}/v1/kv/before-7", cluster.url(4)))
        .send()
        .expect("read on node 4");
    assert_eq!(value.status().as_u16(), 200);
    assert_eq!(value.text().expect("body"), "v");
    assert_eq!(put(&cluster.url(4), "after-join", "w").0, 200);

    // Remove a node that is not the leader.
    let leader = cluster.wait_for_leader();
    let removed = [2, 3, 4]
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let (status, body) = request_until_served(
        "DELETE",
        &format!("{}/v1/members/{removed}", cluster.url(1)),
        None,
    );
    assert_eq!(status, 200, "remove {removed}: {body}");
    let list = members(&cluster, 1);
    assert!(member(&list, removed).is_none(), "{list}");
    assert_eq!(ids(&list, true).len(), 3, "{list}");
    // The removed node learns it (the next entries, or the refusals of its pre-votes).
    let said = poll_real_time(Duration::from_secs(60), || {
        (status_of(&cluster.url(removed))["removed"] == true).then_some(())
    });
    assert!(
        said.is_some(),
        "node {removed} never said it was removed: {}",
        status_of(&cluster.url(removed))
    );
    let (status, body) = put(&cluster.url(removed), "on-removed", "x");
    assert_eq!((status, code(&body)), (503, "removed"), "{body}");
    assert!(message(&body).contains("removed"), "{body}");
    let read = request(
        "GET",
        &format!("{}/v1/kv/before-1", cluster.url(removed)),
        None,
    );
    assert_eq!((read.0, code(&read.1)), (503, "removed"), "{}", read.1);
    let (status, body) = request("GET", &format!("{}/v1/members", cluster.url(removed)), None);
    assert_eq!((status, code(&body)), (503, "removed"), "{body}");
    // The cluster without it still takes writes, through any remaining member.
    let remaining: Vec<u64> = [1, 2, 3, 4]
        .into_iter()
        .filter(|id| *id != removed)
        .collect();
    assert_eq!(put(&cluster.url(remaining[0]), "after-remove", "z").0, 200);

    // Removing the leader: it completes the change, hands leadership over and steps down.
    let leader = cluster.wait_for_leader();
    let (status, body) = request_until_served(
        "DELETE",
        &format!("{}/v1/members/{leader}", cluster.url(leader)),
        None,
    );
    assert_eq!(status, 200, "remove the leader {leader}: {body}");
    let left: Vec<u64> = remaining.into_iter().filter(|id| *id != leader).collect();
    let list = members(&cluster, left[0]);
    assert_eq!(ids(&list, true), left, "{list}");
    let new_leader = list["leader_id"].as_u64().expect("a leader");
    assert!(left.contains(&new_leader), "{list}");
    assert_eq!(status_of(&cluster.url(leader))["removed"], true);
    let (status, body) = put(&cluster.url(leader), "on-old-leader", "x");
    assert_eq!((status, code(&body)), (503, "removed"), "{body}");
    for id in &left {
        let (status, body) = put(
            &cluster.url(*id),
            &format!("after-leader-removed-{id}"),
            "y",
        );
        assert_eq!(status, 200, "write through {id}: {body}");
    }
}

#[test]
fn leadership_goes_to_the_named_voter_or_to_any_and_status_agrees() {
    let _exclusive = exclusive();
    let directory = tempfile::tempdir().expect("temp dir");
    let cluster = Cluster::start(directory.path());
    let leader = cluster.wait_for_leader();
    let target = if leader == 3 { 2 } else { 3 };
    // Sent to a node that is neither: forwarded to the leader, answered once the target leads.
    let via = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader && *id != target)
        .expect("a third node");
    let body = json!({ "to": target }).to_string();
    let (status, answer) = request_until_served(
        "POST",
        &format!("{}/v1/leader/transfer", cluster.url(via)),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["leader_id"], target, "{answer}");
    assert_eq!(status_of(&cluster.url(target))["role"], "leader");

    let (status, answer) = request_until_served(
        "POST",
        &format!("{}/v1/leader/transfer", cluster.url(target)),
        Some("{}"),
    );
    assert_eq!(status, 200, "{answer}");
    let new_leader = answer["leader_id"].as_u64().expect("an id");
    assert_ne!(new_leader, target, "{answer}");
    let agreed = poll_real_time(Duration::from_secs(10), || {
        let status = status_of(&cluster.url(new_leader));
        (status["role"] == "leader" && status["leader_id"] == new_leader).then_some(())
    });
    assert!(agreed.is_some(), "{}", status_of(&cluster.url(new_leader)));

    // raftctl: the same, named.
    let (code, out, err) = raftctl(&[
        "--endpoints",
        &cluster.endpoints(),
        "leader",
        "transfer",
        &target.to_string(),
        "-w",
        "json",
    ]);
    assert_eq!(code, 0, "{out} {err}");
    let printed: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(printed["leader_id"], target);
}

#[test]
fn every_refusal_names_its_cause() {
    let _exclusive = exclusive();
    let directory = tempfile::tempdir().expect("temp dir");
    let mut cluster = Cluster::start(directory.path());
    let url = cluster.url(1);
    let members_url = format!("{url}/v1/members");

    // 409 id_reused: a current member's id.
    let body = json!({"id": 2, "peer_addr": "127.0.0.1:1", "client_addr": "127.0.0.1:2"});
    let (status, answer) = request_until_served("POST", &members_url, Some(&body.to_string()));
    assert_eq!((status, code(&answer)), (409, "id_reused"), "{answer}");
    assert!(message(&answer).contains('2'), "{answer}");
    // 404 no_such_member.
    let (status, answer) = request_until_served("POST", &format!("{members_url}/9/promote"), None);
    assert_eq!((status, code(&answer)), (404, "no_such_member"), "{answer}");
    let (status, answer) = request_until_served("DELETE", &format!("{members_url}/9"), None);
    assert_eq!((status, code(&answer)), (404, "no_such_member"), "{answer}");
    assert!(message(&answer).contains('9'), "{answer}");
    // 409 already_voter.
    let (status, answer) = request_until_served("POST", &format!("{members_url}/1/promote"), None);
    assert_eq!((status, code(&answer)), (409, "already_voter"), "{answer}");

    // A learner whose process is not running: added, but never ready.
    let body = json!({"id": 5, "peer_addr": free_address(), "client_addr": free_address()});
    let (status, answer) = request_until_served("POST", &members_url, Some(&body.to_string()));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = request_until_served("POST", &format!("{members_url}/5/promote"), None);
    assert_eq!(
        (status, code(&answer)),
        (412, "learner_not_ready"),
        "{answer}"
    );
    assert!(message(&answer).contains('5'), "{answer}");
    let list = members(&cluster, 2);
    let row = member(&list, 5).expect("5 listed");
    assert_eq!(row["voter"], false, "{list}");
    assert_eq!(
        row["last_contact_ms"],
        Value::Null,
        "never heard from: {list}"
    );
    // 404 not_a_voter: leadership only goes to voters.
    let (status, answer) = request_until_served(
        "POST",
        &format!("{url}/v1/leader/transfer"),
        Some(r#"{"to": 5}"#),
    );
    assert_eq!((status, code(&answer)), (404, "not_a_voter"), "{answer}");

    // 400: malformed bodies and ids, before anything is sent to the leader.
    for (method, path, body, expected) in [
        ("POST", "/v1/members", Some("not json"), "bad_json"),
        ("POST", "/v1/members", Some(r#"{"id": 6}"#), "bad_json"),
        (
            "POST",
            "/v1/members",
            Some(r#"{"id": 6, "peer_addr": "localhost:1", "client_addr": "127.0.0.1:2"}"#),
            "bad_address",
        ),
        (
            "POST",
            "/v1/members",
            Some(r#"{"id": 0, "peer_addr": "127.0.0.1:1", "client_addr": "127.0.0.1:2"}"#),
            "bad_id",
        ),
        ("POST", "/v1/members/abc/promote", None, "bad_id"),
        ("DELETE", "/v1/members/0", None, "bad_id"),
        (
            "POST",
            "/v1/leader/transfer",
            Some(r#"{"to": "x"}"#),
            "bad_json",
        ),
    ] {
        let (status, answer) = request(method, &format!("{url}{path}"), body);
        assert_eq!(
            (status, code(&answer)),
            (400, expected),
            "{method} {path} {body:?}: {answer}"
        );
        assert!(!message(&answer).is_empty(), "{answer}");
    }

    // raftctl: a refusal exits 9 and says why; a malformed address exits 5.
    let endpoints = cluster.endpoints();
    let (exit, _, err) = raftctl(&["--endpoints", &endpoints, "member", "promote", "5"]);
    assert_eq!(exit, 9, "{err}");
    assert!(err.contains("learner_not_ready"), "{err}");
    let (exit, _, err) = raftctl(&[
        "--endpoints",
        &endpoints,
        "member",
        "add",
        "7",
        "nowhere",
        "127.0.0.1:2",
    ]);
    assert_eq!(exit, 5, "{err}");
    let (exit, out, err) = raftctl(&["--endpoints", &endpoints, "member", "list"]);
    assert_eq!(exit, 0, "{err}");
    assert!(out.contains("learner") && out.contains("leader"), "{out}");

    // 412 not_enough_reachable_voters: with one follower down, removing the other would leave
    // two voters of which only the leader is reachable.
    let leader = cluster.wait_for_leader();
    let (down, other) = match leader {
        1 => (3, 2),
        2 => (3, 1),
        _ => (2, 1),
    };
    cluster.kill(down);
    // Long enough for the leader to stop counting it as heard from (an election timeout).
    std::thread::sleep(Duration::from_secs(2));
    let (status, answer) = request_until_served(
        "DELETE",
        &format!("{}/v1/members/{other}", cluster.url(leader)),
        None,
    );
    assert_eq!(
        (status, code(&answer)),
        (412, "not_enough_reachable_voters"),
        "{answer}"
    );
    assert!(message(&answer).contains("reachable"), "{answer}");

    // A removed learner's id is never used again.
    let (exit, out, err) = raftctl(&["--endpoints", &endpoints, "member", "remove", "5"]);
    assert_eq!(exit, 0, "{out} {err}");
    let body = json!({"id": 5, "peer_addr": free_address(), "client_addr": free_address()});
    let (status, answer) = request_until_served("POST", &members_url, Some(&body.to_string()));
    assert_eq!((status, code(&answer)), (409, "id_reused"), "{answer}");
}
