//! Throwaway certificates with rcgen: a CA and the certificates it signs, as PEM.
//!
//! Used by `raft-node local-cluster --tls` (so the secure setup can be tried in one command)
//! and by the tests. Production certificates come from the operator's own CA
//! (docs/SECURITY.md shows how with openssl); nothing here is meant to be kept.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::net::IpAddr;

/// What one certificate names and how long it is valid.
#[derive(Debug, Clone, Default)]
pub struct CertSpec {
    pub common_name: String,
    /// SAN URIs, such as `raft://<cluster_id>/node/<id>`.
    pub uris: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub dns_names: Vec<String>,
    /// `(year, month, day)` bounds; `None` keeps rcgen's defaults (1975 to 4096).
    pub not_before: Option<(i32, u8, u8)>,
    pub not_after: Option<(i32, u8, u8)>,
}

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct IssuedPem {
    pub certificate: String,
    pub key: String,
}

/// A CA that signs certificates for servers and clients alike.
pub struct GeneratedCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

fn error(context: &str, source: rcgen::Error) -> anyhow::Error {
    anyhow::anyhow!("{context}: {source}")
}

impl GeneratedCa {
    pub fn new(common_name: &str) -> anyhow::Result<GeneratedCa> {
        let key = KeyPair::generate().map_err(|e| error("CA key", e))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| error("CA params", e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params
            .self_signed(&key)
            .map_err(|e| error("CA certificate", e))?;
        Ok(GeneratedCa { certificate, key })
    }

    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate usable both as a TLS server and a TLS client (a node is both).
    pub fn issue(&self, spec: &CertSpec) -> anyhow::Result<IssuedPem> {
        let key = KeyPair::generate().map_err(|e| error("key", e))?;
        let mut params = CertificateParams::new(spec.dns_names.clone())
            .map_err(|e| error("certificate params", e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        for uri in &spec.uris {
            let uri = uri.as_str().try_into().map_err(|e| error("SAN URI", e))?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        for ip in &spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if let Some((year, month, day)) = spec.not_before {
            params.not_before = rcgen::date_time_ymd(year, month, day);
        }
        if let Some((year, month, day)) = spec.not_after {
            params.not_after = rcgen::date_time_ymd(year, month, day);
        }
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .map_err(|e| error("certificate", e))?;
        Ok(IssuedPem {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// The usual node certificate: the node's SAN URI, its IPs and `localhost`.
pub fn node_spec(cluster_id: &str, id: u64, ips: &[IpAddr]) -> CertSpec {
    CertSpec {
        common_name: format!("node {id} of {cluster_id}"),
        uris: vec![format!("raft://{cluster_id}/node/{id}")],
        ips: ips.to_vec(),
        dns_names: vec!["localhost".to_string()],
        ..CertSpec::default()
    }
}

/// A client certificate (for `raftctl --cert`): names a person or tool, no node.
pub fn client_spec(name: &str) -> CertSpec {
    CertSpec {
        common_name: name.to_string(),
        ..CertSpec::default()
    }
}
