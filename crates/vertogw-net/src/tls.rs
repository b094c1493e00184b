//! rustls configuration: the browser-facing server config, the client config used for
//! `wss://` nodes, and self-signed certificates for `demo` and tests.
//!
//! Every config is built with the aws-lc-rs provider passed explicitly, so nothing
//! depends on a process-wide default provider being installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate, key or TLS configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file held no certificate.
    #[error("{what}: no PEM certificate found")]
    NoCertificate {
        /// Where the PEM text came from.
        what: String,
    },
    /// A file held no usable private key.
    #[error("{what}: no PEM private key found (PKCS#8, PKCS#1 or SEC1 expected): {detail}")]
    NoKey {
        /// Where the PEM text came from.
        what: String,
        /// The parser's words.
        detail: String,
    },
    /// rustls refused the certificate/key pair or the settings.
    #[error("{what}: {source}")]
    Rustls {
        /// Where the material came from.
        what: String,
        /// rustls' error.
        source: rustls::Error,
    },
    /// Certificate generation failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses every certificate in a PEM text.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { what: what.into() });
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM text.
pub fn key_from_pem(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::NoKey {
        what: what.into(),
        detail: e.to_string(),
    })
}

/// Builds the browser-facing server config (TLS 1.2 and 1.3, ALPN `http/1.1`).
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certs_from_pem(cert_pem, what)?;
    let key = key_from_pem(key_pem, what)?;
    let rustls_err = |source| TlsError::Rustls {
        what: what.into(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rustls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Loads the server config from a PEM certificate chain file and a PEM key file.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let what = format!("{} / {}", cert.display(), key.display());
    server_config_from_pem(&read(cert)?, &read(key)?, &what)
}

/// Builds the config used to reach `wss://` nodes: the public web PKI roots plus, when
/// given, the certificates of a PEM bundle (FreeSWITCH nodes often use a private CA).
pub fn client_config(extra_roots: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let extra = match extra_roots {
        Some(path) => certs_from_pem(&read(path)?, &path.display().to_string())?,
        None => Vec::new(),
    };
    client_config_with_roots(extra, true)
}

/// Builds a client config that trusts exactly the certificates of `pem` (tests, demo).
pub fn client_config_trusting(pem: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with_roots(certs_from_pem(pem, "trusted certificate")?, false)
}

fn client_config_with_roots(
    extra: Vec<CertificateDer<'static>>,
    web_pki: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    if web_pki {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for cert in extra {
        roots.add(cert).map_err(|source| TlsError::Rustls {
            what: "trusted certificate".into(),
            source,
        })?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Rustls {
            what: "client config".into(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A generated certificate and its key, both PEM.
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for SelfSigned {
    // The key is secret material: keep it out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned").finish_non_exhaustive()
    }
}

/// Generates a self-signed ECDSA P-256 certificate for `names` (DNS names or IPs).
pub fn self_signed(names: &[&str]) -> Result<SelfSigned, TlsError> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let params = rcgen::CertificateParams::new(names)?;
    let cert = params.self_signed(&key)?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_loads_as_server_and_trusted_by_client() {
        let ss = self_signed(&["localhost", "127.0.0.1"]).unwrap();
        server_config_from_pem(ss.cert_pem.as_bytes(), ss.key_pem.as_bytes(), "test").unwrap();
        client_config_trusting(ss.cert_pem.as_bytes()).unwrap();
    }

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let err = server_config_from_pem(b"nope", b"nope", "x.pem").unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
