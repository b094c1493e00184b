//! rustls configuration: the browser-facing server config (certificates picked by
//! [`SniResolver`](crate::sni::SniResolver), session resumption), the client config used
//! for `wss://` nodes, certificate facts (expiry, names) and self-signed certificates for
//! `demo` and tests.
//!
//! Every config is built with the aws-lc-rs provider passed explicitly, so nothing
//! depends on a process-wide default provider being installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::server::{ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::sni::SniResolver;

/// TLS 1.2 sessions a server config remembers by session ID, for clients that resume
/// without tickets (TLS 1.3 and ticket-capable TLS 1.2 clients resume from stateless
/// tickets and use none of it). One entry is about 250 bytes (a 32-byte ID, the ~120-byte
/// encoded session and their bookkeeping), so a full cache holds about 8 MB, plus ~4 MB of
/// table reserved up front and touched only as it fills: a third of a 100,000-session
/// gateway's clients could be ticketless and still resume after a node failure. Past it
/// the oldest session is forgotten and its client does a full handshake. rustls' default
/// is 256.
pub const SESSION_CACHE_ENTRIES: usize = 32_768;

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
    /// The private key is not the one the (first) certificate was issued for.
    #[error(
        "{what}: the private key does not belong to the certificate (their public keys \
         differ): pair each certificate with its own key"
    )]
    KeyMismatch {
        /// Where the material came from.
        what: String,
    },
    /// A certificate is not a parseable X.509 certificate.
    #[error("{what}: not a valid X.509 certificate: {detail}")]
    BadCertificate {
        /// Where the certificate came from.
        what: String,
        /// The parser's words.
        detail: String,
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

/// Parses a PEM certificate chain (leaf first) and its PEM key into the form rustls
/// serves, checking that the key belongs to the leaf certificate.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<CertifiedKey, TlsError> {
    let certs = certs_from_pem(cert_pem, what)?;
    let key = key_from_pem(key_pem, what)?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|source| match source {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { what: what.into() },
        source => TlsError::Rustls {
            what: what.into(),
            source,
        },
    })
}

/// [`certified_key_from_pem`] over a certificate chain file and a key file.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let what = format!("{} / {}", cert.display(), key.display());
    certified_key_from_pem(&read(cert)?, &read(key)?, &what)
}

/// Builds the browser-facing server config around `certs`, which picks each
/// connection's certificate: TLS 1.2 and 1.3, ALPN `http/1.1`, and session resumption
/// (TLS 1.3 and TLS 1.2 stateless tickets whose key rotates every 6 hours, tickets
/// living 12; a [`SESSION_CACHE_ENTRIES`] session-ID cache for ticketless TLS 1.2
/// clients). A resumed handshake skips the certificate signature, the most expensive
/// step of a reconnect storm.
pub fn server_config(certs: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let rustls_err = |source| TlsError::Rustls {
        what: "server config".into(),
        source,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_err)?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(rustls_err)?;
    Ok(Arc::new(config))
}

/// [`server_config`] serving one certificate whatever the client asks for.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let key = certified_key_from_pem(cert_pem, key_pem, what)?;
    server_config(Arc::new(SniResolver::new(Arc::new(key), Vec::new())))
}

/// Loads the single-certificate server config from a PEM certificate chain file and a
/// PEM key file.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let key = load_certified_key(cert, key)?;
    server_config(Arc::new(SniResolver::new(Arc::new(key), Vec::new())))
}

/// What an operator needs to know about a certificate to keep it working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The end of its validity (`notAfter`).
    pub not_after: SystemTime,
    /// Its `notAfter` as a UTC date, `YYYY-MM-DD`.
    pub not_after_date: String,
    /// The DNS names of its subjectAltName extension, as written (`*.example.com` too).
    pub dns_names: Vec<String>,
}

/// Reads the validity end and DNS names of a DER certificate.
pub fn certificate_info(
    cert: &CertificateDer<'_>,
    what: &str,
) -> Result<CertificateInfo, TlsError> {
    use x509_parser::extensions::GeneralName;
    let bad = |detail: String| TlsError::BadCertificate {
        what: what.into(),
        detail,
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| bad(e.to_string()))?;
    let not_after = parsed.validity().not_after;
    let secs = not_after.timestamp();
    let since_epoch = Duration::from_secs(secs.unsigned_abs());
    let not_after_time = match secs >= 0 {
        true => UNIX_EPOCH.checked_add(since_epoch),
        false => UNIX_EPOCH.checked_sub(since_epoch),
    }
    .unwrap_or(UNIX_EPOCH);
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?;
    let dns_names = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CertificateInfo {
        not_after: not_after_time,
        not_after_date: not_after.to_datetime().date().to_string(),
        dns_names,
    })
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
    let params = rcgen::CertificateParams::new(names)?;
    sign_self(params)
}

/// Like [`self_signed`], valid until `not_after` (whole seconds; it may lie in the past),
/// to try expiry handling.
pub fn self_signed_until(names: &[&str], not_after: SystemTime) -> Result<SelfSigned, TlsError> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names)?;
    let since_epoch = not_after.duration_since(UNIX_EPOCH).unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_after = epoch + Duration::from_secs(since_epoch.as_secs());
    // Keep notBefore earlier than notAfter for dates before rcgen's default (1975).
    params.not_before = epoch;
    sign_self(params)
}

fn sign_self(params: rcgen::CertificateParams) -> Result<SelfSigned, TlsError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
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
    fn a_key_of_another_certificate_is_a_mismatch() {
        let (a, b) = (
            self_signed(&["a.test"]).unwrap(),
            self_signed(&["b.test"]).unwrap(),
        );
        let err = certified_key_from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), "a.crt")
            .unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("a.crt: the private key does not belong"),
            "{err}"
        );
    }

    #[test]
    fn certificate_info_reads_not_after_and_dns_names() {
        let until = UNIX_EPOCH + Duration::from_secs(1_900_000_000); // 2030-03-17
        let ss = self_signed_until(&["a.test", "*.b.test", "127.0.0.1"], until).unwrap();
        let der = certs_from_pem(ss.cert_pem.as_bytes(), "t")
            .unwrap()
            .remove(0);
        let info = certificate_info(&der, "t").unwrap();
        assert_eq!(info.not_after, until);
        assert_eq!(info.not_after_date, "2030-03-17");
        assert_eq!(info.dns_names, ["a.test", "*.b.test"]);
    }

    #[test]
    fn an_expired_certificate_can_be_generated() {
        let until = UNIX_EPOCH + Duration::from_secs(86_400 * 365);
        let ss = self_signed_until(&["old.test"], until).unwrap();
        let der = certs_from_pem(ss.cert_pem.as_bytes(), "t")
            .unwrap()
            .remove(0);
        assert_eq!(
            certificate_info(&der, "t").unwrap().not_after_date,
            "1971-01-01"
        );
    }

    #[test]
    fn server_configs_resume_sessions() {
        let ss = self_signed(&["localhost"]).unwrap();
        let config =
            server_config_from_pem(ss.cert_pem.as_bytes(), ss.key_pem.as_bytes(), "t").unwrap();
        assert!(config.ticketer.enabled());
        assert!(config.session_storage.can_cache());
    }

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let err = server_config_from_pem(b"nope", b"nope", "x.pem").unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }
}
