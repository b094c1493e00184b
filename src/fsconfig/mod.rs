//! FreeSWITCH settings that must agree with the map, rendered per node (pure): the
//! media addresses and RTP range as `vars.xml` variables, and the `verto.conf.xml`
//! profile and `switch.conf.xml` fragment that use them (PROTOCOL.md §9).

mod xml;

use std::net::IpAddr;

use crate::config::{Config, PortRange};

/// `local-network` for every generated profile: FreeSWITCH's built-in list of loopback
/// addresses. FreeSWITCH advertises `ext-rtp-ip` only to peers *outside*
/// `local-network`; behind the load balancer every browser must get it, and no browser
/// can present a loopback address (which FreeSWITCH treats as local anyway).
pub const LOCAL_NETWORK: &str = "loopback.auto";

/// Why settings cannot be generated for a node.
#[derive(Debug, thiserror::Error)]
pub enum FsConfigError {
    /// The map has no such node.
    #[error("the map has no node {0:?}")]
    UnknownNode(String),
    /// The map has no `[media]` table, so there is no external RTP address.
    #[error("the map has no [media] table: add one with public_ip (every node's ext-rtp-ip)")]
    NoMedia,
    /// The node has no RTP range.
    #[error(
        "node {0:?} has no rtp_ports: give it its own range, e.g. rtp_ports = \"16384-17383\""
    )]
    NoRtpPorts(String),
    /// The node has no RTP address.
    #[error("node {0:?} has no rtp_ip and its verto_url host is not an IP address: set rtp_ip")]
    NoRtpIp(String),
}

/// The values one node's FreeSWITCH must be configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    /// The node's name.
    pub node: String,
    /// The map file, named in the generated comments.
    pub source: String,
    /// `ext-rtp-ip`: the load balancer's public address.
    pub ext_rtp_ip: IpAddr,
    /// `rtp-ip`: where the node's RTP sockets bind.
    pub rtp_ip: IpAddr,
    /// `rtp-start-port` / `rtp-end-port`.
    pub rtp_ports: PortRange,
    /// `bind-local` of the verto profile, `IP:PORT` (IPv6 in brackets).
    pub verto_bind: String,
    /// Whether the profile serves `wss://` (`secure="true"` on `bind-local`).
    pub verto_secure: bool,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsFile {
    /// File name, e.g. `vertogw-vars.xml`.
    pub name: &'static str,
    /// Its XML text.
    pub text: String,
}

/// Collects the settings for `node` from a validated map.
pub fn settings(config: &Config, node: &str) -> Result<NodeSettings, FsConfigError> {
    let n = config
        .node(node)
        .ok_or_else(|| FsConfigError::UnknownNode(node.to_owned()))?;
    let media = config.media.as_ref().ok_or(FsConfigError::NoMedia)?;
    let rtp_ports = n
        .rtp_ports
        .ok_or_else(|| FsConfigError::NoRtpPorts(node.to_owned()))?;
    let rtp_ip = n
        .media_ip()
        .ok_or_else(|| FsConfigError::NoRtpIp(node.to_owned()))?;
    // mod_verto binds an address, not a name: a node reached by DNS name listens on
    // its RTP address (the map has no other address of it).
    let bind_ip = n.verto_url.host.parse::<IpAddr>().unwrap_or(rtp_ip);
    let verto_bind = match bind_ip {
        IpAddr::V4(ip) => format!("{ip}:{}", n.verto_url.port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", n.verto_url.port),
    };
    Ok(NodeSettings {
        node: n.name.clone(),
        source: config.source.display().to_string(),
        ext_rtp_ip: media.public_ip,
        rtp_ip,
        rtp_ports,
        verto_bind,
        verto_secure: n.verto_url.secure,
    })
}

/// The three files for `node`: `vertogw-vars.xml`, `vertogw-verto-profile.xml` and
/// `vertogw-switch-rtp.xml`.
pub fn render(config: &Config, node: &str) -> Result<Vec<FsFile>, FsConfigError> {
    let s = settings(config, node)?;
    Ok(vec![
        FsFile {
            name: xml::VARS_FILE,
            text: xml::vars(&s),
        },
        FsFile {
            name: xml::PROFILE_FILE,
            text: xml::verto_profile(&s),
        },
        FsFile {
            name: xml::SWITCH_FILE,
            text: xml::switch_rtp(&s),
        },
    ])
}

#[cfg(test)]
mod tests;
