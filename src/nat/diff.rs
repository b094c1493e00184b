//! The difference between a plan and the live `nat` table, and what vertogw owns in
//! it (pure).

use std::fmt;

use super::live::{LiveRule, LiveState};
use super::plan::{Plan, Rule};
use super::{DNAT_CHAIN, SNAT_CHAIN};

/// What must change for the live table to match a plan. Rules that neither live in
/// vertogw's chains nor jump to them never appear here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// vertogw chains that do not exist.
    pub missing_chains: Vec<&'static str>,
    /// Planned rules of vertogw's chains that are not in them.
    pub add: Vec<Rule>,
    /// Rules in vertogw's chains that the plan does not have (a removed node, a
    /// changed address, or a rule added by hand).
    pub remove: Vec<LiveRule>,
    /// Planned jumps that are missing.
    pub add_jumps: Vec<Rule>,
    /// Jumps into vertogw's chains that the plan does not have (e.g. an old public_ip).
    pub stale_jumps: Vec<LiveRule>,
}

impl Diff {
    /// True when the live table already matches the plan.
    pub fn is_empty(&self) -> bool {
        self.missing_chains.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
            && self.add_jumps.is_empty()
            && self.stale_jumps.is_empty()
    }
}

/// One line per change: `+ ` for what the plan adds, `- ` for what it removes.
impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chain in &self.missing_chains {
            writeln!(f, "+ -N {chain}")?;
        }
        for rule in self.add.iter().chain(&self.add_jumps) {
            writeln!(f, "+ {}", rule.line())?;
        }
        for rule in self.remove.iter().chain(&self.stale_jumps) {
            writeln!(f, "- {}", rule.line())?;
        }
        Ok(())
    }
}

/// Whether a chain is one of vertogw's.
pub fn is_own_chain(chain: &str) -> bool {
    chain == DNAT_CHAIN || chain == SNAT_CHAIN
}

/// Whether a rule outside vertogw's chains jumps into one of them.
fn is_jump(rule: &LiveRule) -> bool {
    !is_own_chain(&rule.chain) && rule.target().is_some_and(is_own_chain)
}

/// Compares as multisets: order inside vertogw's chains does not matter (node ranges
/// are disjoint), and a duplicated live rule is one too many.
pub fn diff(plan: &Plan, live: &LiveState) -> Diff {
    let missing_chains = [DNAT_CHAIN, SNAT_CHAIN]
        .into_iter()
        .filter(|c| !live.chains.contains(*c))
        .collect();
    let own: Vec<&LiveRule> = live
        .rules
        .iter()
        .filter(|r| is_own_chain(&r.chain))
        .collect();
    let jumps: Vec<&LiveRule> = live.rules.iter().filter(|r| is_jump(r)).collect();
    let (add, remove) = match_up(&plan.rules, &own);
    let (add_jumps, stale_jumps) = match_up(&plan.jumps, &jumps);
    Diff {
        missing_chains,
        add,
        remove,
        add_jumps,
        stale_jumps,
    }
}

/// Pairs each wanted rule with an equal live one: what is left over on each side.
fn match_up(wanted: &[Rule], live: &[&LiveRule]) -> (Vec<Rule>, Vec<LiveRule>) {
    let mut claimed = vec![false; live.len()];
    let mut missing = Vec::new();
    for rule in wanted {
        let key = rule.as_live();
        let found = (0..live.len()).find(|&i| !claimed[i] && *live[i] == key);
        match found {
            Some(i) => claimed[i] = true,
            None => missing.push(rule.clone()),
        }
    }
    let extra = live
        .iter()
        .zip(&claimed)
        .filter(|(_, &c)| !c)
        .map(|(r, _)| (*r).clone())
        .collect();
    (missing, extra)
}

/// Everything of vertogw's in a live table, which `flush` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// Rules anywhere that jump into vertogw's chains (they must go before the chains).
    pub jumps: Vec<LiveRule>,
    /// vertogw's chains that exist.
    pub chains: Vec<String>,
    /// How many rules those chains hold.
    pub rules: usize,
}

impl Owned {
    /// True when vertogw has nothing in the table.
    pub fn is_empty(&self) -> bool {
        self.jumps.is_empty() && self.chains.is_empty()
    }
}

/// What vertogw owns in `live`: its chains and the jumps into them, whatever the map.
pub fn owned(live: &LiveState) -> Owned {
    Owned {
        jumps: live.rules.iter().filter(|r| is_jump(r)).cloned().collect(),
        chains: live
            .chains
            .iter()
            .filter(|c| is_own_chain(c))
            .cloned()
            .collect(),
        rules: live.rules.iter().filter(|r| is_own_chain(&r.chain)).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::live::parse;
    use crate::nat::plan::{plan, tests::config, tests::MAP};

    fn the_plan(text: &str) -> Plan {
        plan(&config(text)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The table after applying `plan` to an empty one, plus `extra` lines.
    fn applied(plan: &Plan, extra: &str) -> LiveState {
        let mut text = format!("-N {DNAT_CHAIN}\n-N {SNAT_CHAIN}\n");
        for rule in plan.jumps.iter().chain(&plan.rules) {
            text.push_str(&rule.line());
            text.push('\n');
        }
        text.push_str(extra);
        parse(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_empty_table_needs_everything() {
        let plan = the_plan(MAP);
        let d = diff(&plan, &LiveState::default());
        assert_eq!(d.missing_chains, [DNAT_CHAIN, SNAT_CHAIN]);
        assert_eq!((d.add.len(), d.add_jumps.len()), (4, 3));
        assert!(d.remove.is_empty() && d.stale_jumps.is_empty());
    }

    #[test]
    fn an_applied_plan_has_no_difference_whatever_foreign_rules_exist() {
        let plan = the_plan(MAP);
        let foreign = "-N DOCKER\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
                       -A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE\n";
        let d = diff(&plan, &applied(&plan, foreign));
        assert!(d.is_empty(), "{d}");
        assert_eq!(d.to_string(), "");
    }

    #[test]
    fn a_node_removed_from_the_map_is_removed_from_the_table() {
        let old = the_plan(MAP);
        let new = the_plan(
            &MAP.replace("nodes = [\"fs1\", \"fs2\"]", "nodes = [\"fs1\"]")
                .replace("rtp_ip = \"192.0.2.12\"\nrtp_ports = \"17384-18383\"\n", ""),
        );
        let d = diff(&new, &applied(&old, ""));
        assert!(d.add.is_empty() && d.add_jumps.is_empty());
        let removed: Vec<String> = d.remove.iter().map(LiveRule::line).collect();
        assert_eq!(removed.len(), 2);
        assert!(
            removed.iter().all(|l| l.contains("vertogw:node=fs2")),
            "{removed:?}"
        );
    }

    #[test]
    fn a_hand_added_rule_in_our_chain_and_a_duplicate_jump_are_reported() {
        let plan = the_plan(MAP);
        let extra = "-A VERTOGW-DNAT -p tcp -j ACCEPT\n\
                     -A PREROUTING -d 203.0.113.10/32 -p udp -m comment --comment \"vertogw:jump\" -j VERTOGW-DNAT\n";
        let d = diff(&plan, &applied(&plan, extra));
        assert_eq!(
            d.to_string(),
            "- -A VERTOGW-DNAT -p tcp -j ACCEPT\n\
             - -A PREROUTING -d 203.0.113.10 -p udp -m comment --comment \"vertogw:jump\" -j VERTOGW-DNAT\n"
        );
    }

    #[test]
    fn a_changed_public_ip_replaces_the_jumps_and_rules() {
        let old = the_plan(MAP);
        let new = the_plan(&MAP.replace("203.0.113.10", "203.0.113.20"));
        let d = diff(&new, &applied(&old, ""));
        assert_eq!((d.add_jumps.len(), d.stale_jumps.len()), (2, 2));
        assert_eq!((d.add.len(), d.remove.len()), (4, 4));
    }

    #[test]
    fn owned_is_our_chains_and_every_jump_into_them() {
        let plan = the_plan(MAP);
        let live = applied(
            &plan,
            "-N OTHER\n-A OTHER -j VERTOGW-SNAT\n-A OTHER -j ACCEPT\n",
        );
        let o = owned(&live);
        assert_eq!(o.chains, [DNAT_CHAIN, SNAT_CHAIN]);
        assert_eq!((o.jumps.len(), o.rules), (4, 4));
        assert!(owned(&LiveState::default()).is_empty());
    }
}
