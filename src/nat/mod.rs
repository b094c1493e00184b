//! NAT rules that carry browsers' RTP from the load balancer's public address to each
//! node and back (PROTOCOL.md §9): [`plan`] → [`render`] → [`diff`] against the
//! [`live`] table → [`apply`].
//!
//! Everything but [`apply`] and [`runner`] is pure. vertogw owns two chains of the
//! `nat` table, [`DNAT_CHAIN`] and [`SNAT_CHAIN`], and the rules in `PREROUTING`,
//! `OUTPUT` and `POSTROUTING` that jump to them; it never reads, changes or deletes
//! anything else.

pub mod apply;
pub mod diff;
pub mod live;
pub mod plan;
pub mod render;
pub mod runner;

pub use apply::{apply, check, flush, forwarding_enabled, read_live, Applied, Flushed};
pub use diff::{diff, owned, Diff, Owned};
pub use live::{LiveRule, LiveState};
pub use plan::{plan, NodeNat, Plan, Rule, Target};
pub use render::{render, render_batch, render_flush, summary};
pub use runner::Runner;

/// The chain holding one DNAT rule per node: public_ip:range → rtp_ip:range.
pub const DNAT_CHAIN: &str = "VERTOGW-DNAT";
/// The chain holding one SNAT (or MASQUERADE) rule per node for the forwarded packets.
pub const SNAT_CHAIN: &str = "VERTOGW-SNAT";
/// Comment prefix on every rule vertogw writes (`vertogw:node=fs1`, `vertogw:jump`).
pub const TAG_PREFIX: &str = "vertogw:";
/// Seconds iptables waits for the xtables lock held by another tool before failing
/// (`-w`), so vertogw coexists with firewalld, docker and the like without hanging.
pub const LOCK_WAIT_SECS: u32 = 10;

/// Why a NAT command failed.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// The map has no `[media]` table, so there is nothing to forward.
    #[error("the map has no [media] table: add one with public_ip to forward RTP")]
    NoMedia,
    /// A node with `rtp_ports` has no RTP address (only possible for a hand-built map).
    #[error("node {0:?} has rtp_ports but no rtp_ip, and its verto_url host is not an IP")]
    NoRtpIp(String),
    /// A program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The command line.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A program exited unsuccessfully.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// A line of `iptables -S` output that does not parse.
    #[error("cannot parse the live rules: {0}")]
    Parse(#[from] live::ParseError),
    /// The table still differs from the plan after a successful restore.
    #[error(
        "the rules were applied but the table still differs from the plan \
         (another tool may be rewriting it):\n{0}"
    )]
    NotConverged(Diff),
}
