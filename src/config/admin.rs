//! The `[admin]` table: where the operator's API listens (never the public listener)
//! and the bearer token it asks for. Absent, the API listens on loopback without a
//! token; anywhere else a token is required.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::error::{ConfigErrorKind, Report};

const ADMIN: &str = "[admin]";

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub listen: Option<Spanned<String>>,
    pub token: Option<Spanned<String>>,
}

/// The validated `[admin]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct Admin {
    /// The admin API's HTTP listener.
    pub listen: SocketAddr,
    /// `Authorization: Bearer` token every endpoint but `/healthz` and `/readyz` needs.
    pub token: Option<String>,
}

impl Default for Admin {
    fn default() -> Admin {
        Admin {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

// The token is a credential: it never reaches a log line through `{:?}`.
impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Validates `[admin]` (absent: the defaults).
pub(super) fn admin(raw: Option<RawAdmin>, r: &mut Report<'_>) -> Admin {
    let raw = raw.unwrap_or_default();
    let mut admin = Admin::default();
    if let Some(listen) = &raw.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => admin.listen = addr,
            Err(_) => {
                let kind = ConfigErrorKind::BadListen(listen.get_ref().clone());
                r.error(Some(&listen.span()), Some(ADMIN), kind);
            }
        }
    }
    if let Some(token) = &raw.token {
        // Sent in a header: visible ASCII only, and long enough not to be guessed.
        let t = token.get_ref();
        if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
            r.error(
                Some(&token.span()),
                Some(ADMIN),
                ConfigErrorKind::BadAdminToken,
            );
        } else {
            admin.token = Some(t.clone());
        }
    }
    if admin.token.is_none() && raw.token.is_none() && !admin.listen.ip().is_loopback() {
        let at = raw.listen.as_ref().map(|l| l.span());
        let kind = ConfigErrorKind::AdminWithoutToken(admin.listen);
        r.error(at.as_ref(), Some(ADMIN), kind);
    }
    admin
}
