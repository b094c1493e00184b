//! Validation of `[[gateway.certificate]]`: SNI names and certificate paths (the files
//! themselves are checked by `Config::load`, through [`crate::tls`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use rustls_pki_types::DnsName;
use toml::Spanned;

use super::error::{ConfigError, ConfigErrorKind, Report};
use super::raw::RawCertificate;
use super::types::{Gateway, SniCertificate};
use super::validate::GatewayLines;
use crate::tls::{Certificates, Which};

/// Why a `[[gateway.certificate]]` name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniNameError {
    /// An empty string.
    #[error("it is empty")]
    Empty,
    /// A `*` other than a leading `*.`.
    #[error(
        "a wildcard must lead as \"*.\" and stand for one whole label, e.g. \"*.example.com\""
    )]
    Wildcard,
    /// An IP address.
    #[error(
        "an IP address: browsers send no name when they connect to an address, so such \
         connections get the default certificate (tls_cert)"
    )]
    IpAddress,
    /// Anything else that is not a DNS name.
    #[error(
        "not a DNS name (labels of letters, digits, '-' and '_', at most 63 characters \
         each and 253 in all, no trailing dot)"
    )]
    NotDns,
}

/// The subject of errors about the `n`th (1-based) entry.
pub(super) fn subject(n: usize) -> String {
    format!("[[gateway.certificate]] #{n}")
}

/// Checks one name: `host.example.com` or `*.example.com`; returns it lower-cased.
pub(super) fn sni_name(name: &str) -> Result<String, SniNameError> {
    if name.is_empty() {
        return Err(SniNameError::Empty);
    }
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    if rest.contains('*') {
        return Err(SniNameError::Wildcard);
    }
    if !wildcard && rest.parse::<IpAddr>().is_ok() {
        return Err(SniNameError::IpAddress);
    }
    if rest.ends_with('.') || DnsName::try_from(rest).is_err() {
        return Err(SniNameError::NotDns);
    }
    Ok(name.to_ascii_lowercase())
}

/// Validates every entry; returns those without errors and the line of each (in the
/// same order). A name listed twice anywhere is reported at its second listing.
pub(super) fn entries(
    raw: Option<Vec<Spanned<RawCertificate>>>,
    dir: &Path,
    r: &mut Report<'_>,
) -> (Vec<SniCertificate>, Vec<usize>) {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    // Each name → line of the entry that listed it first.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, entry) in raw.into_iter().flatten().enumerate() {
        let before = r.errors.len();
        let subject = subject(i + 1);
        let line = r.line(&entry.span());
        let entry = entry.into_inner();
        let names = names(entry.names, line, &subject, &mut seen, r);
        let cert = path(&entry.cert, "cert", dir, &subject, r);
        let key = path(&entry.key, "key", dir, &subject, r);
        if let (Some(cert), Some(key), true) = (cert, key, r.errors.len() == before) {
            out.push(SniCertificate { names, cert, key });
            lines.push(line);
        }
    }
    (out, lines)
}

fn names(
    list: super::raw::SpannedList,
    line: usize,
    subject: &str,
    seen: &mut HashMap<String, usize>,
    r: &mut Report<'_>,
) -> Vec<String> {
    if list.get_ref().is_empty() {
        r.error(
            Some(&list.span()),
            Some(subject),
            ConfigErrorKind::NoCertificateNames,
        );
    }
    let mut names = Vec::new();
    for item in list.into_inner() {
        let name = match sni_name(item.get_ref()) {
            Ok(name) => name,
            Err(reason) => {
                let value = item.get_ref().clone();
                let kind = ConfigErrorKind::BadCertificateName { value, reason };
                r.error(Some(&item.span()), Some(subject), kind);
                continue;
            }
        };
        if let Some(&first) = seen.get(&name) {
            let kind = ConfigErrorKind::RepeatedCertificateName { name, line: first };
            r.error(Some(&item.span()), Some(subject), kind);
            continue;
        }
        seen.insert(name.clone(), line);
        names.push(name);
    }
    names
}

fn path(
    value: &Spanned<String>,
    key: &'static str,
    dir: &Path,
    subject: &str,
    r: &mut Report<'_>,
) -> Option<std::path::PathBuf> {
    if value.get_ref().is_empty() {
        r.error(
            Some(&value.span()),
            Some(subject),
            ConfigErrorKind::EmptyPath(key),
        );
        return None;
    }
    Some(dir.join(value.get_ref()))
}

/// What loading a map's certificate files found.
pub(super) struct FileCheck {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    /// The certificates, when every one loaded.
    pub certificates: Option<Certificates>,
}

/// Loads every certificate and key of `gateway` (of the map at `file`), locating each
/// problem at the key or entry it comes from; warns as [`Certificates::warnings`] does.
pub(super) fn check_files(
    gateway: &Gateway,
    lines: &GatewayLines,
    file: &Path,
    now: SystemTime,
) -> FileCheck {
    let locate = |which: Which| match which {
        Which::Default => (lines.tls_cert, "[gateway]".to_owned()),
        Which::Entry(i) => (
            lines.certificates.get(i).copied().unwrap_or(0),
            subject(i + 1),
        ),
    };
    match crate::tls::load(gateway) {
        Err(failures) => FileCheck {
            errors: failures
                .into_iter()
                .map(|(which, e)| {
                    let (line, subject) = locate(which);
                    let kind = match which {
                        Which::Default => ConfigErrorKind::Tls(e),
                        Which::Entry(_) => ConfigErrorKind::SniTls(e),
                    };
                    ConfigError {
                        file: file.to_owned(),
                        line: Some(line),
                        subject: Some(subject),
                        kind,
                    }
                })
                .collect(),
            warnings: Vec::new(),
            certificates: None,
        },
        Ok(certificates) => FileCheck {
            errors: Vec::new(),
            warnings: certificates
                .warnings(now)
                .into_iter()
                .map(|(which, message)| {
                    let (line, subject) = locate(which);
                    format!("{}:{line}: {subject}: {message}", file.display())
                })
                .collect(),
            certificates: Some(certificates),
        },
    }
}

#[cfg(test)]
mod tests;
