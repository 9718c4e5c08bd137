//! `raftctl bench --kill-leader` on real processes: three raft-node processes on loopback (with
//! `bench/compare.sh`'s timings), one failover trial whose command kills the leader's process
//! with `kill -9`, then a check that a time was reported, that the leader named was the one
//! killed, and that the two survivors take writes. No timing is asserted: a slow machine must
//! not fail the test.

#[path = "support/ports.rs"]
mod ports;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Three raft-node processes, killed on drop (a failing test leaves nothing running).
struct Cluster {
    children: Vec<Child>,
    client_urls: Vec<String>,
    directory: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_cluster() -> Cluster {
    let directory = tempfile::tempdir().expect("temp dir");
    let peers: Vec<String> = (0..3).map(|_| ports::free_address()).collect();
    let clients: Vec<String> = (0..3).map(|_| ports::free_address()).collect();
    let mut members = String::new();
    for index in 0..3 {
        members.push_str(&format!(
            "[[members]]\nid = {}\npeer_addr = \"{}\"\nclient_addr = \"{}\"\n",
            index + 1,
            peers[index],
            clients[index]
        ));
    }
    let children = (0..3)
        .map(|index| {
            let config = format!(
                "id = {}\ncluster_id = \"bench-failover\"\ndata_dir = \"{}\"\n\
                 peer_addr = \"{}\"\nclient_addr = \"{}\"\n[raft]\nheartbeat_interval_ms = 30\n\
                 election_timeout_min_ms = 150\nelection_timeout_max_ms = 300\n{members}",
                index + 1,
                directory
                    .path()
                    .join(format!("data-{}", index + 1))
                    .display(),
                peers[index],
                clients[index],
            );
            let config_file = directory.path().join(format!("node-{}.toml", index + 1));
            std::fs::write(&config_file, config).expect("write the config");
            let child = Command::new(RAFT_NODE)
                .arg("--config")
                .arg(&config_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start raft-node");
            // The kill command finds the leader's pid by its 1-based position.
            std::fs::write(
                directory.path().join(format!("pid-{}", index + 1)),
                child.id().to_string(),
            )
            .expect("write the pid file");
            child
        })
        .collect();
    Cluster {
        children,
        client_urls: clients
            .iter()
            .map(|address| format!("http://{address}"))
            .collect(),
        directory,
    }
}

fn raftctl(endpoints: &str, arguments: &[&str]) -> (i32, String) {
    let output = Command::new(RAFTCTL)
        .args(["--endpoints", endpoints])
        .args(arguments)
        .output()
        .expect("run raftctl");
    (
        output.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Puts `key` until it succeeds or 15 s have passed; tells whether it did.
fn put_eventually(endpoints: &str, key: &str) -> bool {
    let give_up = Instant::now() + Duration::from_secs(15);
    while Instant::now() < give_up {
        if raftctl(endpoints, &["put", key, "1"]).0 == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_failover_trial_kills_the_leader_and_reports_the_time_to_the_next_write() {
    let mut cluster = start_cluster();
    let endpoints = cluster.client_urls.join(",");
    assert!(
        put_eventually(&endpoints, "ready"),
        "the cluster never took a write"
    );

    let kill_command = format!(
        "kill -9 $(cat {}/pid-$LEADER_INDEX)",
        cluster.directory.path().display()
    );
    let (code, out) = raftctl(
        &endpoints,
        &[
            "bench",
            "--kill-leader",
            &kill_command,
            "--clients",
            "8",
            "--warmup",
            "0.5",
            "--failover-timeout",
            "15",
            "-w",
            "json",
        ],
    );
    assert_eq!(code, 0, "the failover trial failed: {out}");
    let json_start = out.find('{').expect("a JSON document");
    let report: serde_json::Value =
        serde_json::from_str(&out[json_start..]).expect("the report parses");
    let failover_ms = report["failover_ms"].as_f64().expect("a failover time");
    assert!(failover_ms >= 0.0, "{report}");
    assert!(
        report["ok_before_kill"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        report["ok_after_kill"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );

    // The leader named is the process the command killed.
    let leader = report["leader_index"]
        .as_u64()
        .expect("the leader's position") as usize;
    assert!((1..=3).contains(&leader), "{report}");
    let exited = cluster.children[leader - 1]
        .try_wait()
        .expect("the killed node's status");
    assert!(exited.is_some(), "node {leader} still runs after the kill");

    // The survivors, without the dead endpoint, take writes.
    let survivors: Vec<&str> = cluster
        .client_urls
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != leader - 1)
        .map(|(_, url)| url.as_str())
        .collect();
    assert!(
        put_eventually(&survivors.join(","), "after-failover"),
        "the two survivors took no write"
    );
    let (code, out) = raftctl(&survivors.join(","), &["get", "after-failover"]);
    assert_eq!((code, out.as_str()), (0, "1\n"));
}
