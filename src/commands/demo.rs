//! `vertogw demo`: the bundled demo map, one simulated node per `[[node]]`, and the
//! gateway in front of them, on loopback; no FreeSWITCH needed. Every login the banner
//! or the map's comments advertise works end to end.

use std::io::Write;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tracing::{info, warn};
use vertogw_net::tls;
use vertogw_sim::{SimConfig, SimNode, SimUsers};

use crate::admin::AdminApi;
use crate::config::{Config, DomainPattern, ExtensionRule, Partition};
use crate::proxy::{self, Gateway};
use crate::routing::Router;

/// The demo map, compiled in so `demo` works from any directory.
pub const DEMO_MAP: &str = include_str!("../../config/demo.toml");

/// Where the demo map claims to live (names it in messages).
const DEMO_MAP_PATH: &str = "config/demo.toml";

/// Password every simulated demo user accepts.
pub const DEMO_PASSWORD: &str = "1234";

/// Numeric users every demo node knows (the map's ranges fall inside).
const DEMO_USER_IDS: RangeInclusive<u64> = 1000..=9999;

/// What demo users may call: the Verto family, and `echo`, the load generator's request.
const DEMO_METHODS: &[&str] = &["verto", "echo"];

/// The demo certificate's file names inside the certificate directory (the stem is
/// what `cert::write_pair` takes).
const CERT_STEM: &str = "demo";
const CERT_FILE: &str = "demo.crt";
const KEY_FILE: &str = "demo.key";

/// Options of `vertogw demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where browsers connect (wss); port 0 picks a free port [default: the demo map's 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Port of the first simulated node, the others on the next ports; 0 picks free ports
    /// [default: the demo map's 18081].
    #[arg(long, value_name = "PORT")]
    pub node_port_base: Option<u16>,
    /// Directory of the demo's TLS certificate (demo.crt, demo.key): generated on the
    /// first run, reused afterwards so a browser trusts it once.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    pub certs: PathBuf,
    /// The web client served at https://localhost:PORT/ [default: the demo map's
    /// web-client/, relative to the working directory: run the demo from the
    /// repository's root].
    #[arg(long, value_name = "DIR")]
    pub web_root: Option<PathBuf>,
    /// The admin API (status, metrics, drain, switch; `vertogw ctl`); port 0 picks a
    /// free port [default: the demo map's 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
}

/// Runs the demo until SIGTERM/SIGINT.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let shutdown = super::signals::shutdown_token();
    let mut config = Config::parse(DEMO_MAP, Path::new(DEMO_MAP_PATH))
        .map_err(|errs| anyhow::anyhow!("the bundled demo map is invalid:\n{errs}"))?
        .config;
    let cert = DemoCert::load_or_create(&args.certs)?;
    let nodes = start_nodes(&mut config, args.node_port_base).await?;
    let listen = args.listen.unwrap_or(config.gateway.listen);
    let listener = proxy::bind_one(listen).with_context(|| {
        format!("the gateway cannot listen on {listen} (choose another address with --listen ADDR; port 0 picks a free one)")
    })?;
    config.gateway.listen = listener.local_addr()?;
    // The name the certificate and the browser's trust exception are for, on the port
    // the gateway got.
    let public = format!("wss://localhost:{}/", config.gateway.listen.port());
    config.gateway.public_url = Some(public.parse().context("the demo's public URL")?);
    if let Some(dir) = args.web_root {
        config.gateway.web_root = Some(dir);
    }
    // The demo runs without its admin API rather than not at all.
    let admin_at = args.admin.unwrap_or(config.admin.listen);
    let admin = match TcpListener::bind(admin_at).await {
        Ok(listener) => {
            config.admin.listen = listener.local_addr()?;
            Some(listener)
        }
        Err(e) => {
            warn!(listen = %admin_at, error = %e, "the admin API cannot listen there (choose another address with --admin ADDR); the demo runs without it");
            None
        }
    };
    let config = Arc::new(config);
    print_banner(&config, &cert, admin.is_some());
    let gateway = Gateway::new(Arc::clone(&config), cert.server, tls::client_config(None)?);
    gateway.monitor(shutdown.clone()).await?;
    if let Some(listener) = admin {
        // The demo's map is built in: there is no file to reload.
        let api = AdminApi::new(Arc::clone(&gateway), None);
        tokio::spawn(crate::admin::serve(listener, api, shutdown.clone()));
    }
    proxy::serve(listener, gateway, shutdown).await?;
    for node in nodes {
        node.shutdown().await;
    }
    info!("demo stopped");
    Ok(())
}

/// Starts one simulated node per `[[node]]` and points the map at the ports they got.
async fn start_nodes(config: &mut Config, port_base: Option<u16>) -> anyhow::Result<Vec<SimNode>> {
    let users = demo_users(config);
    let mut nodes = Vec::new();
    for i in 0..config.nodes.len() {
        let url = &config.nodes[i].verto_url;
        let port = match port_base {
            None => url.port,
            Some(0) => 0,
            Some(base) => u16::try_from(usize::from(base) + i)
                .context("--node-port-base leaves no room for every demo node")?,
        };
        let name = config.nodes[i].name.clone();
        let addr = (url.host.as_str(), port);
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!(
                "demo node {name} cannot listen on {}:{port} (is another demo running? choose other ports with --node-port-base PORT; 0 picks free ones)",
                url.host
            )
        })?;
        let actual = listener.local_addr()?.port();
        config.nodes[i].verto_url = url.with_port(actual);
        let sim = SimConfig::new(name.clone(), users.clone())
            .with_force_domain(single_domain(config, &name));
        nodes.push(SimNode::spawn(listener, sim).await);
    }
    Ok(nodes)
}

/// The directory every demo node has: all numeric ids of [`DEMO_USER_IDS`] and every
/// user name the map lists, all with [`DEMO_PASSWORD`] and [`DEMO_METHODS`].
fn demo_users(config: &Config) -> SimUsers {
    let names = config
        .partitions
        .iter()
        .flat_map(|p| p.extensions.iter().flatten())
        .filter_map(|rule| match rule {
            ExtensionRule::Exact(name) => Some(name.as_str()),
            ExtensionRule::Range { .. } => None,
        });
    names.fold(
        SimUsers::new().with_range(DEMO_USER_IDS, DEMO_PASSWORD, DEMO_METHODS),
        |users, name| users.with_user(name, DEMO_PASSWORD, DEMO_METHODS),
    )
}

/// The `force-register-domain` an operator would give `node`: the one exact domain all
/// of its partitions serve, if there is exactly one. mod_verto needs a domain for every
/// login, so only such a node can accept logins sent without `@domain`.
fn single_domain(config: &Config, node: &str) -> Option<String> {
    let mut domains = config
        .partitions
        .iter()
        .filter(|p| p.nodes.iter().any(|n| n == node))
        .flat_map(|p| p.domains.iter());
    let Some(DomainPattern::Exact(first)) = domains.next() else {
        return None;
    };
    domains
        .all(|d| matches!(d, DomainPattern::Exact(other) if other == first))
        .then(|| first.clone())
}

/// The gateway's certificate: kept in a directory so a browser told to trust it once
/// keeps trusting it.
struct DemoCert {
    server: Arc<ServerConfig>,
    /// Where the certificate is, or why it could not be saved.
    place: Result<PathBuf, String>,
    generated: bool,
}

impl DemoCert {
    fn load_or_create(dir: &Path) -> anyhow::Result<DemoCert> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let server = tls::load_server_config(&cert_path, &key_path).with_context(|| {
                    format!(
                        "the demo certificate in {} is unusable; delete {CERT_FILE} and {KEY_FILE} there to have new ones generated",
                        dir.display()
                    )
                })?;
                return Ok(DemoCert {
                    server,
                    place: Ok(cert_path),
                    generated: false,
                });
            }
            (true, false) | (false, true) => anyhow::bail!(
                "{} holds only one of {CERT_FILE} and {KEY_FILE}; delete it to have a new pair generated",
                dir.display()
            ),
            (false, false) => {}
        }
        let cert = tls::self_signed(&["localhost", "127.0.0.1", "::1"])?;
        let server = tls::server_config_from_pem(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
            "generated demo certificate",
        )?;
        let place = super::cert::write_pair(dir, CERT_STEM, &cert)
            .map(|(cert_path, _)| cert_path)
            .map_err(|e| {
                warn!(error = %e, "the demo certificate cannot be saved; using it from memory");
                format!("{e:#}")
            });
        Ok(DemoCert {
            server,
            place,
            generated: true,
        })
    }
}

/// A login that lands on `partition`, if one can be made up from its patterns.
fn example_login(router: &Router, config: &Config, partition: &Partition) -> Option<String> {
    let user = match partition.extensions.as_deref() {
        Some([ExtensionRule::Range { start, .. }, ..]) => start.to_string(),
        Some([ExtensionRule::Exact(name), ..]) => name.clone(),
        _ => "1000".to_owned(),
    };
    let default = config.gateway.default_domain.as_deref();
    partition.domains.iter().find_map(|domain| {
        let login = match domain {
            // Show the default domain at work: the login without "@domain".
            DomainPattern::Exact(d) if Some(d.as_str()) == default => user.clone(),
            DomainPattern::Exact(d) => format!("{user}@{d}"),
            DomainPattern::Suffix(s) => format!("{user}@demo.{s}"),
            DomainPattern::Any => format!("{user}@anywhere.test"),
        };
        let routed = router.route(&login).ok()?;
        (routed.partition.name == partition.name).then_some(login)
    })
}

fn print_banner(config: &Arc<Config>, cert: &DemoCert, admin: bool) {
    let router = Router::new(Arc::clone(config));
    let port = config.gateway.listen.port();
    println!("vertogw demo: gateway on wss://localhost:{port}/ (any path)");
    match &cert.place {
        Ok(path) => {
            let how = if cert.generated {
                "generated"
            } else {
                "reused"
            };
            println!(
                "TLS certificate: {} ({how}; self-signed: trust it once, or accept the browser warning)",
                path.display()
            );
        }
        Err(why) => println!("TLS certificate: generated, held in memory only ({why})"),
    }
    match &config.gateway.web_root {
        Some(root) if root.join("index.html").is_file() => {
            println!("Web client: https://localhost:{port}/ (from {})", root.display())
        }
        Some(root) => println!(
            "Web client: not found in {} (run the demo from the repository's root, or give --web-root DIR)",
            root.display()
        ),
        None => {}
    }
    if admin {
        println!(
            "Admin API: http://{0}/status  (vertogw ctl --admin http://{0} status)",
            config.admin.listen
        );
    }
    println!("Simulated nodes:");
    for node in &config.nodes {
        println!("  {:<6} {}", node.name, node.verto_url);
    }
    println!("Example logins (password {DEMO_PASSWORD}; every user may call verto.* and echo):");
    for partition in &config.partitions {
        if let Some(login) = example_login(&router, config, partition) {
            println!(
                "  {login:<28} -> partition {:<15} nodes {}",
                partition.name,
                partition.nodes.join(", ")
            );
        }
    }
    println!("Stop: Ctrl-C");
    // The banner is how scripts and tests learn the ports: make sure it is out now.
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_config() -> Config {
        match Config::parse(DEMO_MAP, Path::new(DEMO_MAP_PATH)) {
            Ok(loaded) => loaded.config,
            Err(errs) => panic!("{errs}"),
        }
    }

    #[test]
    fn only_a_node_whose_partitions_all_name_one_exact_domain_forces_it() {
        let config = demo_config();
        let forced: Vec<_> = ["fs1", "fs2", "fs3", "fs4"]
            .iter()
            .map(|n| single_domain(&config, n))
            .collect();
        assert_eq!(
            forced,
            [
                Some("acme.example.com".to_owned()),
                None,
                None,
                Some("example.com".to_owned())
            ]
        );
    }

    #[test]
    fn every_partition_has_an_example_login_that_routes_to_it() {
        let config = Arc::new(demo_config());
        let router = Router::new(Arc::clone(&config));
        for partition in &config.partitions {
            let login = example_login(&router, &config, partition)
                .unwrap_or_else(|| panic!("no example for {}", partition.name));
            let routed = router.route(&login).map(|r| r.partition.name.clone());
            assert_eq!(routed.as_deref(), Ok(partition.name.as_str()), "{login}");
        }
    }
}
