//! The `[tls]`, `[auth]` and `[network]` configuration sections (issue 16): as written by a
//! person ([`RawTls`], [`RawAuth`], [`RawNetwork`]) and validated ([`SecurityConfig`]).
//!
//! Validation reads every file it names, so a node that would fail its first TLS handshake or
//! token check refuses to start instead, with exit code 2 and the one line naming the key:
//! an unreadable file, a certificate expired or not yet valid, a key that does not match its
//! certificate, a node certificate not signed by the CA or not naming this node, a tokens
//! file line that is not `<rw|ro> <token>`.

use crate::node_config::ConfigError;
use crate::security::tls_files::TlsMaterial;
use crate::security::tokens::Tokens;
use raft_types::NodeId;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[tls]` as written. TLS is on when `ca_file`, `cert_file` and `key_file` are all set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    /// PEM: the cluster's CA certificate(s); peers and clients are verified against them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM: this node's certificate (chain), naming `raft://<cluster_id>/node/<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// PEM: the private key of `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// PEM: the certificate the client API presents instead of `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<String>,
    /// PEM: the private key of `client_cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<String>,
}

/// `[auth]` as written. Client authentication is on when `tokens_file` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// One `<role> <token>` per line, role `rw` or `ro`; `#` starts a comment line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<String>,
    /// Serve `/metrics` without a token (for a scraper on a trusted network).
    pub open_metrics: bool,
}

/// `[network]` as written: the limits of the peer port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNetwork {
    /// Inbound peer connections accepted but not yet through their handshake, at most.
    pub max_pending_handshakes: u64,
    /// ... and at most this many of them from one IP.
    pub max_pending_handshakes_per_ip: u64,
    /// How long an inbound or outbound connection may take for its handshake (TLS and the
    /// connection handshake each).
    pub handshake_timeout_ms: u64,
}

impl Default for RawNetwork {
    fn default() -> RawNetwork {
        RawNetwork {
            max_pending_handshakes: network_actor::DEFAULT_MAX_PENDING_HANDSHAKES as u64,
            max_pending_handshakes_per_ip: network_actor::DEFAULT_MAX_PENDING_HANDSHAKES_PER_IP
                as u64,
            handshake_timeout_ms: 5000,
        }
    }
}

/// The validated `[tls]` section: the files, each checked readable and consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The client API's certificate and key: `client_*_file` when set, else the node's.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
}

/// The validated `[auth]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub tokens_file: PathBuf,
    pub open_metrics: bool,
}

/// The validated `[network]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerPortConfig {
    pub max_pending_handshakes: usize,
    pub max_pending_handshakes_per_ip: usize,
    pub handshake_timeout: Duration,
}

/// Everything issue 16 adds to a node's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `None`: plaintext peer and client traffic (the default).
    pub tls: Option<TlsConfig>,
    /// `None`: no client authentication (the default).
    pub auth: Option<AuthConfig>,
    pub peer_port: PeerPortConfig,
}

/// The smallest handshake timeout: a TLS handshake on a loaded machine needs some time.
const HANDSHAKE_TIMEOUT_MS_MIN: u64 = 100;

impl SecurityConfig {
    /// Validates the three sections; the files are read and checked for node `id` of
    /// `cluster_id`.
    pub fn from_raw(
        tls: &RawTls,
        auth: &RawAuth,
        network: &RawNetwork,
        cluster_id: &str,
        id: NodeId,
    ) -> Result<SecurityConfig, ConfigError> {
        let tls = validate_tls(tls, cluster_id, id)?;
        let auth = match &auth.tokens_file {
            None => None,
            Some(path) => {
                let config = AuthConfig {
                    tokens_file: non_empty_path("auth.tokens_file", path)?,
                    open_metrics: auth.open_metrics,
                };
                Tokens::load(&config.tokens_file)?;
                Some(config)
            }
        };
        Ok(SecurityConfig {
            tls,
            auth,
            peer_port: validate_network(network)?,
        })
    }
}

fn non_empty_path(key: &str, path: &str) -> Result<PathBuf, ConfigError> {
    if path.trim().is_empty() {
        return Err(ConfigError::new(key, "must not be empty when set"));
    }
    Ok(PathBuf::from(path))
}

fn validate_tls(
    raw: &RawTls,
    cluster_id: &str,
    id: NodeId,
) -> Result<Option<TlsConfig>, ConfigError> {
    let main = [
        ("tls.ca_file", &raw.ca_file),
        ("tls.cert_file", &raw.cert_file),
        ("tls.key_file", &raw.key_file),
    ];
    let set = main.iter().filter(|(_, value)| value.is_some()).count();
    let overrides_set = raw.client_cert_file.is_some() || raw.client_key_file.is_some();
    if set == 0 && !overrides_set {
        return Ok(None);
    }
    if let Some((missing, _)) = main.iter().find(|(_, value)| value.is_none()) {
        return Err(ConfigError::new(
            *missing,
            "must be set: TLS needs tls.ca_file, tls.cert_file and tls.key_file together",
        ));
    }
    let path =
        |key: &str, value: &Option<String>| non_empty_path(key, value.as_deref().unwrap_or(""));
    let (client_cert_file, client_key_file) = match (&raw.client_cert_file, &raw.client_key_file) {
        (None, None) => (
            path("tls.cert_file", &raw.cert_file)?,
            path("tls.key_file", &raw.key_file)?,
        ),
        (Some(_), Some(_)) => (
            path("tls.client_cert_file", &raw.client_cert_file)?,
            path("tls.client_key_file", &raw.client_key_file)?,
        ),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "tls.client_key_file",
                "must be set together with tls.client_cert_file",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "tls.client_cert_file",
                "must be set together with tls.client_key_file",
            ))
        }
    };
    let config = TlsConfig {
        ca_file: path("tls.ca_file", &raw.ca_file)?,
        cert_file: path("tls.cert_file", &raw.cert_file)?,
        key_file: path("tls.key_file", &raw.key_file)?,
        client_cert_file,
        client_key_file,
    };
    TlsMaterial::load(&config, cluster_id, id)?;
    Ok(Some(config))
}

fn validate_network(raw: &RawNetwork) -> Result<PeerPortConfig, ConfigError> {
    let count = |key: &str, value: u64| {
        if value == 0 {
            return Err(ConfigError::new(key, "must be at least 1"));
        }
        usize::try_from(value).map_err(|_| ConfigError::new(key, "too large"))
    };
    if raw.handshake_timeout_ms < HANDSHAKE_TIMEOUT_MS_MIN {
        return Err(ConfigError::new(
            "network.handshake_timeout_ms",
            format!(
                "{} is too short: at least {HANDSHAKE_TIMEOUT_MS_MIN}",
                raw.handshake_timeout_ms
            ),
        ));
    }
    Ok(PeerPortConfig {
        max_pending_handshakes: count(
            "network.max_pending_handshakes",
            raw.max_pending_handshakes,
        )?,
        max_pending_handshakes_per_ip: count(
            "network.max_pending_handshakes_per_ip",
            raw.max_pending_handshakes_per_ip,
        )?,
        handshake_timeout: Duration::from_millis(raw.handshake_timeout_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(
        tls: RawTls,
        auth: RawAuth,
        network: RawNetwork,
    ) -> Result<SecurityConfig, ConfigError> {
        SecurityConfig::from_raw(&tls, &auth, &network, "test", NodeId(1))
    }

    #[test]
    fn everything_is_off_by_default() {
        let config = validate(RawTls::default(), RawAuth::default(), RawNetwork::default())
            .expect("defaults are valid");
        assert_eq!(config.tls, None);
        assert_eq!(config.auth, None);
        assert_eq!(config.peer_port.max_pending_handshakes, 64);
        assert_eq!(config.peer_port.max_pending_handshakes_per_ip, 8);
        assert_eq!(config.peer_port.handshake_timeout, Duration::from_secs(5));
    }

    #[test]
    fn incomplete_sections_and_bad_limits_name_their_key() {
        let only_ca = RawTls {
            ca_file: Some("/ca.pem".into()),
            ..RawTls::default()
        };
        let error = validate(only_ca, RawAuth::default(), RawNetwork::default()).expect_err("half");
        assert_eq!(error.key, "tls.cert_file");
        let half_override = RawTls {
            ca_file: Some("/ca.pem".into()),
            cert_file: Some("/c.pem".into()),
            key_file: Some("/c.key".into()),
            client_cert_file: Some("/client.pem".into()),
            ..RawTls::default()
        };
        let error = validate(half_override, RawAuth::default(), RawNetwork::default())
            .expect_err("override without its key");
        assert_eq!(error.key, "tls.client_key_file");
        let missing_tokens = RawAuth {
            tokens_file: Some("/nonexistent/tokens".into()),
            open_metrics: false,
        };
        let error = validate(RawTls::default(), missing_tokens, RawNetwork::default())
            .expect_err("unreadable tokens file");
        assert_eq!(error.key, "auth.tokens_file");
        for (network, key) in [
            (
                RawNetwork {
                    max_pending_handshakes: 0,
                    ..RawNetwork::default()
                },
                "network.max_pending_handshakes",
            ),
            (
                RawNetwork {
                    max_pending_handshakes_per_ip: 0,
                    ..RawNetwork::default()
                },
                "network.max_pending_handshakes_per_ip",
            ),
            (
                RawNetwork {
                    handshake_timeout_ms: 5,
                    ..RawNetwork::default()
                },
                "network.handshake_timeout_ms",
            ),
        ] {
            let error = validate(RawTls::default(), RawAuth::default(), network).expect_err(key);
            assert_eq!(error.key, key);
        }
    }
}
