//! `vertogw iptables plan|apply|flush|check`: the load balancer's RTP forwarding rules
//! generated from the map, and the start-up apply of `manage_iptables`.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use tracing::{info, warn};

use crate::config::Config;
use crate::nat::{self, NatError, Plan, Runner};

/// What to do with the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Print the restore batch and a summary; with `live`, the batch `apply` would
    /// send to the current table.
    Plan {
        /// Diff against the live table instead of an empty one.
        live: bool,
    },
    /// Make the live table match the map.
    Apply,
    /// Remove everything vertogw owns.
    Flush,
    /// Exit 0 when the live table matches the map, else print the difference.
    Check,
}

/// Exit code of `check` when the live rules differ from the map.
pub const EXIT_DIFFERS: i32 = super::exit::NO;
/// Exit code when the map or the table cannot be read, or iptables fails.
pub const EXIT_ERROR: i32 = super::exit::ERROR;

/// Runs `action` for the map at `path`, with iptables behind `runner`.
///
/// The map is parsed without loading its certificates: the load balancer need not hold
/// the gateway's key.
pub fn run(
    path: &Path,
    action: Action,
    runner: &Runner,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let config = match Config::load_map(path) {
        Ok(loaded) => loaded.config,
        Err(errors) => {
            let _ = writeln!(stderr, "{errors}");
            return EXIT_ERROR;
        }
    };
    let result = match action {
        Action::Flush => flush(&config, runner, stdout),
        _ => nat::plan(&config).and_then(|plan| match action {
            Action::Plan { live: false } => print_plan(&plan, stdout).map(|()| 0),
            Action::Plan { live: true } => plan_live(&plan, runner, stdout),
            Action::Check => check(&plan, runner, stdout, stderr),
            _ => apply(&plan, runner, stdout, stderr),
        }),
    };
    result.unwrap_or_else(|e| {
        let _ = writeln!(stderr, "error: {e}");
        EXIT_ERROR
    })
}

/// Writes `text` with every line turned into a `# ` comment, so the whole output of
/// `plan` stays valid `iptables-restore` input.
fn comment(out: &mut dyn Write, text: &str) -> Result<(), NatError> {
    for line in text.lines() {
        let _ = writeln!(out, "# {line}");
    }
    Ok(())
}

fn print_plan(plan: &Plan, out: &mut dyn Write) -> Result<(), NatError> {
    comment(out, &nat::summary(plan))?;
    let _ = writeln!(
        out,
        "# {}-restore -w --noflush input (nat table); `apply` sends only what differs:",
        plan.iptables
    );
    let _ = write!(out, "{}", nat::render(plan));
    Ok(())
}

fn plan_live(plan: &Plan, runner: &Runner, out: &mut dyn Write) -> Result<i32, NatError> {
    comment(out, &nat::summary(plan))?;
    let diff = nat::check(runner, plan)?;
    if diff.is_empty() {
        let _ = writeln!(out, "# the live table matches: apply would send nothing");
    } else {
        comment(out, &format!("changes:\n{diff}"))?;
        let _ = write!(out, "{}", nat::render_batch(plan, &diff));
    }
    Ok(0)
}

fn apply(
    plan: &Plan,
    runner: &Runner,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, NatError> {
    if let Some(warning) = forwarding_warning(runner, plan.public_ip) {
        let _ = writeln!(err, "warning: {warning}");
    }
    let applied = nat::apply(runner, plan)?;
    if applied.diff.is_empty() {
        let _ = writeln!(out, "no change: the live rules already match the map");
    } else {
        let _ = write!(out, "{}", applied.diff);
        let _ = writeln!(out, "applied: {}", counts(&applied.diff));
    }
    Ok(0)
}

fn counts(diff: &nat::Diff) -> String {
    let added = diff.add.len() + diff.add_jumps.len();
    let removed = diff.remove.len() + diff.stale_jumps.len();
    format!("{added} rule(s) added, {removed} removed")
}

fn check(
    plan: &Plan,
    runner: &Runner,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, NatError> {
    if let Some(warning) = forwarding_warning(runner, plan.public_ip) {
        let _ = writeln!(err, "warning: {warning}");
    }
    let diff = nat::check(runner, plan)?;
    if diff.is_empty() {
        let _ = writeln!(out, "in sync: {} node(s) forwarded", plan.nodes.len());
        return Ok(0);
    }
    let _ = writeln!(
        out,
        "the live rules differ from the map (+ missing, - unexpected):"
    );
    let _ = write!(out, "{diff}");
    Ok(EXIT_DIFFERS)
}

fn flush(config: &Config, runner: &Runner, out: &mut dyn Write) -> Result<i32, NatError> {
    let iptables = config.media.as_ref().map_or("iptables", |m| &m.iptables);
    let flushed = nat::flush(runner, iptables)?;
    if flushed.owned.is_empty() {
        let _ = writeln!(
            out,
            "nothing to flush: vertogw has no rules in the nat table"
        );
        return Ok(0);
    }
    for jump in &flushed.owned.jumps {
        let _ = writeln!(out, "- {}", jump.line());
    }
    let o = &flushed.owned;
    let _ = writeln!(
        out,
        "flushed: {} jump(s), chain(s) {} with {} rule(s)",
        o.jumps.len(),
        o.chains.join(", "),
        o.rules
    );
    Ok(0)
}

/// A warning when the kernel does not forward packets of `public_ip`'s version.
fn forwarding_warning(runner: &Runner, public_ip: IpAddr) -> Option<String> {
    let (key, file) = if public_ip.is_ipv4() {
        ("net.ipv4.ip_forward", "ip_forward")
    } else {
        ("net.ipv6.conf.all.forwarding", "forwarding")
    };
    match nat::forwarding_enabled(runner, public_ip) {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "{key} is 0: the kernel drops the DNAT'ed RTP instead of forwarding it to the \
             nodes; run `sysctl -w {key}=1` and persist it in /etc/sysctl.d/"
        )),
        Err(e) => Some(format!("cannot read {key} ({file}): {e}")),
    }
}

/// `serve` with `manage_iptables = true`: applies the rules on this host before the
/// gateway listens. A failure stops the start: an operator who asked vertogw to own
/// the rules must not get a gateway whose calls have no media.
pub fn apply_on_start(config: &Config) -> Result<(), NatError> {
    let Some(media) = config.media.as_ref().filter(|m| m.manage_iptables) else {
        return Ok(());
    };
    let plan = nat::plan(config)?;
    let runner = Runner::host();
    if let Some(warning) = forwarding_warning(&runner, media.public_ip) {
        warn!("{warning}");
    }
    let applied = nat::apply(&runner, &plan)?;
    if applied.diff.is_empty() {
        info!(nodes = plan.nodes.len(), "iptables: rules already in place");
    } else {
        for line in applied.diff.to_string().lines() {
            info!(change = line, "iptables");
        }
        info!(
            nodes = plan.nodes.len(),
            "iptables: {}",
            counts(&applied.diff)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_plan(map: &Path) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let action = Action::Plan { live: false };
        let code = run(map, action, &Runner::host(), &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (code, text(out), text(err))
    }

    #[test]
    fn the_readme_shows_the_plan_of_the_example_map() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let (code, out, err) = run_plan(&root.join("config/vertogw.toml"));
        assert_eq!((code, err.as_str()), (0, ""));
        // The README names the map relative to the repository, as the command is run there.
        let out = out.replace(&root.display().to_string(), "");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        assert!(
            readme.contains(&format!("```\n{out}```")),
            "README is stale; plan prints:\n{out}"
        );
    }

    #[test]
    fn plan_output_is_commented_summary_then_the_batch() {
        let map = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/nat_map.toml"
        ));
        let (code, out, _) = run_plan(map);
        assert_eq!(code, 0);
        let batch: String = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let golden = include_str!("../../tests/golden/nat_plan.rules");
        assert_eq!(batch, golden);
        assert!(
            out.starts_with("# UDP to 203.0.113.10 is forwarded"),
            "{out}"
        );
    }

    #[test]
    fn a_map_without_media_or_unreadable_is_an_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let map = dir.path().join("m.toml");
        let text = include_str!("../../tests/golden/nat_map.toml");
        let without = text.split("[media]").next().unwrap_or_default();
        std::fs::write(&map, without).unwrap_or_else(|e| panic!("{e}"));
        let (code, out, err) = run_plan(&map);
        assert_eq!((code, out.as_str()), (EXIT_ERROR, ""));
        assert!(
            err.starts_with("error: the map has no [media] table"),
            "{err}"
        );
        let (code, _, err) = run_plan(&dir.path().join("missing.toml"));
        assert_eq!(code, EXIT_ERROR);
        assert!(err.contains("cannot read the map"), "{err}");
    }
}
