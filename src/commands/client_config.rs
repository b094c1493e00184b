//! `vertogw client-config`: reads the users and the map, and prints the configs or
//! writes one file per login and `index.json` (each file atomically; all of them or,
//! when a temporary file cannot be written, none).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::exit;
use crate::cli::MapArg;
use crate::clientcfg::{self, directory, Defaults, Options, OutFile, Output, UserEntry};
use crate::config::Config;
use crate::routing::Router;

/// Options of `client-config`.
#[derive(Args, Debug)]
#[command(
    override_usage = "vertogw client-config [--config FILE | MAP] --users FILE|DIR [--out DIR] \
                      [--include-passwords] [--skip-invalid] [--default KEY=VALUE ...]"
)]
pub struct ClientConfigArgs {
    #[command(flatten)]
    map: MapArg,
    /// The users: a CSV file (header: login and any of name, email, cid, extension,
    /// textTo, autologin, autocall, password), a FreeSWITCH directory XML file, or a
    /// folder of them such as conf/directory/.
    #[arg(long, value_name = "FILE|DIR")]
    users: PathBuf,
    /// Write LOGIN.json per user and index.json into DIR (created if missing) instead
    /// of printing one JSON object login -> config.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Put each user's password in its config (such files are mode 0600).
    #[arg(long)]
    include_passwords: bool,
    /// Report bad, duplicate and unroutable users on stderr, keep the first of
    /// duplicates and write the rest (exit 0) instead of writing nothing (exit 2).
    #[arg(long)]
    skip_invalid: bool,
    /// A value for users that lack it (a field, e.g. autologin=true), or the value of
    /// $${KEY} in directory XML (e.g. domain=example.com); repeatable.
    #[arg(long = "default", value_name = "KEY=VALUE")]
    defaults: Vec<String>,
}

/// Runs `client-config`: exit 0 when done, 2 when some user cannot be configured
/// (nothing written, unless `--skip-invalid`), 1 when the map, the users or a
/// `--default` cannot be used or a file cannot be written.
pub fn run(args: &ClientConfigArgs, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    match prepare(args) {
        Ok((users, defaults, router)) => finish(args, &users, &defaults, &router, stdout, stderr),
        Err(message) => {
            let _ = writeln!(stderr, "{message}");
            exit::ERROR
        }
    }
}

/// The users, the defaults and the router, or what to print on stderr.
fn prepare(args: &ClientConfigArgs) -> Result<(Vec<UserEntry>, Defaults, Router), String> {
    let config = Config::load_map(args.map.path()).map_err(|e| e.to_string())?;
    let defaults = Defaults::parse(&args.defaults).map_err(|e| format!("error: {e}"))?;
    let path = &args.users;
    let xml = path.is_dir()
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    let users = if xml {
        let read = directory::read(path, &defaults.variables, args.include_passwords);
        let read = read.map_err(|e| format!("error: {e}"))?;
        defaults
            .check_variables(&read.variables, true)
            .map_err(|e| format!("error: {e}"))?;
        read.users
    } else {
        defaults
            .check_variables(&Default::default(), false)
            .map_err(|e| format!("error: {e}"))?;
        let bytes = std::fs::read(path)
            .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
        clientcfg::csv::parse(&bytes, path).map_err(|e| format!("error: {e}"))?
    };
    Ok((users, defaults, Router::new(Arc::new(config.config))))
}

fn finish(
    args: &ClientConfigArgs,
    users: &[UserEntry],
    defaults: &Defaults,
    router: &Router,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let options = Options {
        include_passwords: args.include_passwords,
    };
    let output = match clientcfg::generate(users, defaults, router, options) {
        Ok(output) => output,
        Err(problems) if args.skip_invalid => {
            for problem in &problems.problems {
                let _ = writeln!(stderr, "skipped: {problem}");
            }
            problems.valid
        }
        Err(problems) => {
            for problem in &problems.problems {
                let _ = writeln!(stderr, "error: {problem}");
            }
            let _ = writeln!(
                stderr,
                "{} user(s) cannot be configured: nothing written (--skip-invalid writes the others)",
                problems.problems.len()
            );
            return exit::NO;
        }
    };
    let result = match &args.out {
        None => stdout.write_all(&output.combined()),
        Some(dir) => write_files(dir, &output).and_then(|()| {
            let n = output.documents.len();
            writeln!(
                stdout,
                "wrote {n} client config(s) and {}",
                dir.join(clientcfg::INDEX_FILE).display()
            )
        }),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            exit::ERROR
        }
    }
}

/// Writes every file of `output` into `dir`: each to a temporary file beside it, then
/// all renamed over their targets, so a reader never sees half a file and a failed
/// write leaves the folder as it was.
fn write_files(dir: &Path, output: &Output) -> std::io::Result<()> {
    let failed = |what: &str, path: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed("create", dir, e))?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for file in output.files() {
        let target = dir.join(&file.name);
        let temp = dir.join(format!(".{}.{}.tmp", file.name, std::process::id()));
        if let Err(e) = write_temp(&temp, &file) {
            let _ = std::fs::remove_file(&temp);
            discard(&staged);
            return Err(failed("write", &target, e));
        }
        staged.push((temp, target));
    }
    for (i, (temp, target)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(temp, target) {
            discard(staged.get(i..).unwrap_or_default());
            return Err(failed("write", target, e));
        }
    }
    // The renames are durable once the folder is.
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}

/// Creates `temp` anew with the file's mode (0600 for a password, else 0644) before
/// any byte is in it, and writes the bytes through to the disk.
fn write_temp(temp: &Path, file: &OutFile) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = if file.secret { 0o600 } else { 0o644 };
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(temp)
    };
    let mut out = match open() {
        // A leftover of an earlier run with the same process id.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(temp)?;
            open()?
        }
        other => other?,
    };
    // The umask may have narrowed the mode; 0644 is part of the contract.
    out.set_permissions(std::fs::Permissions::from_mode(mode))?;
    out.write_all(&file.bytes)?;
    out.sync_all()
}

fn discard(staged: &[(PathBuf, PathBuf)]) {
    for (temp, _) in staged {
        let _ = std::fs::remove_file(temp);
    }
}
