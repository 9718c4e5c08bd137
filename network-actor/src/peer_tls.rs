//! Mutual TLS between peers: [`PeerTls`] holds the two rustls configurations a node needs
//! (accepting and dialing), both built on the `ring` provider.
//!
//! Both ends present a certificate signed by the cluster's CA and verify the other's chain
//! against it, so a certificate from another CA fails inside the TLS handshake. Who a node
//! *is* comes from its certificate's Subject Alternative Name URI
//! `raft://<cluster_id>/node/<id>` ([`node_uri`]): once TLS is up, the connection handshake
//! (`crate::handshake`) refuses a peer whose certificate does not name the cluster and id it
//! claims, so holding any certificate of the CA is not enough to speak as another node.
//!
//! Host names are deliberately not checked on peer connections: the peer's identity is the URI
//! above, and a node's address can change (or be a NAT'd IP) without reissuing certificates.
//! The chain, validity period and signatures are checked as usual.

use raft_types::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The SAN URI naming node `node` of cluster `cluster_id`.
pub fn node_uri(cluster_id: &str, node: NodeId) -> String {
    format!("raft://{cluster_id}/node/{}", node.0)
}

/// The Subject Alternative Name URIs of a DER certificate (empty when it has none or does not
/// parse: such a certificate names no node).
pub fn san_uris(certificate: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(certificate.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(names)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect()
}

/// Why the TLS configuration could not be built (the node reports it and does not start).
#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    #[error("no CA certificate given")]
    NoCa,
    #[error("a CA certificate is not usable as a trust anchor: {0}")]
    BadCa(rustls::Error),
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
    #[error("the certificate or key is not usable: {0}")]
    Identity(rustls::Error),
}

/// The rustls configurations for peer connections. Cheap to clone (two `Arc`s).
#[derive(Clone)]
pub struct PeerTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material; that TLS is on is all a log line needs.
        formatter.write_str("PeerTls")
    }
}

/// The provider every configuration here uses: `ring` (aws-lc-rs would need cmake to build).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding every certificate of `ca_certificates` (a bundle of two CAs during a
/// CA rotation).
pub fn root_store(
    ca_certificates: &[CertificateDer<'static>],
) -> Result<RootCertStore, PeerTlsError> {
    if ca_certificates.is_empty() {
        return Err(PeerTlsError::NoCa);
    }
    let mut roots = RootCertStore::empty();
    for certificate in ca_certificates {
        roots
            .add(certificate.clone())
            .map_err(PeerTlsError::BadCa)?;
    }
    Ok(roots)
}

impl PeerTls {
    /// Builds both sides from the cluster's CA certificate(s) and this node's certificate chain
    /// and private key (the chain's first certificate names this node).
    pub fn new(
        ca_certificates: &[CertificateDer<'static>],
        certificate_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<PeerTls, PeerTlsError> {
        let roots = Arc::new(root_store(ca_certificates)?);
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .build()
                .map_err(|error| PeerTlsError::Verifier(error.to_string()))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(PeerTlsError::Identity)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(certificate_chain.clone(), key.clone_key())
            .map_err(PeerTlsError::Identity)?;
        // Connections live for the life of the process; resumption would only add state.
        server.send_tls13_tickets = 0;
        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|error| PeerTlsError::Verifier(error.to_string()))?;
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(PeerTlsError::Identity)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(server_verifier)))
            .with_client_auth_cert(certificate_chain, key)
            .map_err(PeerTlsError::Identity)?;
        Ok(PeerTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub(crate) fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

/// The server-side check of a dialer: chain, validity and signatures as webpki checks them,
/// but not the host name (see the module documentation); the SAN URI is checked by the
/// connection handshake instead.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the name last, after the chain and validity: a name error means
        // everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
