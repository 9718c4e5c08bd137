//! Issue 10, acceptance 2, on the real binary: a data directory written by node 1 of cluster A
//! is refused by node 2 of cluster A and by node 1 of cluster B (exit code 2, one line naming
//! both identities), and node 1 of cluster A still starts on it with all its data.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use test_support::wait::poll_real_time;

const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");

/// How long a node may take to start serving, or to exit, before the test gives up.
const DEADLINE: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("an ephemeral port is free")
        .port()
}

/// A single-member configuration for node `id` of `cluster_id` on `data_dir`.
fn write_config(directory: &Path, id: u64, cluster_id: &str, data_dir: &Path) -> (String, u16) {
    let peer_port = free_port();
    let client_port = free_port();
    let text = format!(
        "id = {id}\ncluster_id = \"{cluster_id}\"\ndata_dir = \"{}\"\n\
         peer_addr = \"127.0.0.1:{peer_port}\"\nclient_addr = \"127.0.0.1:{client_port}\"\n\
         [[members]]\nid = {id}\npeer_addr = \"127.0.0.1:{peer_port}\"\n\
         client_addr = \"127.0.0.1:{client_port}\"\n",
        data_dir.display()
    );
    let path = directory.join(format!("node-{id}-{cluster_id}.toml"));
    std::fs::write(&path, text).expect("the config is writable");
    (path.display().to_string(), client_port)
}

fn spawn_node(config: &str) -> Child {
    Command::new(RAFT_NODE)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("raft-node starts")
}

fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let exited = poll_real_time(DEADLINE, || {
        child.try_wait().expect("the child can be waited for")
    });
    exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("raft-node did not exit within {DEADLINE:?}");
    })
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        stderr
            .read_to_string(&mut text)
            .expect("stderr is readable");
    }
    text
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client builds")
}

/// Polls until `request` answers 200, returning the body.
fn wait_for_ok(
    description: &str,
    mut request: impl FnMut() -> reqwest::Result<reqwest::blocking::Response>,
) -> Vec<u8> {
    let body = poll_real_time(DEADLINE, || {
        let response = request().ok().filter(|response| response.status() == 200)?;
        Some(response.bytes().expect("the body is readable").to_vec())
    });
    body.unwrap_or_else(|| panic!("{description}: no 200 within {DEADLINE:?}"))
}

fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let status = wait_for_exit(child);
    assert_eq!(status.code(), Some(0), "graceful stop");
}

#[test]
fn a_data_dir_is_refused_by_any_other_node_and_kept_for_its_own() {
    let directory = tempfile::tempdir().expect("a temporary directory can be created");
    let data_dir = directory.path().join("data-of-node-1");
    let client = http();

    let (config, client_port) = write_config(directory.path(), 1, "A", &data_dir);
    let mut node = spawn_node(&config);
    let url = format!("http://127.0.0.1:{client_port}/v1/kv/kept");
    wait_for_ok("the first put", || {
        client.put(&url).body("acknowledged").send()
    });
    terminate(&mut node);

    for (id, cluster_id) in [(2, "A"), (1, "B")] {
        let (config, _) = write_config(directory.path(), id, cluster_id, &data_dir);
        let mut refused = spawn_node(&config);
        let status = wait_for_exit(&mut refused);
        let stderr = stderr_of(&mut refused);
        assert_eq!(
            status.code(),
            Some(2),
            "node {id} of {cluster_id}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
        assert!(
            stderr.contains(&format!("data dir {}", data_dir.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains("belongs to node 1 of cluster \"A\""),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("this is node {id} of cluster \"{cluster_id}\"")),
            "{stderr}"
        );
    }

    let (config, client_port) = write_config(directory.path(), 1, "A", &data_dir);
    let mut node = spawn_node(&config);
    let url = format!("http://127.0.0.1:{client_port}/v1/kv/kept");
    let value = wait_for_ok("the read after the restart", || client.get(&url).send());
    assert_eq!(value, b"acknowledged", "the right node keeps all its data");
    terminate(&mut node);
}
