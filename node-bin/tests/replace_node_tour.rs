//! The README tour "Replacing a node of local-cluster", command for command, on the real
//! binaries: `raft-node local-cluster --nodes 3`, `kill -9` of node 3, `raftctl member remove
//! 3`, a new server 4 started with an empty data directory in join mode from node 1's
//! configuration file, `raftctl member add 4 PEER CLIENT`, `raftctl member list` until it has
//! caught up, `raftctl member promote 4`, `raftctl leader transfer 4`. Then the member list is 1, 2 and 4, all voters, and
//! what was written before the replacement is read from the new node.
//!
//! The tour's ports (8001.., 7001..) become a free range here; nothing else differs.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use test_support::wait::poll_real_time;

#[path = "support/ports.rs"]
mod ports;
use ports::free_base_port;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Kills a process when dropped (a failing test leaves nothing running).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGINT to the local cluster when dropped: its supervisor stops the nodes it runs.
struct InterruptOnDrop(Child);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.0.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

fn raftctl(endpoints: &str, arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(RAFTCTL)
        .arg("--endpoints")
        .arg(endpoints)
        .args(arguments)
        .output()
        .expect("run raftctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The pid of the process whose command line names `config` (what `pgrep -f` finds in the
/// tour), so exactly that node is killed.
fn pid_running(config: &Path) -> Option<u32> {
    let needle = config.display().to_string();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let command_line = std::fs::read(entry.path().join("cmdline")).ok()?;
        let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
        (command_line.contains("--config") && command_line.contains(&needle)).then_some(pid)
    })
}

fn member_list(endpoints: &str) -> Value {
    let (code, out, err) = raftctl(endpoints, &["member", "list", "-w", "json"]);
    assert_eq!(code, 0, "member list: {err}");
    serde_json::from_str(&out).expect("member list -w json parses")
}

#[test]
fn replacing_a_node_of_local_cluster_as_the_readme_tour_does() {
    let data = tempfile::tempdir().expect("temp dir");
    let root = data.path().join("raft-local-cluster");
    // The tour's node 4 takes the next ports of the range: both must be free too.
    let base = (0..50)
        .map(|attempt| free_base_port(24000 + attempt * 100))
        .find(|base| {
            [base + 3, base - 997]
                .iter()
                .all(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        })
        .expect("a free port range");
    let client = |i: u16| format!("127.0.0.1:{}", base + i - 1);
    let peer = |i: u16| format!("127.0.0.1:{}", base - 1000 + i - 1);

    // raft-node local-cluster --nodes 3
    let mut cluster = Command::new(RAFT_NODE)
        .args(["local-cluster", "--nodes", "3", "--base-client-port"])
        .arg(base.to_string())
        .arg("--data-dir")
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start local-cluster");
    let mut stdout = BufReader::new(cluster.stdout.take().expect("piped"));
    let cluster = InterruptOnDrop(cluster);
    let mut line = String::new();
    let mut urls = 0;
    while urls < 3 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "local-cluster exited"
        );
        urls += usize::from(line.contains("http://"));
    }
    // raftctl's default endpoints are the tour's 8001..8003; here the range found free.
    let endpoints = (1..=3)
        .map(|i| format!("http://{}", client(i)))
        .collect::<Vec<_>>()
        .join(",");
    let put = poll_real_time(Duration::from_secs(30), || {
        (raftctl(&endpoints, &["put", "a", "1"]).0 == 0).then_some(())
    });
    assert!(put.is_some(), "raftctl put a 1");

    // kill -9 $(pgrep -f raft-local-cluster/node-3.toml)
    let node3_config = root.canonicalize().expect("root").join("node-3.toml");
    let pid = poll_real_time(Duration::from_secs(10), || pid_running(&node3_config))
        .expect("node 3 runs");
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());

    // raftctl member remove 3 (a new leader that has not yet committed an entry of its term
    // answers 503 leader_not_ready, which raftctl retries like any 503).
    let last = raftctl(&endpoints, &["member", "remove", "3"]);
    assert_eq!(last.0, 0, "member remove 3: {last:?}");
    assert!(last.1.starts_with("removed 3 index="), "{last:?}");

    // raft-node --config raft-local-cluster/node-1.toml --id 4 --join --data-dir
    //   raft-local-cluster/node-4 --peer-addr 127.0.0.1:7004 --client-addr 127.0.0.1:8004
    let log = std::fs::File::create(root.join("node-4.log")).expect("log");
    let node4 = Command::new(RAFT_NODE)
        .arg("--config")
        .arg(root.join("node-1.toml"))
        .args(["--id", "4", "--join", "--data-dir"])
        .arg(root.join("node-4"))
        .args(["--peer-addr", &peer(4), "--client-addr", &client(4)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start node 4");
    let _node4 = KillOnDrop(node4);

    // raftctl member add 4 127.0.0.1:7004 127.0.0.1:8004
    let (code, out, err) = raftctl(&endpoints, &["member", "add", "4", &peer(4), &client(4)]);
    assert_eq!(code, 0, "member add 4: {out} {err}");
    assert!(out.starts_with("added learner 4 index="), "{out}");

    // raftctl member list, until node 4's lag is 0.
    let caught_up = poll_real_time(Duration::from_secs(60), || {
        let list = member_list(&endpoints);
        let row = list["members"]
            .as_array()?
            .iter()
            .find(|member| member["id"] == 4)?
            .clone();
        (row["role"] == "learner" && row["lag"] == 0).then_some(())
    });
    let (_, table, _) = raftctl(&endpoints, &["member", "list"]);
    assert!(caught_up.is_some(), "node 4 never caught up:\n{table}");
    assert!(table.contains("learner"), "{table}");

    // raftctl member promote 4 (retried while the leader still finds it lagging: exit 9).
    let mut last = (0, String::new(), String::new());
    let promoted = poll_real_time(Duration::from_secs(60), || {
        last = raftctl(&endpoints, &["member", "promote", "4"]);
        match last.0 {
            0 => Some(()),
            9 if last.2.contains("learner_not_ready") => None,
            _ => panic!("member promote 4: {last:?}"),
        }
    });
    assert!(promoted.is_some(), "member promote 4: {last:?}");
    assert!(last.1.starts_with("promoted 4 index="), "{last:?}");

    // The cluster is 1, 2 and 4, all voters; 3 is gone.
    let list = member_list(&endpoints);
    assert_eq!(list["joint"], false, "{list}");
    let rows = list["members"].as_array().expect("members");
    let ids: Vec<u64> = rows.iter().filter_map(|row| row["id"].as_u64()).collect();
    assert_eq!(ids, vec![1, 2, 4], "{list}");
    assert!(rows.iter().all(|row| row["voter"] == true), "{list}");
    assert_eq!(
        rows.iter().filter(|row| row["role"] == "leader").count(),
        1,
        "{list}"
    );

    let (_, table, _) = raftctl(&endpoints, &["member", "list"]);
    println!("after the replacement:\n{table}");

    // What was written before the replacement, read from the new node: its own state machine
    // (--local), and linearizably.
    let node4_url = format!("http://{}", client(4));
    for arguments in [&["get", "a", "--local"][..], &["get", "a"][..]] {
        let (code, out, err) = raftctl(&node4_url, arguments);
        assert_eq!((code, out.as_str()), (0, "1\n"), "{arguments:?}: {err}");
    }
    // And the new cluster takes writes through the new node.
    let (code, out, err) = raftctl(&node4_url, &["put", "b", "2"]);
    assert_eq!(code, 0, "{out} {err}");
    // raftctl leader transfer 4
    let (code, out, err) = raftctl(&endpoints, &["leader", "transfer", "4"]);
    assert_eq!((code, out.as_str()), (0, "leader is now 4\n"), "{err}");
    drop(cluster);
}
