//! The browser-facing certificates of a map: the default (`tls_cert`/`tls_key`) and the
//! `[[gateway.certificate]]` ones, loaded and checked (key belongs to certificate,
//! expiry, names covered), and the rustls server config that picks one per connection
//! by SNI ([`vertogw_net::sni::SniResolver`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use vertogw_net::sni::SniResolver;
use vertogw_net::tls::{self as net_tls, CertificateInfo, TlsError};

use crate::config::Gateway;

/// A certificate expiring within this long gets a warning from `check` and `serve`.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Which of the map's certificates something is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `tls_cert`/`tls_key`.
    Default,
    /// The `[[gateway.certificate]]` at this index of `Gateway::certificates`.
    Entry(usize),
}

/// One loaded certificate chain with its key.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The SNI names it is served for; empty for the default.
    pub names: Vec<String>,
    /// The certificate chain file.
    pub cert_file: PathBuf,
    /// Its leaf's expiry and DNS names.
    pub info: CertificateInfo,
    key: Arc<CertifiedKey>,
}

/// Every browser-facing certificate of a map, loaded and matched with its key.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// `tls_cert`/`tls_key`: for clients that send no name or one no entry lists.
    pub default: Certificate,
    /// The `[[gateway.certificate]]` entries, in map order.
    pub named: Vec<Certificate>,
}

/// Loads every certificate and key of `gateway`; on failure, every problem found, each
/// with the certificate it is about.
pub fn load(gateway: &Gateway) -> Result<Certificates, Vec<(Which, TlsError)>> {
    let mut errors = Vec::new();
    let default = load_one(&gateway.tls_cert, &gateway.tls_key, Vec::new())
        .map_err(|e| errors.push((Which::Default, e)))
        .ok();
    let mut named = Vec::new();
    for (i, entry) in gateway.certificates.iter().enumerate() {
        match load_one(&entry.cert, &entry.key, entry.names.clone()) {
            Ok(cert) => named.push(cert),
            Err(e) => errors.push((Which::Entry(i), e)),
        }
    }
    match default {
        Some(default) if errors.is_empty() => Ok(Certificates { default, named }),
        _ => Err(errors),
    }
}

fn load_one(
    cert: &std::path::Path,
    key: &std::path::Path,
    names: Vec<String>,
) -> Result<Certificate, TlsError> {
    let certified = net_tls::load_certified_key(cert, key)?;
    let what = cert.display().to_string();
    let leaf = certified
        .cert
        .first()
        .ok_or_else(|| TlsError::NoCertificate { what: what.clone() })?;
    let info = net_tls::certificate_info(leaf, &what)?;
    Ok(Certificate {
        names,
        cert_file: cert.to_owned(),
        info,
        key: Arc::new(certified),
    })
}

impl Certificates {
    /// The browser-facing server config: SNI picks among the certificates, session
    /// resumption on ([`net_tls::server_config`]).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let named = self
            .named
            .iter()
            .map(|c| (c.names.clone(), Arc::clone(&c.key)));
        let resolver = SniResolver::new(Arc::clone(&self.default.key), named);
        net_tls::server_config(Arc::new(resolver))
    }

    /// Every certificate with what it is: the default first, then the entries.
    pub fn all(&self) -> impl Iterator<Item = (Which, &Certificate)> {
        let named = self.named.iter().enumerate();
        std::iter::once((Which::Default, &self.default))
            .chain(named.map(|(i, c)| (Which::Entry(i), c)))
    }

    /// What works but will not for long, or not for every browser: a certificate that
    /// expired or expires within [`EXPIRY_WARNING`] of `now`, and an entry name its
    /// certificate does not cover (browsers asking for it refuse the certificate).
    pub fn warnings(&self, now: SystemTime) -> Vec<(Which, String)> {
        let mut out = Vec::new();
        for (which, cert) in self.all() {
            if let Some(message) = expiry(cert, now) {
                out.push((which, message));
            }
            for name in cert.names.iter().filter(|n| !covers(&cert.info, n)) {
                let message = format!(
                    "{} does not cover {name:?} (its DNS names: {}): browsers asking for \
                     {name} will refuse it; get a certificate for the name or remove it \
                     from names",
                    cert.cert_file.display(),
                    listed(&cert.info.dns_names),
                );
                out.push((which, message));
            }
        }
        out
    }
}

fn listed(names: &[String]) -> String {
    match names.is_empty() {
        true => "none".to_owned(),
        false => names.join(", "),
    }
}

fn expiry(cert: &Certificate, now: SystemTime) -> Option<String> {
    let (file, date) = (cert.cert_file.display(), &cert.info.not_after_date);
    match cert.info.not_after.duration_since(now) {
        Err(_) => Some(format!(
            "certificate {file} expired on {date}: browsers refuse it; renew it"
        )),
        Ok(left) if left < EXPIRY_WARNING => {
            let when = match left.as_secs() / 86_400 {
                0 => "within a day".to_owned(),
                1 => "in 1 day".to_owned(),
                days => format!("in {days} days"),
            };
            Some(format!(
                "certificate {file} expires on {date} ({when}): renew it"
            ))
        }
        Ok(_) => None,
    }
}

/// Whether a certificate's DNS names cover an SNI name (`*.x` in either stands for one
/// label; a wildcard entry name is covered only by the same wildcard).
fn covers(info: &CertificateInfo, name: &str) -> bool {
    info.dns_names.iter().any(|san| {
        let san = san.to_ascii_lowercase();
        if san == name {
            return true;
        }
        let (Some(suffix), false) = (san.strip_prefix("*."), name.starts_with("*.")) else {
            return false;
        };
        name.split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
    })
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn info(names: &[&str]) -> CertificateInfo {
        CertificateInfo {
            not_after: UNIX_EPOCH,
            not_after_date: "1970-01-01".into(),
            dns_names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn a_certificate_covers_its_names_and_one_label_under_its_wildcards() {
        let i = info(&["a.test", "*.Other.test"]);
        assert!(covers(&i, "a.test"));
        assert!(covers(&i, "b.other.test"));
        assert!(covers(&i, "*.other.test"));
        assert!(!covers(&i, "other.test"));
        assert!(!covers(&i, "c.b.other.test"));
        assert!(!covers(&i, "*.a.test"));
        assert!(!covers(&info(&["x.a.test"]), "*.a.test"));
    }
}
