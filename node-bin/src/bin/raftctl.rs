//! `raftctl`: client and admin CLI for a raft-node cluster.
//!
//! Exit codes (for scripts):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | `get`: no such key; `cas`: not swapped (the current value is printed) |
//! | 2 | usage error (bad arguments) |
//! | 3 | unavailable: no node could serve the request; a write was definitely not applied |
//! | 4 | outcome unknown: a write was sent but not seen committed; it may still be applied |
//! | 5 | refused as malformed (400/413: bad key, value too large); nothing happened |
//! | 6 | unexpected answer from the server (for `snapshot save`: a download cut short or not a valid snapshot file) |
//! | 7 | `snapshot save`: the output file cannot be written here |

use clap::{Parser, Subcommand};
use node_bin::raft_client::{
    normalize_endpoint, ClientFailure, RaftClient, Reply, SnapshotClient, SnapshotFailure,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const EXIT_NOT_FOUND: u8 = 1;
const EXIT_UNAVAILABLE: u8 = 3;
const EXIT_UNKNOWN: u8 = 4;
const EXIT_REFUSED: u8 = 5;
const EXIT_UNEXPECTED: u8 = 6;
const EXIT_LOCAL_FILE: u8 = 7;

/// Client and admin CLI for a raft-node cluster. Any node serves any request (followers
/// forward to the leader); raftctl follows leader hints and tries the other endpoints when one
/// is down. Exit codes: 0 ok, 1 not found / not swapped, 2 usage, 3 unavailable (not applied),
/// 4 outcome unknown (may be applied), 5 malformed request, 6 unexpected answer, 7 cannot
/// write the output file.
#[derive(Debug, Parser)]
#[command(name = "raftctl", version = node_bin::build_info::VERSION_LINE)]
struct Cli {
    /// Comma-separated client URLs of the cluster's nodes.
    #[arg(
        long,
        env = "RAFTCTL_ENDPOINTS",
        default_value = "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003",
        value_delimiter = ','
    )]
    endpoints: Vec<String>,
    /// Give up after this many milliseconds of retrying (no leader, nodes down).
    #[arg(long, default_value_t = 10_000)]
    deadline_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set KEY to VALUE; prints the log index it was applied at. VALUE `-` reads the value
    /// from standard input, `--file PATH` from a file (bytes as they are, any size the
    /// cluster's `client.max_value_bytes` allows).
    Put {
        key: String,
        /// The value, or `-` for standard input; omitted with --file.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
    },
    /// Print the value of KEY (linearizable unless --local).
    Get {
        key: String,
        /// Read the answering node's state machine, possibly stale.
        #[arg(long)]
        local: bool,
    },
    /// Remove KEY.
    Delete { key: String },
    /// Compare-and-swap: set KEY to NEW only if it is EXPECT (`cas KEY EXPECT NEW`), or only
    /// if it is absent (`cas --absent KEY NEW`).
    Cas {
        /// Swap only if the key does not exist; then give just KEY and NEW.
        #[arg(long)]
        absent: bool,
        key: String,
        /// EXPECT NEW, or NEW with --absent.
        #[arg(num_args = 1..=2, required = true)]
        values: Vec<String>,
    },
    /// Print every endpoint's role, term, leader, indexes and newest snapshot index.
    Status,
    /// Snapshots of the first endpoint's node (never forwarded: each node snapshots its own
    /// state machine).
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Write load: REQUESTS puts of VALUE_BYTES each from CLIENTS threads; prints throughput and
    /// latency percentiles.
    Bench {
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Take a snapshot now; prints its index, term, size and checksum once it is durable.
    Create,
    /// Take a snapshot now and download it to FILE (a backup for `raft-node restore`): written
    /// to FILE.partial, verified, synced, then renamed to FILE.
    Save {
        /// Where the backup goes; an existing file is replaced only once the new one is whole.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = RaftClient::new(
        &cli.endpoints,
        Duration::from_secs(30),
        Duration::from_millis(cli.deadline_ms),
    );
    let code = match cli.command {
        Command::Put { key, value, file } => match put_value(value, file) {
            Ok(value) => report(client.put(&key, &value), |reply| {
                println!("OK index={}", reply.json()["index"]);
                0
            }),
            Err(error) => {
                eprintln!("raftctl: {error}");
                2
            }
        },
        Command::Get { key, local } => report(client.get(&key, local), |reply| {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(&reply.body);
            let _ = stdout.write_all(b"\n");
            0
        }),
        Command::Delete { key } => report(client.delete(&key), |reply| {
            let body = reply.json();
            println!(
                "{} index={}",
                if body["deleted"] == true {
                    "deleted"
                } else {
                    "absent"
                },
                body["index"]
            );
            0
        }),
        Command::Cas {
            absent,
            key,
            values,
        } => cas(&client, absent, &key, &values),
        Command::Status => status(&client),
        Command::Snapshot { command } => {
            let node = SnapshotClient::new(&cli.endpoints[0]);
            match command {
                SnapshotCommand::Create => snapshot_create(&node),
                SnapshotCommand::Save { file } => snapshot_save(&node, &file),
            }
        }
        Command::Bench {
            requests,
            clients,
            value_bytes,
        } => bench(&cli.endpoints, requests, clients, value_bytes),
    };
    ExitCode::from(code)
}

/// The bytes `put` writes: the argument, standard input for `-`, or the file.
fn put_value(value: Option<String>, file: Option<std::path::PathBuf>) -> Result<Vec<u8>, String> {
    use std::io::Read;
    match (value, file) {
        (_, Some(path)) => {
            std::fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))
        }
        (Some(value), None) if value == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|error| format!("cannot read standard input: {error}"))?;
            Ok(bytes)
        }
        (Some(value), None) => Ok(value.into_bytes()),
        (None, None) => Err("put needs a VALUE, - (standard input) or --file PATH".to_string()),
    }
}

/// Maps a reply to an exit code: `on_success` for 2xx, the documented codes otherwise.
fn report(result: Result<Reply, ClientFailure>, on_success: impl FnOnce(&Reply) -> u8) -> u8 {
    match result {
        Ok(reply) if (200..300).contains(&reply.status) => on_success(&reply),
        Ok(reply) => {
            eprintln!(
                "raftctl: {} answered {}: {}",
                reply.endpoint,
                reply.status,
                reply.text()
            );
            match reply.status {
                404 if reply.error_code() == "key_not_found" => EXIT_NOT_FOUND,
                400 | 413 => EXIT_REFUSED,
                504 => EXIT_UNKNOWN,
                _ => EXIT_UNEXPECTED,
            }
        }
        Err(failure @ ClientFailure::Unavailable { .. }) => {
            eprintln!("raftctl: {failure}");
            EXIT_UNAVAILABLE
        }
        Err(failure @ ClientFailure::Unknown { .. }) => {
            eprintln!("raftctl: {failure}");
            EXIT_UNKNOWN
        }
        Err(failure @ ClientFailure::Refused { .. }) => {
            eprintln!("raftctl: {failure}");
            EXIT_REFUSED
        }
    }
}

fn cas(client: &RaftClient, absent: bool, key: &str, values: &[String]) -> u8 {
    let (expect, new) = match (absent, values) {
        (true, [new]) => (None, new),
        (false, [expect, new]) => (Some(expect.as_str()), new),
        _ => {
            eprintln!("raftctl: usage: cas KEY EXPECT NEW, or cas --absent KEY NEW");
            return 2;
        }
    };
    let result = client.compare_and_swap(key, expect, new);
    if let Ok(reply) = &result {
        if reply.status == 409 {
            let current = &reply.json()["current"];
            println!("not swapped: current={current}");
            return EXIT_NOT_FOUND;
        }
    }
    report(result, |reply| {
        println!("swapped index={}", reply.json()["index"]);
        0
    })
}

fn status(client: &RaftClient) -> u8 {
    let mut reachable = 0;
    // The endpoints given, then every other member the first answering node knows of: a
    // cluster of five shows five rows even when raftctl was told of three.
    let mut endpoints: Vec<String> = client.endpoints().to_vec();
    if let Some(known) = endpoints
        .iter()
        .find_map(|endpoint| client.status_of(endpoint).ok())
    {
        for address in known["member_client_addrs"]
            .as_object()
            .into_iter()
            .flat_map(|members| members.values())
            .filter_map(|address| address.as_str())
        {
            let endpoint = normalize_endpoint(address);
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
        }
    }
    println!(
        "{:<28} {:>4} {:<9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "endpoint", "id", "role", "term", "leader", "commit", "applied", "last_log", "snapshot"
    );
    for endpoint in &endpoints {
        match client.status_of(endpoint) {
            Ok(status) => {
                reachable += 1;
                let field = |name: &str| status[name].to_string().trim_matches('"').to_string();
                println!(
                    "{:<28} {:>4} {:<9} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
                    endpoint,
                    field("id"),
                    field("role"),
                    field("term"),
                    field("leader_id"),
                    field("commit_index"),
                    field("last_applied"),
                    field("last_log_index"),
                    field("snapshot_index")
                );
                // A raised alarm is the one thing an operator must not miss in this table.
                for alarm in status["alarms"].as_array().into_iter().flatten() {
                    println!(
                        "{:<28} ALARM {}: at index {} this node's hash {} differs from node {}'s {}",
                        "",
                        alarm["kind"].as_str().unwrap_or("?"),
                        alarm["index"],
                        alarm["local_hash"].as_str().unwrap_or("?"),
                        alarm["peer_id"],
                        alarm["peer_hash"].as_str().unwrap_or("?"),
                    );
                }
            }
            Err(error) => println!("{endpoint:<28} unreachable: {error}"),
        }
    }
    if reachable == 0 {
        EXIT_UNAVAILABLE
    } else {
        0
    }
}

/// The exit code of a failed snapshot request, after printing why.
fn snapshot_failure(failure: SnapshotFailure) -> u8 {
    eprintln!("raftctl: {failure}");
    match failure {
        SnapshotFailure::Unreachable { .. } => EXIT_UNAVAILABLE,
        SnapshotFailure::Refused { reply } => match reply.status {
            503 => EXIT_UNAVAILABLE,
            504 => EXIT_UNKNOWN,
            400 => EXIT_REFUSED,
            _ => EXIT_UNEXPECTED,
        },
        SnapshotFailure::Broken { .. } => EXIT_UNEXPECTED,
        SnapshotFailure::Local(_) => EXIT_LOCAL_FILE,
    }
}

/// One line describing a snapshot, from the JSON `POST /v1/snapshot` answers.
fn describe_taken(taken: &serde_json::Value) -> String {
    format!(
        "index={} term={} size_bytes={} file_checksum={}",
        taken["index"],
        taken["term"],
        taken["size_bytes"],
        taken["file_checksum"].as_str().unwrap_or("?")
    )
}

fn snapshot_create(node: &SnapshotClient) -> u8 {
    match node.take() {
        Ok(taken) => {
            println!(
                "snapshot taken on {}: {}",
                node.endpoint(),
                describe_taken(&taken)
            );
            0
        }
        Err(failure) => snapshot_failure(failure),
    }
}

/// `FILE.partial`, beside FILE.
fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn snapshot_save(node: &SnapshotClient, file: &Path) -> u8 {
    // A fresh snapshot first, so the backup is as recent as the node's applied state now.
    let taken = match node.take() {
        Ok(taken) => taken,
        Err(failure) => return snapshot_failure(failure),
    };
    let partial = partial_path(file);
    let result = download_to(node, &partial, file);
    if result.is_err() {
        // Only the partial file is removed; FILE, if it existed, is untouched.
        let _ = std::fs::remove_file(&partial);
    }
    match result {
        Ok(headers) => {
            println!(
                "saved {}: index={} term={} size_bytes={} file_checksum={} members={} (taken: {})",
                file.display(),
                headers.index,
                headers.term,
                headers.size_bytes,
                headers.file_checksum,
                headers.members,
                describe_taken(&taken)
            );
            0
        }
        Err(failure) => snapshot_failure(failure),
    }
}

/// Downloads into `partial`, checks it is a whole, valid snapshot file, makes it durable and
/// renames it to `file`.
fn download_to(
    node: &SnapshotClient,
    partial: &Path,
    file: &Path,
) -> Result<node_bin::raft_client::SnapshotHeaders, SnapshotFailure> {
    let local = |operation: &str, path: &Path, error: std::io::Error| {
        SnapshotFailure::Local(format!("cannot {operation} {}: {error}", path.display()))
    };
    let output = std::fs::File::create(partial).map_err(|error| local("create", partial, error))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, output);
    let headers = node.download(&mut writer)?;
    let output = writer
        .into_inner()
        .map_err(|error| local("write", partial, error.into_error()))?;
    output
        .sync_all()
        .map_err(|error| local("sync", partial, error))?;
    drop(output);
    let meta = storage_actor::snapshot_file::verify_file(partial).map_err(|error| {
        SnapshotFailure::Broken {
            endpoint: node.endpoint().to_string(),
            reason: format!("the downloaded file is not a valid snapshot: {error}"),
        }
    })?;
    let checksum = format!("{:08x}", meta.file_checksum);
    if meta.last_log_id.index.0 != headers.index || checksum != headers.file_checksum {
        return Err(SnapshotFailure::Broken {
            endpoint: node.endpoint().to_string(),
            reason: format!(
                "the file holds snapshot {} (checksum {checksum}), the headers said index {} \
                 checksum {}",
                meta.last_log_id, headers.index, headers.file_checksum
            ),
        });
    }
    std::fs::rename(partial, file).map_err(|error| local("rename into", file, error))?;
    // The rename is durable only once the directory holding it is synced.
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| local("sync the directory", directory, error))?;
    Ok(headers)
}

fn bench(endpoints: &[String], requests: usize, clients: usize, value_bytes: usize) -> u8 {
    let clients = clients.max(1);
    let value = vec![b'x'; value_bytes];
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|thread| {
            let endpoints = endpoints.to_vec();
            let value = value.clone();
            std::thread::spawn(move || {
                let client =
                    RaftClient::new(&endpoints, Duration::from_secs(30), Duration::from_secs(10));
                let mut latencies = Vec::new();
                let mut failures = 0usize;
                for request in (thread..requests).step_by(clients) {
                    let begun = Instant::now();
                    match client.put(&format!("bench/{request}"), &value) {
                        Ok(reply) if reply.status == 200 => latencies.push(begun.elapsed()),
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for thread in threads {
        let (thread_latencies, thread_failures) = thread.join().expect("bench thread panicked");
        latencies.extend(thread_latencies);
        failures += thread_failures;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{} ok, {failures} failed in {:.2} s: {:.0} writes/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
    if failures == 0 {
        0
    } else {
        EXIT_UNAVAILABLE
    }
}
