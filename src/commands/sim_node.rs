//! `vertogw sim-node`: run a simulated mod_verto node for manual and load testing.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use vertogw_sim::{SimConfig, SimNode};

/// Serves a simulated node on `listen` with the users of `users` (TOML, see
/// `config/sim-users.toml`) until `shutdown` is cancelled, then closes every
/// socket with 1000. With `tls` the node serves `wss://`.
pub async fn run(
    listen: SocketAddr,
    name: String,
    users: &Path,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut config = SimConfig::from_users_file(name, users)?;
    if let Some(tls) = tls {
        config = config.with_tls(tls);
    }
    let listener =
        crate::proxy::bind_one(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let node = SimNode::spawn(listener, config).await;
    tracing::info!(
        node = node.name(),
        url = %node.url(),
        users_file = %users.display(),
        "simulated mod_verto node ready"
    );
    shutdown.cancelled().await;
    node.shutdown().await;
    tracing::info!("simulated mod_verto node stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_users_file_is_an_error_naming_the_file() {
        let err = run(
            "127.0.0.1:0".parse().unwrap(),
            "sim".into(),
            Path::new("/nonexistent/sim-users.toml"),
            None,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/sim-users.toml"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_example_users_file_serves_until_cancelled() {
        let users = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/sim-users.toml"
        ));
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        run(
            "127.0.0.1:0".parse().unwrap(),
            "sim".into(),
            users,
            None,
            shutdown,
        )
        .await
        .unwrap();
    }
}
