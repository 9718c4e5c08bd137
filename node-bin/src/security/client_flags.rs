//! The client side of issue 16 for `raftctl` (and the tests' clients): `--cacert`, `--cert`,
//! `--key` and `--token` (or `RAFTCTL_TOKEN`), turned into what [`crate::raft_client`] needs.
//!
//! The token's value is hidden from `--help` (clap would print an environment variable's
//! value there) and from `Debug`.

use crate::security::tls_files::client_config;
use std::path::PathBuf;
use std::sync::Arc;

/// raftctl's TLS and token flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientSecurityFlags {
    /// PEM file of the CA that signed the nodes' certificates: talk https:// to the nodes
    /// (endpoints without a scheme become https://).
    #[arg(
        long,
        id = "tls_cacert",
        global = true,
        value_name = "FILE",
        env = "RAFTCTL_CACERT"
    )]
    pub cacert: Option<PathBuf>,
    /// PEM file of this client's certificate (signed by the CA); required by nodes with TLS on.
    #[arg(
        long,
        id = "tls_cert",
        global = true,
        value_name = "FILE",
        env = "RAFTCTL_CERT",
        requires = "tls_key"
    )]
    pub cert: Option<PathBuf>,
    /// PEM file of the private key of --cert.
    #[arg(
        long,
        id = "tls_key",
        global = true,
        value_name = "FILE",
        env = "RAFTCTL_KEY",
        requires = "tls_cert"
    )]
    pub key: Option<PathBuf>,
    /// Bearer token sent with every request (nodes with [auth] tokens_file need one).
    #[arg(
        long,
        id = "auth_token",
        global = true,
        value_name = "TOKEN",
        env = "RAFTCTL_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// What a client presents: TLS settings and a token, both optional.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub token: Option<String>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ClientSecurityFlags {
    /// Reads the files; the error names the flag and the problem.
    pub fn load(&self) -> Result<ClientSecurity, String> {
        if self.cacert.is_none() && self.cert.is_some() {
            return Err("--cert needs --cacert (the CA the nodes' certificates come from)".into());
        }
        let tls = match &self.cacert {
            None => None,
            Some(ca_file) => {
                let identity = self.cert.as_deref().zip(self.key.as_deref());
                let config = client_config(ca_file, identity)
                    .map_err(|error| format!("{}: {}", error.key, error.message))?;
                Some(Arc::new(config))
            }
        };
        let token = self
            .token
            .as_ref()
            .map(|token| token.trim().to_string())
            .filter(|token| !token.is_empty());
        Ok(ClientSecurity { tls, token })
    }
}

impl ClientSecurity {
    /// `https` with TLS, else `http`: the scheme of endpoints given without one.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Applies the TLS settings and the token to a blocking client under construction.
    pub fn apply(
        &self,
        builder: reqwest::blocking::ClientBuilder,
    ) -> reqwest::blocking::ClientBuilder {
        // The token as a default header of every request (marked sensitive, so reqwest never
        // shows it): callers that build their own requests (raftctl bench) need no change.
        let builder = match &self.token {
            None => builder,
            Some(token) => match reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    let mut headers = reqwest::header::HeaderMap::new();
                    headers.insert(reqwest::header::AUTHORIZATION, value);
                    builder.default_headers(headers)
                }
                // Not a valid header value: nothing is sent and the node answers 401.
                Err(_) => builder,
            },
        };
        match &self.tls {
            None => builder,
            Some(config) => builder.use_preconfigured_tls(rustls::ClientConfig::clone(config)),
        }
    }

    /// Adds the token (if any) to a request (for clients not built with [`Self::apply`]).
    pub fn authorize(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            None => request,
            Some(token) => request.bearer_auth(token),
        }
    }
}
