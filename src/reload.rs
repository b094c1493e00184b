//! Hot reload of the map, its certificates and keys (SIGHUP and the admin API's
//! `config.reload`). One reload at a time; the new map is loaded and validated in full
//! first (every certificate and key read, each key checked against its certificate),
//! and any error rejects the whole reload: nothing changes, the error is logged,
//! counted and kept for `/status`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tracing::{error, info, warn};

use crate::config::Config;
use crate::proxy::Gateway;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The process got SIGHUP.
    Sighup,
    /// The admin API's `config.reload`.
    Rpc,
}

impl Source {
    /// Its name in `/status` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sighup => "sighup",
            Source::Rpc => "rpc",
        }
    }
}

/// What a reload applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Partitions in the new map.
    pub partitions: usize,
    /// Nodes in the new map.
    pub nodes: usize,
}

/// Why a reload was rejected (nothing was applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The map, a certificate or a key is invalid: the lines `vertogw check` prints.
    #[error("invalid map:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl ReloadError {
    /// Its lines, one problem each.
    pub fn lines(&self) -> &[String] {
        match self {
            ReloadError::Invalid(lines) => lines,
        }
    }
}

/// The last reload, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastReload {
    /// When it finished.
    pub at: SystemTime,
    /// What asked for it.
    pub source: Source,
    /// Its problems; empty when it was applied.
    pub errors: Vec<String>,
}

/// Reloads one gateway from its map file.
pub struct Reloader {
    path: PathBuf,
    gateway: Arc<Gateway>,
    /// Serialises reloads: a second waits for the first.
    turn: tokio::sync::Mutex<()>,
    last: Mutex<Option<LastReload>>,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// Reloads `gateway` from the map at `path` when asked.
    pub fn new(path: PathBuf, gateway: Arc<Gateway>) -> Reloader {
        Reloader {
            path,
            gateway,
            turn: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The map file reloads read.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Loads the map again and applies it, or changes nothing and says why.
    pub async fn reload(&self, source: Source) -> Result<Applied, ReloadError> {
        let _turn = self.turn.lock().await;
        info!(source = source.as_str(), map = %self.path.display(), "reloading the map");
        let result = self.load_and_apply().await;
        let errors = match &result {
            Ok(applied) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                info!(
                    source = source.as_str(),
                    partitions = applied.partitions,
                    nodes = applied.nodes,
                    "map reloaded"
                );
                Vec::new()
            }
            Err(err) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                for line in err.lines() {
                    error!(source = source.as_str(), problem = %line, "reload rejected: nothing changed");
                }
                err.lines().to_vec()
            }
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(LastReload {
            at: SystemTime::now(),
            source,
            errors,
        });
        result
    }

    async fn load_and_apply(&self) -> Result<Applied, ReloadError> {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .map_err(|e| ReloadError::Invalid(vec![format!("the loader failed: {e}")]))?
            .map_err(|errs| {
                ReloadError::Invalid(errs.errors.iter().map(|e| e.to_string()).collect())
            })?;
        let current = self.gateway.router().config().clone();
        let new = loaded.config;
        let mut problems = restart_needed(&current, &new);
        let server_tls = match loaded.certificates.map(|c| c.server_config()) {
            Some(Ok(tls)) => Some(tls),
            Some(Err(e)) => {
                problems.push(format!("{}: {e}", self.path.display()));
                None
            }
            None => {
                problems.push(format!(
                    "{}: the certificates were not loaded",
                    self.path.display()
                ));
                None
            }
        };
        let upstream_tls = match vertogw_net::tls::client_config(new.gateway.upstream_ca.as_deref())
        {
            Ok(tls) => Some(tls),
            Err(e) => {
                problems.push(format!("{}: upstream_ca: {e}", self.path.display()));
                None
            }
        };
        let (Some(server_tls), Some(upstream_tls), true) =
            (server_tls, upstream_tls, problems.is_empty())
        else {
            return Err(ReloadError::Invalid(problems));
        };
        for warning in &loaded.warnings {
            warn!("{warning}");
        }
        if current.media != new.media {
            warn!("[media] changed: the NAT rules are not re-applied by a reload; run `vertogw iptables apply` or restart");
        }
        let applied = Applied {
            partitions: new.partitions.len(),
            nodes: new.nodes.len(),
        };
        self.gateway.replace_config(Arc::new(new)).await;
        self.gateway.replace_server_tls(server_tls);
        self.gateway.replace_upstream_tls(upstream_tls);
        Ok(applied)
    }

    /// The last reload, if any.
    pub fn last(&self) -> Option<LastReload> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads so far: (applied, rejected).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// What a running process cannot change: its listeners.
fn restart_needed(current: &Config, new: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let file = new.source.display();
    if current.gateway.listen != new.gateway.listen {
        problems.push(format!(
            "{file}: [gateway] listen changed from {} to {}: restart needed (a reload keeps the listeners)",
            current.gateway.listen, new.gateway.listen
        ));
    }
    if current.admin.listen != new.admin.listen {
        problems.push(format!(
            "{file}: [admin] listen changed from {} to {}: restart needed (a reload keeps the listeners)",
            current.admin.listen, new.admin.listen
        ));
    }
    problems
}
