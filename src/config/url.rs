//! Parsing a node's `ws://` / `wss://` URL by hand (the map needs nothing more of URLs).

use std::net::Ipv6Addr;
use std::str::FromStr;

use super::error::UrlError;
use super::types::NodeUrl;

impl FromStr for NodeUrl {
    type Err = UrlError;

    fn from_str(raw: &str) -> Result<NodeUrl, UrlError> {
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Whitespace);
        }
        let (secure, rest) = split_scheme(raw)?;
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None if secure => 443,
            None => 80,
            Some(p) => parse_port(p)?,
        };
        let path = match tail.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{tail}"),
            Some(_) => tail.to_owned(),
        };
        Ok(NodeUrl {
            raw: raw.to_owned(),
            secure,
            host,
            port,
            path,
        })
    }
}

fn split_scheme(raw: &str) -> Result<(bool, &str), UrlError> {
    let (scheme, rest) = raw.split_once("://").ok_or(UrlError::Scheme)?;
    if scheme.eq_ignore_ascii_case("ws") {
        Ok((false, rest))
    } else if scheme.eq_ignore_ascii_case("wss") {
        Ok((true, rest))
    } else {
        Err(UrlError::Scheme)
    }
}

/// Splits `host[:port]` or `[v6][:port]`; the host comes back without brackets.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), UrlError> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| UrlError::BadHost(authority.to_owned()))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost(host.to_owned()));
        }
        return match after {
            "" => Ok((host.to_owned(), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_owned(), Some(port))),
                None => Err(UrlError::BadHost(authority.to_owned())),
            },
        };
    }
    if authority.matches(':').count() > 1 {
        return Err(UrlError::BadHost(authority.to_owned()));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !host.chars().all(host_chars) {
        return Err(UrlError::BadHost(host.to_owned()));
    }
    Ok((host.to_owned(), port))
}

fn parse_port(port: &str) -> Result<u16, UrlError> {
    let bad = || UrlError::BadPort(port.to_owned());
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> NodeUrl {
        s.parse().unwrap()
    }

    #[test]
    fn ws_defaults_to_port_80_and_root_path() {
        let u = url("ws://10.0.0.11");
        assert_eq!(
            (u.secure, u.host.as_str(), u.port, u.path.as_str()),
            (false, "10.0.0.11", 80, "/")
        );
    }

    #[test]
    fn wss_defaults_to_port_443_and_keeps_path_and_query() {
        let u = url("wss://fs.example.com/verto?x=1");
        assert_eq!(
            (u.secure, u.port, u.path.as_str()),
            (true, 443, "/verto?x=1")
        );
        assert_eq!(url("ws://h?x=1").path, "/?x=1");
    }

    #[test]
    fn explicit_port_and_ipv6_literal_in_brackets_are_accepted() {
        let u = url("ws://[2001:db8::1]:8081/");
        assert_eq!((u.host.as_str(), u.port), ("2001:db8::1", 8081));
        assert_eq!(url("wss://[::1]").port, 443);
        assert_eq!(url("WS://h:8081").to_string(), "WS://h:8081");
    }

    #[test]
    fn non_websocket_urls_and_broken_authorities_are_refused() {
        let cases = [
            ("http://h", UrlError::Scheme),
            ("10.0.0.1:8081", UrlError::Scheme),
            ("ws://", UrlError::NoHost),
            ("ws://:8081", UrlError::NoHost),
            ("ws://h:0", UrlError::BadPort("0".into())),
            ("ws://h:70000", UrlError::BadPort("70000".into())),
            ("ws://h:", UrlError::BadPort(String::new())),
            ("ws://h:+80", UrlError::BadPort("+80".into())),
            ("ws://u:p@h", UrlError::UserInfo),
            ("ws://h/#x", UrlError::Fragment),
            ("ws://h /", UrlError::Whitespace),
            ("ws://2001:db8::1/", UrlError::BadHost("2001:db8::1".into())),
            (
                "ws://[2001:db8::1/",
                UrlError::BadHost("[2001:db8::1".into()),
            ),
            ("ws://[nothex]/", UrlError::BadHost("nothex".into())),
            ("ws://h%41/", UrlError::BadHost("h%41".into())),
        ];
        for (raw, want) in cases {
            assert_eq!(raw.parse::<NodeUrl>(), Err(want), "{raw}");
        }
    }
}
