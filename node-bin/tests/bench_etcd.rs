//! `raftctl bench --target etcd` against a real etcd (built only with the `etcd` feature, which
//! needs protoc; run it with `cargo test -p node-bin --features etcd --test bench_etcd`, with
//! `etcd` on the PATH: Debian's `etcd-server` package). A three-member etcd on loopback takes
//! every workload; the keys the put workload wrote are then read back through `etcdctl`.
#![cfg(feature = "etcd")]

#[path = "support/ports.rs"]
mod ports;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Three etcd processes, killed on drop.
struct Etcd {
    children: Vec<Child>,
    client_urls: Vec<String>,
    _directory: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_etcd() -> Etcd {
    let directory = tempfile::tempdir().expect("temp dir");
    let clients: Vec<String> = (0..3).map(|_| ports::free_address()).collect();
    let peers: Vec<String> = (0..3).map(|_| ports::free_address()).collect();
    let cluster: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(index, peer)| format!("e{index}=http://{peer}"))
        .collect();
    let children = (0..3)
        .map(|index| {
            Command::new("etcd")
                .args(["--name", &format!("e{index}")])
                .arg("--data-dir")
                .arg(directory.path().join(format!("e{index}")))
                .args([
                    "--listen-client-urls",
                    &format!("http://{}", clients[index]),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://{}", clients[index]),
                ])
                .args(["--listen-peer-urls", &format!("http://{}", peers[index])])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://{}", peers[index]),
                ])
                .args(["--initial-cluster", &cluster.join(",")])
                .args(["--heartbeat-interval", "30", "--election-timeout", "150"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("etcd on the PATH (Debian: apt-get install etcd-server)")
        })
        .collect();
    Etcd {
        children,
        client_urls: clients
            .iter()
            .map(|address| format!("http://{address}"))
            .collect(),
        _directory: directory,
    }
}

fn bench(etcd: &Etcd, arguments: &[&str]) -> (i32, String) {
    let endpoints = etcd.client_urls.join(",");
    let output = Command::new(RAFTCTL)
        .args(["--endpoints", &endpoints, "bench", "--target", "etcd"])
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

#[test]
fn every_workload_runs_against_etcd() {
    let etcd = start_etcd();
    // The cluster elects a leader; the bench's pre-flight waits for none, so poll it.
    let started = Instant::now();
    loop {
        let warm_up = [
            "--workload",
            "put",
            "--clients",
            "1",
            "--total",
            "1",
            "--key-space",
            "50",
        ];
        let (code, text) = bench(&etcd, &warm_up);
        if code == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "etcd never answered: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for workload in ["put", "get", "get-local", "mixed", "cas"] {
        let (code, text) = bench(
            &etcd,
            &[
                "--workload",
                workload,
                "--clients",
                "4",
                "--total",
                "400",
                "--key-space",
                "50",
                "-w",
                "json",
            ],
        );
        assert_eq!(code, 0, "{workload}: {text}");
        let summary: serde_json::Value = serde_json::from_str(&text).expect("JSON summary");
        assert_eq!(summary["ok"], 400, "{workload}: {text}");
        assert_eq!(summary["target"], "etcd");
    }
    // What the put workload wrote is in etcd.
    let listed = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &etcd.client_urls[0]])
        .args(["get", "--prefix", "bench/", "--keys-only"])
        .output()
        .expect("etcdctl on the PATH (Debian: etcd-client)");
    let keys = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|line| line.starts_with("bench/"))
        .count();
    assert!(keys > 0 && keys <= 50, "{keys} bench keys in etcd");
    // No etcd answering: exit 3 with the reason.
    drop(etcd);
    let nobody = Etcd {
        children: Vec::new(),
        client_urls: vec![format!("http://{}", ports::free_address())],
        _directory: tempfile::tempdir().expect("temp dir"),
    };
    let (code, text) = bench(&nobody, &["--total", "1"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("does not answer"), "{text}");
}
