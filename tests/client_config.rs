//! `vertogw client-config` as a person runs it (issue 9 §2): the real binary on temporary
//! maps, users files and output folders. Exit 0 writes every file (0600 for a password,
//! 0644 otherwise) and no temporary one; exit 2 (a bad, duplicate or unroutable user)
//! and exit 1 (the map or the users unreadable) leave the folder as it was;
//! `--skip-invalid` writes the others; without `--out` nothing is written at all.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MAP: &str = r#"
[gateway]
listen = "0.0.0.0:8443"
tls_cert = "no-such.crt"
tls_key = "no-such.key"
public_url = "wss://verto.example.com/"
[[node]]
name = "fs1"
verto_url = "ws://127.0.0.1:1"
[[partition]]
name = "hq"
nodes = ["fs1"]
domains = ["example.com"]
[[partition]]
name = "tenants"
nodes = ["fs1"]
domains = ["*.hosted.test"]
public_url = "wss://verto.hosted.test/"
"#;

const USERS: &str = "login,name,password\n\
                     1008@example.com,\"Example, Ada\",1234\n\
                     a@t1.hosted.test,Tenant,\n";

/// A temporary folder holding `map.toml` and `users.csv`.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new(users: &str) -> Place {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let place = Place { dir };
        place.write("map.toml", MAP);
        place.write("users.csv", users);
        place
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    /// Runs `vertogw client-config ARGS` in the folder, with `--config map.toml` and
    /// `--users users.csv` unless ARGS name others: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let given = |flag: &str| args.contains(&flag);
        let mut all: Vec<&str> = vec!["client-config"];
        if !given("--config") {
            all.extend(["--config", "map.toml"]);
        }
        if !given("--users") {
            all.extend(["--users", "users.csv"]);
        }
        all.extend_from_slice(args);
        let out = Command::new(env!("CARGO_BIN_EXE_vertogw"))
            .args(&all)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run vertogw: {e}"));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Every file under the folder: relative path → (mode, bytes).
    fn snapshot(&self) -> BTreeMap<String, (u32, Vec<u8>)> {
        let mut files = BTreeMap::new();
        snapshot_into(self.dir.path(), self.dir.path(), &mut files);
        files
    }
}

fn snapshot_into(root: &Path, dir: &Path, files: &mut BTreeMap<String, (u32, Vec<u8>)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}"));
    for entry in entries.map(|e| e.unwrap_or_else(|e| panic!("{e}"))) {
        let path = entry.path();
        let meta = entry.metadata().unwrap_or_else(|e| panic!("{e}"));
        if meta.is_dir() {
            snapshot_into(root, &path, files);
            continue;
        }
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        files.insert(name, (meta.permissions().mode() & 0o777, bytes));
    }
}

fn names(files: &BTreeMap<String, (u32, Vec<u8>)>) -> Vec<&str> {
    files.keys().map(String::as_str).collect()
}

#[test]
fn passwords_make_files_0600_the_others_are_0644_and_no_temporary_file_is_left() {
    let place = Place::new(USERS);
    let (code, out, err) = place.run(&["--out", "web/configs", "--include-passwords"]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert_eq!(out, "wrote 2 client config(s) and web/configs/index.json\n");
    let files = place.snapshot();
    assert_eq!(
        names(&files),
        [
            "map.toml",
            "users.csv",
            "web/configs/1008@example.com.json",
            "web/configs/a@t1.hosted.test.json",
            "web/configs/index.json",
        ],
        "nothing else, no temporary file"
    );
    let mode = |name: &str| files.get(name).map(|(mode, _)| *mode);
    assert_eq!(mode("web/configs/1008@example.com.json"), Some(0o600));
    assert_eq!(mode("web/configs/a@t1.hosted.test.json"), Some(0o644));
    assert_eq!(mode("web/configs/index.json"), Some(0o644));
    let tenant = std::fs::read_to_string(place.path("web/configs/a@t1.hosted.test.json"));
    assert_eq!(
        tenant.unwrap_or_default(),
        "{\n  \"name\": \"Tenant\",\n  \"login\": \"a@t1.hosted.test\",\n  \
         \"wsURL\": \"wss://verto.hosted.test/\"\n}\n"
    );
    let index = std::fs::read_to_string(place.path("web/configs/index.json")).unwrap_or_default();
    assert!(
        !index.contains("1234") && !index.contains("password"),
        "{index}"
    );
}

#[test]
fn without_the_flag_no_file_holds_a_password_and_a_second_run_gives_the_same_bytes() {
    let place = Place::new(USERS);
    assert_eq!(place.run(&["--out", "out"]).0, 0);
    let first = place.snapshot();
    for (name, (mode, bytes)) in first.iter().filter(|(n, _)| n.starts_with("out/")) {
        assert_eq!(*mode, 0o644, "{name}");
        assert!(!String::from_utf8_lossy(bytes).contains("1234"), "{name}");
    }
    // Rows in another order, the files rewritten over themselves.
    place.write(
        "users.csv",
        "login,name,password\na@t1.hosted.test,Tenant,\n1008@example.com,\"Example, Ada\",1234\n",
    );
    assert_eq!(place.run(&["--out", "out"]).0, 0);
    let second = place.snapshot();
    let outputs = |s: &BTreeMap<String, (u32, Vec<u8>)>| {
        s.iter()
            .filter(|(n, _)| n.starts_with("out/"))
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(outputs(&first), outputs(&second));
}

#[test]
fn without_out_the_configs_go_to_stdout_and_nothing_is_written() {
    let place = Place::new(USERS);
    let before = place.snapshot();
    let (code, out, err) = place.run(&["--default", "autologin=true"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(place.snapshot(), before);
    let all: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(all["1008@example.com"]["autologin"], "true");
    assert_eq!(all["1008@example.com"]["wsURL"], "wss://verto.example.com/");
    assert_eq!(all["a@t1.hosted.test"]["wsURL"], "wss://verto.hosted.test/");
    assert!(all["1008@example.com"].get("password").is_none());
}

#[test]
fn a_bad_duplicate_or_unroutable_user_exits_two_and_leaves_the_folder_unchanged() {
    let place = Place::new(
        "login,name\n1008@example.com,A\n1008@EXAMPLE.COM,B\n1@nowhere.test,C\na@b@c,D\n",
    );
    std::fs::create_dir(place.path("out")).unwrap_or_else(|e| panic!("{e}"));
    place.write("out/index.json", "{\"old\": true}\n");
    let before = place.snapshot();
    let (code, out, err) = place.run(&["--out", "out"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert_eq!(place.snapshot(), before, "nothing written");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "error: users.csv:3: login \"1008@EXAMPLE.COM\": duplicate of \"1008@example.com\" at users.csv:2; the first is kept",
            "error: users.csv:4: login \"1@nowhere.test\": no partition: no partition serves domain nowhere.test",
            "error: users.csv:5: login \"a@b@c\": invalid login: domain \"b@c\" is not a host name (letters, digits, '-', '_' and '.')",
            "3 user(s) cannot be configured: nothing written (--skip-invalid writes the others)",
        ]
    );
    let (code, out, _) = place.run(&[]);
    assert_eq!(
        (code, out.as_str()),
        (2, ""),
        "stdout mode prints nothing either"
    );
}

#[test]
fn skip_invalid_reports_the_bad_users_keeps_the_first_duplicate_and_writes_the_rest() {
    let place =
        Place::new("login,name\n1008@example.com,A\n1008@Example.com,B\n1@nowhere.test,C\n");
    let (code, _, err) = place.run(&["--out", "out", "--skip-invalid"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.lines().all(|l| l.starts_with("skipped: users.csv:")),
        "{err}"
    );
    let files = place.snapshot();
    assert_eq!(
        names(&files),
        [
            "map.toml",
            "out/1008@example.com.json",
            "out/index.json",
            "users.csv"
        ]
    );
    let kept = std::fs::read_to_string(place.path("out/1008@example.com.json"));
    assert!(kept.unwrap_or_default().contains("\"name\": \"A\""));
}

#[test]
fn an_unreadable_input_a_broken_map_or_an_unknown_key_exits_one_and_writes_nothing() {
    let place = Place::new(USERS);
    let before = place.snapshot();
    let cases: [(&[&str], &str); 4] = [
        (&["--users", "missing.csv"], "cannot read missing.csv"),
        (
            &["--default", "colour=red"],
            "--default colour: not a field",
        ),
        (&["--default", "nonsense"], "is not KEY=VALUE"),
        (&["--config", "missing.toml"], "missing.toml"),
    ];
    for (args, want) in cases {
        let mut all = vec!["--out", "out"];
        all.extend_from_slice(args);
        let (code, out, err) = place.run(&all);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(place.snapshot(), before, "{args:?}");
    }
    place.write("users.csv", "login,phone\n1@example.com,5\n");
    let (code, _, err) = place.run(&["--out", "out"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("users.csv:1: unknown column(s) \"phone\""),
        "{err}"
    );
}

#[test]
fn a_directory_folder_with_includes_gives_one_config_per_user() {
    let place = Place::new(USERS);
    std::fs::create_dir_all(place.path("conf/default")).unwrap_or_else(|e| panic!("{e}"));
    place.write(
        "conf/default.xml",
        "<include><domain name=\"$${domain}\"><groups><group name=\"default\"><users>\
         <X-PRE-PROCESS cmd=\"include\" data=\"default/*.xml\"/></users></group></groups>\
         </domain></include>",
    );
    place.write(
        "conf/default/1000.xml",
        "<include><user id=\"1000\"><params><param name=\"password\" value=\"$${default_password}\"/>\
         </params><variables><variable name=\"effective_caller_id_name\" value=\"Ext 1000\"/>\
         </variables></user></include>",
    );
    let args = ["--users", "conf", "--default", "domain=example.com"];
    let (code, out, err) = place.run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{\n  \"1000@example.com\": {\n    \"name\": \"Ext 1000\",\n    \
         \"login\": \"1000@example.com\",\n    \"wsURL\": \"wss://verto.example.com/\"\n  }\n}\n"
    );
    let with_passwords = [
        "--users",
        "conf",
        "--default",
        "domain=example.com",
        "--include-passwords",
    ];
    let (code, _, err) = place.run(&with_passwords);
    assert_eq!(code, 1);
    assert!(err.contains("$${default_password} has no value"), "{err}");
}
