//! Every `vertogw` command line the README and the maps' comments show is a tested one:
//! the real parser accepts it, and the read-only ones (`check`, `route`, `fs-config`,
//! `iptables plan`, and `client-config` writing inside the copy) run verbatim, from a
//! copy of the repository's `config/` with certificates in `certs/`, and give the
//! outcome the text promises. Long-running commands are run by their own tests
//! (`demo.rs`, `process.rs`, `capacity.rs`).

use std::path::Path;
use std::process::Command;

use clap::Parser;
use vertogw::cli::Cli;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A command line found in a document, with what the text around it says.
#[derive(Debug)]
struct Documented {
    /// Where: `README.md:12`.
    place: String,
    /// The words, `vertogw` first.
    words: Vec<String>,
    /// The rest of the line after the command (a comment, `-> partition`).
    note: String,
    /// Written as a code span inside prose or a table (may just name a command).
    inline: bool,
}

/// Splits a command line as a POSIX shell would for the simple cases documents use:
/// whitespace, single and double quotes. `None` when a quote is left open.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    quote.is_none().then_some(words)
}

/// Splits `line` at a shell comment (` # …`) or an arrow (`-> …`): (command, note).
fn command_and_note(line: &str) -> (&str, &str) {
    let cut = [" #", "->"]
        .iter()
        .filter_map(|m| line.find(m))
        .min()
        .unwrap_or(line.len());
    (line[..cut].trim(), line[cut..].trim())
}

fn documented(place: String, command: &str, note: &str, inline: bool) -> Documented {
    let words = shell_words(command).unwrap_or_else(|| panic!("{place}: open quote in {command}"));
    Documented {
        place,
        words,
        note: note.to_owned(),
        inline,
    }
}

/// `vertogw …` lines of the README's code blocks (`cargo run --release -- …` counts as
/// `vertogw …`) and its `vertogw …` code spans.
fn readme_commands() -> Vec<Documented> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let mut found = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        let place = format!("README.md:{}", i + 1);
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let line = line.trim();
            let line = match line.strip_prefix("cargo run --release -- ") {
                Some(rest) => format!("vertogw {rest}"),
                None => line.to_owned(),
            };
            if line.starts_with("vertogw ") {
                let (command, note) = command_and_note(&line);
                found.push(documented(place, command, note, false));
            }
            continue;
        }
        for span in line.split('`').skip(1).step_by(2) {
            if span.starts_with("vertogw ") {
                found.push(documented(place.clone(), span, "", true));
            }
        }
    }
    found
}

/// `vertogw …` in the comments of every map in `config/`.
fn map_commands() -> Vec<Documented> {
    let mut found = Vec::new();
    let dir = Path::new(ROOT).join("config");
    let mut maps: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    maps.sort();
    for map in maps {
        let text = std::fs::read_to_string(&map).expect("map");
        let name = map.file_name().map(|n| n.to_string_lossy().into_owned());
        for (i, line) in text.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix('#') else {
                continue;
            };
            let place = format!("config/{}:{}", name.as_deref().unwrap_or("?"), i + 1);
            let spans: Vec<&str> = comment.split('`').skip(1).step_by(2).collect();
            if spans.iter().any(|s| s.starts_with("vertogw ")) {
                for span in spans.into_iter().filter(|s| s.starts_with("vertogw ")) {
                    found.push(documented(place.clone(), span, "", true));
                }
            } else if let Some(line) = command_in_comment(comment) {
                let (command, note) = command_and_note(line);
                found.push(documented(place, command, note, false));
            }
        }
    }
    found
}

/// A command written out on a comment line of its own, possibly after a label
/// (`#   vertogw route …`, `# Check it:  vertogw check …`); prose mentioning vertogw
/// is not one.
fn command_in_comment(comment: &str) -> Option<&str> {
    let text = comment.trim_start();
    if text.starts_with("vertogw ") {
        return Some(text);
    }
    let (_, after_label) = text.split_once(": ")?;
    Some(after_label.trim_start()).filter(|t| t.starts_with("vertogw "))
}

/// A span that only names a command (`vertogw route`, `vertogw iptables check`).
fn names_a_command(doc: &Documented) -> bool {
    doc.inline
        && doc.words[1..]
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
}

fn assert_parses(doc: &Documented) {
    let mut words = doc.words.clone();
    if names_a_command(doc) {
        // A name of a command must be a real one: its help must exist.
        words.push("--help".into());
    }
    match Cli::try_parse_from(&words) {
        Ok(_) => {}
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
        Err(e) => panic!(
            "{}: `{}` is not a valid command line:\n{e}",
            doc.place,
            doc.words.join(" ")
        ),
    }
}

/// Whether the command only reads, so it can run here: (expected exit code).
fn runnable(doc: &Documented) -> Option<i32> {
    let args: Vec<&str> = doc.words[1..].iter().map(String::as_str).collect();
    let read_only = match args.as_slice() {
        ["check" | "route", ..] => true,
        ["fs-config", rest @ ..] => !rest.contains(&"--out"),
        // Writes only under the temporary copy (or to stdout).
        ["client-config", rest @ ..] => writes_inside(rest),
        ["iptables", "plan", rest @ ..] => !rest.iter().any(|a| *a == "--live" || *a == "--netns"),
        _ => false,
    };
    if !read_only || names_a_command(doc) {
        return None;
    }
    let says_no = doc.note.contains("refused") || doc.note.contains("exit 2");
    Some(if says_no { 2 } else { 0 })
}

/// Whether a command's `--out DIR`, if any, is a relative path that stays inside the
/// folder it runs in.
fn writes_inside(args: &[&str]) -> bool {
    let out = args
        .iter()
        .position(|a| *a == "--out")
        .and_then(|i| args.get(i + 1));
    out.is_none_or(|dir| {
        Path::new(dir)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    })
}

/// Copies the folder `from` into `to` (created), sub-folders included.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A copy of `config/` (with its example folders) beside a `certs/` holding every file
/// the maps name.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&Path::new(ROOT).join("config"), &dir.path().join("config"));
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("certs dir");
    for (cert, key) in [
        ("gw.crt", "gw.key"),
        ("demo.crt", "demo.key"),
        ("fs-ca.pem", "fs-ca.key"),
    ] {
        let pair = vertogw_net::tls::self_signed(&["localhost"]).expect("certificate");
        std::fs::write(certs.join(cert), pair.cert_pem).expect("write cert");
        std::fs::write(certs.join(key), pair.key_pem).expect("write key");
    }
    // config/vertogw.toml's [[gateway.certificate]], for the names it lists.
    let acme = vertogw_net::tls::self_signed(&["acme.example.com", "*.acme.example.com"])
        .expect("certificate");
    std::fs::write(certs.join("acme.crt"), acme.cert_pem).expect("write cert");
    std::fs::write(certs.join("acme.key"), acme.key_pem).expect("write key");
    dir
}

fn check_all(docs: &[Documented], min: usize, source: &str) {
    assert!(
        docs.len() >= min,
        "only {} commands found in {source}: {docs:#?}",
        docs.len()
    );
    let dir = workspace();
    let mut ran = 0;
    for doc in docs {
        assert_parses(doc);
        let Some(want) = runnable(doc) else {
            continue;
        };
        let out = Command::new(env!("CARGO_BIN_EXE_vertogw"))
            .args(&doc.words[1..])
            .current_dir(dir.path())
            .output()
            .expect("run vertogw");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let line = doc.words.join(" ");
        assert_eq!(
            out.status.code(),
            Some(want),
            "{}: `{line}`\nstdout:\n{stdout}\nstderr:\n{stderr}",
            doc.place
        );
        if let Some(partition) = doc.note.strip_prefix("->").map(str::trim) {
            if want == 0 {
                assert!(
                    stdout.contains(&format!("partition {partition:?}")),
                    "{}: `{line}` should route to {partition}:\n{stdout}",
                    doc.place
                );
            }
        }
        ran += 1;
    }
    assert!(ran >= min / 2, "only {ran} of the commands in {source} ran");
}

#[test]
fn every_command_line_in_the_readme_parses_and_the_read_only_ones_work() {
    check_all(&readme_commands(), 10, "README.md");
}

#[test]
fn every_command_line_in_the_maps_comments_parses_and_works() {
    check_all(&map_commands(), 8, "config/*.toml");
}

#[test]
fn the_shell_splitter_handles_quotes_and_comments() {
    assert_eq!(
        shell_words(r#"vertogw route 'a b' "c d"e"#),
        Some(vec![
            "vertogw".into(),
            "route".into(),
            "a b".into(),
            "c de".into()
        ])
    );
    assert_eq!(shell_words("vertogw 'open"), None);
    assert_eq!(
        command_and_note("vertogw check x.toml   # validate"),
        ("vertogw check x.toml", "# validate")
    );
    assert_eq!(
        command_and_note("vertogw route m 1500   -> default"),
        ("vertogw route m 1500", "-> default")
    );
}
