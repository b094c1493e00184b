//! `vertogw fs-config`: the FreeSWITCH settings one node needs to agree with the map.

use std::io::Write;
use std::path::Path;

use super::exit;
use crate::config::Config;
use crate::fsconfig;

/// Prints the node's files to `stdout` (each after a `==> NAME <==` line), or writes
/// them into `out_dir` (created if missing) and prints their paths. Exit 0, or 1 with
/// the reason on `stderr`.
pub fn run(
    path: &Path,
    node: &str,
    out_dir: Option<&Path>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let config = match Config::load_map(path) {
        Ok(loaded) => loaded.config,
        Err(errors) => {
            let _ = writeln!(stderr, "{errors}");
            return exit::ERROR;
        }
    };
    let files = match fsconfig::render(&config, node) {
        Ok(files) => files,
        Err(e) => {
            let _ = writeln!(stderr, "error: {e}");
            return exit::ERROR;
        }
    };
    let Some(dir) = out_dir else {
        for (i, file) in files.iter().enumerate() {
            let gap = if i == 0 { "" } else { "\n" };
            let _ = write!(stdout, "{gap}==> {} <==\n{}", file.name, file.text);
        }
        return exit::OK;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        let _ = writeln!(stderr, "error: cannot create {}: {e}", dir.display());
        return exit::ERROR;
    }
    for file in &files {
        let target = dir.join(file.name);
        if let Err(e) = std::fs::write(&target, &file.text) {
            let _ = writeln!(stderr, "error: cannot write {}: {e}", target.display());
            return exit::ERROR;
        }
        let _ = writeln!(stdout, "wrote {}", target.display());
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(node: &str, out_dir: Option<&Path>) -> (i32, String, String) {
        let map = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/nat_map.toml"
        ));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(map, node, out_dir, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (code, text(out), text(err))
    }

    #[test]
    fn files_go_to_stdout_with_headers_or_into_a_directory() {
        let (code, out, err) = run_on("fs2", None);
        assert_eq!((code, err.as_str()), (0, ""));
        assert!(
            out.starts_with("==> vertogw-vars.xml <==\n<!-- Generated"),
            "{out}"
        );
        assert!(
            out.contains("\n\n==> vertogw-switch-rtp.xml <==\n"),
            "{out}"
        );
        assert!(out.contains("vertogw_rtp_start_port=17384"), "{out}");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let target = dir.path().join("fs2");
        let (code, out, _) = run_on("fs2", Some(&target));
        assert_eq!((code, out.lines().count()), (0, 3), "{out}");
        let vars = std::fs::read_to_string(target.join("vertogw-vars.xml")).unwrap_or_default();
        assert!(vars.contains("vertogw_ext_rtp_ip=203.0.113.10"), "{vars}");
    }

    #[test]
    fn an_unknown_node_is_an_error() {
        let (code, out, err) = run_on("fs9", None);
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(err, "error: the map has no node \"fs9\"\n");
    }
}
