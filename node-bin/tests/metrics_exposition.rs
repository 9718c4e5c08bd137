//! Issue 15, acceptance 5: `/metrics` of running nodes parses as Prometheus text (with
//! `prometheus-parse` and with the strict reader in `support/exposition.rs`) and holds every
//! family of docs/API.md; label values are escaped; `GET /version` and `--version` name the
//! build.

mod support;

use node_bin::build_info;
use node_bin::http_api::snapshot_routes::SnapshotStatus;
use node_bin::http_api::ApiCounters;
use node_bin::metrics::process::ProcessFigures;
use node_bin::metrics::{render, ConsistencyFigures, Scrape};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::exposition::{parse_strict, Exposition};
use test_support::wait::poll_real_time;

#[path = "support/ports.rs"]
mod ports;
use ports::free_base_port;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Every family a leader of a three-node cluster reports, with its type (docs/API.md).
const LEADER_FAMILIES: &[(&str, &str)] = &[
    ("raft_term", "gauge"),
    ("raft_role", "gauge"),
    ("raft_is_leader", "gauge"),
    ("raft_leader_id", "gauge"),
    ("raft_commit_index", "gauge"),
    ("raft_last_applied", "gauge"),
    ("raft_last_log_index", "gauge"),
    ("raft_persisted_index", "gauge"),
    ("raft_pending_proposals", "gauge"),
    ("raft_pending_reads", "gauge"),
    ("raft_proposals_total", "counter"),
    ("raft_proposals_rejected_total", "counter"),
    ("raft_reads_total", "counter"),
    ("raft_reads_rejected_total", "counter"),
    ("raft_elections_started_total", "counter"),
    ("raft_leader_changes_total", "counter"),
    ("raft_messages_sent_total", "counter"),
    ("raft_messages_received_total", "counter"),
    ("raft_storage_appends_total", "counter"),
    ("raft_snapshot_chunks_sent_total", "counter"),
    ("raft_peers_connected", "gauge"),
    ("raft_append_durable_latency_seconds", "histogram"),
    ("raft_peer_round_trip_seconds", "histogram"),
    ("raft_storage_batches_total", "counter"),
    ("raft_storage_requests_total", "counter"),
    ("raft_storage_entries_total", "counter"),
    ("raft_storage_fsync_latency_seconds", "histogram"),
    ("raft_peer_messages_dropped_total", "counter"),
    ("raft_peer_messages_sent_total", "counter"),
    ("raft_peer_bytes_sent_total", "counter"),
    ("raft_peer_messages_received_total", "counter"),
    ("raft_peer_bytes_received_total", "counter"),
    ("raft_peer_connections_established_total", "counter"),
    ("raft_connections_rejected_total", "counter"),
    ("raft_connections_closed_on_bad_frame_total", "counter"),
    ("raft_messages_to_unknown_peer_total", "counter"),
    ("raft_snapshot_index", "gauge"),
    ("raft_snapshot_term", "gauge"),
    ("raft_snapshot_size_bytes", "gauge"),
    ("raft_snapshot_last_write_duration_seconds", "gauge"),
    ("raft_snapshot_write_in_progress", "gauge"),
    ("raft_snapshots_taken_total", "counter"),
    ("raft_snapshot_failures_total", "counter"),
    ("raft_snapshots_restored_total", "counter"),
    ("raft_log_first_index", "gauge"),
    ("raft_log_entries", "gauge"),
    ("raft_log_size_bytes", "gauge"),
    ("raft_corruption_alarm", "gauge"),
    ("raft_corruption_alarm_index", "gauge"),
    ("raft_consistency_checkpoint_index", "gauge"),
    ("raft_consistency_comparisons_total", "counter"),
    ("raft_consistency_peer_errors_total", "counter"),
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("process_threads", "gauge"),
    ("raft_build_info", "gauge"),
    ("http_responses_total", "counter"),
    ("http_request_duration_seconds", "histogram"),
];

/// One cluster at a time: they use port ranges found free.
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sends SIGINT to the local cluster when dropped, if that pid still is one.
struct StopOnDrop(u32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let command_line = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if String::from_utf8_lossy(&command_line).contains("local-cluster") {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(self.0.to_string())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn assert_families(exposition: &Exposition, families: &[(&str, &str)], text: &str) {
    for (name, kind) in families {
        assert_eq!(
            exposition.types.get(*name).map(String::as_str),
            Some(*kind),
            "family {name} ({kind}) missing or mistyped in\n{text}"
        );
        assert!(exposition.help.contains_key(*name), "{name} has no HELP");
    }
}

/// The same text through `prometheus-parse`: every family's samples come out typed.
fn assert_prometheus_parse_reads(text: &str) {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("prometheus-parse reads it");
    let typed = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|sample| sample.metric == name)
            .map(|sample| sample.value.clone())
    };
    assert!(matches!(
        typed("raft_term"),
        Some(prometheus_parse::Value::Gauge(_))
    ));
    assert!(matches!(
        typed("raft_proposals_total"),
        Some(prometheus_parse::Value::Counter(value)) if value >= 1.0
    ));
    assert!(matches!(
        typed("raft_peer_round_trip_seconds"),
        Some(prometheus_parse::Value::Histogram(buckets)) if !buckets.is_empty()
    ));
    assert!(matches!(
        typed("http_request_duration_seconds"),
        Some(prometheus_parse::Value::Histogram(_))
    ));
    assert!(matches!(
        typed("process_resident_memory_bytes"),
        Some(prometheus_parse::Value::Gauge(bytes)) if bytes > 0.0
    ));
}

#[test]
fn metrics_of_a_running_cluster_parse_and_hold_every_family() {
    let _exclusive = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_base_port(30000);
    let mut cluster = Command::new(RAFT_NODE)
        .args(["local-cluster", "--nodes", "3", "--base-client-port"])
        .arg(base.to_string())
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start local-cluster");
    let _stop = StopOnDrop(cluster.id());
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
    // Drain the rest of its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let put = |url: &str| {
        http.put(format!("{url}/v1/kv/metrics-test"))
            .body("1")
            .send()
            .is_ok_and(|response| response.status().is_success())
    };
    poll_real_time(Duration::from_secs(20), || put(&urls[0]).then_some(()))
        .expect("the cluster takes a write");
    // A path no route matches: its series says `unmatched`, not the path.
    let response = http
        .get(format!("{}/no/such/path", urls[0]))
        .send()
        .expect("GET");
    assert_eq!(response.status().as_u16(), 404);

    // The leader is the node with round-trip samples for both peers (a heartbeat goes out
    // every 50 ms).
    let (url, text, exposition) = poll_real_time(Duration::from_secs(10), || {
        urls.iter().find_map(|url| {
            let text = http
                .get(format!("{url}/metrics"))
                .send()
                .ok()?
                .text()
                .ok()?;
            let exposition = parse_strict(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
            let peers_sampled = exposition
                .samples_of("raft_peer_round_trip_seconds_count")
                .filter(|sample| sample.labels["kind"] == "heartbeat" && sample.value >= 1.0)
                .count();
            (peers_sampled == 2).then(|| (url.clone(), text, exposition))
        })
    })
    .expect("a leader reports round trips to both peers");
    assert_families(&exposition, LEADER_FAMILIES, &text);
    assert_prometheus_parse_reads(&text);

    // Latency by route pattern and status, the first URL's PUT and 404 among them (a follower
    // forwards, so look on the node that was asked).
    let first = if url == urls[0] {
        exposition
    } else {
        let text = http
            .get(format!("{}/metrics", urls[0]))
            .send()
            .unwrap()
            .text()
            .unwrap();
        parse_strict(&text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    };
    let count_of = |pairs: &[(&str, &str)]| {
        first
            .samples_of("http_request_duration_seconds_count")
            .find(|sample| sample.labels == labels(pairs))
            .map(|sample| sample.value)
    };
    assert!(
        count_of(&[
            ("method", "PUT"),
            ("route", "/v1/kv/{key:.*}"),
            ("status", "200")
        ]) >= Some(1.0)
    );
    assert_eq!(
        count_of(&[("method", "GET"), ("route", "unmatched"), ("status", "404")]),
        Some(1.0)
    );
    assert!(
        !first.samples.iter().any(|sample| sample
            .labels
            .values()
            .any(|value| value.contains("no/such"))),
        "a raw path became a label"
    );

    // The build, the same in /version and in the metric.
    let version: serde_json::Value = http
        .get(format!("{url}/version"))
        .send()
        .expect("GET /version")
        .json()
        .expect("JSON");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["git_commit"], build_info::GIT_COMMIT);
    assert_eq!(version["build_profile"], build_info::BUILD_PROFILE);
    let leader = parse_strict(
        &http
            .get(format!("{url}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    let info = leader
        .samples_of("raft_build_info")
        .next()
        .expect("build info");
    assert_eq!(info.value, 1.0);
    assert_eq!(info.labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info.labels["git_commit"],
        version["git_commit"].as_str().unwrap()
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = leader
        .samples_of("process_start_time_seconds")
        .next()
        .unwrap()
        .value;
    assert!(
        started <= now + 2.0 && started > now - 600.0,
        "start {started}, now {now}"
    );
    assert!(leader.samples_of("process_open_fds").next().unwrap().value >= 3.0);
    let pending = leader
        .samples_of("raft_pending_proposals")
        .next()
        .unwrap()
        .value;
    assert_eq!(pending, 0.0, "nothing waits once the writes are answered");
    let response = http.get(format!("{url}/version?x=1")).send().unwrap();
    assert_eq!(response.status().as_u16(), 400, "unknown query parameter");

    let status = Command::new("kill")
        .arg("-INT")
        .arg(cluster.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = poll_real_time(Duration::from_secs(10), || {
        cluster.try_wait().ok().flatten()
    });
    assert!(exit.is_some(), "local-cluster stops on SIGINT");
}

#[test]
fn version_flags_name_the_build() {
    for (program, name) in [(RAFT_NODE, "raft-node"), (RAFTCTL, "raftctl")] {
        let output = Command::new(program)
            .arg("--version")
            .output()
            .expect("run");
        assert!(output.status.success());
        let line = String::from_utf8(output.stdout).expect("UTF-8");
        assert_eq!(line, format!("{name} {}\n", build_info::VERSION_LINE));
        assert!(
            line.starts_with(&format!("{name} {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{line}"
        );
        assert!(
            line.contains(&format!("{} build", build_info::BUILD_PROFILE)),
            "{line}"
        );
    }
    // Built from a checkout without RAFT_GIT_COMMIT: the commit is the checkout's.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|head| head.status.success());
    if let Some(head) = head {
        if option_env!("RAFT_GIT_COMMIT").is_none() {
            let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
            assert_eq!(build_info::GIT_COMMIT, head);
        }
    }
}

fn empty_scrape(build: Vec<(&'static str, String)>) -> Scrape {
    Scrape {
        raft: None,
        storage: None,
        network: None,
        snapshots: SnapshotStatus::default(),
        consistency: ConsistencyFigures::default(),
        process: ProcessFigures::default(),
        build,
    }
}

#[test]
fn a_hostile_label_value_is_escaped_and_reads_back_exactly() {
    let hostile = "a\"b\\c\nd} evil{x=\"1\",y=2 # \u{1F980}";
    let mut build = Scrape::build_labels();
    build[1].1 = hostile.to_owned();
    let api = ApiCounters::default();
    api.observe_request(
        "GET",
        Some(hostile.to_owned()),
        200,
        Duration::from_millis(3),
    );
    let text = render(empty_scrape(build), &api);
    let exposition = parse_strict(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let info = exposition
        .samples_of("raft_build_info")
        .next()
        .expect("build info");
    assert_eq!(info.labels["git_commit"], hostile);
    let count = exposition
        .samples_of("http_request_duration_seconds_count")
        .next()
        .expect("latency");
    assert_eq!(
        (count.labels["route"].as_str(), count.value),
        (hostile, 1.0)
    );
    assert!(
        text.contains(r#"git_commit="a\"b\\c\nd} evil{x=\"1\",y=2 # "#),
        "{text}"
    );
}

#[test]
fn request_latency_buckets_are_cumulative_and_end_at_inf() {
    let api = ApiCounters::default();
    for millis in [1, 3, 30, 20_000] {
        api.observe_request(
            "PUT",
            Some("/v1/kv/{key:.*}".to_owned()),
            200,
            Duration::from_millis(millis),
        );
    }
    let text = render(empty_scrape(Scrape::build_labels()), &api);
    let exposition = parse_strict(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let buckets: Vec<(String, f64)> = exposition
        .samples_of("http_request_duration_seconds_bucket")
        .map(|sample| (sample.labels["le"].clone(), sample.value))
        .collect();
    assert!(
        buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{buckets:?}"
    );
    assert_eq!(buckets.last(), Some(&("+Inf".to_owned(), 4.0)));
    assert!(buckets.contains(&("0.001".to_owned(), 1.0)), "{buckets:?}");
    assert!(
        buckets.contains(&("10.0".to_owned(), 3.0)) || buckets.contains(&("10".to_owned(), 3.0)),
        "{buckets:?}"
    );
    let sum = exposition
        .samples_of("http_request_duration_seconds_sum")
        .next()
        .unwrap()
        .value;
    assert!((sum - 20.034).abs() < 1e-6, "{sum}");
    assert_eq!(
        exposition
            .samples_of("http_responses_total")
            .next()
            .unwrap()
            .value,
        4.0
    );
}

/// The strict reader is what the escaping test leans on: it must refuse what a Prometheus
/// server would.
#[test]
fn the_strict_reader_refuses_malformed_text() {
    let typed = "# TYPE a gauge\n";
    for bad in [
        "a 1\n",                              // no TYPE before the sample
        "# TYPE a gauge\na{x=\"q\"q\"} 1\n",  // unescaped quote
        "# TYPE a gauge\na{x=\"\\q\"} 1\n",   // unknown escape
        "# TYPE a gauge\na{x=\"1\" 1\n",      // unterminated label set
        "# TYPE a gauge\na one\n",            // not a number
        "# TYPE a gauge\n# TYPE a counter\n", // two TYPEs
        "# TYPE a gauge\na 1",                // no final newline
    ] {
        assert!(parse_strict(bad).is_err(), "accepted {bad:?}");
    }
    let good = format!("{typed}a{{x=\"q\\\"\\\\\\n\",y=\"\"}} +Inf\n");
    let exposition = parse_strict(&good).expect("valid");
    assert_eq!(exposition.samples[0].labels["x"], "q\"\\\n");
    assert_eq!(exposition.samples[0].value, f64::INFINITY);
}
