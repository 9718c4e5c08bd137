//! `raft-node local-cluster --nodes N`: N `raft-node` child processes on loopback, each with
//! its own ports, data directory and log file; Ctrl-C (or SIGTERM) stops them all.
//!
//! The data lives in `./raft-local-cluster` (or `--data-dir`), is kept on exit and is used
//! again by the next run, so a cluster can be stopped and started like a real one; `--fresh`
//! wipes it first. A node that dies (a crash, or `kill -9` during the tour) leaves the others
//! running: its log tail and the command that starts it again are printed, and pressing Enter
//! in the cluster's terminal restarts every node that is down.
//!
//! Node `i` (1-based) listens for peers on `127.0.0.1:<base - 1000 + i - 1>` and for clients on
//! `127.0.0.1:<base + i - 1>` (base 8001 by default: clients 8001.., peers 7001..).

use crate::node_cli::LocalClusterFlags;
use crate::node_config::{to_toml, RawConfig, RawMember};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long children get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The configurations of an `nodes`-server loopback cluster.
pub fn cluster_configs(
    nodes: u64,
    base_client_port: u16,
    data_root: &Path,
    engine: &str,
) -> anyhow::Result<Vec<RawConfig>> {
    anyhow::ensure!(nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(
        base_client_port > 1000 && u64::from(base_client_port) + nodes <= 65_535,
        "--base-client-port leaves no room for {nodes} nodes"
    );
    let member = |i: u64| RawMember {
        id: i,
        peer_addr: format!("127.0.0.1:{}", u64::from(base_client_port) - 1000 + i - 1),
        client_addr: format!("127.0.0.1:{}", u64::from(base_client_port) + i - 1),
    };
    let members: Vec<RawMember> = (1..=nodes).map(member).collect();
    Ok(members
        .iter()
        .map(|own| {
            let mut config = RawConfig {
                id: own.id,
                data_dir: data_root
                    .join(format!("node-{}", own.id))
                    .display()
                    .to_string(),
                peer_addr: own.peer_addr.clone(),
                client_addr: own.client_addr.clone(),
                members: members.clone(),
                ..RawConfig::default()
            };
            config.cluster_id = "local-cluster".to_string();
            config.storage.engine = engine.to_string();
            config
        })
        .collect())
}

/// Runs the cluster until Ctrl-C; returns the exit code.
pub fn run(flags: &LocalClusterFlags) -> anyhow::Result<i32> {
    let data_root = flags.data_dir.clone();
    if flags.fresh && data_root.exists() {
        std::fs::remove_dir_all(&data_root)
            .with_context(|| format!("cannot wipe {}", data_root.display()))?;
    }
    std::fs::create_dir_all(&data_root)
        .with_context(|| format!("cannot create {}", data_root.display()))?;
    // Absolute, so the printed restart commands work from any directory.
    let data_root = data_root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", data_root.display()))?;
    let mut configs = cluster_configs(
        flags.nodes,
        flags.base_client_port,
        &data_root,
        &flags.engine,
    )?;
    let client_files = if flags.tls {
        Some(crate::security::local_cluster_tls::secure(
            &mut configs,
            &data_root,
        )?)
    } else {
        None
    };
    let scheme = if flags.tls { "https" } else { "http" };
    let executable = std::env::current_exe().context("cannot find the raft-node executable")?;
    let mut children = Vec::new();
    for config in &configs {
        match spawn_node(&executable, &data_root, config) {
            Ok(child) => children.push((config.id, Some(child))),
            Err(error) => {
                stop_all(&mut children);
                return Err(error);
            }
        }
    }
    println!(
        "local cluster of {} nodes (data in {}):",
        configs.len(),
        data_root.display()
    );
    for config in &configs {
        println!(
            "  node {}: {scheme}://{}   (log: {})",
            config.id,
            config.client_addr,
            log_path(&data_root, config.id).display()
        );
    }
    let endpoints: Vec<String> = configs
        .iter()
        .map(|config| format!("{scheme}://{}", config.client_addr))
        .collect();
    match &client_files {
        None => {
            println!("try:  raftctl --endpoints {} put a 1", endpoints.join(","));
            println!(
                "      curl -X PUT --data-binary 2 {}/v1/kv/a",
                endpoints[endpoints.len() - 1]
            );
        }
        Some(files) => {
            println!("raftctl flags: {}", files.raftctl_flags());
            println!(
                "try:  raftctl {} --endpoints {} put a 1",
                files.raftctl_flags(),
                endpoints.join(",")
            );
            println!(
                "      curl --cacert {} --cert {} --key {} -X PUT --data-binary 2 {}/v1/kv/a",
                files.ca_file.display(),
                files.cert_file.display(),
                files.key_file.display(),
                endpoints[endpoints.len() - 1]
            );
        }
    }
    println!("Ctrl-C stops the cluster (its data stays for the next run; --fresh wipes it).");

    supervise(&mut children, &executable, &data_root, &configs)?;
    stop_all(&mut children);
    Ok(0)
}

fn log_path(data_root: &Path, id: u64) -> PathBuf {
    data_root.join(format!("node-{id}.log"))
}

fn config_path(data_root: &Path, id: u64) -> PathBuf {
    data_root.join(format!("node-{id}.toml"))
}

fn spawn_node(executable: &Path, data_root: &Path, config: &RawConfig) -> anyhow::Result<Child> {
    let config_path = config_path(data_root, config.id);
    std::fs::write(&config_path, to_toml(config))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    // Appended, so a restarted node's log follows what it wrote before it died.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(data_root, config.id))?;
    Command::new(executable)
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start node {}", config.id))
}

/// Runs until SIGINT/SIGTERM. A node that exits on its own is reported (with its log tail and
/// the command that starts it again) and the others keep running; a line on standard input
/// (Enter) restarts every node that is down.
fn supervise(
    children: &mut [(u64, Option<Child>)],
    executable: &Path,
    data_root: &Path,
    configs: &[RawConfig],
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Standard input is read on a thread of its own: a read blocked on a terminal would keep
    // the runtime from shutting down. The thread ends with the process.
    let (lines_sender, mut lines) = tokio::sync::mpsc::unbounded_channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin()
            .read_line(&mut line)
            .is_ok_and(|read| read > 0)
        {
            line.clear();
            if lines_sender.send(()).is_err() {
                return;
            }
        }
    });
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut input_open = true;
        loop {
            tokio::select! {
                _ = terminate.recv() => return Ok(()),
                _ = interrupt.recv() => return Ok(()),
                line = lines.recv(), if input_open => match line {
                    Some(()) => restart_stopped(children, executable, data_root, configs),
                    // No terminal (or it closed): nothing will ask for restarts.
                    None => input_open = false,
                },
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            for (id, slot) in children.iter_mut() {
                let Some(child) = slot else { continue };
                if let Some(status) = child.try_wait()? {
                    *slot = None;
                    report_exit(*id, &status.to_string(), data_root);
                }
            }
        }
    })
}

/// Says that node `id` stopped, shows the end of its log and how to start it again.
fn report_exit(id: u64, status: &str, data_root: &Path) {
    eprintln!("node {id} exited ({status}); the other nodes keep running. Its log ends with:");
    let log = std::fs::read_to_string(log_path(data_root, id)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    for line in &lines[lines.len().saturating_sub(10)..] {
        eprintln!("    {line}");
    }
    let executable = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "raft-node".to_string());
    eprintln!(
        "start it again with:  {executable} --config {}",
        config_path(data_root, id).display()
    );
    eprintln!("or press Enter here to restart every node that is down.");
}

/// Starts again every node whose process is gone, on its configuration and data.
fn restart_stopped(
    children: &mut [(u64, Option<Child>)],
    executable: &Path,
    data_root: &Path,
    configs: &[RawConfig],
) {
    for (id, slot) in children.iter_mut() {
        if slot.is_some() {
            continue;
        }
        let Some(config) = configs.iter().find(|config| config.id == *id) else {
            continue;
        };
        match spawn_node(executable, data_root, config) {
            Ok(child) => {
                println!("node {id} restarted");
                *slot = Some(child);
            }
            Err(error) => eprintln!("node {id} could not be restarted: {error:#}"),
        }
    }
}

/// SIGTERM to every child, then SIGKILL to any still running after [`STOP_GRACE`].
fn stop_all(children: &mut [(u64, Option<Child>)]) {
    for (_, child) in children
        .iter()
        .filter_map(|(id, child)| Some((id, child.as_ref()?)))
    {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
    }
    let deadline = Instant::now() + STOP_GRACE;
    for (id, child) in children
        .iter_mut()
        .filter_map(|(id, child)| Some((*id, child.as_mut()?)))
    {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    eprintln!("node {id} did not stop in time; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
    }
    println!("local cluster stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_config::NodeConfig;

    #[test]
    fn every_generated_configuration_is_valid_and_distinct() {
        let configs = cluster_configs(3, 8001, Path::new("/tmp/x"), "wal").expect("configs");
        let validated: Vec<NodeConfig> = configs
            .iter()
            .map(|raw| NodeConfig::from_raw(raw).expect("valid"))
            .collect();
        assert_eq!(validated[0].client_addr.port(), 8001);
        assert_eq!(validated[2].peer_addr.port(), 7003);
        assert_ne!(validated[0].data_dir, validated[1].data_dir);
        assert!(validated.iter().all(|config| config.members.len() == 3));
    }
}
