//! Acceptance 1 on the real binaries: `raft-node local-cluster --nodes 3` starts a cluster,
//! `raftctl put a 1` then `raftctl get a` prints 1, a PUT sent to a follower works, and
//! SIGINT stops every node.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::wait::poll_real_time;

#[path = "support/ports.rs"]
mod ports;
use ports::free_base_port;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// The tests start clusters on fixed port ranges found free: one at a time, or two could pick
/// the same range.
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends SIGINT to a local cluster when dropped, so a failing test leaves no cluster behind
/// (the supervisor then stops its nodes).
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Only while that pid is still a local cluster: never signal a reused pid.
        let command_line = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if !String::from_utf8_lossy(&command_line).contains("local-cluster") {
            return;
        }
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.0.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

fn raftctl(endpoints: &str, arguments: &[&str]) -> (i32, String) {
    let output = Command::new(RAFTCTL)
        .arg("--endpoints")
        .arg(endpoints)
        .args(arguments)
        .output()
        .expect("run raftctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn local_cluster_serves_raftctl_and_curl_and_stops_on_ctrl_c() {
    let _exclusive = exclusive();
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_base_port(20000);
    let mut cluster = Command::new(RAFT_NODE)
        .args(["local-cluster", "--nodes", "3", "--base-client-port"])
        .arg(base.to_string())
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start local-cluster");
    let mut stdout = BufReader::new(cluster.stdout.take().expect("piped"));
    let mut urls = Vec::new();
    let mut line = String::new();
    while urls.len() < 3 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "local-cluster exited early"
        );
        if let Some(url) = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
        {
            urls.push(url.to_string());
        }
    }
    assert_eq!(urls[0], format!("http://127.0.0.1:{base}"));
    let endpoints = urls.join(",");
    let _stop_on_failure = StopOnDrop(cluster.id());

    let (code, out) = raftctl(&endpoints, &["put", "a", "1"]);
    assert_eq!(code, 0, "raftctl put: {out}");
    let (code, out) = raftctl(&endpoints, &["get", "a"]);
    assert_eq!((code, out.as_str()), (0, "1\n"));
    let (code, _) = raftctl(&endpoints, &["get", "missing"]);
    assert_eq!(code, 1, "a missing key exits 1");
    // A dead endpoint first in the list: raftctl moves on to the next one.
    let with_dead_endpoint = format!("http://127.0.0.1:1,{endpoints}");
    let (code, out) = raftctl(&with_dead_endpoint, &["put", "b", "2"]);
    assert_eq!(code, 0, "raftctl put past a dead endpoint: {out}");
    // Values too large for an argument: from standard input and from a file, bytes as they are.
    let large: Vec<u8> = (0..300 * 1024).map(|byte| (byte % 251) as u8).collect();
    let mut put = Command::new(RAFTCTL)
        .args(["--endpoints", &endpoints, "put", "large", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run raftctl");
    std::io::Write::write_all(&mut put.stdin.take().expect("piped"), &large).expect("write");
    assert!(put.wait().expect("raftctl").success(), "put from stdin");
    let file = data.path().join("value.bin");
    std::fs::write(&file, &large[..1000]).expect("write the file");
    let output = Command::new(RAFTCTL)
        .args(["--endpoints", &endpoints, "put", "from-file", "--file"])
        .arg(&file)
        .output()
        .expect("run raftctl");
    assert!(output.status.success(), "put --file");
    for (key, expected) in [("large", &large[..]), ("from-file", &large[..1000])] {
        let output = Command::new(RAFTCTL)
            .args(["--endpoints", &endpoints, "get", key])
            .output()
            .expect("run raftctl");
        // `get` ends the value with one newline for the terminal.
        let mut written = expected.to_vec();
        written.push(b'\n');
        assert!(
            output.stdout == written,
            "{key} was not read back byte for byte"
        );
    }
    // Nothing reachable at all: exit 3, "definitely not applied".
    let output = Command::new(RAFTCTL)
        .args([
            "--endpoints",
            "http://127.0.0.1:1",
            "--deadline-ms",
            "300",
            "put",
            "c",
            "3",
        ])
        .output()
        .expect("run raftctl");
    assert_eq!(output.status.code(), Some(3));

    // A PUT to every node, followers included, is accepted (followers forward).
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (position, url) in urls.iter().enumerate() {
        let response = http
            .put(format!("{url}/v1/kv/from-{position}"))
            .body("x")
            .send()
            .expect("PUT");
        assert_eq!(response.status().as_u16(), 200, "PUT via {url}");
    }
    // Told of one node, status finds the other members through it.
    let (code, out) = raftctl(&urls[0], &["status"]);
    assert_eq!(code, 0);
    for url in &urls {
        assert!(out.contains(url.as_str()), "{url} missing from: {out}");
    }
    let (code, out) = raftctl(&endpoints, &["status"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.matches("leader").count(),
        1 + 1,
        "one leader row plus the header: {out}"
    );

    let status = Command::new("kill")
        .arg("-INT")
        .arg(cluster.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = poll_real_time(Duration::from_secs(10), || {
        cluster.try_wait().expect("wait")
    });
    let exit = exit.expect("local-cluster did not stop");
    assert_eq!(exit.code(), Some(0));
    for url in &urls {
        assert!(
            http.get(format!("{url}/health")).send().is_err(),
            "{url} still answers after Ctrl-C"
        );
    }
}

/// Issue 15: a node of the local cluster killed with `kill -9` leaves the others running, the
/// command says how to start it again, Enter restarts it, and the data stays for the next run
/// (which finds the key written before).
#[test]
fn a_killed_node_leaves_the_others_running_and_the_data_outlives_the_cluster() {
    use std::io::Write;
    let _exclusive = exclusive();
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_base_port(20000);
    let start = || {
        Command::new(RAFT_NODE)
            .args(["local-cluster", "--nodes", "3", "--base-client-port"])
            .arg(base.to_string())
            .arg("--data-dir")
            .arg(data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start local-cluster")
    };
    let endpoints: String = (0..3)
        .map(|offset| format!("http://127.0.0.1:{}", base + offset))
        .collect::<Vec<_>>()
        .join(",");
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let healthy = |url: &str| {
        http.get(format!("{url}/health"))
            .send()
            .is_ok_and(|response| response.status().as_u16() == 200)
    };
    let mut cluster = start();
    let _stop_on_failure = StopOnDrop(cluster.id());
    let answered = poll_real_time(Duration::from_secs(20), || {
        (raftctl(&endpoints, &["put", "a", "1"]).0 == 0).then_some(())
    });
    assert!(answered.is_some(), "the cluster never took a write");

    // Kill node 2's process (the pid is the one listening on its client port).
    let node_2 = format!("http://127.0.0.1:{}", base + 1);
    let pid = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo pid,args | grep -- '{}/node-2.toml' | grep -v grep | awk '{{print $1}}'",
            data.path().canonicalize().expect("exists").display()
        ))
        .output()
        .expect("ps");
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
    assert!(!pid.is_empty(), "node 2's process was not found");
    assert!(Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill")
        .success());
    let mut stderr = BufReader::new(cluster.stderr.take().expect("piped"));
    let mut said = String::new();
    while !said.contains("start it again with:") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "local-cluster said nothing about the dead node: {said}"
        );
        said.push_str(&line);
    }
    assert!(said.contains("node 2 exited"), "{said}");
    assert!(said.contains("node-2.toml"), "{said}");
    // The other two keep serving.
    let (code, out) = raftctl(&endpoints, &["put", "b", "2"]);
    assert_eq!(code, 0, "two of three nodes take writes: {out}");
    assert!(
        cluster.try_wait().expect("wait").is_none(),
        "local-cluster stopped"
    );

    // Enter restarts it.
    let mut stdin = cluster.stdin.take().expect("piped");
    stdin.write_all(b"\n").expect("write Enter");
    stdin.flush().expect("flush");
    let back = poll_real_time(Duration::from_secs(20), || healthy(&node_2).then_some(()));
    assert!(back.is_some(), "node 2 did not come back after Enter");

    // Stop the whole cluster and start it again on the same data: the keys are there.
    Command::new("kill")
        .arg("-INT")
        .arg(cluster.id().to_string())
        .status()
        .expect("kill");
    let exit = poll_real_time(Duration::from_secs(10), || {
        cluster.try_wait().expect("wait")
    });
    assert_eq!(exit.expect("stopped").code(), Some(0));
    let mut again = start();
    let _stop_again_on_failure = StopOnDrop(again.id());
    let value = poll_real_time(Duration::from_secs(20), || {
        let (code, out) = raftctl(&endpoints, &["get", "b"]);
        (code == 0).then_some(out)
    });
    assert_eq!(
        value.as_deref(),
        Some("2\n"),
        "the data outlived the cluster"
    );
    Command::new("kill")
        .arg("-INT")
        .arg(again.id().to_string())
        .status()
        .expect("kill");
    let exit = poll_real_time(Duration::from_secs(10), || again.try_wait().expect("wait"));
    assert_eq!(exit.expect("stopped").code(), Some(0));
}

/// Issue 15, acceptance 1: in `local-cluster`, `kill -9` of the leader leaves the other nodes
/// serving writes within 2 s (scaled on a loaded machine), and the restart command the cluster
/// prints brings the node back with its data: it serves, from its own state, a key written
/// before the kill and one written while it was down.
#[test]
fn killing_the_leader_leaves_writes_served_and_the_printed_command_restarts_it() {
    let _exclusive = exclusive();
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_base_port(20000);
    let mut cluster = Command::new(RAFT_NODE)
        .args(["local-cluster", "--nodes", "3", "--base-client-port"])
        .arg(base.to_string())
        .arg("--data-dir")
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start local-cluster");
    let _stop_on_failure = StopOnDrop(cluster.id());
    let urls: Vec<String> = (0..3)
        .map(|offset| format!("http://127.0.0.1:{}", base + offset))
        .collect();
    let endpoints = urls.join(",");
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let answered = poll_real_time(Duration::from_secs(20), || {
        (raftctl(&endpoints, &["put", "before", "1"]).0 == 0).then_some(())
    });
    assert!(answered.is_some(), "the cluster never took a write");
    let status: serde_json::Value = http
        .get(format!("{}/v1/status", urls[0]))
        .send()
        .and_then(|response| response.json())
        .expect("status");
    let leader = status["leader_id"].as_u64().expect("a leader is known");
    let leader_config = format!(
        "{}/node-{leader}.toml",
        data.path().canonicalize().expect("exists").display()
    );
    let pid = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ps -eo pid,args | grep -- '{leader_config}' | grep -v grep | awk '{{print $1}}'"
        ))
        .output()
        .expect("ps");
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
    assert!(!pid.is_empty(), "the leader's process was not found");
    let killed = std::time::Instant::now();
    assert!(Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill")
        .success());
    let survivors: String = urls
        .iter()
        .enumerate()
        .filter(|(offset, _)| *offset as u64 + 1 != leader)
        .map(|(_, url)| url.clone())
        .collect::<Vec<_>>()
        .join(",");
    let served = poll_real_time(Duration::from_secs(20), || {
        (raftctl(&survivors, &["put", "during", "2"]).0 == 0).then(std::time::Instant::now)
    })
    .expect("the surviving nodes never took a write");
    let failover = served.duration_since(killed);
    println!("a write was served {failover:?} after the leader was killed");
    assert!(
        failover <= test_support::wait::scaled(Duration::from_secs(2)),
        "the surviving nodes took {failover:?} to serve a write"
    );

    // The cluster prints the command that starts the dead node again; run it as printed.
    let mut stderr = BufReader::new(cluster.stderr.take().expect("piped"));
    let mut said = String::new();
    let command_line = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "local-cluster printed no restart command: {said}"
        );
        said.push_str(&line);
        if let Some(command) = line.trim().strip_prefix("start it again with:") {
            break command.trim().to_string();
        }
    };
    assert!(
        command_line.contains(&format!("node-{leader}.toml")),
        "{command_line}"
    );
    let mut words = command_line.split_whitespace();
    let program = words.next().expect("a program");
    let mut restarted = Command::new(program)
        .args(words)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the printed command runs");
    let _stop_restarted_on_failure = StopOnDrop(restarted.id());
    let own_url = &urls[leader as usize - 1];
    let local_value = |key: &str| {
        http.get(format!("{own_url}/v1/kv/{key}?consistency=local"))
            .send()
            .ok()
            .filter(|response| response.status().as_u16() == 200)
            .and_then(|response| response.bytes().ok())
            .map(|bytes| bytes.to_vec())
    };
    let back = poll_real_time(Duration::from_secs(20), || {
        (local_value("before").as_deref() == Some(b"1".as_slice())
            && local_value("during").as_deref() == Some(b"2".as_slice()))
        .then_some(())
    });
    assert!(
        back.is_some(),
        "the restarted node does not hold the writes from before and during its absence"
    );
    restarted.kill().expect("stop the restarted node");
    let _ = restarted.wait();
    Command::new("kill")
        .arg("-INT")
        .arg(cluster.id().to_string())
        .status()
        .expect("kill");
    let exit = poll_real_time(Duration::from_secs(10), || {
        cluster.try_wait().expect("wait")
    });
    assert_eq!(exit.expect("stopped").code(), Some(0));
}
