//! The `vertogw` command line: what a person types, parsed with clap and dispatched to
//! [`crate::commands`]. Kept in the library so tests can check every documented command
//! line against the real parser.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::{self, exit};

/// Where the map is read from when no path is given.
pub const DEFAULT_MAP: &str = "config/vertogw.toml";

/// A TLS Verto gateway that routes each FreeSWITCH WebRTC login to its partition's node.
#[derive(Parser, Debug)]
#[command(name = "vertogw", version, about)]
pub struct Cli {
    /// Log line format (logs go to stderr; the filter comes from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The partition map, given as `--config FILE` or as a plain path.
#[derive(Args, Debug)]
pub struct MapArg {
    /// The partition map [default: config/vertogw.toml].
    #[arg(long = "config", value_name = "FILE", conflicts_with = "map")]
    config: Option<PathBuf>,
    /// The partition map, as a plain path (same as --config).
    #[arg(value_name = "MAP")]
    map: Option<PathBuf>,
}

impl MapArg {
    /// The map's path.
    pub fn path(&self) -> &Path {
        self.config
            .as_deref()
            .or(self.map.as_deref())
            .unwrap_or(Path::new(DEFAULT_MAP))
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve(MapArg),
    /// Validate the partition map; print every error, or a summary.
    Check(MapArg),
    /// Show which partition and nodes a login routes to.
    #[command(override_usage = "vertogw route [--json] [--config FILE | MAP] LOGIN")]
    Route(RouteArgs),
    /// Run the gateway with simulated nodes and the bundled demo map.
    Demo(commands::demo::DemoArgs),
    /// Run one simulated mod_verto node.
    SimNode(SimNodeArgs),
    /// The load balancer's RTP forwarding rules (nat table), generated from the map's media table.
    Iptables {
        /// What to do with the rules.
        #[command(subcommand)]
        action: IptablesAction,
    },
    /// Print (or write) the FreeSWITCH settings a node needs to agree with the map.
    FsConfig(FsConfigArgs),
    /// Make a self-signed certificate and key for development (certs/README.md).
    Cert(CertArgs),
    /// Write a Verto client config (JSON) per user, wsURL from the map, and an index.
    ClientConfig(commands::client_config::ClientConfigArgs),
    /// Ask a running gateway's admin API: status, drain, undrain, switch, sessions, kick, route, reload.
    #[command(
        override_usage = "vertogw ctl [--admin URL] [--token-file F] [--config MAP] [--json] <VERB>"
    )]
    Ctl(crate::ctl::CtlArgs),
}

/// Options of `cert`.
#[derive(Args, Debug)]
pub struct CertArgs {
    /// The folder the pair is written to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A DNS name or IP address the certificate is for; repeat for more.
    #[arg(long = "name", value_name = "NAME", required = true)]
    names: Vec<String>,
    /// The files' name: FILE.crt and FILE.key (the example map expects gw).
    #[arg(long = "file", value_name = "FILE", default_value = "gw")]
    stem: String,
}

/// Options of `route`.
#[derive(Args, Debug)]
pub struct RouteArgs {
    /// The partition map [default: config/vertogw.toml].
    #[arg(long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON: {"login","partition","nodes"} or {"login","error"}.
    #[arg(long)]
    json: bool,
    /// The login, e.g. 1008@example.com, optionally preceded by the map's path.
    #[arg(value_name = "[MAP] LOGIN", num_args = 1..=2, required = true)]
    words: Vec<String>,
}

impl RouteArgs {
    /// The map's path and the login, or why the words do not say them.
    fn resolve(&self) -> Result<(PathBuf, &str), String> {
        match (self.words.as_slice(), &self.config) {
            ([login], config) => Ok((config.clone().unwrap_or_else(|| DEFAULT_MAP.into()), login)),
            ([map, login], None) => Ok((map.into(), login)),
            ([_, _], Some(_)) => {
                Err("give the map either as --config FILE or as MAP, not both".into())
            }
            _ => Err("give one LOGIN, optionally preceded by the map's path".into()),
        }
    }
}

/// Options of `sim-node`.
#[derive(Args, Debug)]
pub struct SimNodeArgs {
    /// Address to listen on (ws://).
    #[arg(long)]
    listen: SocketAddr,
    /// Node name, reported in verto.clientReady.
    #[arg(long)]
    name: String,
    /// Users file (TOML), e.g. config/sim-users.toml.
    #[arg(long)]
    users: PathBuf,
    /// Serve wss:// with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Options of `fs-config`.
#[derive(Args, Debug)]
pub struct FsConfigArgs {
    #[command(flatten)]
    map: MapArg,
    /// The node, by its [[node]] name.
    #[arg(long)]
    node: String,
    /// Write the files into this directory instead of printing them.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Options shared by the `iptables` subcommands.
#[derive(Args, Debug)]
pub struct IptablesArgs {
    #[command(flatten)]
    map: MapArg,
    /// Run iptables inside this network namespace (`ip netns exec NAME …`).
    #[arg(long)]
    netns: Option<String>,
}

/// The `iptables` subcommands.
#[derive(Subcommand, Debug)]
pub enum IptablesAction {
    /// Print the iptables-restore input and a per-node summary (reads nothing live by default).
    Plan {
        #[command(flatten)]
        args: IptablesArgs,
        /// Print the batch `apply` would send to the current table instead.
        #[arg(long)]
        live: bool,
    },
    /// Make the live rules match the map, in one transaction; print what changed.
    Apply(IptablesArgs),
    /// Remove every rule and chain vertogw owns, and nothing else.
    Flush(IptablesArgs),
    /// Exit 0 if the live rules match the map; else print the difference and exit 2.
    Check(IptablesArgs),
}

impl IptablesAction {
    fn run(self) -> i32 {
        use commands::iptables::Action;
        let (args, action) = match self {
            IptablesAction::Plan { args, live } => (args, Action::Plan { live }),
            IptablesAction::Apply(args) => (args, Action::Apply),
            IptablesAction::Flush(args) => (args, Action::Flush),
            IptablesAction::Check(args) => (args, Action::Check),
        };
        let runner = match &args.netns {
            Some(ns) => crate::nat::Runner::netns(ns),
            None => crate::nat::Runner::host(),
        };
        commands::iptables::run(
            args.map.path(),
            action,
            &runner,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
    }
}

impl Command {
    /// Runs the command; returns the process exit code ([`exit`]).
    pub fn run(self) -> i32 {
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        match self {
            Command::Check(map) => commands::check::run(map.path(), &mut out, &mut err),
            Command::Route(args) => {
                match args.resolve() {
                    Ok((map, login)) => {
                        commands::route::run(&map, login, args.json, &mut out, &mut err)
                    }
                    Err(usage) => {
                        eprintln!("error: {usage}\nusage: vertogw route [--json] [--config FILE | MAP] LOGIN");
                        exit::ERROR
                    }
                }
            }
            Command::Serve(map) => run_async(commands::serve::run(map.path().to_owned())),
            Command::Demo(args) => run_async(commands::demo::run(args)),
            Command::SimNode(args) => run_async(async move {
                let tls = match (&args.tls_cert, &args.tls_key) {
                    (Some(cert), Some(key)) => {
                        Some(vertogw_net::tls::load_server_config(cert, key)?)
                    }
                    _ => None,
                };
                let shutdown = commands::signals::shutdown_token();
                commands::sim_node::run(args.listen, args.name, &args.users, tls, shutdown).await
            }),
            Command::Iptables { action } => action.run(),
            Command::Cert(args) => {
                commands::cert::run(&args.out, &args.stem, &args.names, &mut out, &mut err)
            }
            Command::ClientConfig(args) => commands::client_config::run(&args, &mut out, &mut err),
            Command::Ctl(args) => crate::ctl::run(&args, &mut out, &mut err),
            Command::FsConfig(args) => commands::fs_config::run(
                args.map.path(),
                &args.node,
                args.out.as_deref(),
                &mut out,
                &mut err,
            ),
        }
    }
}

/// Runs a long-lived command on a multi-threaded runtime; its error goes to stderr.
fn run_async<F>(fut: F) -> i32
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return exit::ERROR;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => exit::OK,
        Err(err) => {
            eprintln!("error: {}", error_chain(err.as_ref()));
            exit::ERROR
        }
    }
}

/// An error and its causes on one line, `outer: cause: …`, leaving out a cause whose
/// text the line already holds (many errors quote their source in their own message).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read users file u.toml: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("starting the node")]
    struct Context {
        source: Quoting,
    }

    #[test]
    fn a_cause_already_quoted_is_not_printed_twice() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let err = Context {
            source: Quoting { source: io },
        };
        assert_eq!(
            error_chain(&err),
            "starting the node: cannot read users file u.toml: No such file"
        );
    }

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(line.split_whitespace())
    }

    #[test]
    fn the_map_is_a_flag_or_a_plain_path() {
        for (line, want) in [
            ("vertogw check", DEFAULT_MAP),
            ("vertogw check m.toml", "m.toml"),
            ("vertogw check --config m.toml", "m.toml"),
            ("vertogw serve m.toml", "m.toml"),
            ("vertogw fs-config m.toml --node fs1", "m.toml"),
            ("vertogw iptables plan m.toml", "m.toml"),
        ] {
            let cli = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let path = match &cli.command {
                Command::Check(m) | Command::Serve(m) => m.path(),
                Command::FsConfig(a) => a.map.path(),
                Command::Iptables {
                    action: IptablesAction::Plan { args, .. },
                } => args.map.path(),
                other => panic!("{line}: parsed as {other:?}"),
            };
            assert_eq!(path, Path::new(want), "{line}");
        }
        assert!(parse("vertogw check --config a.toml b.toml").is_err());
    }

    #[test]
    fn route_takes_an_optional_map_before_the_login() {
        for (line, map, login) in [
            ("vertogw route 1000@a.test", DEFAULT_MAP, "1000@a.test"),
            ("vertogw route m.toml 1000@a.test", "m.toml", "1000@a.test"),
            (
                "vertogw route --config m.toml 1000@a.test",
                "m.toml",
                "1000@a.test",
            ),
            (
                "vertogw route --json m.toml 1000@a.test",
                "m.toml",
                "1000@a.test",
            ),
            (
                "vertogw route m.toml 1000@a.test --json",
                "m.toml",
                "1000@a.test",
            ),
        ] {
            let Ok(Cli {
                command: Command::Route(args),
                ..
            }) = parse(line)
            else {
                panic!("{line}: not parsed as route");
            };
            let (got_map, got_login) = args.resolve().unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(
                (got_map.as_path(), got_login),
                (Path::new(map), login),
                "{line}"
            );
        }
        let Ok(Cli {
            command: Command::Route(args),
            ..
        }) = parse("vertogw route --config m.toml other.toml 1000@a.test")
        else {
            panic!("not parsed as route");
        };
        assert!(args.resolve().is_err());
        assert!(parse("vertogw route").is_err());
        assert!(parse("vertogw route a b c").is_err());
    }
}
