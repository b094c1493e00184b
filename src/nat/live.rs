//! Parsing the live `nat` table as `iptables -S -t nat` prints it (pure).

use std::collections::BTreeSet;

/// A line of `iptables -S` that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}: {text}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
    /// The line.
    pub text: String,
}

/// One `-A CHAIN …` rule, as normalised tokens (see [`normalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRule {
    /// The chain.
    pub chain: String,
    /// Everything after the chain name.
    pub args: Vec<String>,
}

impl LiveRule {
    /// The `-j` target, if any.
    pub fn target(&self) -> Option<&str> {
        let at = self.args.iter().position(|a| a == "-j")?;
        self.args.get(at + 1).map(String::as_str)
    }

    /// The rule as an `iptables-restore` line (`-A CHAIN …`), quoted as iptables does.
    pub fn line(&self) -> String {
        format!("-A {} {}", self.chain, join_args(&self.args))
    }
}

/// Joins arguments into a restore line's tail, quoting what needs it and, as
/// `iptables -S` does, every comment.
pub fn join_args(args: &[String]) -> String {
    let mut out = String::new();
    let mut after_comment = false;
    for arg in args {
        if !out.is_empty() {
            out.push(' ');
        }
        if after_comment {
            out.push('"');
            out.push_str(&escape(arg));
            out.push('"');
        } else {
            out.push_str(&quote(arg));
        }
        after_comment = arg == "--comment";
    }
    out
}

/// The `nat` table: its user chains and every rule, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    /// Chains declared with `-N` (built-in chains are not listed).
    pub chains: BTreeSet<String>,
    /// Every `-A` rule, in table order.
    pub rules: Vec<LiveRule>,
}

/// Parses `iptables -S` output; `-P` policies and blank lines are ignored.
pub fn parse(text: &str) -> Result<LiveState, ParseError> {
    let mut state = LiveState::default();
    for (i, raw) in text.lines().enumerate() {
        let error = |reason| ParseError {
            line: i + 1,
            reason,
            text: raw.to_owned(),
        };
        let tokens = tokens(raw).ok_or_else(|| error("unbalanced quotes"))?;
        let mut it = tokens.into_iter();
        match (it.next().as_deref(), it.next()) {
            (None, _) | (Some("-P"), _) => {}
            (Some("-N"), Some(chain)) => {
                state.chains.insert(chain);
            }
            (Some("-A"), Some(chain)) => state.rules.push(LiveRule {
                chain,
                args: normalize(it.collect()),
            }),
            _ => return Err(error("expected -P, -N or -A CHAIN")),
        }
    }
    Ok(state)
}

/// Splits a line the way iptables-save quotes it: whitespace separates tokens, and
/// `"…"` holds spaces with `\"` and `\\` escapes. `None` for an unclosed quote.
pub fn tokens(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let token = current.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => token.push(chars.next()?),
                        other => token.push(other),
                    }
                }
            }
            c if c.is_whitespace() => out.extend(current.take()),
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(current);
    Some(out)
}

/// Drops a full host mask (`/32`, `/128`) from addresses: iptables prints `-d` with it
/// and `--ctorigdst` without, depending on the match and the backend.
pub fn normalize(tokens: Vec<String>) -> Vec<String> {
    tokens
        .into_iter()
        .map(|t| {
            let host = ["/32", "/128"].iter().find_map(|mask| {
                let addr = t.strip_suffix(mask)?;
                let ip = addr.parse::<std::net::IpAddr>().ok()?;
                let full = if ip.is_ipv4() { "/32" } else { "/128" };
                (*mask == full).then(|| addr.to_owned())
            });
            host.unwrap_or(t)
        })
        .collect()
}

/// Quotes a token for an iptables-restore line when it needs it.
pub fn quote(token: &str) -> String {
    let plain = !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\\' | '\''));
    if plain {
        return token.to_owned();
    }
    format!("\"{}\"", escape(token))
}

/// Escapes `\\` and `"` for the inside of a quoted token.
fn escape(token: &str) -> String {
    token.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = r#"-P PREROUTING ACCEPT
-P OUTPUT ACCEPT
-N DOCKER
-N VERTOGW-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -d 203.0.113.10/32 -p udp -m comment --comment "vertogw:jump" -j VERTOGW-DNAT
-A VERTOGW-DNAT -d 203.0.113.10/32 -p udp -m udp --dport 16384:17383 -m comment --comment "vertogw:node=fs1" -j DNAT --to-destination 192.0.2.11
"#;

    #[test]
    fn saved_rules_parse_into_chains_and_normalised_tokens() {
        let state = parse(SAVED).unwrap_or_else(|e| panic!("{e}"));
        let chains: Vec<&str> = state.chains.iter().map(String::as_str).collect();
        assert_eq!(chains, ["DOCKER", "VERTOGW-DNAT"]);
        assert_eq!(state.rules.len(), 3);
        assert_eq!(state.rules[1].target(), Some("VERTOGW-DNAT"));
        assert_eq!(
            state.rules[2].args[..4],
            ["-d", "203.0.113.10", "-p", "udp"]
        );
        assert!(state.rules[2].args.contains(&"vertogw:node=fs1".to_owned()));
    }

    #[test]
    fn quoted_tokens_keep_spaces_and_escapes_and_round_trip() {
        let line = r#"-A X -m comment --comment "a \"b\" c\\d" -j ACCEPT"#;
        let toks = tokens(line).unwrap_or_default();
        assert_eq!(toks[5], r#"a "b" c\d"#);
        let rule = LiveRule {
            chain: "X".into(),
            args: toks[2..].to_vec(),
        };
        assert_eq!(rule.line(), line);
        assert_eq!(tokens("-A X \"open"), None);
    }

    #[test]
    fn only_full_host_masks_are_dropped() {
        let t = |s: &str| normalize(vec![s.to_owned()]).remove(0);
        assert_eq!(t("192.0.2.1/32"), "192.0.2.1");
        assert_eq!(t("2001:db8::1/128"), "2001:db8::1");
        assert_eq!(t("192.0.2.0/24"), "192.0.2.0/24");
        assert_eq!(t("2001:db8::1/32"), "2001:db8::1/32");
        assert_eq!(t("16384:17383"), "16384:17383");
    }

    #[test]
    fn garbage_lines_are_errors_with_their_number() {
        let e = parse("-P INPUT ACCEPT\n-Z X\n").err();
        assert_eq!(e.map(|e| e.line), Some(2));
    }
}
