//! `raftctl` and the strict API on the real binaries (issue 15, acceptance 2 to 4): bad input is
//! refused with an error naming the problem and changes nothing; a 5 MB binary value
//! round-trips through `put KEY -` and `get`, and a CAS on a binary value swaps; `get --prefix`
//! lists 10,000 keys in pages, with `--limit`, and `-w json` parses; `status` and
//! `endpoint health` exit non-zero once a member is down and say why.

use node_bin::node_config::{to_toml, RawConfig, RawMember};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::wait::poll_real_time;

#[path = "support/ports.rs"]
mod ports;
use ports::free_address;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Three `raft-node` processes on loopback, killed when dropped.
struct Cluster {
    directory: PathBuf,
    client_urls: Vec<String>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn start(root: &Path, max_value_bytes: u64) -> Cluster {
        let directory = root.to_path_buf();
        let members: Vec<RawMember> = (1..=3)
            .map(|id| RawMember {
                id,
                peer_addr: free_address(),
                client_addr: free_address(),
            })
            .collect();
        let mut children = Vec::new();
        for member in &members {
            let mut config = RawConfig {
                id: member.id,
                cluster_id: "raftctl-cli".to_string(),
                data_dir: directory
                    .join(format!("node-{}", member.id))
                    .display()
                    .to_string(),
                peer_addr: member.peer_addr.clone(),
                client_addr: member.client_addr.clone(),
                members: members.clone(),
                ..RawConfig::default()
            };
            config.client.max_value_bytes = max_value_bytes;
            let path = directory.join(format!("node{}.toml", member.id));
            std::fs::write(&path, to_toml(&config)).expect("write config");
            let log = std::fs::File::create(directory.join(format!("node-{}.log", member.id)))
                .expect("node log");
            let child = Command::new(RAFT_NODE)
                .arg("--config")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn raft-node");
            children.push(Some(child));
        }
        let cluster = Cluster {
            directory,
            client_urls: members
                .iter()
                .map(|member| format!("http://{}", member.client_addr))
                .collect(),
            children,
        };
        cluster.wait_for_leader();
        cluster
    }

    fn endpoints(&self) -> String {
        self.client_urls.join(",")
    }

    fn wait_for_leader(&self) {
        let http = http();
        let found = poll_real_time(Duration::from_secs(20), || {
            self.client_urls.iter().find_map(|url| {
                let response = http.get(format!("{url}/health")).send().ok()?;
                response.status().is_success().then_some(())
            })
        });
        if found.is_none() {
            for id in 1..=3 {
                let log = std::fs::read_to_string(self.directory.join(format!("node-{id}.log")))
                    .unwrap_or_default();
                eprintln!("--- node {id} ---\n{log}");
            }
            panic!("no leader");
        }
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.kill(index);
        }
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// What one `raftctl` run gave: exit code, standard output (bytes), standard error.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|error| {
            panic!("-w json output does not parse ({error}): {}", self.text())
        })
    }
}

/// Runs raftctl with `arguments` (global flags anywhere in them) and `stdin`.
fn raftctl(arguments: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(RAFTCTL)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run raftctl");
    let mut input = child.stdin.take().expect("piped");
    // Written on another thread: a 5 MB value fills the pipe long before raftctl answers.
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().expect("raftctl");
    writer.join().expect("stdin writer");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `raftctl get KEY`: the value's bytes, without the newline `get` ends them with.
fn value_of(endpoints: &str, key: &str) -> Option<Vec<u8>> {
    let run = raftctl(&["--endpoints", endpoints, "get", key], b"");
    match run.code {
        0 => {
            let mut bytes = run.stdout;
            assert_eq!(
                bytes.pop(),
                Some(b'\n'),
                "get ends the value with a newline"
            );
            Some(bytes)
        }
        1 => None,
        code => panic!("get {key}: exit {code}: {}", run.stderr),
    }
}

/// The status code of `PUT path` with body `v`, the path sent exactly as given.
fn raw_put_status(url: &str, path: &str) -> u16 {
    use std::io::Read;
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv"
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

#[test]
fn bad_input_is_refused_by_name_and_binary_values_round_trip_and_swap() {
    let root = tempfile::tempdir().expect("temp dir");
    let cluster = Cluster::start(root.path(), 8 << 20);
    let endpoints = cluster.endpoints();
    let url = &cluster.client_urls[0];
    let http = http();
    let put = |arguments: &[&str]| {
        let mut all = vec!["--endpoints", endpoints.as_str(), "put"];
        all.extend_from_slice(arguments);
        raftctl(&all, b"")
    };
    assert_eq!(put(&["p/q", "original"]).code, 0);

    // A key with a `.`, `..` or empty segment: refused, never rewritten to `p/q`.
    for key in ["p/./q", "p/../q", "p//q", "p/q/"] {
        let run = put(&[key, "v"]);
        assert_eq!(run.code, 5, "{key}: {}", run.stderr);
        assert!(run.stderr.contains("segment"), "{key}: {}", run.stderr);
        // Raw bytes on a socket: an HTTP library would rewrite `p/./q` to `p/q` on the way.
        let status = raw_put_status(url, &format!("/v1/kv/{key}"));
        assert_eq!(status, 400, "{key} over HTTP");
    }
    // Parameters that mean something elsewhere are refused by name, not ignored.
    for (path, named) in [
        ("/v1/kv/p/q?recurse", "recurse"),
        ("/v1/kv/p/q?ttl=5", "ttl"),
        ("/v1/kv/p/q?cas=0", "cas"),
        ("/v1/list?prefix=p&recurse=true", "recurse"),
        ("/v1/list?limit=10001", "limit"),
    ] {
        let method = if path.starts_with("/v1/list") {
            reqwest::Method::GET
        } else {
            reqwest::Method::PUT
        };
        let response = http
            .request(method, format!("{url}{path}"))
            .body("changed")
            .send()
            .expect("answer");
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let body: Value = response.json().expect("JSON error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{path}: {message}");
    }
    // Both forms of one CAS field: refused.
    let response = http
        .post(format!("{url}/v1/cas/p/q"))
        .body(r#"{"expect": "original", "expect_base64": "AA==", "value": "changed"}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        value_of(&endpoints, "p/q").as_deref(),
        Some(&b"original"[..])
    );
    // Nothing else was written under `p` either.
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "get",
            "--prefix",
            "p",
            "-w",
            "json",
        ],
        b"",
    );
    let listing = run.json();
    assert_eq!(
        listing["entries"],
        serde_json::json!([{"key": "p/q", "value": "original"}])
    );

    // A 5 MB binary value through standard input, read back byte for byte.
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    assert!(std::str::from_utf8(&big).is_err(), "the value is not text");
    let run = raftctl(&["put", "big", "-", "--endpoints", &endpoints], &big);
    assert_eq!(run.code, 0, "put big -: {}", run.stderr);
    assert!(
        value_of(&endpoints, "big") == Some(big.clone()),
        "big read back"
    );

    // CAS on the binary value, EXPECT and NEW from files: swaps; then a stale EXPECT does not,
    // and the JSON answer carries the current value as base64.
    let expect_file = root.path().join("expect.bin");
    let new_file = root.path().join("new.bin");
    std::fs::write(&expect_file, &big).expect("write");
    let new_value = [0u8, 255, 1, 254, 0];
    std::fs::write(&new_file, new_value).expect("write");
    let cas = |extra: &[&str]| {
        let mut arguments = vec!["--endpoints", endpoints.as_str(), "cas", "big"];
        arguments.extend_from_slice(extra);
        raftctl(&arguments, b"")
    };
    let expect_path = expect_file.to_str().expect("UTF-8");
    let new_path = new_file.to_str().expect("UTF-8");
    let run = cas(&["--expect-file", expect_path, "--value-file", new_path]);
    assert_eq!(run.code, 0, "binary CAS: {} {}", run.text(), run.stderr);
    assert!(run.text().starts_with("swapped index="), "{}", run.text());
    assert_eq!(value_of(&endpoints, "big").as_deref(), Some(&new_value[..]));
    let run = cas(&[
        "--expect-file",
        expect_path,
        "--value-file",
        new_path,
        "-w",
        "json",
    ]);
    assert_eq!(run.code, 1, "a stale EXPECT does not swap");
    let answer = run.json();
    assert_eq!(answer["swapped"], false);
    assert_eq!(answer["current_base64"], "AP8B/gA=");
    // NEW from standard input, EXPECT from a file.
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "cas",
            "big",
            "--expect-file",
            new_path,
            "-",
        ],
        &[7, 0xff],
    );
    assert_eq!(run.code, 0, "cas from stdin: {}", run.stderr);
    assert_eq!(value_of(&endpoints, "big").as_deref(), Some(&[7, 0xff][..]));
    // Usage errors: no value, or an unreadable file.
    assert_eq!(cas(&[]).code, 2);
    let run = cas(&["--expect-file", "/nonexistent/expect", "x"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("/nonexistent/expect"), "{}", run.stderr);
}

#[test]
fn get_prefix_pages_through_ten_thousand_keys_and_status_reports_a_dead_member() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut cluster = Cluster::start(root.path(), 1 << 20);
    let endpoints = cluster.endpoints();
    // `bench` writes bench/0 .. bench/9999; two keys around the prefix must not be listed.
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "bench",
            "--requests",
            "10000",
            "--clients",
            "8",
            "--value-bytes",
            "8",
            "--sequential-keys",
            "--key-space",
            "10000",
            "--key-bytes",
            "0",
            "-w",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "bench: {} {}", run.text(), run.stderr);
    assert_eq!(run.json()["ok"], 10_000, "every bench write succeeded");
    for key in ["bench", "bencha"] {
        assert_eq!(
            raftctl(&["--endpoints", &endpoints, "put", key, "x"], b"").code,
            0
        );
    }
    let mut expected: Vec<String> = (0..10_000).map(|index| format!("bench/{index}")).collect();
    expected.sort();

    // Everything, in pages of 1000, as JSON (global flags after the command).
    let run = raftctl(
        &[
            "get",
            "--prefix",
            "bench/",
            "-w",
            "json",
            "--endpoints",
            &endpoints,
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listing = run.json();
    let keys: Vec<&str> = listing["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys, expected, "every key under the prefix, in key order");
    assert_eq!(listing["count"], 10_000);
    assert_eq!(listing["more"], false);
    assert_eq!(listing["entries"][0]["value"], "xxxxxxxx");

    // --limit across page boundaries: 2500 keys, and more remain.
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "-w",
            "json",
            "get",
            "--prefix",
            "bench/",
            "--limit",
            "2500",
        ],
        b"",
    );
    let listing = run.json();
    assert_eq!(listing["count"], 2500);
    assert_eq!(listing["more"], true);
    assert_eq!(listing["entries"][2499]["key"], expected[2499].as_str());
    // --keys-only, as a table: one key per line.
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "get",
            "--prefix",
            "bench/",
            "--keys-only",
            "--local",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.text().lines().count(), 10_000);
    // Pages by hand over HTTP: next_start_after continues where a page stopped.
    let http = http();
    let page: Value = http
        .get(format!(
            "{}/v1/list?prefix=bench%2F&limit=3",
            cluster.client_urls[1]
        ))
        .send()
        .expect("answer")
        .json()
        .expect("JSON");
    assert_eq!(page["more"], true);
    assert_eq!(page["next_start_after"], expected[2].as_str());

    // status, member list and endpoint health while all members run: exit 0, JSON parses.
    let run = raftctl(
        &[
            "--endpoints",
            &cluster.client_urls[0],
            "status",
            "-w",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json().as_array().expect("rows").len(),
        3,
        "every member"
    );
    let run = raftctl(
        &["--endpoints", &endpoints, "member", "list", "-w", "json"],
        b"",
    );
    assert_eq!(run.json()["members"].as_array().expect("members").len(), 3);
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "endpoint",
            "health",
            "-w",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.text());
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "snapshot",
            "create",
            "-w",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json()["snapshot"]["index"].as_u64() > Some(10_000));
    // One member down: both exit 8 and name the cause.
    cluster.kill(2);
    let run = raftctl(&["--endpoints", &endpoints, "status"], b"");
    assert_eq!(run.code, 8, "{}", run.text());
    assert!(run.text().contains("Connection refused"), "{}", run.text());
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "endpoint",
            "health",
            "-w",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 8, "{}", run.text());
    let checks = run.json();
    let down = &checks.as_array().expect("rows")[2];
    assert_eq!(down["healthy"], false);
    assert!(
        down["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Connection refused"),
        "{down}"
    );
}

#[test]
fn errors_name_the_root_cause_and_completion_scripts_are_printed() {
    // Nothing listens on these ports: fast failure naming the refusal, well within the deadline.
    let closed: Vec<String> = (0..2)
        .map(|_| format!("http://{}", free_address()))
        .collect();
    let started = Instant::now();
    let run = raftctl(
        &[
            "get",
            "a",
            "--endpoints",
            &closed.join(","),
            "--deadline-ms",
            "30000",
        ],
        b"",
    );
    assert_eq!(run.code, 3);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
    let run = raftctl(&["--endpoints", "https://127.0.0.1:1", "status"], b"");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unsupported URL scheme `https`"),
        "{}",
        run.stderr
    );
    for shell in ["bash", "zsh", "fish"] {
        let run = raftctl(&["completion", shell], b"");
        assert_eq!(run.code, 0, "{shell}");
        assert!(run.text().contains("endpoint"), "{shell}: {}", run.text());
    }
    // Usage errors are exit 2.
    assert_eq!(raftctl(&["get", "--keys-only", "k"], b"").code, 2);
    assert_eq!(raftctl(&["-w", "yaml", "status"], b"").code, 2);
}

/// `raftctl bench` (issue 14): every workload and target runs against a real cluster and
/// its `-w json` summary parses, with throughput, the HDR percentiles and errors by kind; a
/// dead cluster fails the pre-flight check with exit 3.
#[test]
fn bench_runs_every_workload_and_target_and_summarizes_as_json() {
    let root = tempfile::tempdir().expect("temp dir");
    let cluster = Cluster::start(root.path(), 1 << 20);
    let endpoints = cluster.endpoints();
    for (workload, target) in [
        ("put", "leader"),
        ("get", "any"),
        ("get-local", "round-robin"),
        ("mixed", "round-robin"),
        ("cas", "leader"),
    ] {
        let run = raftctl(
            &[
                "--endpoints",
                &endpoints,
                "bench",
                "--workload",
                workload,
                "--target",
                target,
                "--total",
                "300",
                "--clients",
                "4",
                "--key-space",
                "50",
                "-w",
                "json",
            ],
            b"",
        );
        assert_eq!(
            run.code,
            0,
            "bench {workload} {target}: {} {}",
            run.text(),
            run.stderr
        );
        let summary = run.json();
        assert_eq!(summary["ok"], 300, "{workload} to {target}: {summary}");
        assert!(summary["requests_per_second"].as_f64().expect("a rate") > 0.0);
        for percentile in ["p50", "p90", "p99", "p99_9", "max"] {
            assert!(
                summary["latency_ms"][percentile].as_f64().is_some(),
                "{workload}: no {percentile} in {summary}"
            );
        }
        for kind in ["unavailable_503", "outcome_unknown_504", "connect", "other"] {
            assert_eq!(summary["errors"][kind], 0, "{workload}: {summary}");
        }
    }
    // A rate limit paces the run: 100 requests at 200/s take about half a second.
    let started = std::time::Instant::now();
    let run = raftctl(
        &[
            "--endpoints",
            &endpoints,
            "bench",
            "--total",
            "100",
            "--clients",
            "2",
            "--rate",
            "200",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "--rate 200 did not pace 100 requests: {:?}",
        started.elapsed()
    );
    assert!(run.text().contains("p99.9"), "{}", run.text());
    // Nobody answers: the pre-flight check fails fast.
    let dead = format!("http://{}", free_address());
    let run = raftctl(&["--endpoints", &dead, "bench", "--total", "10"], b"");
    assert_eq!(run.code, 3, "{} {}", run.text(), run.stderr);
    assert!(run.stderr.contains("no endpoint answers"), "{}", run.stderr);
}
