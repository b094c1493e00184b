//! vertogw: one public `wss://` address in front of a farm of FreeSWITCH nodes.
//!
//! A browser's Verto (JSON-RPC over WebSocket) socket is terminated here; the gateway
//! answers it itself until the first credentialed `login`, maps that login to the
//! partition that owns the user, and from then on relays frames untouched between the
//! browser and the partition's active FreeSWITCH node.
//!
//! # Layout
//! - [`config`]: the partition map file: parse, validate, domain types.
//! - [`routing`]: pure lookup from a login (`user@domain`) to a partition and its nodes.
//! - [`verto`]: pre-login message classification and the JSON-RPC replies the gateway
//!   sends itself.
//! - [`health`]: each node's state (`up`, `down`, `drain`) from active probes, failed
//!   login connects and the operator's drain flag.
//! - [`proxy`]: the listener, the WebSocket upgrade, the pre-login session, upstream
//!   connection and the relay pump.
//! - [`web`]: plain HTTP on the TLS listener: `/verto-config` and the `web_root` files.
//! - [`admin`]: the operator's API on its own listener: health, readiness, status,
//!   route lookups, Prometheus metrics and the JSON-RPC methods (drain, switch, kick,
//!   reload); [`reload`] loads and applies a new map (SIGHUP and `config.reload`).
//! - [`ctl`]: `vertogw ctl`, the admin API's command-line client.
//! - [`clientcfg`]: users (CSV or FreeSWITCH directory XML) + map → one Verto client
//!   config (JSON) per login, with the same `wsURL` as `/verto-config`.
//! - `websocket`: the WebSocket framing of both relay legs (our own codec: buffers
//!   only while a message is in flight).
//! - [`tls`]: the browser-facing certificates (default and per SNI name): loaded,
//!   checked (key, expiry, names), assembled into the rustls server config.
//! - [`nat`]: the load balancer's RTP forwarding (DNAT/SNAT per node's port range):
//!   plan, render as an `iptables-restore` batch, diff against the live table, apply.
//! - [`fsconfig`]: the FreeSWITCH settings (`ext-rtp-ip`, `rtp-ip`, RTP range,
//!   `bind-local`, `local-network`) that must agree with the map, per node.
//! - [`cli`]: the command line (clap), dispatched to [`commands`].
//! - [`commands`]: the CLI commands (`check`, `route`, `serve`, `demo`, `sim-node`,
//!   `iptables`, `fs-config`, `client-config`, `cert`; `ctl` lives in [`ctl`]).
//! - `fuzzing` (hidden): the entry points of the fuzz targets in `fuzz/` and of their
//!   corpus replay in `tests/fuzz_corpus.rs`.
//!
//! The workspace's other crates: `vertogw-net` (plain-or-TLS streams, rustls configs,
//! the open-file limit), `vertogw-sim` (the simulated mod_verto node behind `demo` and
//! `sim-node`) and `vertogw-bench` (the load generator, its own binary).
//!
//! # Data flow
//! `TcpListener` → admission (per-address, then global caps; from a load balancer: the
//! global cap, its PROXY header, then the named address's caps) → TLS ([`vertogw_net::tls`]) →
//! HTTP upgrade ([`proxy`]) → pre-login session
//! ([`verto`] classifies each frame) → credentialed login → [`routing`] → upstream
//! connect (the sticky or the partition's active node, [`health`]) → login forwarded →
//! relay pump until either side closes. Media never passes through the gateway: map →
//! [`nat`] rules on the load balancer and [`fsconfig`] settings on each node.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod clientcfg;
pub mod commands;
pub mod config;
pub mod ctl;
pub mod fsconfig;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod nat;
pub mod proxy;
pub mod reload;
pub mod routing;
pub mod tls;
pub mod verto;
pub mod web;
mod websocket;

#[cfg(test)]
mod testutil;
