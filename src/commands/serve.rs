//! `vertogw serve`: load the map and certificates, bind, run until a signal.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::admin::{self, AdminApi};
use crate::config::Config;
use crate::proxy::{self, Gateway};
use crate::reload::Reloader;
use vertogw_net::tls;

/// Runs the gateway for the map at `path` until SIGTERM/SIGINT.
pub async fn run(path: PathBuf) -> anyhow::Result<()> {
    let loaded = Config::load(&path).map_err(|errs| anyhow::anyhow!("{errs}"))?;
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    raise_descriptor_limit();
    super::iptables::apply_on_start(&loaded.config).context("manage_iptables")?;
    let config = Arc::new(loaded.config);
    let gw = &config.gateway;
    // `Config::load` loaded and checked every certificate; serve exactly those.
    let certificates = loaded
        .certificates
        .context("the certificates were not loaded")?;
    let server_tls = certificates.server_config()?;
    for (_, cert) in certificates.all() {
        let names = match cert.names.is_empty() {
            true => "(default)".to_owned(),
            false => cert.names.join(","),
        };
        let file = cert.cert_file.display();
        let expires = &cert.info.not_after_date;
        info!(names, cert = %file, expires, "serving certificate");
    }
    let upstream_tls = tls::client_config(gw.upstream_ca.as_deref())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listeners = proxy::bind(gw.listen, threads)
        .with_context(|| format!("cannot listen on {}", gw.listen))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("cannot listen on [admin] listen = {}", config.admin.listen))?;
    let shutdown = super::signals::shutdown_token();
    let gateway = Gateway::new(Arc::clone(&config), server_tls, upstream_tls);
    // Every node is probed once before the first browser is accepted.
    gateway.monitor(shutdown.clone()).await?;
    let reloader = Arc::new(Reloader::new(path, Arc::clone(&gateway)));
    super::signals::reload_on_hangup(Arc::clone(&reloader));
    let api = AdminApi::new(Arc::clone(&gateway), Some(reloader));
    tokio::spawn(admin::serve(admin_listener, api, shutdown.clone()));
    tokio::task::spawn_blocking(move || proxy::serve_sharded(listeners, gateway, shutdown))
        .await
        .context("serving threads")??;
    Ok(())
}

/// Each session costs two descriptors, so the usual soft limit of 1024 would cap the
/// gateway at ~500 sessions; the hard limit is what the operator actually granted.
fn raise_descriptor_limit() {
    match vertogw_net::fd::raise_nofile_limit() {
        Ok(limit) => info!(
            nofile = limit,
            session_capacity = proxy::session_capacity(limit),
            "open-file limit raised to the hard limit"
        ),
        Err(err) => warn!(
            error = %err,
            nofile = vertogw_net::fd::nofile_limit(),
            session_capacity = proxy::session_capacity(vertogw_net::fd::nofile_limit()),
            "cannot raise the open-file limit"
        ),
    }
}
