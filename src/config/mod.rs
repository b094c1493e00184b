//! The partition map file: raw TOML schema, validation into domain types, errors.
//!
//! Validation runs in passes (schema per table, gateway, nodes, partitions, ties, media) and
//! reports every problem it finds, each located by file, line and table.

mod admin;
mod certs;
mod client_urls;
mod error;
mod health;
mod limits;
mod media;
mod origin;
mod partition;
mod proxy_protocol;
mod raw;
mod types;
mod url;
mod validate;
mod values;

use std::path::Path;

pub use admin::Admin;
pub use certs::SniNameError;
pub use client_urls::{derived_public_url, ClientUrls};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors, PatternError, RangeError, UrlError};
pub use health::Health;
pub use limits::{address_key, canonical_ip, Limits};
pub use origin::{origin_allowed, OriginError, OriginPattern};
pub use proxy_protocol::{ProxyProtocol, ProxySender, ProxyVersion};
pub use types::*;
pub use validate::{
    DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_LOGIN_TIMEOUT_MS, RTP_MIN_PORT, VERTO_MAX_MESSAGE_BYTES,
};

pub(crate) use values::user_number;

use error::Report;
use validate::GatewayLines;

/// A validated map and the warnings it raised (settings that work but look wrong).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The map.
    pub config: Config,
    /// Each warning, located like an error (`file:line: table: message`).
    pub warnings: Vec<String>,
    /// The browser-facing certificates, loaded and checked by [`Config::load`]; `None`
    /// from [`Config::parse`] and [`Config::load_map`], which read no certificate.
    pub certificates: Option<crate::tls::Certificates>,
}

/// A map half-way through validation: what was built and what was found wrong.
struct Draft {
    config: Option<Config>,
    lines: Option<GatewayLines>,
    /// The line of `[health]` `ca_file`, for `Config::load`'s check of the file.
    health_ca_line: Option<usize>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    certificates: Option<crate::tls::Certificates>,
}

impl Draft {
    fn new(text: &str, path: &Path) -> Draft {
        let mut report = Report::new(path, text);
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut config = None;
        let mut lines = None;
        let mut health_ca_line = None;
        if let Some(raw) = raw::read(text, &mut report) {
            let gateway = raw
                .gateway
                .and_then(|g| validate::gateway(g, dir, &mut report));
            let nodes = validate::nodes(raw.nodes, &mut report);
            let partitions = partition::partitions(raw.partitions, &nodes.names, &mut report);
            if partitions.is_empty() {
                report.warn_file(
                    "the map has no [[partition]]: every login will be refused; add a \
                     [[partition]] with its nodes and domains",
                );
            }
            let media = media::media(raw.media, &nodes, &partitions, &mut report);
            let limits = limits::limits(raw.limits, &mut report);
            let (health, ca_line) = health::health(raw.health, dir, &mut report);
            let admin = admin::admin(raw.admin, &mut report);
            if let Some((gateway, gateway_lines)) = gateway {
                lines = Some(gateway_lines);
                health_ca_line = ca_line;
                config = Some(Config {
                    source: path.to_owned(),
                    gateway,
                    nodes: nodes.nodes,
                    partitions,
                    media,
                    limits,
                    health,
                    admin,
                });
            }
        }
        Draft {
            config,
            lines,
            health_ca_line,
            errors: report.errors,
            warnings: report.warnings,
            certificates: None,
        }
    }

    fn finish(mut self) -> Result<Loaded, ConfigErrors> {
        // Passes report in their own order; the operator reads the file top to bottom.
        self.errors.sort_by_key(|e| e.line);
        match self.config {
            Some(config) if self.errors.is_empty() => Ok(Loaded {
                config,
                warnings: self.warnings,
                certificates: self.certificates,
            }),
            _ => Err(ConfigErrors {
                errors: self.errors,
            }),
        }
    }
}

impl Config {
    /// Parses and validates map text read from `path`; `path` only names the file in
    /// messages and anchors relative paths (no file I/O happens here).
    pub fn parse(text: &str, path: &Path) -> Result<Loaded, ConfigErrors> {
        Draft::new(text, path).finish()
    }

    /// Reads and [`parse`](Self::parse)s the map at `path`, then loads its certificates
    /// and keys (each key must belong to its certificate), `upstream_ca` and `[health]`
    /// `ca_file`, adding failures to the same list, and warns about certificates that
    /// expire within [`crate::tls::EXPIRY_WARNING`] or do not cover their names.
    pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
        let text = Config::read(path)?;
        let mut draft = Draft::new(&text, path);
        if let (Some(config), Some(lines)) = (&draft.config, &draft.lines) {
            let gateway = &config.gateway;
            let checked = certs::check_files(gateway, lines, path, std::time::SystemTime::now());
            draft.errors.extend(checked.errors);
            draft.warnings.extend(checked.warnings);
            draft.certificates = checked.certificates;
            if let (Some(root), Some(line)) = (&gateway.web_root, lines.web_root) {
                if let Err(reason) = web_root_readable(root) {
                    draft.errors.push(ConfigError {
                        file: path.to_owned(),
                        line: Some(line),
                        subject: Some("[gateway]".to_owned()),
                        kind: ConfigErrorKind::WebRoot {
                            path: root.clone(),
                            reason,
                        },
                    });
                }
            }
            if let (Some(ca), Some(line)) = (&gateway.upstream_ca, lines.upstream_ca) {
                if let Err(e) = vertogw_net::tls::client_config(Some(ca)) {
                    draft.errors.push(ConfigError {
                        file: path.to_owned(),
                        line: Some(line),
                        subject: Some("[gateway]".to_owned()),
                        kind: ConfigErrorKind::UpstreamCa(e),
                    });
                }
            }
            if let (Some(ca), Some(line)) = (&config.health.ca_file, draft.health_ca_line) {
                if let Err(e) = vertogw_net::tls::client_config(Some(ca)) {
                    draft.errors.push(ConfigError {
                        file: path.to_owned(),
                        line: Some(line),
                        subject: Some("[health]".to_owned()),
                        kind: ConfigErrorKind::HealthCa(e),
                    });
                }
            }
        }
        draft.finish()
    }

    /// Reads and [`parse`](Self::parse)s the map at `path` without loading its
    /// certificate files: for commands that run where the gateway's key is not
    /// (`route`, `iptables`, `fs-config`).
    pub fn load_map(path: &Path) -> Result<Loaded, ConfigErrors> {
        Config::parse(&Config::read(path)?, path)
    }

    /// Reads a map file's text, reporting a failure as a one-entry error list.
    pub fn read(path: &Path) -> Result<String, ConfigErrors> {
        std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors::single(path, ConfigErrorKind::Read(e)))
    }

    /// The node called `name`, if the map defines one.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// `Ok` when `root` is a folder the gateway can list.
fn web_root_readable(root: &Path) -> Result<(), String> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => std::fs::read_dir(root).map(drop).map_err(|e| e.to_string()),
        Ok(_) => Err("it is a file".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
