//! Where `ctl` sends its request and with which token: `--admin`, `--config MAP`
//! (`[admin] listen` and `token`) and `--token-file`, resolved into one [`Target`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use http::header::HeaderValue;
use http::Uri;

use crate::config::{Config, ConfigErrors};

/// The admin URL when neither `--admin` nor `--config` says one (`[admin] listen`'s
/// default).
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9090";

/// The admin API's bearer token. It is a credential: no `Debug` or `Display` shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// `text` as a token; `None` unless it is visible ASCII (what a header carries and
    /// what `[admin] token` accepts).
    pub fn new(text: &str) -> Option<Token> {
        let valid = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Token(text.to_owned()))
    }

    /// The `Authorization` header's value, `Bearer <token>`.
    pub fn header_value(&self) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The admin API to ask, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host to connect to, without IPv6 brackets.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `host:port` as the URL wrote it, for the `Host` header and messages.
    pub authority: String,
    /// A path prefix the URL carried (a reverse proxy's mount point), without the
    /// trailing `/`; empty for the listener itself.
    pub base: String,
    /// The bearer token, when one is known.
    pub token: Option<Token>,
}

/// Why no request could be made (exit 2, like an unreachable API).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// `--admin` is not a URL.
    #[error("--admin {url:?} is not a URL like http://127.0.0.1:9090")]
    BadUrl {
        /// As given.
        url: String,
    },
    /// `--admin` asks for TLS, which the admin listener does not speak.
    #[error("--admin {url:?}: https is not supported: the admin API is plain HTTP (keep it on loopback or a private network); use http://")]
    Https {
        /// As given.
        url: String,
    },
    /// A scheme other than `http`.
    #[error("--admin {url:?}: only http:// URLs are supported")]
    Scheme {
        /// As given.
        url: String,
    },
    /// `--config MAP` does not load.
    #[error("--config: the map does not load:\n{0}")]
    Map(#[source] ConfigErrors),
    /// The map's `[admin] listen` has port 0, picked anew at each start.
    #[error("--config: [admin] listen = {0} has port 0 (chosen when the gateway starts; it logs `admin API listening listen=…`): give --admin URL")]
    AnyPort(SocketAddr),
    /// `--token-file` cannot be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--token-file` holds nothing a header can carry.
    #[error("the token file {} must hold one token of visible ASCII characters", path.display())]
    BadToken {
        /// The file.
        path: PathBuf,
    },
}

/// Resolves the target from the options: `--admin` wins over the map's `[admin]
/// listen`, `--token-file` over its `token`.
pub fn resolve(
    admin: Option<&str>,
    token_file: Option<&Path>,
    map: Option<&Path>,
) -> Result<Target, TargetError> {
    let config = match map {
        Some(path) => Some(Config::load_map(path).map_err(TargetError::Map)?.config),
        None => None,
    };
    let url = match (admin, &config) {
        (Some(url), _) => url.to_owned(),
        (None, Some(config)) if config.admin.listen.port() == 0 => {
            return Err(TargetError::AnyPort(config.admin.listen))
        }
        (None, Some(config)) => url_for_listen(config.admin.listen),
        (None, None) => DEFAULT_ADMIN_URL.to_owned(),
    };
    let mut target = parse_url(&url)?;
    target.token = match token_file {
        Some(path) => Some(read_token(path)?),
        None => config.and_then(|c| c.admin.token).map(Token),
    };
    Ok(target)
}

/// The URL that reaches a listener bound to `listen`: a wildcard address is reached
/// through the loopback of its family.
pub fn url_for_listen(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

/// Parses an `http://host[:port][/prefix]` URL; a bare `host:port` means `http://`.
pub fn parse_url(url: &str) -> Result<Target, TargetError> {
    let full = match url.contains("://") {
        true => url.to_owned(),
        false => format!("http://{url}"),
    };
    let bad = || TargetError::BadUrl {
        url: url.to_owned(),
    };
    let uri: Uri = full.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(TargetError::Https {
                url: url.to_owned(),
            })
        }
        _ => {
            return Err(TargetError::Scheme {
                url: url.to_owned(),
            })
        }
    }
    let authority = uri.authority().ok_or_else(bad)?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() || uri.query().is_some() {
        return Err(bad());
    }
    Ok(Target {
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(80),
        authority: authority.as_str().to_owned(),
        base: uri.path().trim_end_matches('/').to_owned(),
        token: None,
    })
}

fn read_token(path: &Path) -> Result<Token, TargetError> {
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    // Editors and `echo` end the file with a newline; it is not part of the token.
    Token::new(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| TargetError::BadToken {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn an_http_url_gives_host_port_and_prefix() {
        let t = target("http://127.0.0.1:9090");
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.base.as_str()
            ),
            ("127.0.0.1", 9090, "127.0.0.1:9090", "")
        );
        let t = target("http://[::1]:9091/gw/");
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.authority.as_str(),
                t.base.as_str()
            ),
            ("::1", 9091, "[::1]:9091", "/gw")
        );
        assert_eq!(target("http://admin.internal").port, 80);
    }

    #[test]
    fn a_bare_address_means_http() {
        let t = target("127.0.0.1:9090");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9090));
    }

    #[test]
    fn https_and_other_schemes_are_refused_with_a_reason() {
        let e = parse_url("https://127.0.0.1:9090").map(drop);
        assert!(matches!(e, Err(TargetError::Https { .. })), "{e:?}");
        let text = parse_url("https://x")
            .err()
            .map_or(String::new(), |e| e.to_string());
        assert!(text.contains("https is not supported"), "{text}");
        assert!(matches!(
            parse_url("ftp://x:1"),
            Err(TargetError::Scheme { .. })
        ));
        assert!(matches!(
            parse_url("http://"),
            Err(TargetError::BadUrl { .. })
        ));
        assert!(matches!(
            parse_url("http:// x"),
            Err(TargetError::BadUrl { .. })
        ));
    }

    #[test]
    fn a_wildcard_listen_is_reached_through_loopback() {
        let url = |s: &str| url_for_listen(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")));
        assert_eq!(url("0.0.0.0:9090"), "http://127.0.0.1:9090");
        assert_eq!(url("[::]:9090"), "http://[::1]:9090");
        assert_eq!(url("10.0.0.5:9191"), "http://10.0.0.5:9191");
    }

    #[test]
    fn a_token_file_loses_its_trailing_newline_and_never_shows_in_debug() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token-0123456789\n").unwrap_or_else(|e| panic!("{e}"));
        let token = read_token(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token, Token("s3cret-token-0123456789".into()));
        assert!(!format!("{token:?}").contains("s3cret"));
        std::fs::write(&path, "two words\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_token(&path),
            Err(TargetError::BadToken { .. })
        ));
        std::fs::write(&path, "\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_token(&path),
            Err(TargetError::BadToken { .. })
        ));
    }

    #[test]
    fn the_token_file_wins_over_the_map_and_admin_over_its_listen() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let map = dir.path().join("m.toml");
        let text =
            "[gateway]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n\
                    [admin]\nlisten = \"0.0.0.0:9191\"\ntoken = \"from-the-map-0123456789\"\n";
        std::fs::write(&map, text).unwrap_or_else(|e| panic!("{e}"));
        let t = resolve(None, None, Some(&map)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9191));
        assert_eq!(t.token, Some(Token("from-the-map-0123456789".into())));
        let file = dir.path().join("token");
        std::fs::write(&file, "from-the-file-0123456789\n").unwrap_or_else(|e| panic!("{e}"));
        let t = resolve(Some("http://127.0.0.2:1"), Some(&file), Some(&map))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.2", 1));
        assert_eq!(t.token, Some(Token("from-the-file-0123456789".into())));
        let any_port = text.replace("0.0.0.0:9191", "127.0.0.1:0");
        std::fs::write(&map, any_port).unwrap_or_else(|e| panic!("{e}"));
        let e = resolve(None, None, Some(&map));
        assert!(matches!(e, Err(TargetError::AnyPort(_))), "{e:?}");
        let t = resolve(None, None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.authority.as_str(), t.token), ("127.0.0.1:9090", None));
    }
}
