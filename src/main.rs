//! The `vertogw` binary: parses the command line ([`vertogw::cli`]), installs logging,
//! runs the command and exits with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use vertogw::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let code = cli.command.run();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
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
