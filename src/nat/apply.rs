//! The effectful NAT steps: read the live table, apply a plan's difference in one
//! `iptables-restore --noflush` transaction, flush, check, read `ip_forward`.

use std::net::IpAddr;

use super::diff::{diff, owned, Diff};
use super::live::{parse, LiveState};
use super::plan::Plan;
use super::render::{render_batch, render_flush};
use super::runner::Runner;
use super::{NatError, LOCK_WAIT_SECS};

/// What [`apply`] did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// What differed before (empty: nothing was sent).
    pub diff: Diff,
    /// The batch sent to `iptables-restore`, if any.
    pub batch: Option<String>,
}

/// What [`flush`] removed.
#[derive(Debug, Clone)]
pub struct Flushed {
    /// What vertogw owned before.
    pub owned: super::diff::Owned,
    /// The batch sent, if there was anything to remove.
    pub batch: Option<String>,
}

/// The `nat` table as `iptables -w N -t nat -S` prints it.
pub fn read_live(runner: &Runner, iptables: &str) -> Result<LiveState, NatError> {
    let wait = LOCK_WAIT_SECS.to_string();
    let text = runner.run(iptables, &["-w", &wait, "-t", "nat", "-S"], None)?;
    Ok(parse(&text)?)
}

/// Feeds a batch to `<iptables>-restore -w N --noflush`: all of it or nothing.
fn restore(runner: &Runner, iptables: &str, batch: &str) -> Result<(), NatError> {
    let wait = LOCK_WAIT_SECS.to_string();
    let program = format!("{iptables}-restore");
    runner.run(&program, &["-w", &wait, "--noflush"], Some(batch))?;
    Ok(())
}

/// Makes the live table match `plan`; sends nothing when it already does, so applying
/// twice changes nothing. Reads the table back afterwards and fails if it still differs.
pub fn apply(runner: &Runner, plan: &Plan) -> Result<Applied, NatError> {
    let before = diff(plan, &read_live(runner, &plan.iptables)?);
    if before.is_empty() {
        return Ok(Applied {
            diff: before,
            batch: None,
        });
    }
    let batch = render_batch(plan, &before);
    restore(runner, &plan.iptables, &batch)?;
    let after = diff(plan, &read_live(runner, &plan.iptables)?);
    if !after.is_empty() {
        return Err(NatError::NotConverged(after));
    }
    Ok(Applied {
        diff: before,
        batch: Some(batch),
    })
}

/// What differs between the live table and `plan` (empty = in sync).
pub fn check(runner: &Runner, plan: &Plan) -> Result<Diff, NatError> {
    Ok(diff(plan, &read_live(runner, &plan.iptables)?))
}

/// Removes vertogw's chains and every jump into them, and nothing else.
pub fn flush(runner: &Runner, iptables: &str) -> Result<Flushed, NatError> {
    let owned = owned(&read_live(runner, iptables)?);
    if owned.is_empty() {
        return Ok(Flushed { owned, batch: None });
    }
    let batch = render_flush(&owned);
    restore(runner, iptables, &batch)?;
    Ok(Flushed {
        owned,
        batch: Some(batch),
    })
}

/// Whether the kernel forwards packets of `public_ip`'s IP version (in the runner's
/// network namespace); without it DNAT'ed packets are dropped.
pub fn forwarding_enabled(runner: &Runner, public_ip: IpAddr) -> Result<bool, NatError> {
    let file = if public_ip.is_ipv4() {
        "/proc/sys/net/ipv4/ip_forward"
    } else {
        "/proc/sys/net/ipv6/conf/all/forwarding"
    };
    // Read through the runner, so the answer comes from the namespace the rules go to.
    let text = runner.run("cat", &[file], None)?;
    Ok(text.trim() != "0")
}
