//! Backup and restore on the real binaries (issue 12, acceptance 6): `raftctl snapshot save`
//! from a running 3-node cluster under writes, then a fresh 3-node cluster, every node
//! restored from that file with `raft-node restore FILE --config nodeN.toml`, serves every key
//! the backup held and takes new writes. Also: `restore` refuses a data dir that holds state
//! and a damaged file, and `GET /v1/status` reports the snapshot.

use node_bin::node_config::{to_toml, RawConfig, RawMember};
use node_bin::raft_client::RaftClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use test_support::wait::poll_real_time;

#[path = "support/ports.rs"]
mod ports;
use ports::free_address;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Keys written (and acknowledged) before the backup: all must be in the restored cluster.
const KEYS_BEFORE_BACKUP: usize = 300;

/// Three `raft-node` processes on loopback, killed when dropped.
struct Cluster {
    directory: PathBuf,
    configs: Vec<PathBuf>,
    client_urls: Vec<String>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    /// Writes the configurations of a 3-node cluster named `name` under `root` (nothing runs).
    fn configure(root: &Path, name: &str) -> Cluster {
        let directory = root.join(name);
        std::fs::create_dir_all(&directory).expect("cluster directory");
        let members: Vec<RawMember> = (1..=3)
            .map(|id| RawMember {
                id,
                peer_addr: free_address(),
                client_addr: free_address(),
            })
            .collect();
        let mut configs = Vec::new();
        for member in &members {
            let mut config = RawConfig {
                id: member.id,
                cluster_id: name.to_string(),
                data_dir: directory
                    .join(format!("node-{}", member.id))
                    .display()
                    .to_string(),
                peer_addr: member.peer_addr.clone(),
                client_addr: member.client_addr.clone(),
                members: members.clone(),
                ..RawConfig::default()
            };
            // Small thresholds, so the cluster also snapshots and compacts by itself.
            config.snapshot.threshold_entries = 100;
            config.snapshot.trailing_entries = 20;
            let path = directory.join(format!("node{}.toml", member.id));
            std::fs::write(&path, to_toml(&config)).expect("write config");
            configs.push(path);
        }
        Cluster {
            directory,
            configs,
            client_urls: members
                .iter()
                .map(|member| format!("http://{}", member.client_addr))
                .collect(),
            children: vec![None, None, None],
        }
    }

    fn data_dir(&self, id: usize) -> PathBuf {
        self.directory.join(format!("node-{id}"))
    }

    fn start(&mut self) {
        for id in 1..=3 {
            let log = std::fs::File::create(self.directory.join(format!("node-{id}.log")))
                .expect("node log");
            let child = Command::new(RAFT_NODE)
                .arg("--config")
                .arg(&self.configs[id - 1])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn raft-node");
            self.children[id - 1] = Some(child);
        }
    }

    fn client(&self) -> RaftClient {
        RaftClient::new(
            &self.client_urls,
            Duration::from_secs(10),
            Duration::from_secs(20),
        )
    }

    /// Waits until some node reports a leader.
    fn wait_for_leader(&self) {
        let client = self.client();
        let found = poll_real_time(Duration::from_secs(20), || {
            self.client_urls.iter().find_map(|url| {
                let status = client.status_of(url).ok()?;
                status["leader_id"].as_u64()
            })
        });
        if found.is_none() {
            self.print_logs();
            panic!("no leader in {}", self.directory.display());
        }
    }

    fn print_logs(&self) {
        for id in 1..=3 {
            let log = std::fs::read_to_string(self.directory.join(format!("node-{id}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- node {id} ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run(program: &str, arguments: &[&str]) -> (i32, String, String) {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn restore(file: &Path, config: &Path) -> (i32, String, String) {
    run(
        RAFT_NODE,
        &[
            "restore",
            file.to_str().expect("UTF-8 path"),
            "--config",
            config.to_str().expect("UTF-8 path"),
        ],
    )
}

#[test]
fn a_backup_saved_under_writes_restores_into_a_fresh_cluster() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut original = Cluster::configure(root.path(), "original");
    original.start();
    original.wait_for_leader();
    let client = original.client();
    let put_before = |key: usize| {
        let reply = client
            .put(&format!("before/{key}"), format!("value-{key}").as_bytes())
            .expect("put before the backup");
        assert_eq!(reply.status, 200, "{}", reply.text());
    };
    for key in 0..KEYS_BEFORE_BACKUP / 2 {
        put_before(key);
    }
    // The first leader is killed, so the backup's last term is above 1: a restored node must
    // start in that term (the core refuses a log whose last entry is from a later term).
    let first_leader = client.status_of(&original.client_urls[0]).expect("status")["leader_id"]
        .as_u64()
        .expect("a leader") as usize;
    let mut killed = original.children[first_leader - 1]
        .take()
        .expect("the leader runs");
    killed.kill().expect("kill the leader");
    killed.wait().expect("reap the leader");
    let survivor = if first_leader == 1 { 2 } else { 1 };
    for key in KEYS_BEFORE_BACKUP / 2..KEYS_BEFORE_BACKUP {
        put_before(key);
    }
    // The backup is taken on the new leader: its snapshot then covers every acknowledged write
    // (a follower's covers what it knew committed, which may trail by a heartbeat).
    let leader = client
        .status_of(&original.client_urls[survivor - 1])
        .expect("status")["leader_id"]
        .as_u64()
        .expect("a new leader") as usize;
    assert_ne!(leader, first_leader);

    // Writes keep coming while the backup is taken and downloaded.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let writing = Arc::clone(&writing);
        let urls = original.client_urls.clone();
        std::thread::spawn(move || {
            let client = RaftClient::new(&urls, Duration::from_secs(5), Duration::from_secs(5));
            let mut written = 0u64;
            while writing.load(Ordering::Relaxed) && written < 5_000 {
                let _ = client.put(&format!("during/{written}"), b"x");
                written += 1;
            }
            written
        })
    };
    let backup = root.path().join("backup.snap");
    let (code, stdout, stderr) = run(
        RAFTCTL,
        &[
            "--endpoints",
            &original.client_urls[leader - 1],
            "snapshot",
            "save",
            backup.to_str().expect("UTF-8 path"),
        ],
    );
    writing.store(false, Ordering::Relaxed);
    let written_during = writer.join().expect("writer thread");
    assert_eq!(code, 0, "raftctl snapshot save: {stdout}{stderr}");
    println!("{stdout}(writes during the save: {written_during})");
    assert!(stdout.starts_with("saved "), "{stdout}");
    assert!(backup.is_file());
    assert!(!root.path().join("backup.snap.partial").exists());
    let status = client
        .status_of(&original.client_urls[leader - 1])
        .expect("status of the saved node");
    assert!(
        status["snapshot_term"].as_u64().unwrap_or(0) >= 2,
        "{status}"
    );
    assert!(
        status["snapshot_index"].as_u64().unwrap_or(0) >= KEYS_BEFORE_BACKUP as u64,
        "{status}"
    );
    assert!(status["log_size_bytes"].as_u64().is_some(), "{status}");
    assert!(
        status["snapshot_size_bytes"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );
    drop(original);

    // A fresh cluster, every node restored from the same file.
    let mut restored = Cluster::configure(root.path(), "restored");
    for id in 1..=3 {
        let (code, stdout, stderr) = restore(&backup, &restored.configs[id - 1]);
        assert_eq!(code, 0, "restore node {id}: {stdout}{stderr}");
        assert!(stdout.starts_with("restored "), "{stdout}");
        // The original cluster's members had the same ids: no warning.
        assert!(!stderr.contains("warning"), "{stderr}");
    }
    // Restoring again over what was just written is refused, naming the directory.
    let (code, _stdout, stderr) = restore(&backup, &restored.configs[0]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&restored.data_dir(1).join("wal").display().to_string())
            && stderr.contains("not empty"),
        "{stderr}"
    );

    restored.start();
    restored.wait_for_leader();
    let client = restored.client();
    for key in 0..KEYS_BEFORE_BACKUP {
        let reply = client
            .get(&format!("before/{key}"), false)
            .expect("read from the restored cluster");
        if reply.status != 200 || reply.body != format!("value-{key}").as_bytes() {
            restored.print_logs();
            panic!("before/{key}: {} {}", reply.status, reply.text());
        }
    }
    // The restored cluster elects, commits and applies new writes after the snapshot.
    let reply = client
        .put("after/restore", b"new")
        .expect("write after restore");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = client.get("after/restore", false).expect("read it back");
    assert_eq!((reply.status, reply.body), (200, b"new".to_vec()));
    let index = client.status_of(&restored.client_urls[0]).expect("status")["snapshot_index"]
        .as_u64()
        .expect("snapshot_index");
    assert!(
        index >= KEYS_BEFORE_BACKUP as u64,
        "restored snapshot index {index}"
    );
}

#[test]
fn restore_refuses_a_damaged_file_and_writes_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    // A real snapshot file: one node's, taken by POST /v1/snapshot and saved by raftctl.
    let mut source = Cluster::configure(root.path(), "source");
    source.start();
    source.wait_for_leader();
    let client = source.client();
    for key in 0..20 {
        let reply = client.put(&format!("k{key}"), b"v").expect("put");
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    // The snapshot is node 1's, which may be a follower that has not heard of the commits
    // yet (it learns them with the next AppendEntries): wait until it applied them all.
    let committed = source
        .client_urls
        .iter()
        .filter_map(|url| client.status_of(url).ok()?["commit_index"].as_u64())
        .max()
        .expect("a node answers");
    let applied = poll_real_time(Duration::from_secs(20), || {
        let status = client.status_of(&source.client_urls[0]).ok()?;
        (status["last_applied"].as_u64()? >= committed).then_some(())
    });
    assert!(applied.is_some(), "node 1 never applied index {committed}");
    let backup = root.path().join("good.snap");
    let (code, stdout, stderr) = run(
        RAFTCTL,
        &[
            "--endpoints",
            &source.client_urls[0],
            "snapshot",
            "save",
            backup.to_str().expect("UTF-8 path"),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = run(
        RAFTCTL,
        &["--endpoints", &source.client_urls[0], "snapshot", "create"],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("index=") && stdout.contains("file_checksum="),
        "{stdout}"
    );
    drop(source);

    let mut bytes = std::fs::read(&backup).expect("read backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = root.path().join("damaged.snap");
    std::fs::write(&damaged, &bytes).expect("write damaged copy");
    let target = Cluster::configure(root.path(), "target");
    let (code, _stdout, stderr) = restore(&damaged, &target.configs[0]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("is not a valid snapshot file") && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert!(
        !target.data_dir(1).exists(),
        "a refused restore created the data dir"
    );

    // A file that is not a snapshot at all, and one that does not exist.
    let (code, _stdout, stderr) = restore(&target.configs[0], &target.configs[0]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("bad magic"), "{stderr}");
    let (code, _stdout, stderr) = restore(&root.path().join("missing.snap"), &target.configs[0]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("missing.snap"), "{stderr}");

    // The good file restores.
    let (code, stdout, stderr) = restore(&backup, &target.configs[0]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // A data dir recorded for another node is refused, naming both, and left as it was.
    let foreign = storage_actor::data_dir_identity::DataDirIdentity {
        cluster_id: "target".to_string(),
        node_id: raft_types::NodeId(9),
    };
    storage_actor::data_dir_identity::check_or_record(
        &storage_actor::file_system::RealFileSystem,
        &target.data_dir(2),
        &foreign,
    )
    .expect("record a foreign identity");
    let (code, _stdout, stderr) = restore(&backup, &target.configs[1]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("node 9") && stderr.contains("node 2"),
        "{stderr}"
    );
    assert!(!target.data_dir(2).join("wal").exists());
}
