//! The map's serde schema, deserialized one table at a time so that a schema error in
//! one table does not hide the errors in the others.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::{ConfigErrorKind, Report};

/// `[gateway]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub listen: Spanned<String>,
    pub tls_cert: Spanned<String>,
    pub tls_key: Spanned<String>,
    pub default_domain: Option<Spanned<String>>,
    pub login_timeout_ms: Option<Spanned<u64>>,
    pub max_message_bytes: Option<Spanned<u64>>,
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub upstream_ca: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<u64>>,
    pub max_tls_handshakes: Option<Spanned<u64>>,
    pub allowed_origins: Option<SpannedList>,
    pub client_ip_param: Option<Spanned<String>>,
    pub proxy_protocol: Option<Spanned<String>>,
    pub proxy_protocol_from: Option<SpannedList>,
    pub public_url: Option<Spanned<String>>,
    pub fallback_url: Option<Spanned<String>>,
    pub web_root: Option<Spanned<String>>,
    /// `[[gateway.certificate]]`: certificates picked by SNI.
    pub certificate: Option<Vec<Spanned<RawCertificate>>>,
}

/// One `[[gateway.certificate]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificate {
    pub names: SpannedList,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// One `[[node]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub name: Spanned<String>,
    pub verto_url: Spanned<String>,
    pub rtp_ip: Option<Spanned<String>>,
    pub rtp_ports: Option<Spanned<String>>,
}

/// `[media]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMedia {
    pub public_ip: Option<Spanned<String>>,
    pub snat_ip: Option<Spanned<String>>,
    pub manage_iptables: Option<Spanned<bool>>,
    pub iptables: Option<Spanned<String>>,
}

/// A list of strings, each with its own span.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// One `[[partition]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartition {
    pub name: Spanned<String>,
    pub nodes: SpannedList,
    pub domains: SpannedList,
    pub extensions: Option<SpannedList>,
    pub public_url: Option<Spanned<String>>,
    pub fallback_url: Option<Spanned<String>>,
    pub failback: Option<Spanned<String>>,
}

/// The tables that fit the schema; those that did not were reported.
#[derive(Debug, Default)]
pub(super) struct RawDoc {
    pub gateway: Option<RawGateway>,
    pub nodes: Vec<RawNode>,
    pub partitions: Vec<RawPartition>,
    /// `[media]` with the span of its key (errors about missing keys point there).
    pub media: Option<(RawMedia, std::ops::Range<usize>)>,
    /// `[limits]`.
    pub limits: Option<super::limits::RawLimits>,
    /// `[health]`.
    pub health: Option<super::health::RawHealth>,
    /// `[admin]`.
    pub admin: Option<super::admin::RawAdmin>,
}

/// Parses the TOML and deserializes each table; `None` after a syntax error.
pub(super) fn read(text: &str, report: &mut Report<'_>) -> Option<RawDoc> {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let kind = ConfigErrorKind::Syntax(e.message().to_owned());
            report.error(e.span().as_ref(), None, kind);
            return None;
        }
    };
    let mut raw = RawDoc::default();
    let mut saw_gateway = false;
    for (key, value) in doc.into_inner() {
        match key.get_ref().as_ref() {
            "gateway" => {
                saw_gateway = true;
                raw.gateway = table(value, "gateway", report);
            }
            "node" => raw.nodes = array(value, "node", report),
            "partition" => raw.partitions = array(value, "partition", report),
            "limits" => raw.limits = table(value, "limits", report),
            "health" => raw.health = table(value, "health", report),
            "admin" => raw.admin = table(value, "admin", report),
            "media" => {
                let span = key.span();
                raw.media = table(value, "media", report).map(|m| (m, span));
            }
            other => {
                let kind = ConfigErrorKind::UnknownTable(other.to_owned());
                report.error(Some(&key.span()), None, kind);
            }
        }
    }
    if !saw_gateway {
        report.error(None, None, ConfigErrorKind::NoGateway);
    }
    Some(raw)
}

/// A single `[key]` table.
fn table<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    key: &str,
    report: &mut Report<'_>,
) -> Option<T> {
    if !value.get_ref().is_table() {
        let kind = ConfigErrorKind::Shape {
            key: key.to_owned(),
            expected: format!("a single [{key}] table"),
        };
        report.error(Some(&value.span()), None, kind);
        return None;
    }
    deserialize(value, &format!("[{key}]"), report)
}

fn array<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    key: &str,
    report: &mut Report<'_>,
) -> Vec<T> {
    let span = value.span();
    let shape = || ConfigErrorKind::Shape {
        key: key.to_owned(),
        expected: format!("one [[{key}]] table (double brackets) per {key}"),
    };
    let DeValue::Array(items) = value.into_inner() else {
        report.error(Some(&span), None, shape());
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Some(table) = item.get_ref().as_table() else {
            report.error(Some(&item.span()), None, shape());
            continue;
        };
        // Name the table by its `name` when it has a usable one, so the error is findable.
        let name = table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == "name")
            .and_then(|(_, v)| v.get_ref().as_str().map(str::to_owned));
        let subject = match name {
            Some(name) => format!("{key} {name:?}"),
            None => format!("{key} #{}", i + 1),
        };
        if let Some(t) = deserialize(item, &subject, report) {
            out.push(t);
        }
    }
    out
}

fn deserialize<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    subject: &str,
    report: &mut Report<'_>,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = e.span().unwrap_or(span);
            let kind = ConfigErrorKind::Schema(e.message().to_owned());
            report.error(Some(&at), Some(subject), kind);
            None
        }
    }
}
