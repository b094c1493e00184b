//! One browser socket from the upgrade until a node accepts its login: the gateway
//! answers the browser itself, routes each credentialed `login`, reaches the
//! partition's node and forwards the login unchanged; then hands over to the relay.

use futures_util::{SinkExt, StreamExt};
use std::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use tracing::{debug, info, warn};

use super::close::{self, close_leg, EndReason};
use super::context::{browser_read_end, BrowserSocket, SessionCtx, Summary};
use super::counters::LoginResult;
use super::failures::COOLDOWN_MESSAGE;
use super::policy::{stamp_login, SessionPolicy};
use super::registry::{NewSession, Registered};
use super::relay;
use super::sticky::Held;
use super::upstream::{self, NodeSocket};
use crate::config::{Failback, NodeUrl};
use crate::verto::prelogin::{Frame, PreLoginState, Routed, Step, Violation};
use crate::verto::{self, LoginOutcome, LoginRequest};
use crate::websocket::Error as WsError;

/// The node leg while its login is pending.
struct Upstream {
    socket: NodeSocket,
    partition: String,
    login_id: String,
    /// The pending login's `params.sessid`.
    sessid: Option<String>,
    /// The node was its sticky node, not the partition's active one.
    via_sticky: bool,
}

/// Runs a browser socket to its end and writes the session's log line.
pub async fn run(mut browser: BrowserSocket, ctx: SessionCtx) {
    let _open = ctx.gateway.counters().open_connection();
    let mut summary = Summary::default();
    // The login phase in its own scope: its state (the pre-login machine, the pending
    // login's strings) is dead before the relay starts, so the task's future can reuse
    // that room instead of carrying it for the hours a session lives.
    let (outcome, upstream, sticky, registered) = {
        let mut auth = Auth {
            ctx: &ctx,
            state: PreLoginState::new(ctx.gateway.settings().prelogin),
            upstream: None,
            summary: &mut summary,
            sticky: None,
            registered: None,
        };
        // Boxed: the login phase's futures (TLS and WebSocket handshakes to nodes) are
        // large.
        let outcome = tokio::select! {
            r = Box::pin(auth.drive(&mut browser)) => r,
            _ = tokio::time::sleep_until(ctx.deadline) => Err(EndReason::LoginTimeout),
            _ = ctx.shutdown.cancelled() => Err(EndReason::Shutdown),
        };
        let taken = (
            auth.upstream.take(),
            auth.sticky.take(),
            auth.registered.take(),
        );
        (outcome, taken.0, taken.1, taken.2)
    };
    // Dropped when the session ends: the sessid's sticky_ms starts then.
    let _sticky = sticky;
    let reason = match (outcome, upstream) {
        (Ok(()), Some(up)) => {
            let Upstream {
                socket: mut node,
                partition,
                login_id,
                sessid,
                via_sticky: _,
            } = up;
            // Not needed once the node accepted the login.
            drop((login_id, sessid));
            info!(
                login = summary.login.as_deref(),
                partition = %partition,
                node = summary.node.as_deref(),
                "session started"
            );
            let policy = SessionPolicy::new(
                std::sync::Arc::clone(&ctx.gateway),
                partition,
                ctx.peer.ip(),
            );
            let reason = relay::run(
                &mut browser,
                &mut node,
                &ctx,
                &policy,
                &mut summary,
                registered.as_ref().map(Registered::live),
            )
            .await;
            Box::pin(finish(browser, Some(node), &reason, &ctx)).await;
            reason
        }
        (Err(reason), up) => {
            Box::pin(finish(browser, up.map(|u| u.socket), &reason, &ctx)).await;
            reason
        }
        (Ok(()), None) => EndReason::NodeGone,
    };
    log_end(&ctx, &summary, &reason);
}

fn log_end(ctx: &SessionCtx, s: &Summary, reason: &EndReason) {
    // A session a limit ended, before any node accepted it: what a flood is made of, so
    // at most one line a second per cause, with how many it stands for.
    if reason.is_violation() && s.node.is_none() {
        if let Some(sessions) = ctx.gateway.end_log().note(reason.category()) {
            info!(
                peer = %ctx.peer.ip(),
                login = s.login.as_deref(),
                close = reason.category(),
                code = reason.code(),
                sessions,
                "sessions ended by a limit"
            );
        }
        return;
    }
    info!(
        login = s.login.as_deref(),
        partition = s.partition.as_deref(),
        node = s.node.as_deref(),
        bytes_up = s.bytes_up,
        bytes_down = s.bytes_down,
        calls = s.calls,
        duration_ms = ctx.accepted.elapsed().as_millis() as u64,
        close = reason.category(),
        code = reason.code(),
        migration = reason.migration(),
        "session ended"
    );
}

/// Closes both legs as `reason` says, concurrently (spread in time when the node failed).
pub async fn finish(
    browser: BrowserSocket,
    node: Option<NodeSocket>,
    reason: &EndReason,
    ctx: &SessionCtx,
) {
    let window = ctx.gateway.settings().close_spread;
    close::spread(reason, window, &ctx.shutdown).await;
    let b = close_leg(browser, reason.browser_action());
    match node {
        Some(node) => {
            tokio::join!(b, close_leg(node, reason.node_action()));
        }
        None => b.await,
    }
}

enum Event {
    Browser(Option<Result<Message, WsError>>),
    Node(Option<Result<Message, WsError>>),
}

/// The pre-login state machine.
struct Auth<'a> {
    ctx: &'a SessionCtx,
    state: PreLoginState,
    upstream: Option<Upstream>,
    summary: &'a mut Summary,
    /// The sticky entry of the accepted login, kept for the session's life.
    sticky: Option<Held>,
    /// The session in the registry of relaying sessions (health monitoring only).
    registered: Option<Registered>,
}

impl Auth<'_> {
    /// Runs until a node accepts a login (`Ok`) or the session must end.
    async fn drive(&mut self, browser: &mut BrowserSocket) -> Result<(), EndReason> {
        loop {
            let event = match self.upstream.as_mut() {
                None => Event::Browser(browser.next().await),
                Some(up) => tokio::select! {
                    m = browser.next() => Event::Browser(m),
                    m = up.socket.next() => Event::Node(m),
                },
            };
            match event {
                Event::Browser(m) => self.on_browser(browser, m).await?,
                Event::Node(m) => {
                    if self.on_node(browser, m).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn on_browser(
        &mut self,
        browser: &mut BrowserSocket,
        msg: Option<Result<Message, WsError>>,
    ) -> Result<(), EndReason> {
        let text = match msg {
            None => return Err(EndReason::BrowserGone),
            // The stream refuses a message over the pre-login limit at its header.
            Some(Err(WsError::TooBig { .. })) => {
                return Err(EndReason::PreLogin(Violation::TooLarge))
            }
            Some(Err(e)) => return Err(browser_read_end(Some(e))),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return Err(EndReason::BrowserClosed(frame)),
            Some(Ok(Message::Binary(_))) => {
                let step = self.state.on_frame(Frame::Binary);
                return self.perform(browser, step, None).await;
            }
            // Pings are answered by the stream itself and never reach the node.
            Some(Ok(_)) => return Ok(()),
        };
        let step = self.state.on_frame(Frame::Text(&text));
        self.perform(browser, step, Some(text)).await
    }

    /// Carries out what the state machine decided about `text`.
    async fn perform(
        &mut self,
        browser: &mut BrowserSocket,
        step: Step,
        text: Option<Utf8Bytes>,
    ) -> Result<(), EndReason> {
        match step {
            Step::Forward => match text {
                Some(text) => self.forward_up(text).await,
                None => Ok(()),
            },
            Step::Route(req) => self.on_login(browser, text, req).await,
            other => self.answer(browser, other).await,
        }
    }

    async fn forward_up(&mut self, text: Utf8Bytes) -> Result<(), EndReason> {
        let Some(up) = self.upstream.as_mut() else {
            return Ok(());
        };
        self.summary.bytes_up += text.len() as u64;
        up.socket
            .send(Message::Text(text))
            .await
            .map_err(|_| EndReason::NodeGone)
    }

    async fn on_login(
        &mut self,
        browser: &mut BrowserSocket,
        text: Option<Utf8Bytes>,
        req: LoginRequest,
    ) -> Result<(), EndReason> {
        let router = self.ctx.gateway.router();
        let limits = &router.config().limits;
        let failures = self.ctx.gateway.login_failures();
        if failures
            .cooling(limits, self.ctx.peer.ip(), &req.login, Instant::now())
            .is_some()
        {
            let reply = verto::error_reply(&req.id, verto::AUTH_FAILED, COOLDOWN_MESSAGE);
            let step = self
                .state
                .routed(Routed::Refused("cooling_down"), &req.login, reply);
            return self.answer(browser, step).await;
        }
        let route = router.route(&req.login);
        let refusal = verto::error_reply(&req.id, verto::AUTH_FAILED, verto::LOGIN_INCORRECT);
        let verdict = match &route {
            Ok(route) => Routed::Partition(&route.partition.name),
            Err(err) => {
                debug!(login = ?req.login, reason = ?err, "login not routed");
                Routed::Refused("no_partition")
            }
        };
        let step = self.state.routed(verdict, &req.login, refusal);
        let Ok(route) = route else {
            return self.answer(browser, step).await;
        };
        self.summary.login = Some(req.login.clone());
        self.summary.partition = Some(route.partition.name.clone());
        let text = match (&router.config().gateway.client_ip_param, text) {
            (Some(name), Some(text)) => match stamp_login(&text, name, self.ctx.peer.ip()) {
                Some(stamped) => Some(Utf8Bytes::from(stamped)),
                None => {
                    let reply =
                        verto::error_reply(&req.id, verto::AUTH_FAILED, verto::LOGIN_INCORRECT);
                    return send_text(browser, reply).await;
                }
            },
            (_, text) => text,
        };
        match step {
            Step::Forward => {
                if let Some(up) = self.upstream.as_mut() {
                    up.login_id = req.id;
                    up.sessid = req.sessid;
                }
                match text {
                    Some(text) => self.forward_up(text).await,
                    None => Ok(()),
                }
            }
            Step::Connect => {
                // The node of another partition is of no further use: closed here, in
                // this session's task, so re-routing cannot pile up connections.
                if self.upstream.take().is_some() {
                    self.summary.node = None;
                }
                let partition = route.partition.name.clone();
                let nodes: Vec<(String, NodeUrl)> = route
                    .nodes
                    .iter()
                    .map(|n| (n.name.clone(), n.verto_url.clone()))
                    .collect();
                let failback = route.partition.failback;
                self.connect(browser, text, req, (partition, failback), &nodes)
                    .await
            }
            other => self.answer(browser, other).await,
        }
    }

    async fn connect(
        &mut self,
        browser: &mut BrowserSocket,
        text: Option<Utf8Bytes>,
        req: LoginRequest,
        (partition, failback): (String, Failback),
        nodes: &[(String, NodeUrl)],
    ) -> Result<(), EndReason> {
        // Sticky first (calls may wait there), then the partition's active node.
        let active = self.active_node(&partition, failback, nodes);
        let sticky = self.sticky_node(&req, nodes);
        let first = sticky.as_deref().or(active.as_deref());
        match self.connect_any(&partition, nodes, first).await {
            Some((name, socket)) => {
                let via_sticky = sticky.as_deref() == Some(name.as_str()) && sticky != active;
                self.summary.node = Some(name);
                self.upstream = Some(Upstream {
                    socket,
                    partition,
                    login_id: req.id,
                    sessid: req.sessid,
                    via_sticky,
                });
                match text {
                    Some(text) => self.forward_up(text).await,
                    None => Ok(()),
                }
            }
            None => {
                // Up but drained by the operator, with no other node to take the login.
                let draining =
                    self.ctx.gateway.health().is_some_and(|health| {
                        nodes.iter().any(|(name, _)| health.is_draining(name))
                    });
                let message = match draining {
                    true => "partition draining",
                    false => "No node available",
                };
                warn!(login = ?req.login, partition = %partition, failure = "no_node", draining, "no node of the partition is reachable");
                let counters = self.ctx.gateway.counters();
                counters.login(&partition, LoginResult::NoNode);
                self.state.connect_failed();
                send_text(
                    browser,
                    verto::error_reply(&req.id, verto::SESSION_ERROR, message),
                )
                .await
            }
        }
    }

    /// The partition's active node (health monitoring only): the first usable node,
    /// held back from a recovered higher-priority node by the failback rules.
    fn active_node(
        &self,
        partition: &str,
        failback: Failback,
        nodes: &[(String, NodeUrl)],
    ) -> Option<String> {
        let gw = &self.ctx.gateway;
        let health = gw.health()?;
        let names: Vec<&str> = nodes.iter().map(|(name, _)| name.as_str()).collect();
        let delay = health.settings().failback_delay;
        gw.actives()
            .active(partition, &names, failback, delay, health.as_ref())
    }

    /// The node this login's `sessid` was on, if it should go back there: the same
    /// login, a node of its partition that is up or draining (health monitored).
    fn sticky_node(&self, req: &LoginRequest, nodes: &[(String, NodeUrl)]) -> Option<String> {
        let gw = &self.ctx.gateway;
        let health = gw.health()?;
        let sessid = req.sessid.as_deref()?;
        let ttl = health.settings().sticky;
        let now = tokio::time::Instant::now();
        let node = gw.sticky().lookup(sessid, &req.login, ttl, now)?;
        let listed = nodes.iter().any(|(name, _)| *name == node);
        // A drained node whose deadline passed closes its sessions: none returns there.
        let closing = health.drain_deadline(&node).is_some_and(|at| at <= now);
        (listed && health.is_usable(&node) && !closing).then_some(node)
    }

    /// Tries `sticky` (the sticky or active node) first, then the partition's other
    /// nodes in priority order: with health monitoring only those that are up and not
    /// draining (a node known down is never waited on), and a failed attempt counts
    /// against its node.
    async fn connect_any(
        &self,
        partition: &str,
        nodes: &[(String, NodeUrl)],
        sticky: Option<&str>,
    ) -> Option<(String, NodeSocket)> {
        let gw = &self.ctx.gateway;
        let settings = gw.settings();
        let (timeout, stall) = (settings.connect_timeout, settings.stall_timeout);
        let health = gw.health();
        let first = nodes
            .iter()
            .filter(|(name, _)| Some(name.as_str()) == sticky);
        let rest = nodes.iter().filter(|(name, _)| {
            Some(name.as_str()) != sticky && health.is_none_or(|h| h.is_up(name))
        });
        let usable = first.chain(rest);
        for (name, url) in usable {
            match upstream::connect(url, &gw.upstream_tls(), timeout, stall).await {
                Ok(socket) => return Some((name.clone(), socket)),
                Err(err) => {
                    warn!(
                        partition,
                        node = %name,
                        url = %url,
                        failure = err.category(),
                        error = %err,
                        "node unreachable, trying the next one"
                    );
                    match health {
                        Some(health) if !err.is_local() => {
                            health.passive_failure(name, err.category());
                        }
                        _ => {}
                    }
                }
            }
        }
        None
    }

    /// The steps that only answer or close the browser.
    async fn answer(&mut self, browser: &mut BrowserSocket, step: Step) -> Result<(), EndReason> {
        match step {
            Step::Reply(reply) => send_text(browser, reply).await,
            Step::Refuse(refusal) => {
                if refusal.reason == "no_partition" {
                    let counters = self.ctx.gateway.counters();
                    counters.login("", LoginResult::NoPartition);
                }
                self.failed_login(&refusal.login, refusal.reason);
                send_text(browser, refusal.reply).await?;
                match refusal.close {
                    Some(violation) => Err(EndReason::PreLogin(violation)),
                    None => Ok(()),
                }
            }
            Step::Close(violation) => Err(EndReason::PreLogin(violation)),
            // Forward, Route and Connect are the session's to carry out; Ignore is nothing.
            Step::Ignore | Step::Forward | Step::Route(_) | Step::Connect => Ok(()),
        }
    }

    /// Logs a failed login in the fixed format fail2ban reads (README), and counts it
    /// unless it was refused for cooling down already.
    fn failed_login(&self, login: &str, reason: &'static str) {
        let peer = self.ctx.peer.ip();
        info!(peer = %peer, login = ?login, reason, "login failed");
        if reason == "cooling_down" {
            return;
        }
        let router = self.ctx.gateway.router();
        let limits = &router.config().limits;
        let started = self
            .ctx
            .gateway
            .login_failures()
            .record(limits, peer, login, Instant::now());
        for cooling in started {
            warn!(
                peer = %peer,
                login = ?login,
                cooling = ?cooling,
                cooldown_ms = limits.login_cooldown.as_millis() as u64,
                failure = "too_many_failed_logins",
                "too many failed logins: cooling down"
            );
        }
    }

    /// Records where the accepted login's sessid is (health monitoring only): the
    /// node's reply names it (`result.sessid`), else the login request did.
    fn remember_node(&mut self, reply: &str) {
        let gw = &self.ctx.gateway;
        if gw.health().is_none() {
            return;
        }
        let from_reply = serde_json::from_str::<serde_json::Value>(reply)
            .ok()
            .and_then(|v| v["result"]["sessid"].as_str().map(str::to_owned));
        let sessid = from_reply.or_else(|| self.upstream.as_ref()?.sessid.clone());
        if let (Some(sessid), Some(node), Some(login)) =
            (&sessid, &self.summary.node, &self.summary.login)
        {
            self.sticky = Some(gw.sticky().record(sessid, node, login));
        }
        if let (Some(up), Some(node), Some(login)) =
            (&self.upstream, &self.summary.node, &self.summary.login)
        {
            let new = NewSession {
                partition: &up.partition,
                node,
                login,
                sessid: sessid.as_deref(),
                peer: self.ctx.peer,
                sticky_key: sessid.as_deref().map(|s| gw.sticky().key(s)),
                via_sticky: up.via_sticky,
            };
            self.registered = Some(gw.registry().register(new));
        }
    }

    fn count_login(&self, result: LoginResult) {
        if let Some(up) = &self.upstream {
            self.ctx.gateway.counters().login(&up.partition, result);
        }
    }

    /// Handles a node message; `Ok(true)` once the node accepted the login.
    async fn on_node(
        &mut self,
        browser: &mut BrowserSocket,
        msg: Option<Result<Message, WsError>>,
    ) -> Result<bool, EndReason> {
        let Some(login_id) = self.upstream.as_ref().map(|up| up.login_id.clone()) else {
            return Ok(false);
        };
        let (msg, accepted) = match msg {
            None | Some(Err(_)) => return Err(EndReason::NodeGone),
            Some(Ok(Message::Close(frame))) => return Err(EndReason::NodeClosed(frame)),
            Some(Ok(Message::Text(text))) => {
                let accepted = match verto::login_outcome(&text, &login_id) {
                    LoginOutcome::Accepted => {
                        self.count_login(LoginResult::Ok);
                        self.remember_node(&text);
                        true
                    }
                    LoginOutcome::Rejected => {
                        self.count_login(LoginResult::Rejected);
                        // The node's verdict on the credentials: relayed as it is,
                        // counted and logged like the gateway's own refusals.
                        if let Some(login) = self.summary.login.clone() {
                            self.failed_login(&login, "node_refused");
                        }
                        false
                    }
                    LoginOutcome::Unrelated => false,
                };
                (Message::Text(text), accepted)
            }
            Some(Ok(m @ Message::Binary(_))) => (m, false),
            Some(Ok(_)) => return Ok(false),
        };
        self.summary.bytes_down += msg.len() as u64;
        browser
            .send(msg)
            .await
            .map_err(|_| EndReason::BrowserGone)?;
        Ok(accepted)
    }
}

async fn send_text(browser: &mut BrowserSocket, text: String) -> Result<(), EndReason> {
    browser
        .send(Message::text(text))
        .await
        .map_err(|_| EndReason::BrowserGone)
}
