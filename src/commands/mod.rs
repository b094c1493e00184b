//! The CLI commands; `main.rs` only parses arguments and dispatches here.

pub mod cert;
pub mod check;
pub mod client_config;
pub mod demo;
pub mod exit;
pub mod fs_config;
pub mod iptables;
pub mod route;
pub mod serve;
pub mod signals;
pub mod sim_node;
