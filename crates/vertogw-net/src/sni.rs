//! Picks a server's certificate by the name the client asks for (SNI): an exact name,
//! else a one-label wildcard, else the default.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A [`ResolvesServerCert`] over named certificates and a default, matching names the
/// way browsers check them: an exact name first, then `*.rest`, which stands for exactly
/// one label (`*.example.com` serves `a.example.com`, not `example.com` nor
/// `b.a.example.com`). Names compare case-insensitively. A client that sends no name, or
/// one that nothing matches, gets the default.
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    /// A resolver serving `default` unless one of `named`'s names matches. Each entry
    /// lists its names (`a.example.com` or `*.example.com`) and its certificate; when
    /// two entries list the same name the first wins (callers reject such lists).
    pub fn new(
        default: Arc<CertifiedKey>,
        named: impl IntoIterator<Item = (Vec<String>, Arc<CertifiedKey>)>,
    ) -> SniResolver {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (names, key) in named {
            for name in names {
                let name = name.to_ascii_lowercase();
                let table = match name.strip_prefix("*.") {
                    Some(rest) => wildcard.entry(rest.to_owned()),
                    None => exact.entry(name),
                };
                table.or_insert_with(|| Arc::clone(&key));
            }
        }
        SniResolver {
            exact,
            wildcard,
            default,
        }
    }

    /// The certificate for a client that asked for `server_name` (`None`: no SNI).
    pub fn pick(&self, server_name: Option<&str>) -> &Arc<CertifiedKey> {
        server_name
            .and_then(|name| self.named(name))
            .unwrap_or(&self.default)
    }

    fn named(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = name.strip_suffix('.').unwrap_or(name);
        // rustls lower-cases SNI already; this keeps `pick` right for any caller.
        let name: Cow<'_, str> = match name.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(name.to_ascii_lowercase()),
            false => Cow::Borrowed(name),
        };
        if let Some(key) = self.exact.get(name.as_ref()) {
            return Some(key);
        }
        // One label only: `*.rest` can match nothing but `label.rest`.
        let (label, rest) = name.split_once('.')?;
        if label.is_empty() {
            return None;
        }
        self.wildcard.get(rest)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.pick(client_hello.server_name())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{certified_key_from_pem, self_signed};

    fn key(name: &str) -> Arc<CertifiedKey> {
        let ss = self_signed(&[name]).unwrap_or_else(|e| panic!("{e}"));
        let key = certified_key_from_pem(ss.cert_pem.as_bytes(), ss.key_pem.as_bytes(), name);
        Arc::new(key.unwrap_or_else(|e| panic!("{e}")))
    }

    /// A resolver with a default and `entries`; returns it and each entry's key.
    fn resolver(entries: &[&[&str]]) -> (SniResolver, Arc<CertifiedKey>, Vec<Arc<CertifiedKey>>) {
        let default = key("default.test");
        let keys: Vec<_> = entries.iter().map(|names| key(names[0])).collect();
        let named = entries.iter().zip(&keys).map(|(names, key)| {
            let names = names.iter().map(|n| n.to_string()).collect();
            (names, Arc::clone(key))
        });
        (SniResolver::new(Arc::clone(&default), named), default, keys)
    }

    fn same(a: &Arc<CertifiedKey>, b: &Arc<CertifiedKey>) -> bool {
        Arc::ptr_eq(a, b)
    }

    #[test]
    fn an_exact_name_beats_a_wildcard_whatever_the_order() {
        let (r, _, keys) = resolver(&[&["*.example.com"], &["a.example.com"]]);
        assert!(same(r.pick(Some("a.example.com")), &keys[1]));
        assert!(same(r.pick(Some("b.example.com")), &keys[0]));
    }

    #[test]
    fn a_wildcard_stands_for_exactly_one_label() {
        let (r, default, keys) = resolver(&[&["*.example.com"]]);
        assert!(same(r.pick(Some("x.example.com")), &keys[0]));
        assert!(same(r.pick(Some("example.com")), &default));
        assert!(same(r.pick(Some("y.x.example.com")), &default));
        assert!(same(r.pick(Some(".example.com")), &default));
    }

    #[test]
    fn the_longest_matching_wildcard_is_the_one_for_the_first_label() {
        let (r, _, keys) = resolver(&[&["*.example.com"], &["*.a.example.com"]]);
        assert!(same(r.pick(Some("x.a.example.com")), &keys[1]));
        assert!(same(r.pick(Some("a.example.com")), &keys[0]));
    }

    #[test]
    fn no_sni_or_an_unknown_name_gets_the_default() {
        let (r, default, _) = resolver(&[&["a.example.com", "*.other.test"]]);
        assert!(same(r.pick(None), &default));
        assert!(same(r.pick(Some("unknown.test")), &default));
        assert!(same(r.pick(Some("other.test")), &default));
    }

    #[test]
    fn names_compare_case_insensitively_and_ignore_a_trailing_dot() {
        let (r, _, keys) = resolver(&[&["A.Example.COM"], &["*.Other.Test"]]);
        assert!(same(r.pick(Some("a.example.com")), &keys[0]));
        assert!(same(r.pick(Some("A.EXAMPLE.com.")), &keys[0]));
        assert!(same(r.pick(Some("B.OTHER.test")), &keys[1]));
    }

    #[test]
    fn the_first_entry_listing_a_name_wins() {
        let (r, _, keys) = resolver(&[&["a.test"], &["a.test", "b.test"]]);
        assert!(same(r.pick(Some("a.test")), &keys[0]));
        assert!(same(r.pick(Some("b.test")), &keys[1]));
    }
}
