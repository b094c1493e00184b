//! `[[gateway.certificate]]`: names and duplicates (pure), and what `Config::load` finds
//! in the files: missing, mismatched key, expiring, names not covered.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::super::tests::{error, errors, loaded, map, PARTITION};
use super::*;
use crate::config::{Config, ConfigErrors, Loaded};

/// One `[[gateway.certificate]]` with `names` (a TOML array) and files `stem.crt`/`.key`.
fn entry(names: &str, stem: &str) -> String {
    format!(
        "\n[[gateway.certificate]]\nnames = {names}\ncert = \"{stem}.crt\"\nkey = \"{stem}.key\"\n"
    )
}

#[test]
fn entries_are_read_lowercased_with_paths_relative_to_the_map() {
    let text = map(
        &format!(
            "{}{}",
            entry(r#"["A.Example.test", "*.Other.TEST"]"#, "a"),
            entry(r#"["b.test"]"#, "../b")
        ),
        PARTITION,
    );
    let certs = loaded(&text).config.gateway.certificates;
    assert_eq!(
        certs,
        [
            SniCertificate {
                names: vec!["a.example.test".into(), "*.other.test".into()],
                cert: PathBuf::from("maps/a.crt"),
                key: PathBuf::from("maps/a.key"),
            },
            SniCertificate {
                names: vec!["b.test".into()],
                cert: PathBuf::from("maps/../b.crt"),
                key: PathBuf::from("maps/../b.key"),
            },
        ]
    );
    assert!(loaded(&map("", PARTITION))
        .config
        .gateway
        .certificates
        .is_empty());
}

#[test]
fn a_name_must_be_a_dns_name_or_a_leading_one_label_wildcard() {
    assert_eq!(sni_name("*.example.com"), Ok("*.example.com".into()));
    assert_eq!(sni_name("x_y.Example.com"), Ok("x_y.example.com".into()));
    assert_eq!(sni_name(""), Err(SniNameError::Empty));
    for wild in ["*", "*.", "a.*.test", "*foo.test", "*.*.test", "**.test"] {
        let expected = match wild {
            "*." => SniNameError::NotDns,
            _ => SniNameError::Wildcard,
        };
        assert_eq!(sni_name(wild), Err(expected), "{wild}");
    }
    for ip in ["192.0.2.1", "2001:db8::1", "::1"] {
        assert_eq!(sni_name(ip), Err(SniNameError::IpAddress), "{ip}");
    }
    let long_label = format!("{}.test", "a".repeat(64));
    for bad in [
        "a..test", "-a.test", "a-.test", "a.test.", ".a.test", "a b.test", "é.test",
    ] {
        assert_eq!(sni_name(bad), Err(SniNameError::NotDns), "{bad}");
    }
    assert_eq!(sni_name(&long_label), Err(SniNameError::NotDns));
}

#[test]
fn bad_and_empty_names_are_errors_on_their_lines() {
    let text = map(
        &format!(
            "{}{}",
            entry(r#"["ok.test", "192.0.2.1"]"#, "a"),
            entry("[]", "b")
        ),
        PARTITION,
    );
    let all = errors(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(
        all[0],
        "maps/t.toml:7: [[gateway.certificate]] #1: names: \"192.0.2.1\": an IP address: browsers \
         send no name when they connect to an address, so such connections get the default \
         certificate (tls_cert)"
    );
    assert!(
        all[1].starts_with("maps/t.toml:12: [[gateway.certificate]] #2: names is empty: list"),
        "{all:#?}"
    );
}

#[test]
fn a_name_listed_twice_is_an_error_naming_the_first_entry() {
    let text = map(
        &format!(
            "{}{}",
            entry(r#"["a.test", "*.a.test"]"#, "a"),
            entry(r#"["b.test", "A.TEST"]"#, "b")
        ),
        PARTITION,
    );
    assert_eq!(
        error(&text),
        "maps/t.toml:12: [[gateway.certificate]] #2: names: \"a.test\" is listed by the \
         [[gateway.certificate]] on line 6 too: a name picks exactly one certificate; remove one"
    );
    let twice = map(&entry(r#"["a.test", "a.test"]"#, "a"), PARTITION);
    assert!(error(&twice).contains(":7: [[gateway.certificate]] #1: names: \"a.test\" is listed by the [[gateway.certificate]] on line 6 too"));
}

#[test]
fn an_entry_needs_names_cert_and_key_and_nothing_else() {
    let missing = map(
        "\n[[gateway.certificate]]\nnames = [\"a.test\"]\ncert = \"a.crt\"\n",
        PARTITION,
    );
    assert!(
        error(&missing).contains("missing field `key`"),
        "{}",
        error(&missing)
    );
    let typo = map(
        &entry(r#"["a.test"]"#, "a").replace("key =", "keyfile ="),
        PARTITION,
    );
    assert!(
        error(&typo).contains("unknown field `keyfile`"),
        "{}",
        error(&typo)
    );
    let empty = map(
        &entry(r#"["a.test"]"#, "a").replace("\"a.key\"", "\"\""),
        PARTITION,
    );
    assert!(
        error(&empty).contains(":9: [[gateway.certificate]] #1: key is empty"),
        "{}",
        error(&empty)
    );
}

/// A directory with a map whose default certificate is `gw` and whose entries are
/// `entries`; every certificate listed in `files` is generated (name, SAN names, valid
/// for how long from now; `None` = rcgen's default, years).
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str, entries: &str, files: &[(&str, &[&str], Option<i64>)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("vertogw-certs-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        for (stem, names, valid_for) in files {
            let ss = match valid_for {
                None => vertogw_net::tls::self_signed(names),
                Some(secs) => {
                    let now = SystemTime::now();
                    let d = Duration::from_secs(secs.unsigned_abs());
                    let until = if *secs >= 0 { now + d } else { now - d };
                    vertogw_net::tls::self_signed_until(names, until)
                }
            }
            .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(dir.join(format!("{stem}.crt")), ss.cert_pem)
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(dir.join(format!("{stem}.key")), ss.key_pem)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let text = format!(
            "[gateway]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"gw.crt\"\ntls_key = \"gw.key\"\nallowed_origins = [\"*\"]\n{entries}{}{PARTITION}",
            super::super::tests::NODES
        );
        std::fs::write(dir.join("m.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        Dir(dir)
    }

    fn load(&self) -> Result<Loaded, ConfigErrors> {
        Config::load(&self.0.join("m.toml"))
    }

    fn file(&self) -> String {
        self.0.join("m.toml").display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const DAY: i64 = 86_400;

#[test]
fn load_reads_every_certificate_with_its_expiry() {
    let entries = format!(
        "{}{}",
        entry(r#"["a.example.test"]"#, "a"),
        entry(r#"["*.other.test"]"#, "b")
    );
    let files: &[(&str, &[&str], Option<i64>)] = &[
        ("gw", &["localhost"], Some(400 * DAY)),
        ("a", &["a.example.test"], Some(90 * DAY)),
        ("b", &["*.other.test"], None),
    ];
    let dir = Dir::new("ok", &entries, files);
    let loaded = dir.load().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let certs = loaded
        .certificates
        .unwrap_or_else(|| panic!("no certificates"));
    assert!(certs.default.names.is_empty());
    let names: Vec<_> = certs.named.iter().map(|c| c.names.join(",")).collect();
    assert_eq!(names, ["a.example.test", "*.other.test"]);
    assert_eq!(certs.named[0].cert_file, dir.0.join("a.crt"));
    assert!(certs.server_config().is_ok());
    // parse reads no file, so it has no certificates.
    let text = std::fs::read_to_string(dir.0.join("m.toml")).unwrap_or_default();
    assert!(Config::parse(&text, Path::new("m.toml"))
        .map(|l| l.certificates.is_none())
        .unwrap_or(false));
}

#[test]
fn missing_files_and_a_key_of_another_certificate_are_errors_on_the_entry_line() {
    let entries = format!(
        "{}{}{}",
        entry(r#"["a.test"]"#, "a"),
        entry(r#"["b.test"]"#, "missing"),
        entry(r#"["c.test"]"#, "c")
    );
    let files: &[(&str, &[&str], Option<i64>)] = &[
        ("gw", &["localhost"], None),
        ("a", &["a.test"], None),
        ("c", &["c.test"], None),
    ];
    let dir = Dir::new("bad", &entries, files);
    // c.key becomes a's key: a valid key, of another certificate.
    std::fs::copy(dir.0.join("a.key"), dir.0.join("c.key")).unwrap_or_else(|e| panic!("{e}"));
    let errs = dir.load().map(|_| ()).unwrap_err();
    let all: Vec<String> = errs.errors.iter().map(ToString::to_string).collect();
    assert_eq!(all.len(), 2, "{all:#?}");
    let file = dir.file();
    assert!(
        all[0].starts_with(&format!(
            "{file}:12: [[gateway.certificate]] #2: cert/key: cannot read "
        )),
        "{all:#?}"
    );
    assert!(all[0].contains("missing.crt"), "{all:#?}");
    assert!(
        all[1].starts_with(&format!(
            "{file}:17: [[gateway.certificate]] #3: cert/key: "
        )),
        "{all:#?}"
    );
    assert!(
        all[1].ends_with("the private key does not belong to the certificate (their public keys differ): pair each certificate with its own key"),
        "{all:#?}"
    );
}

#[test]
fn expiring_and_expired_certificates_are_warnings_not_errors() {
    let entries = format!(
        "{}{}",
        entry(r#"["a.test"]"#, "a"),
        entry(r#"["b.test"]"#, "b")
    );
    let files: &[(&str, &[&str], Option<i64>)] = &[
        ("gw", &["localhost"], Some(7 * DAY + 3600)),
        ("a", &["a.test"], Some(-2 * DAY)),
        ("b", &["b.test"], Some(15 * DAY)),
    ];
    let dir = Dir::new("expiry", &entries, files);
    let loaded = dir.load().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.file();
    let w = &loaded.warnings;
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with(&format!("{file}:3: [gateway]: certificate ")),
        "{w:#?}"
    );
    assert!(
        w[0].contains("gw.crt expires on ") && w[0].ends_with(" (in 7 days): renew it"),
        "{w:#?}"
    );
    assert!(
        w[1].starts_with(&format!(
            "{file}:7: [[gateway.certificate]] #1: certificate "
        )),
        "{w:#?}"
    );
    assert!(
        w[1].contains("a.crt expired on ") && w[1].ends_with(": browsers refuse it; renew it"),
        "{w:#?}"
    );
}

#[test]
fn a_name_the_certificate_does_not_cover_is_a_warning() {
    let entries = entry(
        r#"["a.test", "x.other.test", "*.other.test", "b.test"]"#,
        "a",
    );
    let files: &[(&str, &[&str], Option<i64>)] = &[
        ("gw", &["localhost"], None),
        ("a", &["a.test", "*.other.test"], None),
    ];
    let dir = Dir::new("cover", &entries, files);
    let loaded = dir.load().unwrap_or_else(|e| panic!("{e}"));
    let w = &loaded.warnings;
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].starts_with(&format!("{}:7: [[gateway.certificate]] #1: ", dir.file())),
        "{w:#?}"
    );
    assert!(
        w[0].contains("a.crt does not cover \"b.test\" (its DNS names: a.test, *.other.test): browsers asking for b.test will refuse it"),
        "{w:#?}"
    );
}
