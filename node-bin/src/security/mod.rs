//! Security (issue 16): TLS for peer and client traffic, client tokens, the peer port's limits.
//!
//! Everything here is optional and off by default: with no `[tls]` and no `[auth]` section a
//! node speaks plaintext and serves anyone, as before. See docs/SECURITY.md for the threat
//! model and how to make and rotate certificates.
//!
//! # Layout
//!
//! - [`security_config`]: the `[tls]`, `[auth]` and `[network]` sections, validated at startup.
//! - [`tls_files`]: reading the PEM files (validity, key match, CA, SAN URI) and building the
//!   rustls configurations.
//! - [`tokens`]: the tokens file and the constant-time token check.
//! - [`auth_middleware`]: `401`/`403` in front of the client API's routes.
//! - [`client_flags`]: raftctl's `--cacert/--cert/--key/--token`.
//! - [`cert_gen`]: throwaway certificates (rcgen) for `local-cluster --tls` and the tests.
//! - [`local_cluster_tls`]: the files `local-cluster --tls` writes and the flags it prints.
//!
//! [`NodeSecurity`] is what the wiring takes from here: the peer network's TLS, the client
//! API's TLS and token policy, and how this node reaches other nodes' client APIs.

pub mod auth_middleware;
pub mod cert_gen;
pub mod client_flags;
pub mod local_cluster_tls;
pub mod security_config;
pub mod tls_files;
pub mod tokens;

use crate::node_config::NodeConfig;
use auth_middleware::AuthPolicy;
use network_actor::PeerTls;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tls_files::TlsMaterial;
use tokens::Tokens;

/// How this node reaches other nodes' client APIs (forwarding to the leader, the consistency
/// check): over HTTPS presenting its own certificate when TLS is on, and with a token for the
/// requests it makes on its own behalf (forwarded requests carry the client's token instead).
#[derive(Clone, Default)]
pub struct NodeToNode {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sent by the consistency check; never logged.
    pub token: Option<String>,
}

impl std::fmt::Debug for NodeToNode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NodeToNode")
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NodeToNode {
    /// `https` with TLS on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// An HTTP client whose connections bind to `bind_ip` (see `http_api::forwarder`).
    pub fn client(&self, bind_ip: IpAddr, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        let builder = reqwest::Client::builder()
            .local_address(bind_ip)
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout);
        match &self.tls {
            None => builder.build(),
            Some(config) => builder
                .use_preconfigured_tls(rustls::ClientConfig::clone(config))
                .build(),
        }
    }
}

/// Everything the wiring needs, loaded once at startup from the validated configuration.
pub struct NodeSecurity {
    pub peer_tls: Option<PeerTls>,
    pub http_tls: Option<rustls::ServerConfig>,
    pub auth: AuthPolicy,
    pub node_to_node: NodeToNode,
}

impl NodeSecurity {
    pub fn load(config: &NodeConfig) -> anyhow::Result<NodeSecurity> {
        let security = &config.security;
        let tokens = match &security.auth {
            Some(auth) => Some(Arc::new(Tokens::load(&auth.tokens_file)?)),
            None => None,
        };
        let auth = AuthPolicy {
            tokens: tokens.clone(),
            open_metrics: security.auth.as_ref().is_some_and(|auth| auth.open_metrics),
        };
        let token = tokens.map(|tokens| String::from_utf8_lossy(tokens.first()).into_owned());
        let Some(tls) = &security.tls else {
            return Ok(NodeSecurity {
                peer_tls: None,
                http_tls: None,
                auth,
                node_to_node: NodeToNode { tls: None, token },
            });
        };
        let material = TlsMaterial::load(tls, &config.cluster_id, config.id)?;
        Ok(NodeSecurity {
            peer_tls: Some(material.peer_tls()?),
            http_tls: Some(material.http_server_config()?),
            auth,
            node_to_node: NodeToNode {
                tls: Some(Arc::new(material.node_client_config()?)),
                token,
            },
        })
    }
}
