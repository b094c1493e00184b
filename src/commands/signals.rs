//! Process signals: SIGTERM and SIGINT start a graceful shutdown; a second signal
//! exits at once. SIGHUP reloads the map.

use std::sync::Arc;

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

/// Reloads the map with `reloader` on every SIGHUP (one at a time: a SIGHUP during a
/// reload waits for it). Must be called inside a Tokio runtime.
pub fn reload_on_hangup(reloader: Arc<crate::reload::Reloader>) {
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!("cannot install the SIGHUP handler; reload through the admin API");
            return;
        };
        while hup.recv().await.is_some() {
            info!(signal = "SIGHUP", "reload requested");
            // The outcome is logged, counted and shown in /status by the reloader.
            let _ = reloader.reload(crate::reload::Source::Sighup).await;
        }
    });
}
