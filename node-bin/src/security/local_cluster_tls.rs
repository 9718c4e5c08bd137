//! `raft-node local-cluster --tls`: a throwaway CA, one certificate per node and one client
//! certificate, written under `<data-dir>/tls/`, and the `[tls]` section of every node.
//!
//! The files are made anew on every run (the CA's key is never kept anywhere else), so a run
//! never trusts a CA of an earlier one. What `raftctl` needs is printed as flags.

use crate::node_config::RawConfig;
use crate::security::cert_gen::{client_spec, node_spec, GeneratedCa};
use anyhow::Context as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The client side of the generated files.
#[derive(Debug, Clone)]
pub struct ClientFiles {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ClientFiles {
    /// `--cacert CA --cert CERT --key KEY`, as printed for raftctl.
    pub fn raftctl_flags(&self) -> String {
        format!(
            "--cacert {} --cert {} --key {}",
            self.ca_file.display(),
            self.cert_file.display(),
            self.key_file.display()
        )
    }
}

fn write(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(())
}

/// Generates the files under `<data_root>/tls` and sets the `[tls]` section of every config.
pub fn secure(configs: &mut [RawConfig], data_root: &Path) -> anyhow::Result<ClientFiles> {
    let directory = data_root.join("tls");
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let cluster_id = configs
        .first()
        .map(|config| config.cluster_id.clone())
        .unwrap_or_default();
    let ca = GeneratedCa::new(&format!(
        "{cluster_id} throwaway CA (raft-node local-cluster)"
    ))?;
    let ca_file = directory.join("ca.pem");
    write(&ca_file, &ca.certificate_pem(), false)?;
    for config in configs.iter_mut() {
        let ips: Vec<IpAddr> = [&config.peer_addr, &config.client_addr]
            .iter()
            .filter_map(|address| address.parse::<SocketAddr>().ok())
            .map(|address| address.ip())
            .collect();
        let issued = ca.issue(&node_spec(&cluster_id, config.id, &ips))?;
        let cert_file = directory.join(format!("node-{}.pem", config.id));
        let key_file = directory.join(format!("node-{}.key", config.id));
        write(&cert_file, &issued.certificate, false)?;
        write(&key_file, &issued.key, true)?;
        config.tls.ca_file = Some(ca_file.display().to_string());
        config.tls.cert_file = Some(cert_file.display().to_string());
        config.tls.key_file = Some(key_file.display().to_string());
    }
    let client = ca.issue(&client_spec("raftctl (local-cluster)"))?;
    let files = ClientFiles {
        ca_file,
        cert_file: directory.join("client.pem"),
        key_file: directory.join("client.key"),
    };
    write(&files.cert_file, &client.certificate, false)?;
    write(&files.key_file, &client.key, true)?;
    Ok(files)
}
