//! Reading the `[tls]` files and turning them into rustls configurations.
//!
//! [`TlsMaterial::load`] reads and checks everything at startup (see
//! [`crate::security::security_config`]); the node then builds from the same material the
//! peer network's [`PeerTls`], the client API's server configuration (client certificates
//! required, signed by the CA) and the configuration of its own HTTPS requests to other nodes
//! (forwarding, the consistency check), which present the node's certificate.

use crate::node_config::ConfigError;
use crate::security::security_config::TlsConfig;
use network_actor::peer_tls::{node_uri, provider, root_store, san_uris};
use network_actor::PeerTls;
use raft_types::NodeId;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The parsed contents of the `[tls]` files.
pub struct TlsMaterial {
    pub ca: Vec<CertificateDer<'static>>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub client_chain: Vec<CertificateDer<'static>>,
    pub client_key: PrivateKeyDer<'static>,
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|error| ConfigError::new(key, format!("cannot read {}: {error}", path.display())))
}

/// Every certificate of a PEM file, each checked inside its validity period.
pub fn read_certificates(
    key: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(key, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            ConfigError::new(key, format!("{} is not valid PEM: {error}", path.display()))
        })?;
    if certificates.is_empty() {
        return Err(ConfigError::new(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    for certificate in &certificates {
        check_validity(key, path, certificate)?;
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let bytes = read(key, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        ConfigError::new(
            key,
            format!(
                "{} holds no usable PEM private key: {error}",
                path.display()
            ),
        )
    })
}

/// Refuses a certificate that has expired or is not valid yet.
fn check_validity(
    key: &str,
    path: &Path,
    certificate: &CertificateDer<'_>,
) -> Result<(), ConfigError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, parsed) = X509Certificate::from_der(certificate.as_ref()).map_err(|error| {
        ConfigError::new(
            key,
            format!(
                "{} holds a certificate that does not parse: {error}",
                path.display()
            ),
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let validity = parsed.validity();
    if now < validity.not_before.timestamp() {
        return Err(ConfigError::new(
            key,
            format!(
                "the certificate in {} is not valid yet (not before {})",
                path.display(),
                validity.not_before
            ),
        ));
    }
    if now > validity.not_after.timestamp() {
        return Err(ConfigError::new(
            key,
            format!(
                "the certificate in {} expired (not after {})",
                path.display(),
                validity.not_after
            ),
        ));
    }
    Ok(())
}

/// Refuses a key that is not the private key of the chain's first certificate.
fn check_key_matches(
    cert_key: &str,
    key_key: &str,
    key_path: &Path,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), ConfigError> {
    match rustls::sign::CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &provider()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(ConfigError::new(
            key_key,
            format!(
                "the key in {} does not match the certificate of {cert_key}",
                key_path.display()
            ),
        )),
        Err(error) => Err(ConfigError::new(
            key_key,
            format!("the key in {} is not usable: {error}", key_path.display()),
        )),
    }
}

/// Refuses a certificate the CA did not sign (every peer and client would refuse it).
fn check_signed_by_ca(
    key: &str,
    path: &Path,
    chain: &[CertificateDer<'static>],
    ca: &[CertificateDer<'static>],
    as_client_too: bool,
) -> Result<(), ConfigError> {
    let roots = Arc::new(
        root_store(ca).map_err(|error| ConfigError::new("tls.ca_file", error.to_string()))?,
    );
    let refused = |error: rustls::Error| {
        ConfigError::new(
            key,
            format!(
                "the certificate in {} is not accepted under tls.ca_file: {error}",
                path.display()
            ),
        )
    };
    let now = UnixTime::now();
    let server =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|error| ConfigError::new("tls.ca_file", error.to_string()))?;
    // Any name: only the chain matters here (names are checked per connection).
    let name = ServerName::try_from("node.invalid").expect("a valid DNS name");
    match server.verify_server_cert(&chain[0], &chain[1..], &name, &[], now) {
        Ok(_) => {}
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        )) => {}
        Err(error) => return Err(refused(error)),
    }
    if as_client_too {
        let client = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|error| ConfigError::new("tls.ca_file", error.to_string()))?;
        client
            .verify_client_cert(&chain[0], &chain[1..], now)
            .map_err(refused)?;
    }
    Ok(())
}

impl TlsMaterial {
    /// Reads and checks every file of `config` for node `id` of `cluster_id`.
    pub fn load(
        config: &TlsConfig,
        cluster_id: &str,
        id: NodeId,
    ) -> Result<TlsMaterial, ConfigError> {
        let ca = read_certificates("tls.ca_file", &config.ca_file)?;
        let chain = read_certificates("tls.cert_file", &config.cert_file)?;
        let key = read_key("tls.key_file", &config.key_file)?;
        check_key_matches(
            "tls.cert_file",
            "tls.key_file",
            &config.key_file,
            &chain,
            &key,
        )?;
        check_signed_by_ca("tls.cert_file", &config.cert_file, &chain, &ca, true)?;
        let expected = node_uri(cluster_id, id);
        let names = san_uris(&chain[0]);
        if !names.contains(&expected) {
            return Err(ConfigError::new(
                "tls.cert_file",
                format!(
                    "the certificate in {} does not name this node: it needs the SAN URI \
                     {expected} (it names {names:?})",
                    config.cert_file.display()
                ),
            ));
        }
        let (client_chain, client_key) = if config.client_cert_file == config.cert_file {
            (chain.clone(), key.clone_key())
        } else {
            let client_chain = read_certificates("tls.client_cert_file", &config.client_cert_file)?;
            let client_key = read_key("tls.client_key_file", &config.client_key_file)?;
            check_key_matches(
                "tls.client_cert_file",
                "tls.client_key_file",
                &config.client_key_file,
                &client_chain,
                &client_key,
            )?;
            check_signed_by_ca(
                "tls.client_cert_file",
                &config.client_cert_file,
                &client_chain,
                &ca,
                false,
            )?;
            (client_chain, client_key)
        };
        Ok(TlsMaterial {
            ca,
            chain,
            key,
            client_chain,
            client_key,
        })
    }

    /// Mutual TLS for the peer network.
    pub fn peer_tls(&self) -> anyhow::Result<PeerTls> {
        Ok(PeerTls::new(
            &self.ca,
            self.chain.clone(),
            self.key.clone_key(),
        )?)
    }

    /// The client API's server side: the client certificate is required and must be signed
    /// by the CA (docs/SECURITY.md).
    pub fn http_server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let roots = Arc::new(root_store(&self.ca)?);
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.client_chain.clone(), self.client_key.clone_key())?;
        Ok(config)
    }

    /// This node as an HTTPS client of other nodes' client APIs: trusts the CA, presents the
    /// node's certificate, checks the server's name (its certificate must name the IP or host
    /// of its `client_addr`).
    pub fn node_client_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let roots = root_store(&self.ca)?;
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        Ok(config)
    }
}

/// The client side of `raftctl` (or any tool): trust `ca_file` (else nothing: a TLS endpoint
/// needs it), present `cert_file`/`key_file` when given. Errors name the flag.
pub fn client_config(
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, ConfigError> {
    let ca = read_certificates("--cacert", ca_file)?;
    let roots = root_store(&ca).map_err(|error| ConfigError::new("--cacert", error.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| ConfigError::new("--cacert", error.to_string()))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_file, key_file)) => {
            let chain = read_certificates("--cert", cert_file)?;
            let key = read_key("--key", key_file)?;
            check_key_matches("--cert", "--key", key_file, &chain, &key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| ConfigError::new("--cert", error.to_string()))
        }
    }
}
