//! `ProcessCluster`: real `raft-node` processes on 127.0.0.x addresses, with the faults a test
//! needs: `kill -9`, restart on the same data, `SIGSTOP`/`SIGCONT`, `SIGTERM`, and (inside a
//! private network namespace) link cuts.
//!
//! Node `i` listens on IP `127.0.0.<10 + i>`, with ports picked free at start, so tests in one
//! binary can run in parallel and a firewall rule between two node IPs cuts exactly one link.
//! The harness's own HTTP client connects from 127.0.0.1, which no rule touches. Each node's
//! stdout and stderr go to `node-<id>.log` in the cluster's temporary directory (appended
//! across restarts); when a test panics the logs' tails are printed.

use node_bin::node_config::{to_toml, RawConfig, RawMember};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One server of a [`ProcessCluster`]: a real `raft-node` process (while it runs) with its
/// addresses, its configuration file and its log file, which outlive the process across
/// `kill -9` and restarts, as a machine's disk does.
pub struct ProcessNode {
    pub id: u64,
    /// Its IP (`node_ip(id)`) is what a firewall rule names to cut it off.
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

/// An HTTP answer from a node's client API, as a client sees it: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A cluster of real `raft-node` processes on `127.0.0.<10+i>`, each with its own data
/// directory in a temporary directory: a deployment on one machine. It models what happens to
/// whole processes (`kill -9`, restart, `SIGSTOP`/`SIGCONT`, `SIGTERM`), in real time; the
/// network is the real loopback (cut it with [`crate::private_network`]). Dropping it kills
/// every node; a panicking test prints each node's log tail first.
pub struct ProcessCluster {
    /// The `raft-node` program: tests pass `env!("CARGO_BIN_EXE_raft-node-under-test")`.
    binary: PathBuf,
    pub nodes: BTreeMap<u64, ProcessNode>,
    directory: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

/// Held by a process test for its whole run, so that the tests of one binary run one cluster at
/// a time: each starts several processes, and some check wall-clock bounds (failover, stop,
/// writes resuming after a leadership transfer) that a machine busy with other clusters could
/// miss for reasons that have nothing to do with the code under test.
pub fn one_cluster_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A free TCP port on `ip` (bound and released; the node binds it again a moment later).
fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("cannot find a free port on {ip}: {error}"))
}

pub fn node_ip(id: u64) -> IpAddr {
    let last = u8::try_from(10 + id).expect("at most 245 nodes");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

impl ProcessCluster {
    /// Writes the configurations of `count` nodes (ids 1..=count) and starts every node.
    pub fn start(binary: impl Into<PathBuf>, count: u64) -> ProcessCluster {
        let mut cluster = ProcessCluster::configure(binary, count, |_| {});
        for id in 1..=count {
            cluster.start_node(id);
        }
        cluster
    }

    /// Writes configurations (adjusted by `adjust`) without starting anything.
    pub fn configure(
        binary: impl Into<PathBuf>,
        count: u64,
        adjust: impl Fn(&mut RawConfig),
    ) -> ProcessCluster {
        let directory = tempfile::Builder::new()
            .prefix("raft-process-cluster-")
            .tempdir()
            .expect("temp dir");
        let members: Vec<RawMember> = (1..=count)
            .map(|id| {
                let ip = node_ip(id);
                RawMember {
                    id,
                    peer_addr: SocketAddr::new(ip, free_port(ip)).to_string(),
                    client_addr: SocketAddr::new(ip, free_port(ip)).to_string(),
                }
            })
            .collect();
        let mut nodes = BTreeMap::new();
        for member in &members {
            let mut config = RawConfig {
                id: member.id,
                cluster_id: "process-test".to_string(),
                data_dir: directory
                    .path()
                    .join(format!("node-{}", member.id))
                    .display()
                    .to_string(),
                peer_addr: member.peer_addr.clone(),
                client_addr: member.client_addr.clone(),
                members: members.clone(),
                ..RawConfig::default()
            };
            adjust(&mut config);
            let config_path = directory.path().join(format!("node-{}.toml", member.id));
            std::fs::write(&config_path, to_toml(&config)).expect("write config");
            let peer_addr: SocketAddr = member.peer_addr.parse().expect("generated address");
            nodes.insert(
                member.id,
                ProcessNode {
                    id: member.id,
                    peer_addr,
                    client_addr: member.client_addr.parse().expect("generated address"),
                    config_path,
                    log_path: directory.path().join(format!("node-{}.log", member.id)),
                    child: None,
                },
            );
        }
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        ProcessCluster {
            binary: binary.into(),
            nodes,
            directory,
            http,
        }
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Configures (without starting) a new server, with the next unused id, fresh addresses
    /// and an empty data directory, that joins the cluster (`join = true`): it waits to be
    /// added and never campaigns until it is a voter. Its settings are node `template`'s; its
    /// `[[members]]` name the configured servers `reach`, so it can find them. Returns the id.
    pub fn add_joining_node(&mut self, template: u64, reach: &[u64]) -> u64 {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        let text = std::fs::read_to_string(&self.node(template).config_path).expect("config");
        let mut config: RawConfig = toml::from_str(&text).expect("the harness wrote valid TOML");
        let ip = node_ip(id);
        let peer_addr = SocketAddr::new(ip, free_port(ip));
        let client_addr = SocketAddr::new(ip, free_port(ip));
        config.id = id;
        config.join = true;
        config.peer_addr = peer_addr.to_string();
        config.client_addr = client_addr.to_string();
        config.data_dir = self
            .directory
            .path()
            .join(format!("node-{id}"))
            .display()
            .to_string();
        config.members = reach
            .iter()
            .map(|member| {
                let node = self.node(*member);
                RawMember {
                    id: *member,
                    peer_addr: node.peer_addr.to_string(),
                    client_addr: node.client_addr.to_string(),
                }
            })
            .collect();
        let config_path = self.directory.path().join(format!("node-{id}.toml"));
        std::fs::write(&config_path, to_toml(&config)).expect("write config");
        self.nodes.insert(
            id,
            ProcessNode {
                id,
                peer_addr,
                client_addr,
                config_path,
                log_path: self.directory.path().join(format!("node-{id}.log")),
                child: None,
            },
        );
        id
    }

    /// The body of `POST /v1/members` that adds node `id` (configured here) as a learner.
    pub fn member_body(&self, id: u64) -> Vec<u8> {
        let node = self.node(id);
        serde_json::to_vec(&serde_json::json!({
            "id": id,
            "peer_addr": node.peer_addr.to_string(),
            "client_addr": node.client_addr.to_string(),
        }))
        .expect("JSON")
    }

    /// Sends an admin request to node `via` (forwarded to the leader), retrying while the
    /// answer is one of `retry_on` (a change in progress, a learner not caught up yet, no
    /// leader) or there is no answer, until `deadline`. Returns the last answer.
    pub fn admin_request(
        &self,
        via: u64,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
        retry_on: &[u16],
        deadline: Duration,
    ) -> HttpReply {
        let started = Instant::now();
        loop {
            let answer = self.try_request(via, method.clone(), path, body.to_vec());
            match answer {
                Ok(reply) if !retry_on.contains(&reply.status) => return reply,
                Ok(reply) if started.elapsed() > deadline => return reply,
                Err(error) if started.elapsed() > deadline => {
                    panic!("{method} {path} via node {via}: no answer: {error}")
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// `GET /v1/members` via node `via` (answered by the leader), or `None` without an answer.
    pub fn members(&self, via: u64) -> Option<Value> {
        self.try_request(via, reqwest::Method::GET, "/v1/members", Vec::new())
            .ok()
            .filter(|reply| reply.status == 200)
            .map(|reply| reply.json())
    }

    /// The voters and learners `GET /v1/members` lists via node `via`, when the configuration
    /// is not joint.
    pub fn settled_members(&self, via: u64) -> Option<(Vec<u64>, Vec<u64>)> {
        let members = self.members(via)?;
        if members["joint"].as_bool() != Some(false) {
            return None;
        }
        let mut voters = Vec::new();
        let mut learners = Vec::new();
        for member in members["members"].as_array()? {
            let id = member["id"].as_u64()?;
            if member["voter"].as_bool()? {
                voters.push(id);
            } else {
                learners.push(id);
            }
        }
        voters.sort_unstable();
        learners.sort_unstable();
        Some((voters, learners))
    }

    /// Forgets node `id` (killing it first): a server removed from the cluster for good.
    pub fn discard_node(&mut self, id: u64) {
        self.kill(id);
        self.nodes.remove(&id);
    }

    fn node(&self, id: u64) -> &ProcessNode {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut ProcessNode {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Starts (or restarts) node `id` on its configuration and data, and waits until its
    /// client API answers.
    pub fn start_node(&mut self, id: u64) {
        let binary = self.binary.clone();
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open node log");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&node.config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn raft-node");
        node.child = Some(child);
        self.wait_until(
            &format!("node {id} serves HTTP"),
            Duration::from_secs(10),
            |cluster| {
                cluster
                    .try_request(id, reqwest::Method::GET, "/v1/status", Vec::new())
                    .is_ok()
            },
        );
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// Whether node `id` has exited by itself, with its status (then it counts as stopped).
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        let node = self.node_mut(id);
        let status = node
            .child
            .as_mut()?
            .try_wait()
            .expect("wait for raft-node")?;
        node.child = None;
        Some(status)
    }

    /// The data directory of node `id`.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.directory.path().join(format!("node-{id}"))
    }

    /// Runs node `id` expecting it to refuse to start: waits up to `deadline` for it to exit
    /// and returns its exit code and everything it wrote. `None` as the code means it was
    /// still running at the deadline (it is killed).
    pub fn run_until_exit(&self, id: u64, deadline: Duration) -> (Option<i32>, String) {
        let node = self.node(id);
        let mut child = Command::new(&self.binary)
            .arg("--config")
            .arg(&node.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn raft-node");
        let started = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().expect("wait for raft-node") {
                break status.code();
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let output = child.wait_with_output().expect("collect raft-node output");
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        (code, text)
    }

    pub fn pid(&self, id: u64) -> u32 {
        self.node(id)
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is not running"))
            .id()
    }

    /// `kill -9`: the process dies at once, with whatever was not yet fsync'd.
    pub fn kill(&mut self, id: u64) {
        let node = self.node_mut(id);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self, id: u64) {
        self.kill(id);
        self.start_node(id);
    }

    fn signal(&self, id: u64, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid(id).to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} node {id}: {status}");
    }

    /// `SIGSTOP`: the process freezes (a long GC pause, a stuck VM).
    pub fn pause(&self, id: u64) {
        self.signal(id, "STOP");
    }

    pub fn resume(&self, id: u64) {
        self.signal(id, "CONT");
    }

    /// `SIGTERM`, then waits up to `deadline` for the exit. Returns the exit status and how long
    /// the node took, or `None` if it was still running at the deadline (it is then killed).
    pub fn terminate(&mut self, id: u64, deadline: Duration) -> Option<(ExitStatus, Duration)> {
        self.signal(id, "TERM");
        let started = Instant::now();
        let node = self.node_mut(id);
        let mut child = node.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Cuts node `id` off from every other node (both directions, Raft and forwarded client
    /// traffic alike; the harness's own client still reaches it). Only inside a private
    /// network namespace: see [`crate::private_network`].
    pub fn isolate(&self, id: u64) {
        let isolated = self.node(id).peer_addr.ip();
        for other in self.nodes.values().filter(|node| node.id != id) {
            crate::private_network::cut(isolated, other.peer_addr.ip());
        }
    }

    /// Removes every cut.
    pub fn heal(&self) {
        crate::private_network::heal_all();
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{path}", self.node(id).client_addr)
    }

    /// Every node's client API base URL (`http://ip:port`), for load that spreads over nodes.
    pub fn base_urls(&self) -> Vec<String> {
        self.nodes
            .values()
            .map(|node| format!("http://{}", node.client_addr))
            .collect()
    }

    /// One HTTP request to node `id`; `Err` when no answer arrived (refused, timeout, reset).
    pub fn try_request(
        &self,
        id: u64,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<HttpReply, String> {
        let response = self
            .http
            .request(method, self.url(id, path))
            .body(body)
            .send()
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let body = response.bytes().map_err(|error| error.to_string())?;
        Ok(HttpReply {
            status,
            body: body.to_vec(),
        })
    }

    pub fn request(&self, id: u64, method: reqwest::Method, path: &str, body: &[u8]) -> HttpReply {
        self.try_request(id, method.clone(), path, body.to_vec())
            .unwrap_or_else(|error| panic!("{method} {path} on node {id}: {error}"))
    }

    pub fn put(&self, id: u64, key: &str, value: &[u8]) -> HttpReply {
        self.request(id, reqwest::Method::PUT, &format!("/v1/kv/{key}"), value)
    }

    pub fn get(&self, id: u64, key: &str) -> HttpReply {
        self.request(id, reqwest::Method::GET, &format!("/v1/kv/{key}"), b"")
    }

    pub fn get_local(&self, id: u64, key: &str) -> HttpReply {
        self.request(
            id,
            reqwest::Method::GET,
            &format!("/v1/kv/{key}?consistency=local"),
            b"",
        )
    }

    pub fn status(&self, id: u64) -> Option<Value> {
        self.try_request(id, reqwest::Method::GET, "/v1/status", Vec::new())
            .ok()
            .filter(|reply| reply.status == 200)
            .map(|reply| reply.json())
    }

    /// The leader every running node in `among` agrees on, if they agree and it is among them.
    pub fn agreed_leader(&self, among: &[u64]) -> Option<u64> {
        let mut leader = None;
        for id in among {
            let status = self.status(*id)?;
            let this = status["leader_id"].as_u64()?;
            if leader.is_some_and(|known| known != this) {
                return None;
            }
            leader = Some(this);
        }
        leader.filter(|leader| among.contains(leader))
    }

    /// Waits until the nodes in `among` agree on a leader among them; returns it.
    pub fn wait_for_leader(&self, among: &[u64], deadline: Duration) -> u64 {
        let mut found = None;
        self.wait_until("a leader", deadline, |cluster| {
            found = cluster.agreed_leader(among);
            found.is_some()
        });
        found.expect("set when the wait succeeds")
    }

    /// Polls `condition` every 10 ms (real time) until it holds; panics at `deadline`, naming
    /// `what` (the cluster's drop then prints the node logs).
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        mut condition: impl FnMut(&ProcessCluster) -> bool,
    ) {
        test_support::wait::wait_until(what, deadline, || condition(self));
    }

    /// The text of node `id`'s log (every incarnation).
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(&self.node(id).log_path).unwrap_or_default()
    }

    pub fn print_logs(&self) {
        for id in self.nodes.keys() {
            let log = self.log(*id);
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("---- node {id} log (last {} lines) ----", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }
}
