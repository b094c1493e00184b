//! The open-file limit: every socket is a descriptor, so it caps how many connections a
//! process can hold, and the usual soft limit of 1024 is far below what servers need.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// The soft open-file limit in force (a conservative 1024 when it cannot be read).
pub fn nofile_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}
