//! Network plumbing shared by the vertogw gateway, the simulated mod_verto node and the
//! load generator; nothing here knows about Verto, partitions or routing.
//!
//! - [`MaybeTls`]: a TCP stream with or without TLS, client or server side.
//! - [`tls`]: rustls configs built with the aws-lc-rs provider passed explicitly, PEM
//!   loading and self-signed certificates.
//! - [`server_tls`]: the browser-facing TLS stream, holding no buffers while idle.
//! - [`sni`]: picks a server certificate by the name the client asks for.
//! - [`fd`]: the process's open-file limit, which bounds how many sockets it can hold.
#![forbid(unsafe_code)]

pub mod fd;
mod maybe_tls;
pub mod server_tls;
pub mod sni;
pub mod tls;

pub use maybe_tls::MaybeTls;
