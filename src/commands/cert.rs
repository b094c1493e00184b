//! `vertogw cert`: a self-signed certificate and key for development (the files
//! `config/vertogw.toml` names, or any other pair), and the writer the demo shares.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use vertogw_net::tls;

use super::exit;

/// Writes `<dir>/<stem>.crt` and `<dir>/<stem>.key` for `names`; refuses to replace
/// either. Returns the exit code, having said what it did on `out` or why not on `err`.
pub fn run(
    dir: &Path,
    stem: &str,
    names: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match generate(dir, stem, names) {
        Ok((cert, key)) => {
            let _ = writeln!(
                out,
                "wrote {} and {} (the key readable by its owner only) for {}",
                cert.display(),
                key.display(),
                names.join(", ")
            );
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            exit::ERROR
        }
    }
}

fn generate(dir: &Path, stem: &str, names: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    if stem.is_empty() || stem.contains(['/', '\\']) || stem.starts_with('.') {
        anyhow::bail!("--file {stem:?}: give a plain file name without an extension");
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pair = tls::self_signed(&names).context("cannot make the certificate")?;
    write_pair(dir, stem, &pair)
}

/// Writes `pair` as `<dir>/<stem>.crt` and `<dir>/<stem>.key`, the key with mode 0600;
/// neither may exist already (a key is never replaced behind its owner's back).
pub fn write_pair(
    dir: &Path,
    stem: &str,
    pair: &tls::SelfSigned,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    for path in [&cert, &key] {
        if path.exists() {
            anyhow::bail!(
                "{} exists already; delete it first, or write another pair with --file",
                path.display()
            );
        }
    }
    create(&key, 0o600, pair.key_pem.as_bytes())?;
    create(&cert, 0o644, pair.cert_pem.as_bytes())?;
    Ok((cert, key))
}

fn create(path: &Path, mode: u32, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_pair_is_written_with_a_private_key_and_never_over_an_existing_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let names = vec!["verto.example.com".to_owned(), "127.0.0.1".to_owned()];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(dir.path(), "gw", &names, &mut out, &mut err), exit::OK);
        let key = dir.path().join("gw.key");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = tls::load_certified_key(&dir.path().join("gw.crt"), &key);
        assert!(loaded.is_ok(), "the pair loads as a server certificate");
        let before = std::fs::read(&key).expect("key");
        assert_eq!(
            run(dir.path(), "gw", &names, &mut out, &mut err),
            exit::ERROR
        );
        assert!(String::from_utf8_lossy(&err).contains("exists already"));
        assert_eq!(
            std::fs::read(&key).expect("key"),
            before,
            "the key is untouched"
        );
    }

    #[test]
    fn a_file_name_with_a_path_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let names = vec!["a.test".to_owned()];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            run(dir.path(), "../gw", &names, &mut out, &mut err),
            exit::ERROR
        );
        assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none());
    }
}
