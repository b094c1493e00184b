//! `[gateway] allowed_origins`: which web pages may open a browser socket. Browsers
//! always send `Origin` with a WebSocket upgrade; mod_verto never checks it, so without
//! this any page on the internet can make its visitors' browsers talk to the farm.

use std::fmt;

/// One allowed origin: `https://app.example.com[:port]`, `https://*.example.com[:port]`,
/// or `*` (any origin, on purpose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin (the default without the key, but written down, so not warned
    /// about).
    Any,
    /// Exactly this origin (lower-cased, default port omitted as browsers send it).
    Exact(String),
    /// This scheme and port on any subdomain of `suffix` (not `suffix` itself).
    Subdomains {
        /// `http` or `https`.
        scheme: String,
        /// The domain after `*.`, lower-cased.
        suffix: String,
        /// `:port` as written, or empty.
        port: String,
    },
}

/// Why an `allowed_origins` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// Not `http://` or `https://`.
    #[error("write scheme://host, with scheme http or https")]
    Scheme,
    /// A path, query or user part after the host.
    #[error("an origin has no path: write scheme://host[:port] only")]
    Path,
    /// A bad host, port or wildcard.
    #[error(
        "the host must be a domain name, \"*.domain\" or an IP address, with an optional :port"
    )]
    Host,
}

impl OriginPattern {
    /// Parses one entry of `allowed_origins`.
    pub fn parse(text: &str) -> Result<OriginPattern, OriginError> {
        let lower = text.trim().to_ascii_lowercase();
        if lower == "*" {
            return Ok(OriginPattern::Any);
        }
        let (scheme, rest) = lower.split_once("://").ok_or(OriginError::Scheme)?;
        if scheme != "http" && scheme != "https" {
            return Err(OriginError::Scheme);
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(OriginError::Path);
        }
        let (host, port) = split_port(rest)?;
        let default_port =
            (scheme == "https" && port == ":443") || (scheme == "http" && port == ":80");
        let port = if default_port { "" } else { port };
        let host_char =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':');
        if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || !suffix.chars().all(host_char) || suffix.contains(['[', ':']) {
                return Err(OriginError::Host);
            }
            return Ok(OriginPattern::Subdomains {
                scheme: scheme.to_owned(),
                suffix: suffix.to_owned(),
                port: port.to_owned(),
            });
        }
        if host.is_empty() || !host.chars().all(host_char) {
            return Err(OriginError::Host);
        }
        Ok(OriginPattern::Exact(format!("{scheme}://{host}{port}")))
    }

    /// Whether the `Origin` header value `origin` (as a browser sends it) matches.
    pub fn matches(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(allowed) => *allowed == origin,
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => {
                let Some(rest) = origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                else {
                    return false;
                };
                let Ok((host, their_port)) = split_port(rest) else {
                    return false;
                };
                // The labels before the suffix: host characters only, so nothing that
                // is not a host (a path, user info) can make up a match.
                let label = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
                their_port == port
                    && host
                        .strip_suffix(suffix.as_str())
                        .and_then(|head| head.strip_suffix('.'))
                        .is_some_and(|labels| {
                            !labels.is_empty()
                                && !labels.starts_with('.')
                                && labels.chars().all(label)
                        })
            }
        }
    }
}

/// `host[:port]` → (host, `:port` or ""); an IPv6 literal keeps its brackets.
fn split_port(rest: &str) -> Result<(&str, &str), OriginError> {
    let port_at = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => i,
        _ => return Ok((rest, "")),
    };
    let port = &rest[port_at + 1..];
    if port.is_empty() || port.parse::<u16>().is_err() {
        return Err(OriginError::Host);
    }
    Ok((&rest[..port_at], &rest[port_at..]))
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Any => f.write_str("*"),
            OriginPattern::Exact(origin) => f.write_str(origin),
            OriginPattern::Subdomains {
                scheme,
                suffix,
                port,
            } => write!(f, "{scheme}://*.{suffix}{port}"),
        }
    }
}

/// Whether a request with `origin` (the header, if any) may upgrade. A request without
/// `Origin` is not from a browser page (a native client, a monitor) and is allowed.
pub fn origin_allowed(allowed: Option<&[OriginPattern]>, origin: Option<&str>) -> bool {
    match (allowed, origin) {
        (None, _) | (_, None) => true,
        (Some(list), Some(origin)) => list.iter().any(|p| p.matches(origin)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(pattern: &str, origin: &str) -> bool {
        OriginPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(origin)
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        assert!(allows("https://App.Example.com", "https://app.example.com"));
        assert!(allows(
            "https://app.example.com:443",
            "https://app.example.com"
        ));
        assert!(allows("http://localhost:8080", "http://localhost:8080"));
        assert!(!allows("https://app.example.com", "http://app.example.com"));
        assert!(!allows(
            "https://app.example.com",
            "https://app.example.com:8443"
        ));
        assert!(!allows(
            "https://app.example.com",
            "https://app.example.com.evil.test"
        ));
        assert!(!allows("https://app.example.com", "null"));
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        assert!(allows("https://*.example.com", "https://a.example.com"));
        assert!(allows("https://*.example.com", "https://b.a.example.com"));
        assert!(!allows("https://*.example.com", "https://example.com"));
        assert!(!allows("https://*.example.com", "https://evilexample.com"));
        // Not a host before the suffix: a path or user info cannot make up a match.
        assert!(!allows(
            "https://*.example.com",
            "https://evil.test/.example.com"
        ));
        assert!(!allows(
            "https://*.example.com",
            "https://evil.test@x.example.com"
        ));
        assert!(!allows("https://*.example.com", "https://..example.com"));
        assert!(allows("https://*.example.com", "https://a.b.example.com"));
        assert!(!allows(
            "https://*.example.com",
            "https://a.example.com:8443"
        ));
        assert!(allows(
            "https://*.example.com:8443",
            "https://a.example.com:8443"
        ));
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        assert_eq!(
            OriginPattern::parse("app.example.com"),
            Err(OriginError::Scheme)
        );
        assert_eq!(OriginPattern::parse("ftp://x"), Err(OriginError::Scheme));
        assert_eq!(
            OriginPattern::parse("https://x/path"),
            Err(OriginError::Path)
        );
        assert_eq!(
            OriginPattern::parse("https://x:99999"),
            Err(OriginError::Host)
        );
        assert_eq!(
            OriginPattern::parse("https://a.*.com"),
            Err(OriginError::Host)
        );
        assert_eq!(OriginPattern::parse("https://"), Err(OriginError::Host));
    }

    #[test]
    fn a_star_allows_any_origin() {
        assert!(allows("*", "https://anything.test"));
        assert!(allows("*", "null"));
    }

    #[test]
    fn no_list_or_no_header_is_allowed() {
        let list = [OriginPattern::parse("https://a.test").unwrap_or_else(|e| panic!("{e}"))];
        assert!(origin_allowed(None, Some("https://evil.test")));
        assert!(origin_allowed(Some(&list), None));
        assert!(!origin_allowed(Some(&list), Some("https://evil.test")));
        assert!(origin_allowed(Some(&list), Some("https://a.test")));
    }
}
