//! The addresses browsers are given (`public_url`, `fallback_url` in `[gateway]` and per
//! `[[partition]]`): validated here, and resolved per partition into what a client
//! config carries (`wsURL`, `wsFallbackURL`).

use std::net::SocketAddr;

use toml::Spanned;

use super::error::{ConfigErrorKind, Report};
use super::types::{Config, NodeUrl, Partition};

/// What a browser of one partition is told to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUrls {
    /// `wsURL`.
    pub ws_url: String,
    /// `wsFallbackURL`, when the map has one for the partition.
    pub fallback_url: Option<String>,
}

/// A `public_url` or `fallback_url` of table `subject`: a `ws://` or `wss://` URL, with
/// a warning for `ws://` (browsers on https pages refuse it, and it is unencrypted).
pub(super) fn url_key(
    value: Option<&Spanned<String>>,
    key: &'static str,
    subject: &str,
    r: &mut Report<'_>,
) -> Option<NodeUrl> {
    let value = value?;
    match value.get_ref().parse::<NodeUrl>() {
        Ok(url) => {
            if !url.secure {
                r.warn(
                    &value.span(),
                    subject,
                    &format!(
                        "{key} {:?} is ws://: browsers on https pages refuse it and it is \
                         unencrypted; use wss://",
                        url.raw
                    ),
                );
            }
            Some(url)
        }
        Err(reason) => {
            let kind = ConfigErrorKind::BadClientUrl {
                key,
                url: value.get_ref().clone(),
                reason,
            };
            r.error(Some(&value.span()), Some(subject), kind);
            None
        }
    }
}

/// The `wss://` URL derived from `listen` when `public_url` is not set: the listener's
/// address, `localhost` for an unspecified one (`0.0.0.0`, `::`).
pub fn derived_public_url(listen: SocketAddr) -> String {
    let port = listen.port();
    match listen.ip() {
        ip if ip.is_unspecified() => format!("wss://localhost:{port}/"),
        std::net::IpAddr::V4(ip) => format!("wss://{ip}:{port}/"),
        std::net::IpAddr::V6(ip) => format!("wss://[{ip}]:{port}/"),
    }
}

impl Config {
    /// `[gateway] public_url`, or the URL derived from `listen`.
    pub fn public_url(&self) -> String {
        self.public_url_at(self.gateway.listen)
    }

    /// `[gateway] public_url`, or the URL derived from the listener's actual address
    /// `listening` (which differs from `listen` when that says port 0).
    pub fn public_url_at(&self, listening: SocketAddr) -> String {
        match &self.gateway.public_url {
            Some(url) => url.raw.clone(),
            None => derived_public_url(listening),
        }
    }

    /// The web origin of the pages the gateway serves itself (`web_root`), reached at
    /// `public_url`: `https://host[:port]` for `wss://`. Those pages may always open
    /// sockets, whatever `allowed_origins` lists. `None` without both keys.
    pub fn own_web_origin(&self) -> Option<String> {
        self.gateway.web_root.as_ref()?;
        let url = self.gateway.public_url.as_ref()?;
        let (scheme, default_port) = if url.secure {
            ("https", 443)
        } else {
            ("http", 80)
        };
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.to_ascii_lowercase()
        };
        Some(match url.port {
            port if port == default_port => format!("{scheme}://{host}"),
            port => format!("{scheme}://{host}:{port}"),
        })
    }

    /// What a browser of `partition` connects to: the partition's own URLs where it has
    /// them, the gateway's otherwise.
    pub fn client_urls(&self, partition: &Partition) -> ClientUrls {
        self.client_urls_at(partition, self.gateway.listen)
    }

    /// [`Config::client_urls`] for a gateway listening on `listening`.
    pub fn client_urls_at(&self, partition: &Partition, listening: SocketAddr) -> ClientUrls {
        let ws_url = match &partition.public_url {
            Some(url) => url.raw.clone(),
            None => self.public_url_at(listening),
        };
        let fallback_url = partition
            .fallback_url
            .as_ref()
            .or(self.gateway.fallback_url.as_ref())
            .map(|url| url.raw.clone());
        ClientUrls {
            ws_url,
            fallback_url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public_url: Option<&str>, web_root: bool) -> Config {
        let text = "[gateway]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"c\"\ntls_key = \"k\"\n";
        let mut config = match Config::parse(text, std::path::Path::new("m.toml")) {
            Ok(loaded) => loaded.config,
            Err(e) => panic!("{e}"),
        };
        config.gateway.public_url = public_url.map(|u| u.parse().unwrap_or_else(|e| panic!("{e}")));
        config.gateway.web_root = web_root.then(|| "site".into());
        config
    }

    #[test]
    fn the_own_web_origin_is_the_public_urls_host_when_the_gateway_serves_pages() {
        let origin = |url, root| config(url, root).own_web_origin();
        assert_eq!(
            origin(Some("wss://Verto.example.com/"), true).as_deref(),
            Some("https://verto.example.com")
        );
        assert_eq!(
            origin(Some("wss://verto.example.com:8443/x"), true).as_deref(),
            Some("https://verto.example.com:8443")
        );
        assert_eq!(
            origin(Some("ws://[::1]:80/"), true).as_deref(),
            Some("http://[::1]")
        );
        assert_eq!(origin(Some("wss://verto.example.com/"), false), None);
        assert_eq!(origin(None, true), None);
    }

    #[test]
    fn the_derived_url_names_the_listener_and_localhost_for_any_address() {
        let url = |s: &str| derived_public_url(s.parse().expect("address"));
        assert_eq!(url("0.0.0.0:443"), "wss://localhost:443/");
        assert_eq!(url("[::]:8443"), "wss://localhost:8443/");
        assert_eq!(url("127.0.0.1:8443"), "wss://127.0.0.1:8443/");
        assert_eq!(url("[2001:db8::1]:443"), "wss://[2001:db8::1]:443/");
    }
}
