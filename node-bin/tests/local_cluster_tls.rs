//! Issue 16, acceptance 4: `raft-node local-cluster --nodes 3 --tls` starts a TLS cluster with
//! a throwaway CA, and `raftctl` works with exactly the flags it prints (and not without them).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[path = "support/ports.rs"]
mod ports;
use ports::free_base_port;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Sends SIGINT to the local cluster when dropped, so a failing test leaves no cluster behind.
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

fn raftctl(arguments: &[String]) -> (i32, String) {
    let output = Command::new(RAFTCTL)
        .args(arguments)
        .env_remove("RAFTCTL_TOKEN")
        .output()
        .expect("run raftctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn local_cluster_with_tls_serves_raftctl_with_the_printed_flags() {
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_base_port(23000);
    let mut cluster = Command::new(RAFT_NODE)
        .args([
            "local-cluster",
            "--nodes",
            "3",
            "--tls",
            "--base-client-port",
        ])
        .arg(base.to_string())
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start local-cluster");
    let stop = StopOnDrop(cluster.id());
    let mut stdout = BufReader::new(cluster.stdout.take().expect("piped"));
    let mut urls = Vec::new();
    let mut flags: Option<Vec<String>> = None;
    let mut line = String::new();
    while flags.is_none() {
        line.clear();
        assert!(
            stdout.read_line(&mut line).expect("read") > 0,
            "local-cluster exited early"
        );
        print!("{line}");
        if let Some(url) = line
            .split_whitespace()
            .find(|word| word.starts_with("https://"))
        {
            urls.push(url.to_string());
        }
        if let Some(printed) = line.strip_prefix("raftctl flags: ") {
            flags = Some(printed.split_whitespace().map(str::to_string).collect());
        }
    }
    assert_eq!(urls.len(), 3, "one https URL per node: {urls:?}");
    let flags = flags.expect("printed");
    let with_flags = |arguments: &[&str]| {
        let mut all = flags.clone();
        all.push("--endpoints".to_string());
        all.push(urls.join(","));
        all.extend(arguments.iter().map(|argument| argument.to_string()));
        raftctl(&all)
    };
    // raftctl retries while the cluster elects its first leader (its deadline is 10 s).
    let (code, out) = with_flags(&["--deadline-ms", "60000", "put", "a", "1"]);
    assert_eq!(code, 0, "raftctl put with the printed flags: {out}");
    let (code, out) = with_flags(&["get", "a"]);
    assert_eq!((code, out.as_str()), (0, "1\n"));
    let (code, out) = with_flags(&["status"]);
    assert_eq!(code, 0, "status: {out}");
    assert_eq!(out.matches("https://").count(), 3, "{out}");
    // Without the flags: https needs --cacert; plain http reaches no node.
    let (code, out) = raftctl(&[
        "--endpoints".to_string(),
        urls.join(","),
        "get".into(),
        "a".into(),
    ]);
    assert_eq!(code, 2, "{out}");
    let plain = urls.join(",").replace("https://", "http://");
    let (code, out) = raftctl(&[
        "--endpoints".to_string(),
        plain,
        "--deadline-ms".into(),
        "2000".into(),
        "get".into(),
        "a".into(),
    ]);
    assert_ne!(code, 0, "plain http: {out}");
    // Only the CA, no client certificate: refused by the nodes.
    let (code, out) = raftctl(&[
        "--cacert".to_string(),
        flags[1].clone(),
        "--endpoints".into(),
        urls.join(","),
        "--deadline-ms".into(),
        "2000".into(),
        "get".into(),
        "a".into(),
    ]);
    assert_ne!(code, 0, "no client certificate: {out}");

    drop(stop);
    let status = cluster.wait().expect("local-cluster exits");
    assert!(
        status.success(),
        "local-cluster stops cleanly on SIGINT: {status:?}"
    );
}
