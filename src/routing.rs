//! Pure lookup from a Verto login (`user@domain`) to the partition that owns it.
//!
//! Candidates are the partitions whose domain pattern matches and whose `extensions`
//! (if any) admit the user; the most specific wins: an exact domain, then `*.suffix`
//! from the longest suffix down, then `*`; within one pattern a partition listing
//! `extensions` beats one that does not. `config::Config::parse` rejects maps where
//! two partitions could tie, so the order among equals below never decides anything.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{user_number, Config, DomainPattern, Node, Partition};

/// Routes logins for one map; built once per map so each lookup is a few hash probes.
#[derive(Debug)]
pub struct Router {
    config: Arc<Config>,
    exact: HashMap<String, Tier>,
    suffix: HashMap<String, Tier>,
    any: Tier,
    /// Per partition, indexes into `config.nodes` in priority order.
    nodes: Vec<Vec<usize>>,
}

/// The partitions sharing one domain pattern, in file order.
#[derive(Debug, Default)]
struct Tier {
    with_extensions: Vec<usize>,
    catch_all: Option<usize>,
}

impl Tier {
    fn is_empty(&self) -> bool {
        self.with_extensions.is_empty() && self.catch_all.is_none()
    }

    fn pick(&self, partitions: &[Partition], user: &str, number: Option<u64>) -> Option<usize> {
        let admits = |&i: &usize| {
            partitions
                .get(i)
                .and_then(|p| p.extensions.as_ref())
                .is_some_and(|rules| rules.iter().any(|r| r.matches_number(user, number)))
        };
        self.with_extensions
            .iter()
            .copied()
            .find(admits)
            .or(self.catch_all)
    }
}

/// Where a login goes.
#[derive(Debug, Clone)]
pub struct Route<'a> {
    /// The user part of the login, as sent.
    pub user: String,
    /// The domain, lower-cased (the default domain when the login had none).
    pub domain: String,
    /// The partition that owns the login.
    pub partition: &'a Partition,
    /// Its nodes in priority order: the first is active, the rest standbys.
    pub nodes: Vec<&'a Node>,
}

/// Why a login cannot be routed; its text goes to the browser, so it names nothing
/// but the user and domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// An empty string.
    #[error("the login is empty")]
    Empty,
    /// Nothing before the `@`.
    #[error("login has an empty user")]
    EmptyUser,
    /// No `@domain` and no `default_domain`.
    #[error("login {user} has no @domain and there is no default domain")]
    NoDomain {
        /// The login's user.
        user: String,
    },
    /// Nothing after the `@`.
    #[error("login {user}@ has an empty domain")]
    EmptyDomain {
        /// The login's user.
        user: String,
    },
    /// The domain is not a host name (a second `@`, a space, a slash, …). FreeSWITCH
    /// would split at the first `@` and look the rest up as a domain; refusing here
    /// keeps such a login away from catch-all partitions.
    #[error("domain {domain:?} is not a host name (letters, digits, '-', '_' and '.')")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
    },
    /// No partition pattern matches the domain.
    #[error("no partition serves domain {domain}")]
    UnknownDomain {
        /// The domain, lower-cased.
        domain: String,
    },
    /// Partitions serve the domain, but none admits this user.
    #[error("no partition of {domain} serves user {user}")]
    NoExtension {
        /// The login's user.
        user: String,
        /// The domain, lower-cased.
        domain: String,
    },
}

impl Router {
    /// Indexes `config`'s partitions by domain pattern; node names the map does not
    /// define are skipped (a parsed map has none).
    pub fn new(config: Arc<Config>) -> Router {
        let mut exact: HashMap<String, Tier> = HashMap::new();
        let mut suffix: HashMap<String, Tier> = HashMap::new();
        let mut any = Tier::default();
        for (i, partition) in config.partitions.iter().enumerate() {
            for pattern in &partition.domains {
                let tier = match pattern {
                    DomainPattern::Exact(name) => exact.entry(name.clone()).or_default(),
                    DomainPattern::Suffix(s) => suffix.entry(s.clone()).or_default(),
                    DomainPattern::Any => &mut any,
                };
                if partition.extensions.is_some() {
                    tier.with_extensions.push(i);
                } else if tier.catch_all.is_none() {
                    tier.catch_all = Some(i);
                }
            }
        }
        let nodes = config
            .partitions
            .iter()
            .map(|p| {
                let index = |name: &String| config.nodes.iter().position(|n| &n.name == name);
                p.nodes.iter().filter_map(index).collect()
            })
            .collect();
        Router {
            config,
            exact,
            suffix,
            any,
            nodes,
        }
    }

    /// The map this router was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Finds the partition for `login` (`user@domain`, or `user` with a default domain).
    pub fn route(&self, login: &str) -> Result<Route<'_>, RouteError> {
        if login.is_empty() {
            return Err(RouteError::Empty);
        }
        let (user, domain) = match login.split_once('@') {
            Some((user, domain)) => (user, Some(Cow::Owned(domain.to_ascii_lowercase()))),
            None => (
                login,
                self.config
                    .gateway
                    .default_domain
                    .as_deref()
                    .map(Cow::Borrowed),
            ),
        };
        if user.is_empty() {
            return Err(RouteError::EmptyUser);
        }
        let domain = domain.ok_or_else(|| RouteError::NoDomain {
            user: user.to_owned(),
        })?;
        if domain.is_empty() {
            return Err(RouteError::EmptyDomain {
                user: user.to_owned(),
            });
        }
        if !is_host_name(&domain) {
            return Err(RouteError::InvalidDomain {
                domain: domain.into_owned(),
            });
        }
        let number = user_number(user);
        let mut domain_served = false;
        for tier in self.tiers(&domain) {
            domain_served = true;
            if let Some(i) = tier.pick(&self.config.partitions, user, number) {
                if let Some(route) = self.route_to(i, user, &domain) {
                    return Ok(route);
                }
            }
        }
        let domain = domain.into_owned();
        if domain_served {
            Err(RouteError::NoExtension {
                user: user.to_owned(),
                domain,
            })
        } else {
            Err(RouteError::UnknownDomain { domain })
        }
    }

    /// The tiers matching `domain`, most specific first.
    fn tiers<'s>(&'s self, domain: &'s str) -> impl Iterator<Item = &'s Tier> + 's {
        // Suffixes after each inner dot, longest first: b.a.example.com yields
        // a.example.com, example.com, com; a leading dot leaves an empty label.
        let suffixes = domain
            .match_indices('.')
            .filter(|&(i, _)| i > 0)
            .filter_map(move |(i, _)| self.suffix.get(domain.get(i + 1..)?));
        let any = (!self.any.is_empty()).then_some(&self.any);
        self.exact
            .get(domain)
            .into_iter()
            .chain(suffixes)
            .chain(any)
    }

    fn route_to(&self, i: usize, user: &str, domain: &str) -> Option<Route<'_>> {
        let partition = self.config.partitions.get(i)?;
        let nodes = self
            .nodes
            .get(i)?
            .iter()
            .filter_map(|&n| self.config.nodes.get(n))
            .collect();
        Some(Route {
            user: user.to_owned(),
            domain: domain.to_owned(),
            partition,
            nodes,
        })
    }
}

/// Whether `domain` can be a host name: ASCII letters, digits, `-`, `_` and `.`
/// (internationalised names arrive in their `xn--` form).
fn is_host_name(domain: &str) -> bool {
    domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HEAD: &str = r#"
[gateway]
listen = "127.0.0.1:8443"
tls_cert = "c.pem"
tls_key = "k.pem"
default_domain = "Example.COM"
[[node]]
name = "fs1"
verto_url = "ws://127.0.0.1:1"
[[node]]
name = "fs2"
verto_url = "ws://127.0.0.1:2"
"#;

    /// A `[[partition]]` on fs1 with the given TOML `domains` and optional `extensions`.
    fn part(name: &str, domains: &str, extensions: Option<&str>) -> String {
        let ext = extensions.map(|e| format!("extensions = {e}\n"));
        let ext = ext.unwrap_or_default();
        format!("[[partition]]\nname = \"{name}\"\nnodes = [\"fs1\"]\ndomains = {domains}\n{ext}")
    }

    fn router(parts: &[String]) -> Router {
        router_with(HEAD, parts)
    }

    fn router_with(head: &str, parts: &[String]) -> Router {
        let text = format!("{head}{}", parts.concat());
        match Config::parse(&text, Path::new("t.toml")) {
            Ok(loaded) => Router::new(Arc::new(loaded.config)),
            Err(e) => panic!("{e}"),
        }
    }

    /// The partition name, or the error text.
    fn routed(router: &Router, login: &str) -> String {
        match router.route(login) {
            Ok(route) => route.partition.name.clone(),
            Err(e) => e.to_string(),
        }
    }

    /// `user domain partition` of a login that must route.
    fn parts(router: &Router, login: &str) -> String {
        match router.route(login) {
            Ok(r) => format!("{} {} {}", r.user, r.domain, r.partition.name),
            Err(e) => panic!("{login}: {e}"),
        }
    }

    #[test]
    fn exact_domain_beats_suffix_and_star() {
        let r = router(&[
            part("star", r#"["*"]"#, None),
            part("suffix", r#"["*.example.com"]"#, None),
            part("exact", r#"["acme.example.com"]"#, None),
        ]);
        assert_eq!(routed(&r, "1000@acme.example.com"), "exact");
        assert_eq!(routed(&r, "1000@globex.example.com"), "suffix");
        assert_eq!(routed(&r, "1000@elsewhere.test"), "star");
    }

    #[test]
    fn longer_suffix_beats_shorter_suffix() {
        let r = router(&[
            part("short", r#"["*.example.com"]"#, None),
            part("long", r#"["*.eu.example.com"]"#, None),
        ]);
        assert_eq!(routed(&r, "1@b.eu.example.com"), "long");
        assert_eq!(routed(&r, "1@eu.example.com"), "short");
        assert_eq!(routed(&r, "1@us.example.com"), "short");
    }

    #[test]
    fn suffix_pattern_does_not_serve_the_bare_domain() {
        let r = router(&[part("suffix", r#"["*.example.com"]"#, None)]);
        let unknown = "no partition serves domain";
        assert_eq!(
            routed(&r, "1@example.com"),
            format!("{unknown} example.com")
        );
        assert_eq!(
            routed(&r, "1@.example.com"),
            format!("{unknown} .example.com")
        );
    }

    #[test]
    fn partition_with_extensions_beats_one_without_at_the_same_pattern() {
        let sales = part(
            "sales",
            r#"["example.com"]"#,
            Some(r#"["1000-1999", "alice"]"#),
        );
        let r = router(&[part("all", r#"["example.com"]"#, None), sales]);
        assert_eq!(routed(&r, "1500@example.com"), "sales");
        assert_eq!(routed(&r, "alice@example.com"), "sales");
        assert_eq!(routed(&r, "2500@example.com"), "all");
    }

    #[test]
    fn a_user_the_exact_partition_does_not_list_falls_to_a_less_specific_one() {
        let exact = part("exact", r#"["acme.example.com"]"#, Some(r#"["1000-1999"]"#));
        let r = router(&[exact, part("star", r#"["*"]"#, None)]);
        assert_eq!(routed(&r, "1000@acme.example.com"), "exact");
        assert_eq!(routed(&r, "3000@acme.example.com"), "star");
    }

    #[test]
    fn login_without_domain_uses_default_domain() {
        let r = router(&[part("default", r#"["example.com"]"#, None)]);
        assert_eq!(parts(&r, "1000"), "1000 example.com default");
    }

    #[test]
    fn login_without_domain_and_no_default_domain_is_rejected() {
        let head = HEAD.replace("default_domain = \"Example.COM\"\n", "");
        let r = router_with(&head, &[part("star", r#"["*"]"#, None)]);
        let want = RouteError::NoDomain {
            user: "1000".into(),
        };
        assert_eq!(r.route("1000").err(), Some(want));
    }

    #[test]
    fn empty_user_or_domain_is_rejected_and_the_login_splits_at_the_first_at() {
        let r = router(&[part("star", r#"["*"]"#, None)]);
        assert_eq!(r.route("@example.com").err(), Some(RouteError::EmptyUser));
        assert_eq!(r.route("").err(), Some(RouteError::Empty));
        let want = RouteError::EmptyDomain {
            user: "1000".into(),
        };
        assert_eq!(r.route("1000@").err(), Some(want));
        assert_eq!(
            parts(&r, "a.b@c-d.example_1.test"),
            "a.b c-d.example_1.test star"
        );
    }

    #[test]
    fn a_domain_that_cannot_be_a_host_name_is_refused_even_by_a_catch_all() {
        let r = router(&[part("star", r#"["*"]"#, None)]);
        for login in ["a@b@c", "a@b c", "a@b/c", "a@b\nc", "a@b\u{0}", "a@bé.test"] {
            let domain = login.split_once('@').map(|(_, d)| d.to_lowercase());
            let want = RouteError::InvalidDomain {
                domain: domain.unwrap_or_default(),
            };
            assert_eq!(r.route(login).err(), Some(want), "{login:?}");
        }
        let err = r.route("a@b@c").unwrap_err().to_string();
        assert!(err.contains(r#""b@c""#), "{err}");
    }

    #[test]
    fn domain_is_compared_case_insensitively() {
        let r = router(&[part("acme", r#"["Acme.Example.com"]"#, None)]);
        assert_eq!(
            parts(&r, "Bob@ACME.example.COM"),
            "Bob acme.example.com acme"
        );
    }

    #[test]
    fn user_names_are_case_sensitive() {
        let r = router(&[part("acme", r#"["example.com"]"#, Some(r#"["alice"]"#))]);
        assert_eq!(routed(&r, "alice@example.com"), "acme");
        let want = "no partition of example.com serves user Alice";
        assert_eq!(routed(&r, "Alice@example.com"), want);
    }

    #[test]
    fn huge_numeric_user_is_in_no_range_and_does_not_panic() {
        let all = Some(r#"["0-18446744073709551615"]"#);
        let r = router(&[part("acme", r#"["example.com"]"#, all)]);
        assert_eq!(routed(&r, "18446744073709551615@example.com"), "acme");
        let huge = format!("{}@example.com", "9".repeat(10_000));
        let refused = r.route(&huge).err();
        assert!(matches!(refused, Some(RouteError::NoExtension { .. })));
    }

    #[test]
    fn route_lists_the_partitions_nodes_in_priority_order() {
        let text = "[[partition]]\nname = \"p\"\nnodes = [\"fs2\", \"fs1\"]\ndomains = [\"*\"]\n";
        let r = router(&[text.to_owned()]);
        let route = r.route("1@x").unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = route.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["fs2", "fs1"]);
        assert_eq!(r.config().partitions.len(), 1);
    }

    #[test]
    fn router_can_be_shared_between_connection_tasks() {
        fn shared<T: Send + Sync>() {}
        shared::<Router>();
    }
}
