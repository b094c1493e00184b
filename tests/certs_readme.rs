//! Following `certs/README.md` is enough for `vertogw check config/vertogw.toml` to pass
//! (issue 9 §5): its development commands run, as written, in a copy of `config/` with an
//! empty `certs/`, and the example map then checks clean, without a warning.

use std::path::Path;
use std::process::Command;

/// The copy `check` runs in: `config/` (files and folders) and an empty `certs/`.
fn workspace() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("folder");
        for entry in std::fs::read_dir(from).expect("read folder") {
            let path = entry.expect("entry").path();
            let target = to.join(path.file_name().expect("name"));
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        &dir.path().join("config"),
    );
    std::fs::create_dir(dir.path().join("certs")).expect("certs");
    dir
}

/// The lines of the README's first `sh` block, comments dropped.
fn commands() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/README.md"))
            .expect("certs/README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block in certs/README.md");
    block
        .lines()
        .map(|line| line.split(" #").next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            // Single quotes only protect a glob here; the words have no spaces.
            line.split_whitespace()
                .map(|w| w.trim_matches('\'').to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn the_certs_readme_commands_make_the_example_map_check_clean() {
    let dir = workspace();
    let lines = commands();
    assert!(
        lines
            .iter()
            .any(|l| l.first().map(String::as_str) == Some("vertogw")),
        "{lines:?}"
    );
    let mut checked = false;
    for words in &lines {
        let line = words.join(" ");
        match words.first().map(String::as_str) {
            Some("cp") => {
                std::fs::copy(dir.path().join(&words[1]), dir.path().join(&words[2]))
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
            }
            Some("vertogw") => {
                let out = Command::new(env!("CARGO_BIN_EXE_vertogw"))
                    .args(&words[1..])
                    .current_dir(dir.path())
                    .output()
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "{line}: {}\n{stderr}", out.status);
                if words.get(1).map(String::as_str) == Some("check") {
                    assert!(!stderr.contains("warning"), "{line} warns:\n{stderr}");
                    checked = true;
                }
            }
            _ => panic!("a line this test cannot run: {line}"),
        }
    }
    assert!(checked, "the README's commands end with vertogw check");
}
