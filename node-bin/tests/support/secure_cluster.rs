//! A cluster of real `raft-node` processes on loopback for the security tests (issue 16), with
//! optional TLS (a throwaway CA, node and client certificates written next to the configs)
//! and an optional tokens file. Included by each test file that needs it with
//! `#[path = "support/secure_cluster.rs"] mod secure_cluster;` (after `mod ports;`).

// Each test binary compiles this file on its own and uses part of it.
#![allow(dead_code)]

use node_bin::node_config::{to_toml, RawConfig, RawMember};
use node_bin::raft_client::RaftClient;
use node_bin::security::cert_gen::{client_spec, node_spec, GeneratedCa};
use node_bin::security::client_flags::{ClientSecurity, ClientSecurityFlags};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use test_support::wait::poll_real_time;

pub const RAFT_NODE: &str = env!("CARGO_BIN_EXE_raft-node");
pub const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Generous: the machine running the tests may have two loaded cores.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The clusters of one test binary run one at a time (each holds several processes).
static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `contents` to `directory/name` and returns the path.
pub fn write_file(directory: &Path, name: &str, contents: &str) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, contents).expect("write a test file");
    path
}

/// The client-side files of a TLS cluster.
pub struct ClientFiles {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// How a test wants its cluster.
#[derive(Default)]
pub struct Options {
    pub tls: bool,
    /// Contents of the tokens file (`[auth] tokens_file`), if any.
    pub tokens: Option<String>,
    /// `RUST_LOG` of every node.
    pub rust_log: Option<String>,
}

pub struct SecureCluster {
    pub directory: PathBuf,
    pub cluster_id: String,
    pub configs: Vec<RawConfig>,
    pub config_paths: Vec<PathBuf>,
    pub members: Vec<RawMember>,
    pub children: Vec<Option<Child>>,
    pub client_files: Option<ClientFiles>,
    pub ca: Option<GeneratedCa>,
    rust_log: Option<String>,
}

impl SecureCluster {
    /// Writes the configurations (and certificates) of a 3-node cluster; nothing runs yet.
    pub fn configure(root: &Path, name: &str, options: Options) -> SecureCluster {
        let directory = root.join(name);
        std::fs::create_dir_all(&directory).expect("cluster directory");
        let members: Vec<RawMember> = (1..=3)
            .map(|id| RawMember {
                id,
                peer_addr: crate::ports::free_address(),
                client_addr: crate::ports::free_address(),
            })
            .collect();
        let ca = options
            .tls
            .then(|| GeneratedCa::new(&format!("{name} test CA")).expect("CA"));
        let tokens_file = options
            .tokens
            .as_ref()
            .map(|tokens| write_file(&directory, "tokens", tokens));
        let mut configs = Vec::new();
        let mut config_paths = Vec::new();
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
            if let Some(ca) = &ca {
                let ip: IpAddr = "127.0.0.1".parse().expect("literal");
                let issued = ca
                    .issue(&node_spec(name, member.id, &[ip]))
                    .expect("node certificate");
                let ca_file = write_file(&directory, "ca.pem", &ca.certificate_pem());
                let cert = write_file(
                    &directory,
                    &format!("node-{}.pem", member.id),
                    &issued.certificate,
                );
                let key = write_file(&directory, &format!("node-{}.key", member.id), &issued.key);
                config.tls.ca_file = Some(ca_file.display().to_string());
                config.tls.cert_file = Some(cert.display().to_string());
                config.tls.key_file = Some(key.display().to_string());
            }
            if let Some(tokens_file) = &tokens_file {
                config.auth.tokens_file = Some(tokens_file.display().to_string());
            }
            let path = directory.join(format!("node{}.toml", member.id));
            std::fs::write(&path, to_toml(&config)).expect("write config");
            configs.push(config);
            config_paths.push(path);
        }
        let client_files = ca.as_ref().map(|ca| {
            let issued = ca
                .issue(&client_spec("test client"))
                .expect("client certificate");
            ClientFiles {
                ca_file: directory.join("ca.pem"),
                cert_file: write_file(&directory, "client.pem", &issued.certificate),
                key_file: write_file(&directory, "client.key", &issued.key),
            }
        });
        SecureCluster {
            directory,
            cluster_id: name.to_string(),
            configs,
            config_paths,
            members,
            children: vec![None, None, None],
            client_files,
            ca,
            rust_log: options.rust_log,
        }
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.directory.join(format!("node-{id}.log"))
    }

    pub fn start_node(&mut self, id: u64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("node log");
        let mut command = Command::new(RAFT_NODE);
        command
            .arg("--config")
            .arg(&self.config_paths[id as usize - 1])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if let Some(filter) = &self.rust_log {
            command.env("RUST_LOG", filter);
        }
        self.children[id as usize - 1] = Some(command.spawn().expect("spawn raft-node"));
    }

    pub fn start(&mut self) {
        for id in 1..=3 {
            self.start_node(id);
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.client_files.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn url(&self, id: u64) -> String {
        format!(
            "{}://{}",
            self.scheme(),
            self.members[id as usize - 1].client_addr
        )
    }

    pub fn urls(&self) -> Vec<String> {
        (1..=3).map(|id| self.url(id)).collect()
    }

    /// The flags raftctl needs for this cluster (TLS files; a token is added by the caller).
    pub fn client_flags(&self, token: Option<&str>) -> ClientSecurityFlags {
        ClientSecurityFlags {
            cacert: self
                .client_files
                .as_ref()
                .map(|files| files.ca_file.clone()),
            cert: self
                .client_files
                .as_ref()
                .map(|files| files.cert_file.clone()),
            key: self
                .client_files
                .as_ref()
                .map(|files| files.key_file.clone()),
            token: token.map(str::to_string),
        }
    }

    pub fn client_security(&self, token: Option<&str>) -> ClientSecurity {
        self.client_flags(token).load().expect("client files load")
    }

    pub fn client(&self, token: Option<&str>) -> RaftClient {
        RaftClient::secured(
            &self.urls(),
            Duration::from_secs(10),
            Duration::from_secs(30),
            self.client_security(token),
        )
    }

    /// A blocking reqwest client with this cluster's client certificate (when TLS is on).
    pub fn http(&self) -> reqwest::blocking::Client {
        let builder = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20));
        self.client_security(None)
            .apply(builder)
            .build()
            .expect("client")
    }

    /// Waits until a node names a leader; returns the leader's id.
    pub fn wait_for_leader(&self, token: Option<&str>) -> u64 {
        let client = self.client(token);
        let found = poll_real_time(PATIENCE, || {
            self.urls().iter().find_map(|url| {
                let status = client.status_of(url).ok()?;
                status["leader_id"].as_u64()
            })
        });
        match found {
            Some(leader) => leader,
            None => {
                self.print_logs();
                panic!("no leader within {PATIENCE:?}");
            }
        }
    }

    pub fn logs(&self) -> String {
        (1..=3)
            .map(|id| std::fs::read_to_string(self.log_path(id)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn print_logs(&self) {
        for id in 1..=3 {
            let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- node {id} (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }

    pub fn stop_node(&mut self, id: u64) {
        if let Some(mut child) = self.children[id as usize - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SecureCluster {
    fn drop(&mut self) {
        for id in 1..=3 {
            self.stop_node(id);
        }
    }
}
