//! The `vertogw` binary: parses the command line ([`vertogw::cli`]), installs logging,
//! runs the command and exits with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use vertogw::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    return_large_buffers_to_the_system();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let code = cli.command.run();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Allocations at least this large are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;

/// Makes memory of large messages go back to the system once they are relayed.
///
/// glibc serves allocations from 128 KiB up with their own mapping, but raises that
/// threshold to the size of each such block freed, so after the first large message
/// later ones come from the heap, whose free middle is not returned. Measured with
/// `vertogw-bench --mode large` (1,000 sessions, one 999,999-byte message each way, 16
/// at a time): 26.9 KiB of RSS per session stayed after them with the moving threshold,
/// 10.2 KiB with it fixed (docs/performance.md). The price is a few page faults per
/// large message, which are rare.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; it runs before any
    // other thread exists, and an unsupported value is refused (returns 0), not UB.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
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
