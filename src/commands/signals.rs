//! Process signals: SIGTERM and SIGINT start a graceful shutdown; a second signal
//! exits at once.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Returns a token cancelled on the first SIGTERM/SIGINT. Must be called inside a
/// Tokio runtime.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            warn!("cannot install signal handlers; stop the process with SIGKILL");
            return;
        };
        tokio::select! {
            _ = term.recv() => info!(signal = "SIGTERM", "shutting down"),
            _ = int.recv() => info!(signal = "SIGINT", "shutting down"),
        }
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        warn!("second signal: exiting now");
        std::process::exit(130);
    });
    token
}
