//! The browser-facing side: listener, TLS, WebSocket upgrade, the pre-login session,
//! upstream connection and the relay pump.
//!
//! Policy (which node) comes from [`crate::routing`]; everything here is mechanism.

mod active;
mod capacity;
mod close;
mod context;
mod counters;
mod failures;
mod listener;
mod migrate;
mod operator;
mod per_ip;
mod plain_http;
mod policy;
pub(crate) mod proxy_header;
mod registry;
mod relay;
mod session;
mod shards;
mod sticky;
mod tcp;
mod throttle;
mod tls_pool;
mod turns;
mod upgrade;
mod upstream;
mod view;
mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::{ClientConfig, ServerConfig};
use tokio_util::sync::CancellationToken;

pub use active::SwitchError;
pub use capacity::session_capacity;
pub use counters::{Counters, LoginResult};
pub use listener::serve;
pub use migrate::MigrationReason;
pub use operator::{seconds_up, DrainStatus, OperatorError, Switched};
pub use shards::{bind, bind_one, serve_sharded};
pub use view::{Load, PartitionView, SessionFilter, SessionView};
// For `crate::fuzzing` only: the upgrade check stays private to the crate.
pub(crate) use upgrade::{
    check_origin, inspect as inspect_upgrade, switching as upgrade_switching,
};
// For `crate::health`'s probes: the same way to a node that logins take.
pub(crate) use capacity::is_out_of_descriptors;
pub(crate) use upstream::{connect as connect_node, ConnectError};

use crate::config::Config;
use crate::routing::Router;

/// How long sessions get to close after shutdown starts before they are abandoned.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Per-connection limits, taken from the map when a connection is accepted.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// From TCP accept to a login accepted by a node (covers TLS and the upgrade too).
    pub login_timeout: Duration,
    /// From TCP accept to a finished TLS handshake, waiting for a turn included
    /// (`tls_handshake_timeout_ms`; the login timeout applies too, if earlier).
    pub tls_handshake_timeout: Duration,
    /// Largest browser→node message.
    pub max_message_bytes: usize,
    /// One attempt to reach a node.
    pub connect_timeout: Duration,
    /// The pre-login bounds (`[limits]`).
    pub prelogin: crate::verto::prelogin::Bounds,
    /// How long a direction may be unable to write (`stall_timeout_ms`).
    pub stall_timeout: Duration,
    /// Browser idle time before a ping, and the wait for its answer (`browser_ping_ms`).
    pub browser_ping: Duration,
    /// The window a failed node's sessions are closed within (`close_spread_ms`).
    pub close_spread: Duration,
}

/// Everything a running gateway shares between its connections.
pub struct Gateway {
    // Swappable so a later reload can replace the map without touching sessions.
    router: ArcSwap<Router>,
    server_tls: ArcSwap<ServerConfig>,
    upstream_tls: ArcSwap<ClientConfig>,
    handshakes: turns::Turns,
    login_failures: failures::LoginFailures,
    end_log: throttle::Throttles,
    per_ip: per_ip::PerIp,
    /// The nodes' health, once [`Gateway::monitor`] was called: logins then go only to
    /// nodes that are up. Without it every node is tried in order (tests of other
    /// features run so, without probes reaching their nodes).
    health: std::sync::OnceLock<Arc<crate::health::Health>>,
    /// Where each browser `sessid` was last logged in (used with health monitoring).
    sticky: Arc<sticky::Sticky>,
    /// Every partition's active node (used with health monitoring).
    actives: active::Actives,
    /// The relaying sessions, for moving them (used with health monitoring).
    registry: Arc<registry::Registry>,
    /// Sessions moved and closed by the migrator, by reason.
    migrations: migrate::Migrations,
    /// Wakes the migrator after an operator's action.
    nudge: tokio::sync::Notify,
    /// Running totals for `/metrics`.
    counters: counters::Counters,
    /// Where the CPU-heavy part of TLS handshakes runs.
    tls_pool: tls_pool::TlsPool,
}

impl Gateway {
    /// Builds a gateway for `config`, terminating TLS with `server_tls` and reaching
    /// `wss://` nodes with `upstream_tls`.
    pub fn new(
        config: Arc<Config>,
        server_tls: Arc<ServerConfig>,
        upstream_tls: Arc<ClientConfig>,
    ) -> Arc<Gateway> {
        let handshakes = config
            .gateway
            .max_tls_handshakes
            .unwrap_or_else(capacity::concurrent_handshakes);
        let per_ip = per_ip::PerIp::new(&config.limits);
        Arc::new(Gateway {
            router: ArcSwap::from_pointee(Router::new(config)),
            server_tls: ArcSwap::new(server_tls),
            upstream_tls: ArcSwap::new(upstream_tls),
            handshakes: turns::Turns::new(handshakes),
            login_failures: failures::LoginFailures::default(),
            end_log: throttle::Throttles::default(),
            per_ip,
            health: std::sync::OnceLock::new(),
            sticky: Arc::default(),
            actives: active::Actives::default(),
            registry: Arc::default(),
            migrations: migrate::Migrations::default(),
            nudge: tokio::sync::Notify::new(),
            counters: counters::Counters::default(),
            tls_pool: tls_pool::TlsPool::start(),
        })
    }

    /// Probes every node once, then keeps probing them until `shutdown`: from then on
    /// logins go to the first node of their partition that is up and not draining, and
    /// a failed connect counts against the node (issue 10's health). Call it before
    /// serving, so browsers are accepted only once the first results are in; a second
    /// call does nothing.
    pub async fn monitor(self: &Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        if self.health.get().is_some() {
            return Ok(());
        }
        let config = Arc::clone(self.router.load().config());
        let tls = crate::health::client_tls(&config)?;
        let health = Arc::new(crate::health::Health::new(&config));
        health.start_up(&tls).await;
        let _loops = Arc::clone(&health).spawn(tls, shutdown.clone());
        let _ = self.health.set(health);
        tokio::spawn(migrate::run(Arc::clone(self), shutdown));
        Ok(())
    }

    fn registry(&self) -> &Arc<registry::Registry> {
        &self.registry
    }

    /// Sessions moved (1012) by reason, and closed at a drain deadline, so far.
    pub fn migration_counts(&self) -> Vec<(&'static str, u64)> {
        self.migrations.counts()
    }

    /// Running totals for `/metrics`.
    pub fn counters(&self) -> &counters::Counters {
        &self.counters
    }

    fn migrations(&self) -> &migrate::Migrations {
        &self.migrations
    }

    /// Resolves when an operator's action asks the migrator to look again.
    async fn nudged(&self) {
        self.nudge.notified().await
    }

    fn actives(&self) -> &active::Actives {
        &self.actives
    }

    fn sticky(&self) -> &Arc<sticky::Sticky> {
        &self.sticky
    }

    /// The nodes' health, when [`Gateway::monitor`] runs.
    pub fn health(&self) -> Option<&Arc<crate::health::Health>> {
        self.health.get()
    }

    /// The current routing table.
    pub fn router(&self) -> Arc<Router> {
        self.router.load_full()
    }

    /// Replaces the map; sessions already routed stay where they are (sessions that
    /// break the invariant then move, idle ones first). The seam for hot reload
    /// (SIGHUP and the admin API), which swaps a validated map in here. Nodes the new
    /// map adds (or whose `verto_url` changed) are probed once before the map applies,
    /// and sticky entries to a node whose URL changed are dropped. New `[limits]` apply
    /// to connections accepted from then on (a changed connect rate or burst starts
    /// every address with a full bucket).
    pub async fn replace_config(&self, config: Arc<Config>) {
        self.per_ip.reconfigure(&config.limits);
        let old = self.router.load_full();
        for node in &old.config().nodes {
            let same = config
                .nodes
                .iter()
                .any(|n| n.name == node.name && n.verto_url == node.verto_url);
            if !same {
                self.sticky.forget_node(&node.name);
            }
        }
        if let Some(health) = self.health.get() {
            // New nodes are down until their first probe, sent now with the new map's
            // ca_file rather than at the next interval.
            health.reconfigure(&config);
            match crate::health::client_tls(&config) {
                Ok(tls) => {
                    health.set_tls(Arc::clone(&tls));
                    health.start_up(&tls).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "health: the new map's ca_file does not load; probes keep the previous one")
                }
            }
        }
        self.router.store(Arc::new(Router::new(config)));
        let new = self.router.load();
        self.actives.reconfigure(old.config(), new.config());
        self.nudge.notify_one();
    }

    /// Terminates new browser TLS handshakes with `config` (established sessions keep
    /// theirs).
    pub fn replace_server_tls(&self, config: Arc<ServerConfig>) {
        self.server_tls.store(config);
    }

    /// Reaches `wss://` nodes with `config` from the next connection on.
    pub fn replace_upstream_tls(&self, config: Arc<ClientConfig>) {
        self.upstream_tls.store(config);
    }

    /// Most browser connections held at once: the map's `max_connections`, else what
    /// the current descriptor limit allows.
    pub fn max_connections(&self) -> usize {
        let configured = self.router.load().config().gateway.max_connections;
        configured.unwrap_or_else(|| capacity::session_capacity(vertogw_net::fd::nofile_limit()))
    }

    /// The current per-connection limits.
    pub fn settings(&self) -> Settings {
        let router = self.router.load();
        let config = router.config();
        let gw = &config.gateway;
        Settings {
            login_timeout: gw.login_timeout,
            tls_handshake_timeout: config.limits.tls_handshake_timeout,
            max_message_bytes: gw.max_message_bytes,
            connect_timeout: gw.connect_timeout,
            prelogin: crate::verto::prelogin::Bounds {
                max_message_bytes: config.limits.max_prelogin_message_bytes,
                max_messages: config.limits.max_prelogin_messages,
            },
            stall_timeout: config.limits.stall_timeout,
            browser_ping: config.limits.browser_ping,
            close_spread: config.health.close_spread,
        }
    }

    fn end_log(&self) -> &throttle::Throttles {
        &self.end_log
    }

    fn login_failures(&self) -> &failures::LoginFailures {
        &self.login_failures
    }

    fn per_ip(&self) -> &per_ip::PerIp {
        &self.per_ip
    }

    fn handshakes(&self) -> &turns::Turns {
        &self.handshakes
    }

    fn server_tls(&self) -> Arc<ServerConfig> {
        self.server_tls.load_full()
    }

    fn upstream_tls(&self) -> Arc<ClientConfig> {
        self.upstream_tls.load_full()
    }
}
