//! `raftctl`: client and admin CLI for a raft-node cluster.
//!
//! Exit codes (for scripts; docs/API.md has the full table):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | `get`: no such key; `cas`: not swapped (the current value is printed) |
//! | 2 | usage error (bad arguments, an unreadable input file, an unsupported endpoint) |
//! | 3 | unavailable: no node could serve the request; a write was definitely not applied |
//! | 4 | outcome unknown: a write was sent but not seen committed; it may still be applied |
//! | 5 | refused as malformed (400/413: bad key, value too large); nothing happened |
//! | 6 | unexpected answer from the server (for `snapshot save`: a download cut short or not a valid snapshot file) |
//! | 7 | `snapshot save`: the output file cannot be written here |
//! | 8 | `status`, `endpoint health`: some member is unreachable or unhealthy (3 when none answered) |
//! | 9 | `member add/promote/remove`, `leader transfer`: the cluster refused the change (409/412/404 with an admin code); nothing was done |

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use node_bin::raft_client::{
    check_endpoint_for, ClientFailure, ListPage, RaftClient, Reply, SnapshotClient, SnapshotFailure,
};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

// A binary's root file looks for modules beside it; this one keeps its own in raftctl/.
#[path = "raftctl/bench.rs"]
mod bench;
#[cfg(feature = "etcd")]
#[path = "raftctl/bench_etcd.rs"]
mod bench_etcd;
#[path = "raftctl/bench_failover.rs"]
mod bench_failover;
#[path = "raftctl/bench_http.rs"]
mod bench_http;
#[path = "raftctl/bench_http_executor.rs"]
mod bench_http_executor;
#[path = "raftctl/bench_http_tasks.rs"]
mod bench_http_tasks;
#[path = "raftctl/bench_windows.rs"]
mod bench_windows;
#[path = "raftctl/cluster_commands.rs"]
mod cluster_commands;
#[path = "raftctl/member_commands.rs"]
mod member_commands;

use cluster_commands::{endpoint_health, status};
use member_commands::{leader_transfer, member_add, member_list, member_promote, member_remove};

const EXIT_NOT_FOUND: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_UNAVAILABLE: u8 = 3;
const EXIT_UNKNOWN: u8 = 4;
const EXIT_REFUSED: u8 = 5;
const EXIT_UNEXPECTED: u8 = 6;
const EXIT_LOCAL_FILE: u8 = 7;
const EXIT_DEGRADED: u8 = 8;

/// The page size `get --prefix` asks for: the server's default and a tenth of its maximum.
const LIST_PAGE_SIZE: u32 = 1000;

/// Client and admin CLI for a raft-node cluster. Any node serves any request (followers
/// forward to the leader); raftctl follows leader hints and tries the other endpoints when one
/// is down. Global flags go before or after the command. Exit codes: 0 ok, 1 not found / not
/// swapped, 2 usage, 3 unavailable (not applied), 4 outcome unknown (may be applied),
/// 5 malformed request, 6 unexpected answer, 7 cannot write the output file, 8 some member
/// down or unhealthy, 9 membership change or transfer refused.
#[derive(Debug, Parser)]
#[command(name = "raftctl", version = node_bin::build_info::VERSION_LINE)]
struct Cli {
    /// Comma-separated client URLs of the cluster's nodes (plain http://).
    #[arg(
        long,
        global = true,
        env = "RAFTCTL_ENDPOINTS",
        default_value = "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003",
        value_delimiter = ','
    )]
    endpoints: Vec<String>,
    /// Give up after this many milliseconds of retrying (no leader, nodes down).
    #[arg(long, global = true, default_value_t = 10_000)]
    deadline_ms: u64,
    /// How commands that print a structure print it: a table for people, or JSON (one
    /// document on standard output) for scripts.
    #[arg(short = 'w', long, global = true, value_enum, default_value_t = Output::Table)]
    write_out: Output,
    /// TLS and token: --cacert, --cert, --key, --token (RAFTCTL_TOKEN).
    #[command(flatten)]
    security: node_bin::security::client_flags::ClientSecurityFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
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
        file: Option<PathBuf>,
    },
    /// Print the value of KEY, or with --prefix every key under a prefix with its value, in
    /// key order (linearizable unless --local).
    Get {
        /// The key; omitted with --prefix.
        #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
        key: Option<String>,
        /// List every key starting with this text (`""` lists all keys), fetched in pages.
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// With --prefix: print the keys only.
        #[arg(long, requires = "prefix")]
        keys_only: bool,
        /// With --prefix: stop after this many keys (default: all of them).
        #[arg(long, requires = "prefix", value_name = "N",
              value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Read the answering node's state machine, possibly stale.
        #[arg(long)]
        local: bool,
    },
    /// Remove KEY.
    Delete { key: String },
    /// Compare-and-swap: set KEY to NEW only if it is EXPECT (`cas KEY EXPECT NEW`), or only
    /// if it is absent (`cas --absent KEY NEW`). NEW `-` reads standard input; --expect-file
    /// and --value-file take either value from a file (any bytes).
    Cas {
        /// Swap only if the key does not exist.
        #[arg(long, conflicts_with = "expect_file")]
        absent: bool,
        /// Read EXPECT from this file instead of the command line.
        #[arg(long, value_name = "PATH")]
        expect_file: Option<PathBuf>,
        /// Read NEW from this file instead of the command line.
        #[arg(long, value_name = "PATH")]
        value_file: Option<PathBuf>,
        key: String,
        /// EXPECT NEW; EXPECT is left out with --absent or --expect-file, NEW with
        /// --value-file.
        #[arg(num_args = 0..=2)]
        values: Vec<String>,
    },
    /// Print every member's role, term, leader, indexes and newest snapshot index; exits 8
    /// when any member does not answer.
    Status,
    /// Members of the cluster (from the leader): list, add a learner, promote, remove.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Leadership: hand it to another voter.
    Leader {
        #[command(subcommand)]
        command: LeaderCommand,
    },
    /// Endpoints' health.
    Endpoint {
        #[command(subcommand)]
        command: EndpointCommand,
    },
    /// Snapshots of the first endpoint's node (never forwarded: each node snapshots its own
    /// state machine).
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Load: put, get, get-local, mixed or cas from CLIENTS threads to the leader, any node or
    /// round robin (or etcd); prints throughput, latency percentiles and errors by kind, with
    /// --window the rate of each window of N requests; --kill-leader runs a failover trial.
    Bench(bench::BenchOptions),
    /// Print a shell completion script (`source <(raftctl completion bash)`).
    Completion { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum MemberCommand {
    /// Every member's id, role (leader, voter, learner; joint halves), addresses, match index,
    /// lag behind the leader and last contact, from the leader.
    List,
    /// Add a learner: it receives the log but does not vote until promoted. Answered once the
    /// change is committed.
    Add {
        /// A new id, never used in this cluster before.
        id: u64,
        /// Its peer (Raft) address, IP:port.
        peer_addr: String,
        /// Its client (HTTP) address, IP:port.
        client_addr: String,
    },
    /// Make a caught-up learner a voter (refused, exit 9, while it lags).
    Promote { id: u64 },
    /// Remove a voter or learner for good (its id is never reused).
    Remove { id: u64 },
}

#[derive(Debug, Subcommand)]
enum LeaderCommand {
    /// Hand leadership to voter ID, or to the most up-to-date other voter; prints the new
    /// leader once it leads.
    Transfer { id: Option<u64> },
}

#[derive(Debug, Subcommand)]
enum EndpointCommand {
    /// `GET /health` of every endpoint and every other member: healthy (a leader is known, no
    /// alarm) or not, with the error and the time taken; exits 8 when any is unhealthy.
    Health,
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
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "raftctl",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let security = match cli.security.load() {
        Ok(security) => security,
        Err(error) => return ExitCode::from(usage_error(&error)),
    };
    for endpoint in &cli.endpoints {
        if let Err(error) = check_endpoint_for(endpoint, security.tls.is_some()) {
            eprintln!("raftctl: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let client = RaftClient::secured(
        &cli.endpoints,
        Duration::from_secs(30),
        Duration::from_millis(cli.deadline_ms),
        security.clone(),
    );
    let output = cli.write_out;
    // A membership change is answered once complete, which may take longer than a write.
    let admin = || {
        RaftClient::new(
            &cli.endpoints,
            Duration::from_secs(50),
            Duration::from_millis(cli.deadline_ms),
        )
    };
    let code = match cli.command {
        Command::Put { key, value, file } => match input_value(value.as_deref(), file.as_deref()) {
            Ok(value) => report(client.put(&key, &value), |reply| {
                print_reply(output, reply, || {
                    format!("OK index={}", reply.json()["index"])
                });
                0
            }),
            Err(error) => usage_error(&error),
        },
        Command::Get {
            key: Some(_),
            prefix: None,
            keys_only,
            limit,
            ..
        } if keys_only || limit.is_some() => {
            usage_error("--keys-only and --limit go with --prefix, not with a KEY")
        }
        Command::Get {
            key: Some(key),
            local,
            ..
        } => report(client.get(&key, local), |reply| {
            // The value's bytes as they are (not JSON: a value is not a structure).
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(&reply.body);
            let _ = stdout.write_all(b"\n");
            0
        }),
        Command::Get {
            prefix: Some(prefix),
            keys_only,
            limit,
            local,
            ..
        } => list(&client, output, prefix, keys_only, limit, local),
        Command::Get { .. } => unreachable!("clap requires KEY or --prefix"),
        Command::Delete { key } => report(client.delete(&key), |reply| {
            print_reply(output, reply, || {
                let body = reply.json();
                let outcome = if body["deleted"] == true {
                    "deleted"
                } else {
                    "absent"
                };
                format!("{outcome} index={}", body["index"])
            });
            0
        }),
        Command::Cas {
            absent,
            expect_file,
            value_file,
            key,
            values,
        } => match cas_values(
            absent,
            expect_file.as_deref(),
            value_file.as_deref(),
            &values,
        ) {
            Ok((expect, new)) => cas(&client, output, &key, expect.as_deref(), &new),
            Err(error) => usage_error(&error),
        },
        Command::Status => status(&client, output),
        Command::Member { command } => match command {
            MemberCommand::List => member_list(&client, output),
            MemberCommand::Add {
                id,
                peer_addr,
                client_addr,
            } => member_add(&admin(), output, id, &peer_addr, &client_addr),
            MemberCommand::Promote { id } => member_promote(&admin(), output, id),
            MemberCommand::Remove { id } => member_remove(&admin(), output, id),
        },
        Command::Leader {
            command: LeaderCommand::Transfer { id },
        } => leader_transfer(&admin(), output, id),
        Command::Endpoint {
            command: EndpointCommand::Health,
        } => endpoint_health(&client, output),
        Command::Snapshot { command } => {
            let node = SnapshotClient::secured(&cli.endpoints[0], security);
            match command {
                SnapshotCommand::Create => snapshot_create(&node, output),
                SnapshotCommand::Save { file } => snapshot_save(&node, &file, output),
            }
        }
        Command::Bench(options) => {
            // Bench builds its own URLs: give it endpoints with their scheme.
            let endpoints: Vec<String> = cli
                .endpoints
                .iter()
                .map(|endpoint| client.normalize(endpoint))
                .collect();
            bench::bench(&endpoints, &options, output, &security)
        }
        Command::Completion { .. } => unreachable!("answered before connecting"),
    };
    ExitCode::from(code)
}

fn usage_error(error: &str) -> u8 {
    eprintln!("raftctl: {error}");
    EXIT_USAGE
}

/// Prints one JSON document, pretty, so it is readable and parses.
fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value always serializes")
    );
}

/// A write's answer: the server's JSON as it is with `-w json`, else `line()`.
fn print_reply(output: Output, reply: &Reply, line: impl FnOnce() -> String) {
    match output {
        Output::Json => print_json(&reply.json()),
        Output::Table => println!("{}", line()),
    }
}

/// The bytes a value argument stands for: the argument, standard input for `-`, or the file.
fn input_value(value: Option<&str>, file: Option<&Path>) -> Result<Vec<u8>, String> {
    match (value, file) {
        (_, Some(path)) => read_file(path),
        (Some("-"), None) => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|error| format!("cannot read standard input: {error}"))?;
            Ok(bytes)
        }
        (Some(value), None) => Ok(value.as_bytes().to_vec()),
        (None, None) => Err("put needs a VALUE, - (standard input) or --file PATH".to_string()),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// EXPECT (`None`: only if absent) and NEW of a `cas`, from the positional values and files.
fn cas_values(
    absent: bool,
    expect_file: Option<&Path>,
    value_file: Option<&Path>,
    values: &[String],
) -> Result<(Option<Vec<u8>>, Vec<u8>), String> {
    let expect_given = absent || expect_file.is_some();
    let wanted = usize::from(!expect_given) + usize::from(value_file.is_none());
    if values.len() != wanted {
        return Err(format!(
            "cas takes {wanted} value(s) here, got {}: cas KEY EXPECT NEW, cas --absent KEY NEW, \
             or --expect-file / --value-file in place of EXPECT / NEW",
            values.len()
        ));
    }
    let mut positional = values.iter();
    let expect = if absent {
        None
    } else if let Some(path) = expect_file {
        Some(read_file(path)?)
    } else {
        Some(positional.next().expect("counted").as_bytes().to_vec())
    };
    let new = input_value(positional.next().map(String::as_str), value_file)?;
    Ok((expect, new))
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

fn cas(client: &RaftClient, output: Output, key: &str, expect: Option<&[u8]>, new: &[u8]) -> u8 {
    let result = client.compare_and_swap(key, expect, new);
    if let Ok(reply) = &result {
        if reply.status == 409 {
            let body = reply.json();
            match output {
                Output::Json => print_json(&body),
                Output::Table if body.get("current_base64").is_some() => {
                    println!("not swapped: current_base64={}", body["current_base64"])
                }
                Output::Table => println!("not swapped: current={}", body["current"]),
            }
            return EXIT_NOT_FOUND;
        }
    }
    report(result, |reply| {
        print_reply(output, reply, || {
            format!("swapped index={}", reply.json()["index"])
        });
        0
    })
}

/// `get --prefix`: every page until the listing says no more remain or `limit` keys came.
/// Pages are read one after another, each a read of its own: a listing of a prefix being
/// written to is not one snapshot (each page is linearizable, the whole is not).
fn list(
    client: &RaftClient,
    output: Output,
    prefix: String,
    keys_only: bool,
    limit: Option<u64>,
    local: bool,
) -> u8 {
    // A table is printed page by page, so a listing of millions of keys never sits in memory
    // whole; a JSON document is printed once, with the count (a failure midway prints none).
    let mut entries: Vec<Value> = Vec::new();
    let mut listed: u64 = 0;
    let mut page = ListPage {
        prefix,
        start_after: None,
        limit: LIST_PAGE_SIZE,
        keys_only,
        local,
    };
    let mut more = false;
    loop {
        if let Some(limit) = limit {
            let left = limit.saturating_sub(listed);
            if left == 0 {
                // The last page asked for exactly what was left, so its `more` is the answer.
                break;
            }
            page.limit = left.min(u64::from(LIST_PAGE_SIZE)) as u32;
        }
        let mut reply_json = Value::Null;
        let code = report(client.list(&page), |reply| {
            reply_json = reply.json();
            0
        });
        if code != 0 {
            return code;
        }
        let Some(page_entries) = reply_json["entries"].as_array() else {
            eprintln!("raftctl: the listing's answer has no `entries`: {reply_json}");
            return EXIT_UNEXPECTED;
        };
        listed += page_entries.len() as u64;
        match output {
            Output::Json => entries.extend(page_entries.iter().cloned()),
            Output::Table => print_entries(page_entries, keys_only),
        }
        more = reply_json["more"] == true;
        match reply_json["next_start_after"].as_str() {
            Some(next) if more => page.start_after = Some(next.to_string()),
            _ => break,
        }
    }
    if output == Output::Json {
        print_json(&json!({ "entries": entries, "count": listed, "more": more }));
    }
    0
}

/// Listed entries as a table: each key on a line, its value on the next.
fn print_entries(entries: &[Value], keys_only: bool) {
    let mut stdout = std::io::stdout().lock();
    for entry in entries {
        let key = entry["key"].as_str().unwrap_or_default();
        let _ = writeln!(stdout, "{key}");
        if keys_only {
            continue;
        }
        // Text values print as they are; a binary one as its base64, marked, since raw bytes
        // would garble the terminal and could not be told from text.
        if let Some(text) = entry["value"].as_str() {
            let _ = writeln!(stdout, "{text}");
        } else if let Some(encoded) = entry["value_base64"].as_str() {
            let _ = writeln!(stdout, "base64:{encoded}");
        }
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

fn snapshot_create(node: &SnapshotClient, output: Output) -> u8 {
    match node.take() {
        Ok(taken) => {
            match output {
                Output::Json => {
                    print_json(&json!({ "endpoint": node.endpoint(), "snapshot": taken }))
                }
                Output::Table => println!(
                    "snapshot taken on {}: {}",
                    node.endpoint(),
                    describe_taken(&taken)
                ),
            }
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

fn snapshot_save(node: &SnapshotClient, file: &Path, output: Output) -> u8 {
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
        Ok(headers) if output == Output::Json => {
            print_json(&json!({
                "file": file.display().to_string(),
                "index": headers.index,
                "term": headers.term,
                "size_bytes": headers.size_bytes,
                "file_checksum": headers.file_checksum,
                "members": headers.members,
                "taken": taken,
            }));
            0
        }
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
