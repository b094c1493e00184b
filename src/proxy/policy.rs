//! What may pass from an established session's browser to its node. The relay asks;
//! the answer comes from the map: every `login` a message carries (however it is
//! written, batch elements included) must belong to the session's partition, and a
//! message that could be a `login` but cannot be read the way FreeSWITCH reads it
//! never passes.

use std::sync::Arc;

use tracing::warn;

use super::Gateway;
use crate::verto::{self, Forwarded};

/// The verdict on one browser→node text message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it to the node.
    Forward,
    /// Send this instead: the login with the browser's address added
    /// (`client_ip_param`).
    ForwardLogin(String),
    /// Keep it from the node and answer the browser with this instead.
    Answer(String),
}

/// The check for one session, bound to its partition.
pub struct SessionPolicy {
    gateway: Arc<Gateway>,
    partition: String,
    client_ip: std::net::IpAddr,
}

impl SessionPolicy {
    /// The policy of a session of the browser at `client_ip`, established on `partition`.
    pub fn new(
        gateway: Arc<Gateway>,
        partition: String,
        client_ip: std::net::IpAddr,
    ) -> SessionPolicy {
        SessionPolicy {
            gateway,
            partition,
            client_ip,
        }
    }

    /// Decides about one text message from the browser.
    pub fn check(&self, text: &str) -> Verdict {
        let logins = match verto::inspect_forwarded(text) {
            Forwarded::Plain => return Verdict::Forward,
            Forwarded::Unreadable => {
                warn!(
                    failure = "unreadable_login",
                    partition = %self.partition,
                    "a message that could be a login cannot be read as FreeSWITCH reads it: not forwarded"
                );
                return Verdict::Answer(verto::invalid_request());
            }
            Forwarded::Logins(logins) => logins,
        };
        // The current map: a login the map now puts elsewhere is refused too.
        let router = self.gateway.router();
        for req in &logins {
            let belongs = router
                .route(&req.login)
                .is_ok_and(|route| route.partition.name == self.partition);
            if !belongs {
                warn!(
                    login = ?req.login,
                    partition = %self.partition,
                    failure = "foreign_login",
                    "login for a user outside the session's partition refused"
                );
                return Verdict::Answer(verto::error_reply(
                    &req.id,
                    verto::AUTH_FAILED,
                    verto::LOGIN_INCORRECT,
                ));
            }
        }
        match &router.config().gateway.client_ip_param {
            None => Verdict::Forward,
            Some(name) => match stamp_login(text, name, self.client_ip) {
                Some(stamped) => Verdict::ForwardLogin(stamped),
                // A batch carrying a login, or a login without a params object: the
                // address cannot be stamped on it, and it must not pass without.
                None => Verdict::Answer(verto::invalid_request()),
            },
        }
    }
}

/// The login `text` with the browser's address under `name` (`client_ip_param`), or
/// `None` when it is not a single login object that can carry it.
pub fn stamp_login(text: &str, name: &str, client_ip: std::net::IpAddr) -> Option<String> {
    let ip = crate::config::canonical_ip(client_ip).to_string();
    verto::client_ip::add_client_ip(text, name, &ip).ok()
}
