//! Issue 16, acceptance 2, on a 3-node cluster with TLS and `[auth] tokens_file`, every node
//! logging at `RUST_LOG=trace`: no token (or an unknown one) is `401`, a read-only token
//! writing is `403`, the right token is `200` (through a follower too: the forwarded request
//! carries the client's token over TLS); `/health` is open, `/metrics` needs a token; raftctl
//! takes `--token` and `RAFTCTL_TOKEN`; and neither token appears in any log line.

#[path = "support/ports.rs"]
mod ports;
#[path = "support/secure_cluster.rs"]
mod secure_cluster;

use secure_cluster::{exclusive, Options, SecureCluster, RAFTCTL};
use std::process::Command;
use std::time::Duration;

const RW_TOKEN: &str = "rw-token-4f9c2a7e1b60d3";
const RO_TOKEN: &str = "ro-token-8d3e6b0c5a92f1";

#[test]
fn tokens_401_403_200_and_never_logged_at_trace_level() {
    let _exclusive = exclusive();
    let root = tempfile::tempdir().expect("temp dir");
    let mut cluster = SecureCluster::configure(
        root.path(),
        "tokens",
        Options {
            tls: true,
            tokens: Some(format!("# test tokens\nrw {RW_TOKEN}\nro {RO_TOKEN}\n")),
            rust_log: Some("trace".to_string()),
        },
    );
    cluster.start();
    let leader = cluster.wait_for_leader(Some(RO_TOKEN));
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let http = cluster.http();
    let send = |request: reqwest::blocking::RequestBuilder, token: Option<&str>| {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().expect("request").status().as_u16()
    };
    let leader_url = cluster.url(leader);
    let follower_url = cluster.url(follower);
    let kv = |url: &str, key: &str| format!("{url}/v1/kv/{key}");

    // No token, an unknown token, another scheme: 401, with the challenge header.
    let response = http.get(kv(&leader_url, "a")).send().expect("request");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    assert_eq!(
        send(http.get(kv(&leader_url, "a")), Some("not-a-token")),
        401
    );
    assert_eq!(
        send(
            http.put(kv(&leader_url, "a"))
                .header("authorization", format!("Basic {RW_TOKEN}")),
            None
        ),
        401
    );
    // The read-only token writing: 403, for every kind of write, at leader and follower.
    for url in [&leader_url, &follower_url] {
        assert_eq!(send(http.put(kv(url, "a")).body("x"), Some(RO_TOKEN)), 403);
        assert_eq!(send(http.delete(kv(url, "a")), Some(RO_TOKEN)), 403);
        let cas = http
            .post(format!("{url}/v1/cas/a"))
            .json(&serde_json::json!({"expected": null, "value": "eA=="}));
        assert_eq!(send(cas, Some(RO_TOKEN)), 403);
        assert_eq!(
            send(http.post(format!("{url}/v1/snapshot")), Some(RO_TOKEN)),
            403
        );
    }
    // The right tokens: 200. A write through the follower is forwarded with the token.
    assert_eq!(
        send(http.put(kv(&follower_url, "a")).body("1"), Some(RW_TOKEN)),
        200
    );
    assert_eq!(
        send(http.put(kv(&leader_url, "b")).body("2"), Some(RW_TOKEN)),
        200
    );
    for id in 1..=3 {
        let response = http
            .get(kv(&cluster.url(id), "a"))
            .bearer_auth(RO_TOKEN)
            .send()
            .expect("request");
        assert_eq!(
            response.status().as_u16(),
            200,
            "linearizable read at node {id}"
        );
        assert_eq!(response.text().expect("body"), "1");
    }
    // /health is open; /metrics needs a token (open_metrics is off).
    assert_eq!(send(http.get(format!("{leader_url}/health")), None), 200);
    assert_eq!(send(http.get(format!("{leader_url}/metrics")), None), 401);
    assert_eq!(
        send(http.get(format!("{leader_url}/metrics")), Some(RO_TOKEN)),
        200
    );

    // raftctl: --token and RAFTCTL_TOKEN; the read-only one cannot write.
    let files = cluster.client_files.as_ref().expect("TLS files");
    let raftctl = |token_flag: Option<&str>, token_env: Option<&str>, arguments: &[&str]| {
        let mut command = Command::new(RAFTCTL);
        command
            .arg("--endpoints")
            .arg(cluster.urls().join(","))
            .arg("--cacert")
            .arg(&files.ca_file)
            .arg("--cert")
            .arg(&files.cert_file)
            .arg("--key")
            .arg(&files.key_file)
            .env_remove("RAFTCTL_TOKEN");
        if let Some(token) = token_flag {
            command.arg("--token").arg(token);
        }
        if let Some(token) = token_env {
            command.env("RAFTCTL_TOKEN", token);
        }
        let output = command.args(arguments).output().expect("run raftctl");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, out) = raftctl(Some(RW_TOKEN), None, &["put", "c", "3"]);
    assert_eq!(code, 0, "raftctl --token rw put: {out}");
    let (code, out) = raftctl(None, Some(RO_TOKEN), &["get", "c"]);
    assert_eq!((code, out.as_str()), (0, "3\n"), "RAFTCTL_TOKEN ro get");
    let (code, out) = raftctl(None, Some(RO_TOKEN), &["put", "c", "4"]);
    assert_ne!(code, 0, "a read-only token cannot write: {out}");
    assert!(out.contains("403") || out.contains("read-only"), "{out}");
    assert!(!out.contains(RO_TOKEN), "raftctl printed the token: {out}");
    let (code, _) = raftctl(None, None, &["get", "c"]);
    assert_ne!(code, 0, "no token");
    let (_, help) = raftctl(None, Some(RO_TOKEN), &["--help"]);
    assert!(!help.contains(RO_TOKEN), "--help shows the token");

    // The consistency check presents a token to its peers (a round runs every second).
    std::thread::sleep(Duration::from_secs(3));
    for id in 1..=3 {
        cluster.stop_node(id);
    }
    let logs = cluster.logs();
    assert!(logs.contains("TRACE"), "the nodes logged at trace level");
    assert!(
        !logs.contains("answered 401 for its checkpoints"),
        "the consistency check was refused"
    );
    for token in [RW_TOKEN, RO_TOKEN] {
        let leaks: Vec<&str> = logs.lines().filter(|line| line.contains(token)).collect();
        assert!(leaks.is_empty(), "the token appears in the logs: {leaks:?}");
    }
    println!(
        "{} log lines at trace level, no token in any of them",
        logs.lines().count()
    );
}
