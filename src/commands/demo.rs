//! `vertogw demo`: the bundled demo map, one simulated node per `[[node]]`, and the
//! gateway in front of them, on loopback; no FreeSWITCH needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tracing::info;

use crate::config::{Config, DomainPattern, ExtensionRule, Partition};
use crate::proxy::{self, Gateway};
use crate::routing::Router;
use vertogw_net::tls;
use vertogw_sim::{SimConfig, SimNode, SimUsers};

/// The demo map, compiled in so `demo` works from any directory.
pub const DEMO_MAP: &str = include_str!("../../config/demo.toml");

/// Where the demo map claims to live (its relative certificate paths resolve from here).
const DEMO_MAP_PATH: &str = "config/demo.toml";

/// Password every simulated demo user accepts.
pub const DEMO_PASSWORD: &str = "1234";

/// Runs the demo until SIGTERM/SIGINT.
pub async fn run() -> anyhow::Result<()> {
    let shutdown = super::signals::shutdown_token();
    let loaded = Config::parse(DEMO_MAP, Path::new(DEMO_MAP_PATH))
        .map_err(|errs| anyhow::anyhow!("the bundled demo map is invalid:\n{errs}"))?;
    let config = Arc::new(loaded.config);
    let (server_tls, cert_path) = demo_tls(&config)?;
    let mut nodes = Vec::new();
    for node in &config.nodes {
        let addr = (node.verto_url.host.as_str(), node.verto_url.port);
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "demo node {} cannot listen on {}",
                node.name, node.verto_url
            )
        })?;
        let users = SimUsers::range(1000..=9999, DEMO_PASSWORD).with_user(
            "alice",
            DEMO_PASSWORD,
            &["verto", "echo"],
        );
        nodes.push(SimNode::spawn(listener, SimConfig::new(node.name.clone(), users)).await);
    }
    let listener = proxy::bind_one(config.gateway.listen)
        .with_context(|| format!("cannot listen on {}", config.gateway.listen))?;
    print_banner(&config, &cert_path);
    let gateway = Gateway::new(Arc::clone(&config), server_tls, tls::client_config(None)?);
    proxy::serve(listener, gateway, shutdown).await?;
    for node in nodes {
        node.shutdown().await;
    }
    info!("demo stopped");
    Ok(())
}

/// Uses the map's certificate when it exists, else a fresh self-signed one for
/// localhost written to a temporary directory (so a browser can be told to trust it).
fn demo_tls(config: &Config) -> anyhow::Result<(Arc<ServerConfig>, PathBuf)> {
    let gw = &config.gateway;
    if let Ok(server) = tls::load_server_config(&gw.tls_cert, &gw.tls_key) {
        return Ok((server, gw.tls_cert.clone()));
    }
    let cert = tls::self_signed(&["localhost", "127.0.0.1", "::1"])?;
    let dir = std::env::temp_dir().join(format!("vertogw-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cert_path = dir.join("demo.crt");
    std::fs::write(&cert_path, &cert.cert_pem)
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    let server = tls::server_config_from_pem(
        cert.cert_pem.as_bytes(),
        cert.key_pem.as_bytes(),
        "generated demo certificate",
    )?;
    Ok((server, cert_path))
}

/// A login that lands on `partition`, if one can be made up from its patterns.
fn example_login(router: &Router, partition: &Partition) -> Option<String> {
    let user = match partition.extensions.as_deref() {
        Some([ExtensionRule::Range { start, .. }, ..]) => start.to_string(),
        Some([ExtensionRule::Exact(name), ..]) => name.clone(),
        _ => "1000".to_owned(),
    };
    partition.domains.iter().find_map(|domain| {
        let host = match domain {
            DomainPattern::Exact(d) => d.clone(),
            DomainPattern::Suffix(s) => format!("demo.{s}"),
            DomainPattern::Any => "anywhere.test".to_owned(),
        };
        let login = format!("{user}@{host}");
        let routed = router.route(&login).ok()?;
        (routed.partition.name == partition.name).then_some(login)
    })
}

fn print_banner(config: &Arc<Config>, cert_path: &Path) {
    let router = Router::new(Arc::clone(config));
    let port = config.gateway.listen.port();
    println!("vertogw demo: gateway on wss://localhost:{port}/ (any path)");
    println!(
        "TLS certificate: {} (self-signed: trust it or accept the browser warning)",
        cert_path.display()
    );
    println!("Simulated nodes:");
    for node in &config.nodes {
        println!("  {:<6} {}", node.name, node.verto_url);
    }
    println!("Example logins (password {DEMO_PASSWORD}):");
    for partition in &config.partitions {
        if let Some(login) = example_login(&router, partition) {
            println!(
                "  {login:<28} -> partition {:<10} nodes {}",
                partition.name,
                partition.nodes.join(", ")
            );
        }
    }
    println!("Try: vertogw route --config {DEMO_MAP_PATH} <login>    Stop: Ctrl-C");
}
