//! Compaction benchmark (issue 12, acceptance 5): prints figures, asserts nothing.
//!
//! ```text
//! cargo build --release --bin raft-node
//! cargo run --release -p integration-tests --example compaction_bench [-- PUTS [KEYS]]
//! ```
//!
//! Starts three real `raft-node` processes (the release binary next to this example's
//! directory, `target/release/raft-node`) with the default settings (fsync on, snapshots every
//! 10,000 entries, 5,000 kept behind), writes PUTS (default 1,000,000) values of 100 bytes to
//! KEYS (default 100,000) keys from 64 client threads straight to the leader, then prints:
//!
//! - the write throughput;
//! - each node's resident memory against the target `3 x live data + 50 MiB`, where live data
//!   is the bytes of the keys and values the store holds at the end;
//! - each node's snapshot index, log length in memory, and data directory size (WAL and
//!   snapshots);
//! - the time for a follower killed with `kill -9` to restart and serve a linearizable read
//!   of a key written before the kill, and for it to catch up with the leader's commit index
//!   (the target is under 1 second: the restart loads the newest snapshot and replays only the
//!   log after it, not the whole history).

use integration_tests::process_cluster::ProcessCluster;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 100;
const CLIENTS: u64 = 64;

fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let puts: u64 = arguments
        .first()
        .map_or(Ok(1_000_000), |text| text.parse())?;
    let keys: u64 = arguments.get(1).map_or(Ok(100_000), |text| text.parse())?;
    let binary = raft_node_binary()?;
    println!("compaction_bench: {puts} puts of {VALUE_BYTES}-byte values to {keys} keys, {CLIENTS} clients, 3 nodes ({})", binary.display());
    let mut cluster = ProcessCluster::start(&binary, 3);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));

    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let leader_url = cluster.url(leader, "");
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let done = Arc::clone(&done);
            let failures = Arc::clone(&failures);
            let base = leader_url.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("HTTP client");
                let mut request = client;
                while request < puts {
                    let key = key_name(request % keys);
                    let value = value_of(request);
                    let url = format!("{base}/v1/kv/{key}");
                    match http.put(&url).body(value).send() {
                        Ok(reply) if reply.status().is_success() => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    request += CLIENTS;
                }
            })
        })
        .collect();
    let mut reported = 0;
    while threads.iter().any(|thread| !thread.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        let completed = done.load(Ordering::Relaxed);
        if completed / 100_000 > reported {
            reported = completed / 100_000;
            println!(
                "  {completed} puts after {:.1} s ({:.0} ops/s)",
                started.elapsed().as_secs_f64(),
                completed as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    for thread in threads {
        thread.join().expect("client thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let completed = done.load(Ordering::Relaxed);
    println!(
        "writes: {completed} acknowledged, {} failed, in {elapsed:.1} s = {:.0} ops/s",
        failures.load(Ordering::Relaxed),
        completed as f64 / elapsed
    );

    // Let every node apply and snapshot what it has, then measure.
    std::thread::sleep(Duration::from_secs(2));
    let live_bytes: u64 = (0..keys.min(puts))
        .map(|key| (key_name(key).len() + VALUE_BYTES) as u64)
        .sum();
    let target = 3 * live_bytes + 50 * 1024 * 1024;
    println!(
        "live data: {:.1} MiB; memory target per node: {:.1} MiB",
        mebibytes(live_bytes),
        mebibytes(target)
    );
    for id in 1..=3 {
        let resident = resident_bytes(cluster.pid(id))?;
        let status = cluster.status(id).unwrap_or_default();
        println!(
            "node {id}{}: resident {:.1} MiB ({}), snapshot index {}, log in memory {} entries (first {} last {}), data_dir {:.1} MiB (wal {:.1}, snapshots {:.1})",
            if id == leader { " (leader)" } else { "" },
            mebibytes(resident),
            if resident < target { "below target" } else { "ABOVE TARGET" },
            status["snapshot_index"].as_u64().unwrap_or(0),
            status["log_entries"].as_u64().unwrap_or(0),
            status["log_first_index"].as_u64().unwrap_or(0),
            status["last_log_index"].as_u64().unwrap_or(0),
            mebibytes(directory_bytes(&cluster.data_dir(id))),
            mebibytes(directory_bytes(&cluster.data_dir(id).join("wal"))),
            mebibytes(directory_bytes(&cluster.data_dir(id).join("snapshots"))),
        );
    }

    // Restart a follower from its snapshot.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let probe_key = key_name((puts - 1) % keys);
    let probe_value = value_of(puts - 1);
    cluster.kill(follower);
    let restarted = Instant::now();
    cluster.start_node(follower);
    let serving = restarted.elapsed();
    loop {
        let reply = cluster.get(follower, &probe_key);
        if reply.status == 200 && reply.body == probe_value {
            break;
        }
        if restarted.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("node {follower} did not serve a linearizable read within 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let read_served = restarted.elapsed();
    let leader_commit = cluster.status(leader).unwrap_or_default()["commit_index"]
        .as_u64()
        .unwrap_or(0);
    loop {
        let applied = cluster.status(follower).unwrap_or_default()["last_applied"]
            .as_u64()
            .unwrap_or(0);
        if applied >= leader_commit {
            break;
        }
        if restarted.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("node {follower} did not catch up within 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let caught_up = restarted.elapsed();
    println!(
        "restart of follower {follower} after kill -9: HTTP up in {:.0} ms, linearizable read served in {:.0} ms ({}), caught up with commit index {leader_commit} in {:.0} ms",
        serving.as_secs_f64() * 1000.0,
        read_served.as_secs_f64() * 1000.0,
        if read_served < Duration::from_secs(1) { "below the 1 s target" } else { "ABOVE the 1 s target" },
        caught_up.as_secs_f64() * 1000.0,
    );
    Ok(())
}

fn key_name(key: u64) -> String {
    format!("k{key:06}")
}

/// 100 bytes naming the request, so a read can tell which write it sees.
fn value_of(request: u64) -> Vec<u8> {
    let mut value = format!("value-{request:012}-").into_bytes();
    value.resize(VALUE_BYTES, b'.');
    value
}

fn raft_node_binary() -> anyhow::Result<PathBuf> {
    let example = std::env::current_exe()?;
    let profile_directory = example
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("cannot locate the target directory"))?;
    let binary = profile_directory.join("raft-node");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: run `cargo build --release --bin raft-node` first",
        binary.display()
    );
    Ok(binary)
}

fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    let kibibytes: u64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("malformed VmRSS line"))?
        .parse()?;
    Ok(kibibytes * 1024)
}

fn directory_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
