use std::path::Path;
use std::sync::Arc;

use super::*;

const MAP: &str = r#"
[gateway]
listen = "0.0.0.0:8443"
tls_cert = "c.pem"
tls_key = "k.pem"
default_domain = "example.com"
public_url = "wss://verto.example.com/"
fallback_url = "wss://backup.example.com/"
[[node]]
name = "fs1"
verto_url = "ws://127.0.0.1:1"
[[partition]]
name = "hq"
nodes = ["fs1"]
domains = ["example.com"]
extensions = ["1000-1999"]
[[partition]]
name = "hosted"
nodes = ["fs1"]
domains = ["*.hosted.test"]
public_url = "wss://verto.hosted.test/"
"#;

fn router() -> Router {
    match Config::parse(MAP, Path::new("m.toml")) {
        Ok(loaded) => Router::new(Arc::new(loaded.config)),
        Err(e) => panic!("{e}"),
    }
}

fn entry(login: &str, line: u64, fields: &[(Field, &str)]) -> UserEntry {
    let mut values = Fields::default();
    for (field, value) in fields {
        values.set(*field, *value);
    }
    UserEntry {
        login: login.into(),
        fields: values,
        source: Source {
            file: "u.csv".into(),
            line,
            element: None,
        },
    }
}

fn defaults(args: &[&str]) -> Defaults {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Defaults::parse(&args).unwrap_or_else(|e| panic!("{e}"))
}

fn ok(users: &[UserEntry], defaults: &Defaults, options: Options) -> Output {
    generate(users, defaults, &router(), options).unwrap_or_else(|e| panic!("{e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_config_has_the_example_key_order_and_the_index_names_file_partition_and_url() {
    let ada = entry(
        "1008@example.com",
        2,
        &[
            (Field::Name, "Ada Example"),
            (Field::Email, "ada@example.com"),
            (Field::Cid, "1008"),
            (Field::TextTo, "1000"),
            (Field::Password, "1234"),
        ],
    );
    let d = defaults(&["autologin=true", "autocall=3500", "extension=3500"]);
    let out = ok(
        &[ada],
        &d,
        Options {
            include_passwords: true,
        },
    );
    let files = out.files();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].name, "1008@example.com.json");
    assert!(files[0].secret);
    assert_eq!(
        text(&files[0].bytes),
        r#"{
  "extension": "3500",
  "name": "Ada Example",
  "email": "ada@example.com",
  "cid": "1008",
  "textTo": "1000",
  "login": "1008@example.com",
  "password": "1234",
  "autologin": "true",
  "autocall": "3500",
  "wsURL": "wss://verto.example.com/",
  "wsFallbackURL": "wss://backup.example.com/"
}
"#
    );
    assert_eq!(
        (files[1].name.as_str(), files[1].secret),
        ("index.json", false)
    );
    assert_eq!(
        text(&files[1].bytes),
        r#"{
  "1008@example.com": {
    "file": "1008@example.com.json",
    "partition": "hq",
    "wsURL": "wss://verto.example.com/"
  }
}
"#
    );
}

#[test]
fn no_password_is_written_without_the_flag_whatever_its_source() {
    let users = [entry("1000@example.com", 2, &[(Field::Password, "row")])];
    let d = defaults(&["password=default"]);
    let out = ok(&users, &d, Options::default());
    for file in out.files() {
        assert!(!file.secret, "{}", file.name);
        assert!(!text(&file.bytes).contains("password"), "{}", file.name);
    }
    assert!(!text(&out.combined()).contains("password"));
    let with = ok(
        &users,
        &d,
        Options {
            include_passwords: true,
        },
    );
    assert!(text(&with.combined()).contains("\"password\": \"row\""));
}

#[test]
fn a_row_value_beats_a_default_which_fills_what_the_row_lacks_and_urls_come_from_the_map() {
    let users = [
        entry("1000@example.com", 2, &[(Field::Autologin, "false")]),
        entry("1001@example.com", 3, &[]),
    ];
    let d = defaults(&["autologin=true", "textTo=1000"]);
    let out = ok(&users, &d, Options::default());
    let get = |i: usize, f| out.documents[i].fields.get(f).map(str::to_owned);
    assert_eq!(get(0, Field::Autologin).as_deref(), Some("false"));
    assert_eq!(get(1, Field::Autologin).as_deref(), Some("true"));
    assert_eq!(get(0, Field::TextTo).as_deref(), Some("1000"));
    assert_eq!(out.documents[1].urls.ws_url, "wss://verto.example.com/");
}

#[test]
fn a_partition_with_its_own_public_url_gives_its_users_that_url() {
    let users = [
        entry("a@t1.hosted.test", 2, &[]),
        entry("1000@example.com", 3, &[]),
    ];
    let out = ok(&users, &Defaults::default(), Options::default());
    let urls: Vec<(&str, &str, Option<&str>)> = out
        .documents
        .iter()
        .map(|d| {
            let fallback = d.urls.fallback_url.as_deref();
            (d.partition.as_str(), d.urls.ws_url.as_str(), fallback)
        })
        .collect();
    assert_eq!(
        urls,
        [
            (
                "hq",
                "wss://verto.example.com/",
                Some("wss://backup.example.com/")
            ),
            (
                "hosted",
                "wss://verto.hosted.test/",
                Some("wss://backup.example.com/")
            ),
        ]
    );
}

#[test]
fn file_names_are_filesystem_safe_and_never_hidden() {
    assert_eq!(file_stem("1008@example.com"), "1008@example.com");
    assert_eq!(file_stem("a+b-c_d.e@x.test"), "a+b-c_d.e@x.test");
    assert_eq!(file_stem("../../etc/passwd@x"), "_._.._etc_passwd@x");
    assert_eq!(file_stem("..@x"), "_.@x");
    assert_eq!(file_stem("ada lovelace@x"), "ada_lovelace@x");
    assert_eq!(file_stem("zoë\\:*?\"<>|@x"), "zo_________@x");
    let users = [entry("Ada Lovelace@Hosted.example.com", 2, &[])];
    let map = MAP.replace("[\"*.hosted.test\"]", "[\"*\"]");
    let config = Config::parse(&map, Path::new("m.toml")).unwrap_or_else(|e| panic!("{e}"));
    let router = Router::new(Arc::new(config.config));
    let out = generate(&users, &Defaults::default(), &router, Options::default());
    let out = out.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.documents[0].file, "Ada_Lovelace@hosted.example.com.json",
        "the domain as routed: lower-case"
    );
    assert_eq!(out.documents[0].login, "Ada Lovelace@Hosted.example.com");
}

#[test]
fn the_same_users_in_any_order_give_the_same_bytes() {
    let a = entry("1001@example.com", 2, &[(Field::Name, "B")]);
    let b = entry("1000@example.com", 3, &[(Field::Name, "A")]);
    let c = entry("x@t.hosted.test", 4, &[]);
    let d = defaults(&["autologin=true"]);
    let one = ok(&[a.clone(), b.clone(), c.clone()], &d, Options::default());
    let two = ok(&[c, b, a], &d, Options::default());
    assert_eq!(one.files(), two.files());
    assert_eq!(one.combined(), two.combined());
    let logins: Vec<&str> = one.documents.iter().map(|d| d.login.as_str()).collect();
    assert_eq!(
        logins,
        ["1000@example.com", "1001@example.com", "x@t.hosted.test"]
    );
}

#[test]
fn bad_unroutable_and_duplicate_logins_are_problems_and_the_rest_is_kept() {
    let users = [
        entry("1000@example.com", 2, &[(Field::Name, "first")]),
        entry("1000@EXAMPLE.com", 3, &[(Field::Name, "second")]),
        entry("1000", 4, &[]),
        entry("2500@example.com", 5, &[]),
        entry("1001@nowhere.test", 6, &[]),
        entry("a@b@c", 7, &[]),
        entry("", 8, &[]),
        entry("1002@example.com", 9, &[]),
    ];
    let err = match generate(&users, &Defaults::default(), &router(), Options::default()) {
        Ok(out) => panic!("no problem found: {out:?}"),
        Err(e) => e,
    };
    let lines: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "u.csv:3: login \"1000@EXAMPLE.com\": duplicate of \"1000@example.com\" at u.csv:2; the first is kept",
            "u.csv:4: login \"1000\": duplicate of \"1000@example.com\" at u.csv:2; the first is kept",
            "u.csv:5: login \"2500@example.com\": no partition: no partition of example.com serves user 2500",
            "u.csv:6: login \"1001@nowhere.test\": no partition: no partition serves domain nowhere.test",
            "u.csv:7: login \"a@b@c\": invalid login: domain \"b@c\" is not a host name (letters, digits, '-', '_' and '.')",
            "u.csv:8: login \"\": invalid login: the login is empty",
        ]
    );
    let kept: Vec<_> = err
        .valid
        .documents
        .iter()
        .map(|d| (d.login.as_str(), d.fields.get(Field::Name)))
        .collect();
    assert_eq!(
        kept,
        [
            ("1000@example.com", Some("first")),
            ("1002@example.com", None)
        ]
    );
}

#[test]
fn logins_whose_files_differ_only_in_case_or_are_too_long_are_problems() {
    let long = format!("{}@t.hosted.test", "a".repeat(MAX_FILE_STEM_BYTES));
    let users = [
        entry("Ada@t.hosted.test", 2, &[]),
        entry("ada@t.hosted.test", 3, &[]),
        entry("ada!@t.hosted.test", 4, &[]),
        entry("ada?@t.hosted.test", 5, &[]),
        entry(&long, 6, &[]),
    ];
    let err = generate(&users, &Defaults::default(), &router(), Options::default()).err();
    let kinds: Vec<String> = err
        .map(|e| e.problems.iter().map(|p| p.kind.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(
        kinds,
        [
            "its file ada@t.hosted.test.json clashes with that of \"Ada@t.hosted.test\" at u.csv:2; the first is kept",
            "its file ada_@t.hosted.test.json clashes with that of \"ada!@t.hosted.test\" at u.csv:4; the first is kept",
            "the login is too long for a file name (214 bytes, at most 200)",
        ]
    );
}
