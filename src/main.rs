//! The `vertogw` binary: parses the command line, installs logging, runs a command
//! from [`vertogw::commands`] and maps its outcome to an exit code.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use vertogw::commands;

/// A TLS Verto gateway that routes each FreeSWITCH WebRTC login to its partition's node.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log line format (logs go to stderr; the filter comes from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The partition map.
        #[arg(long, default_value = "config/vertogw.toml")]
        config: PathBuf,
    },
    /// Validate the partition map; print every error, or a summary.
    Check {
        /// The partition map.
        #[arg(long, default_value = "config/vertogw.toml")]
        config: PathBuf,
    },
    /// Show which partition and nodes a login routes to.
    Route {
        /// The partition map.
        #[arg(long, default_value = "config/vertogw.toml")]
        config: PathBuf,
        /// Print JSON: {"login","partition","nodes"} or {"login","error"}.
        #[arg(long)]
        json: bool,
        /// The login, e.g. 1008@example.com.
        login: String,
    },
    /// Run the gateway with simulated nodes and the bundled demo map.
    Demo,
    /// Run one simulated mod_verto node.
    SimNode {
        /// Address to listen on (ws://).
        #[arg(long)]
        listen: SocketAddr,
        /// Node name, reported in verto.clientReady.
        #[arg(long)]
        name: String,
        /// Users file (TOML).
        #[arg(long)]
        users: PathBuf,
        /// Serve wss:// with this PEM certificate chain (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// The load balancer's RTP forwarding rules (nat table), generated from the map's [media].
    Iptables {
        #[command(subcommand)]
        action: IptablesAction,
    },
    /// Print (or write) the FreeSWITCH settings a node needs to agree with the map.
    FsConfig {
        /// The partition map.
        #[arg(long, default_value = "config/vertogw.toml")]
        config: PathBuf,
        /// The node, by its [[node]] name.
        #[arg(long)]
        node: String,
        /// Write the files into this directory instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Options shared by the `iptables` subcommands.
#[derive(clap::Args)]
struct IptablesArgs {
    /// The partition map.
    #[arg(long, default_value = "config/vertogw.toml")]
    config: PathBuf,
    /// Run iptables inside this network namespace (`ip netns exec NAME …`).
    #[arg(long)]
    netns: Option<String>,
}

#[derive(Subcommand)]
enum IptablesAction {
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
    /// Exit 0 if the live rules match the map; else print the difference and exit 1.
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
            Some(ns) => vertogw::nat::Runner::netns(ns),
            None => vertogw::nat::Runner::host(),
        };
        commands::iptables::run(
            &args.config,
            action,
            &runner,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let code = match cli.command {
        Command::Check { config } => {
            commands::check::run(&config, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Route {
            config,
            json,
            login,
        } => commands::route::run(
            &config,
            &login,
            json,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ),
        Command::Serve { config } => run_async(commands::serve::run(config)),
        Command::Demo => run_async(commands::demo::run()),
        Command::SimNode {
            listen,
            name,
            users,
            tls_cert,
            tls_key,
        } => run_async(async move {
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(vertogw_net::tls::load_server_config(&cert, &key)?),
                _ => None,
            };
            let shutdown = commands::signals::shutdown_token();
            commands::sim_node::run(listen, name, &users, tls, shutdown).await
        }),
        Command::Iptables { action } => action.run(),
        Command::FsConfig { config, node, out } => commands::fs_config::run(
            &config,
            &node,
            out.as_deref(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

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
            return 1;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

/// Libraries whose trace output contains message payloads (a `login`'s password):
/// capped whatever RUST_LOG says, because passwords never reach a log.
const PAYLOAD_LOGGING_TARGETS: [&str; 2] = ["tungstenite=info", "tokio_tungstenite=info"];

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for cap in PAYLOAD_LOGGING_TARGETS {
        if let Ok(directive) = cap.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
