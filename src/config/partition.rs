//! Validation of `[[partition]]` tables, including the check that no two partitions
//! can tie as the most specific match for some login.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use super::client_urls::url_key;
use super::error::{ConfigErrorKind, Report};
use super::raw::{RawPartition, SpannedList};
use super::types::{DomainPattern, ExtensionRule, Failback, Partition};

/// A partition with what the tie check needs to point at the file.
struct Checked {
    partition: Partition,
    name_line: usize,
    domain_spans: Vec<Range<usize>>,
    /// False when a domain or extension was refused: its sets are incomplete, and
    /// comparing them would report ties that fixing the typo makes disappear.
    complete: bool,
}

/// Validates every `[[partition]]` against the defined node names, then checks ties.
pub(super) fn partitions(
    raw: Vec<RawPartition>,
    node_names: &HashSet<String>,
    r: &mut Report<'_>,
) -> Vec<Partition> {
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut checked = Vec::with_capacity(raw.len());
    for raw in raw {
        let name = raw.name.get_ref().clone();
        let subject = format!("partition {name:?}");
        let name_line = r.line(&raw.name.span());
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            r.error(
                Some(&raw.name.span()),
                Some(&subject),
                ConfigErrorKind::BadPartitionName(name.clone()),
            );
        } else if let Some(&first) = first_line.get(&name) {
            let kind = ConfigErrorKind::DuplicatePartition {
                name: name.clone(),
                first,
            };
            r.error(Some(&raw.name.span()), Some(&subject), kind);
        } else {
            first_line.insert(name.clone(), name_line);
        }
        let nodes = nodes(&raw.nodes, node_names, &subject, r);
        let public_url = url_key(raw.public_url.as_ref(), "public_url", &subject, r);
        let fallback_url = url_key(raw.fallback_url.as_ref(), "fallback_url", &subject, r);
        let failback = failback(raw.failback.as_ref(), &subject, r);
        let before = r.errors.len();
        let (domains, domain_spans) = domains(&raw.domains, &subject, r);
        let extensions = raw
            .extensions
            .as_ref()
            .map(|list| extensions(list, &subject, r));
        checked.push(Checked {
            partition: Partition {
                name,
                nodes,
                domains,
                extensions,
                public_url,
                fallback_url,
                failback,
            },
            name_line,
            domain_spans,
            complete: r.errors.len() == before,
        });
    }
    ties(&checked, r);
    checked.into_iter().map(|c| c.partition).collect()
}

/// `failback`: `"auto"` (also when absent) or `"manual"`.
fn failback(value: Option<&toml::Spanned<String>>, subject: &str, r: &mut Report<'_>) -> Failback {
    match value.map(|v| v.get_ref().as_str()) {
        None | Some("auto") => Failback::Auto,
        Some("manual") => Failback::Manual,
        Some(other) => {
            let kind = ConfigErrorKind::BadFailback(other.to_owned());
            r.error(value.map(|v| v.span()).as_ref(), Some(subject), kind);
            Failback::Auto
        }
    }
}

fn nodes(
    list: &SpannedList,
    known: &HashSet<String>,
    subject: &str,
    r: &mut Report<'_>,
) -> Vec<String> {
    if list.get_ref().is_empty() {
        r.error(Some(&list.span()), Some(subject), ConfigErrorKind::NoNodes);
    }
    let mut out: Vec<String> = Vec::with_capacity(list.get_ref().len());
    for entry in list.get_ref() {
        let node = entry.get_ref();
        if !known.contains(node) {
            r.error(
                Some(&entry.span()),
                Some(subject),
                ConfigErrorKind::UnknownNode(node.clone()),
            );
        } else if out.contains(node) {
            r.error(
                Some(&entry.span()),
                Some(subject),
                ConfigErrorKind::RepeatedNode(node.clone()),
            );
        } else {
            out.push(node.clone());
        }
    }
    out
}

fn domains(
    list: &SpannedList,
    subject: &str,
    r: &mut Report<'_>,
) -> (Vec<DomainPattern>, Vec<Range<usize>>) {
    if list.get_ref().is_empty() {
        r.error(
            Some(&list.span()),
            Some(subject),
            ConfigErrorKind::NoDomains,
        );
    }
    let mut patterns: Vec<DomainPattern> = Vec::with_capacity(list.get_ref().len());
    let mut spans = Vec::with_capacity(list.get_ref().len());
    for entry in list.get_ref() {
        match entry.get_ref().parse::<DomainPattern>() {
            Ok(p) if patterns.contains(&p) => {
                r.error(
                    Some(&entry.span()),
                    Some(subject),
                    ConfigErrorKind::RepeatedDomain(p.to_string()),
                );
            }
            Ok(p) => {
                patterns.push(p);
                spans.push(entry.span());
            }
            Err(reason) => {
                let kind = ConfigErrorKind::BadDomain {
                    value: entry.get_ref().clone(),
                    reason,
                };
                r.error(Some(&entry.span()), Some(subject), kind);
            }
        }
    }
    (patterns, spans)
}

fn extensions(list: &SpannedList, subject: &str, r: &mut Report<'_>) -> Vec<ExtensionRule> {
    if list.get_ref().is_empty() {
        r.error(
            Some(&list.span()),
            Some(subject),
            ConfigErrorKind::NoExtensions,
        );
    }
    let mut out = Vec::with_capacity(list.get_ref().len());
    for entry in list.get_ref() {
        match entry.get_ref().parse::<ExtensionRule>() {
            Ok(rule) => out.push(rule),
            Err(kind) => r.error(Some(&entry.span()), Some(subject), kind),
        }
    }
    out
}

/// Only partitions listing the same pattern can tie: two different exact names never
/// match one domain, two different suffixes of equal length neither, and patterns of
/// different rank or suffix length are ordered by the routing rule.
fn ties(checked: &[Checked], r: &mut Report<'_>) {
    let mut seen: HashMap<&DomainPattern, Vec<&Checked>> = HashMap::new();
    for later in checked.iter().filter(|c| c.complete) {
        let patterns = later.partition.domains.iter().zip(&later.domain_spans);
        for (pattern, span) in patterns {
            let earlier_ones = seen.entry(pattern).or_default();
            for earlier in earlier_ones.iter() {
                let why = tie_reason(
                    earlier.partition.extensions.as_deref(),
                    later.partition.extensions.as_deref(),
                );
                if let Some(why) = why {
                    let kind = ConfigErrorKind::Tie {
                        other: earlier.partition.name.clone(),
                        line: earlier.name_line,
                        pattern: pattern.to_string(),
                        why,
                    };
                    let subject = format!("partition {:?}", later.partition.name);
                    r.error(Some(span), Some(&subject), kind);
                }
            }
            earlier_ones.push(later);
        }
    }
}

/// Why two partitions of one pattern tie, or `None` when one is always more specific.
fn tie_reason(a: Option<&[ExtensionRule]>, b: Option<&[ExtensionRule]>) -> Option<String> {
    let (a, b) = match (a, b) {
        (None, None) => return Some(
            "both serve every user (give them disjoint extensions, or list the domain in one only)"
                .to_owned(),
        ),
        (Some(a), Some(b)) => (a, b),
        // A partition listing extensions beats one that does not.
        _ => return None,
    };
    let (x, y) = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .find(|(x, y)| x.overlaps(y))?;
    let detail = match (x, y) {
        (ExtensionRule::Exact(n), ExtensionRule::Exact(_)) => format!("both list {n}"),
        (ExtensionRule::Exact(n), range) | (range, ExtensionRule::Exact(n)) => {
            format!("{n} lies in {range}")
        }
        _ => format!("extensions {x} and {y} overlap"),
    };
    Some(format!("{detail}; make their extensions disjoint"))
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{error, errors, loaded, map, partition, PARTITION};

    #[test]
    fn undefined_node_in_a_partition_names_file_line_and_fix() {
        let e = error(&map("", &PARTITION.replace("\"fs2\"]", "\"fs9\"]")));
        assert_eq!(
            e,
            "maps/t.toml:19: partition \"acme\": node \"fs9\" is not defined (define a [[node]] named \"fs9\" or remove it from nodes)"
        );
    }

    #[test]
    fn partition_list_errors_are_each_reported() {
        let p = "\n[[partition]]\nname = \"acme\"\nnodes = [\"fs1\", \"fs1\"]\ndomains = [\"a.test\", \"A.test\", \"b..test\"]\nextensions = [\"1999-1000\", \"x y\"]\n";
        let e = errors(&map("", p));
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e[0].ends_with(
                ":19: partition \"acme\": node \"fs1\" is listed twice in nodes: remove one"
            ),
            "{e:#?}"
        );
        assert!(
            e[1].ends_with("domain \"a.test\" is listed twice: remove one"),
            "{e:#?}"
        );
        assert!(
            e[2].contains("domain \"b..test\": not a domain name"),
            "{e:#?}"
        );
        assert!(e[3].ends_with(":21: partition \"acme\": extensions \"1999-1000\": it is reversed (write the smaller number first)"), "{e:#?}");
        assert!(
            e[4].contains("extension \"x y\": a user name cannot hold"),
            "{e:#?}"
        );
    }

    #[test]
    fn empty_lists_and_duplicate_partitions_are_errors() {
        let p = "\n[[partition]]\nname = \"acme\"\nnodes = []\ndomains = []\nextensions = []\n[[partition]]\nname = \"acme\"\nnodes = [\"fs2\"]\ndomains = [\"x.test\"]\n";
        let e = errors(&map("", p));
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].ends_with(
                "nodes is empty: list at least one [[node]] name (the first is the active one)"
            ),
            "{e:#?}"
        );
        assert!(
            e[1].ends_with("domains is empty: list at least one domain, \"*.suffix\" or \"*\""),
            "{e:#?}"
        );
        assert!(
            e[2].ends_with("extensions is empty: list users, or omit the key to serve every user"),
            "{e:#?}"
        );
        assert!(e[3].ends_with(":23: partition \"acme\": defined twice (first on line 18): rename or merge one of them"), "{e:#?}");
    }

    #[test]
    fn two_catch_all_partitions_on_one_domain_tie() {
        let p = format!(
            "{}{}",
            partition("a", r#"["x.test"]"#, None),
            partition("b", r#"["X.test"]"#, None)
        );
        let e = error(&map("", &p));
        assert_eq!(
            e,
            "maps/t.toml:25: partition \"b\": ties with partition \"a\" (line 18) for domain \"x.test\": \
             both serve every user (give them disjoint extensions, or list the domain in one only)"
        );
    }

    #[test]
    fn overlapping_extension_ranges_tie() {
        let p = format!(
            "{}{}",
            partition("a", r#"["*.x.test"]"#, Some(r#"["1000-1999"]"#)),
            partition("b", r#"["*.x.test"]"#, Some(r#"["1900-2999"]"#))
        );
        let e = error(&map("", &p));
        assert!(e.ends_with("for domain \"*.x.test\": extensions 1000-1999 and 1900-2999 overlap; make their extensions disjoint"), "{e}");
    }

    #[test]
    fn numeric_name_inside_another_partitions_range_ties() {
        let p = format!(
            "{}{}",
            partition("a", r#"["*"]"#, Some(r#"["2000-2999"]"#)),
            partition("b", r#"["*"]"#, Some(r#"["bob", "2500"]"#))
        );
        let e = error(&map("", &p));
        assert!(
            e.ends_with("for domain \"*\": 2500 lies in 2000-2999; make their extensions disjoint"),
            "{e}"
        );
    }

    #[test]
    fn the_same_exact_name_in_two_partitions_ties() {
        let p = format!(
            "{}{}",
            partition("a", r#"["x.test"]"#, Some(r#"["alice"]"#)),
            partition(
                "b",
                r#"["x.test", "y.test"]"#,
                Some(r#"["Alice", "alice"]"#)
            )
        );
        let e = error(&map("", &p));
        assert!(
            e.ends_with("both list alice; make their extensions disjoint"),
            "{e}"
        );
    }

    #[test]
    fn partitions_that_are_ordered_by_specificity_do_not_tie() {
        let p = [
            partition("exact", r#"["a.x.test"]"#, None),
            partition("suffix", r#"["*.x.test"]"#, None),
            partition("longer", r#"["*.a.x.test"]"#, None),
            partition("star", r#"["*"]"#, None),
            partition("star-ext", r#"["*"]"#, Some(r#"["1000-1999"]"#)),
            partition("star-ext2", r#"["*"]"#, Some(r#"["2000-2999", "01999x"]"#)),
        ];
        loaded(&map("", &p.concat()));
    }

    #[test]
    fn invalid_extensions_do_not_cause_spurious_ties() {
        let p = format!(
            "{}{}",
            partition("a", r#"["x.test"]"#, Some(r#"["1000-"]"#)),
            partition("b", r#"["x.test"]"#, None)
        );
        let e = error(&map("", &p));
        assert!(e.contains("looks like an incomplete range"), "{e}");
    }
}
