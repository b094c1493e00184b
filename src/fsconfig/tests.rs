//! Tests of the generated FreeSWITCH settings: golden files, well-formedness, errors.

use std::path::Path;

use super::*;

const MAP: &str = include_str!("../../tests/golden/nat_map.toml");

fn config(text: &str) -> Config {
    match Config::parse(text, Path::new("config/nat_map.toml")) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("{e}"),
    }
}

use crate::testutil::golden;

/// A small well-formedness check for what we generate: balanced elements, one root,
/// quoted attributes, comments without `--`, no stray `<` or `&`.
fn well_formed(text: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        if rest[..open].contains('&') || (stack.is_empty() && !rest[..open].trim().is_empty()) {
            return Err(format!("stray text before {:?}", &rest[open..]));
        }
        rest = &rest[open..];
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").ok_or("unclosed comment")?;
            if body[..end].contains("--") {
                return Err("-- inside a comment".into());
            }
            rest = &body[end + 3..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name) {
                return Err(format!("unbalanced </{name}>"));
            }
            continue;
        }
        if tag.matches('"').count() % 2 != 0 || tag.contains('<') {
            return Err(format!("bad attributes in <{tag}>"));
        }
        let name = tag
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches('/');
        if stack.is_empty() {
            roots += 1;
        }
        if !tag.ends_with('/') {
            stack.push(name.to_owned());
        }
    }
    match (stack.is_empty(), roots, rest.trim().is_empty()) {
        (true, 1, true) => Ok(()),
        _ => Err(format!(
            "unclosed {stack:?}, {roots} roots, trailing {rest:?}"
        )),
    }
}

#[test]
fn files_for_a_node_match_the_golden_files_and_are_well_formed() {
    let files = render(&config(MAP), "fs1").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = files.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "vertogw-vars.xml",
            "vertogw-verto-profile.xml",
            "vertogw-switch-rtp.xml"
        ]
    );
    for file in &files {
        well_formed(&file.text).unwrap_or_else(|e| panic!("{}: {e}\n{}", file.name, file.text));
        golden(&format!("fs1-{}", file.name), &file.text);
    }
}

#[test]
fn settings_come_from_media_and_the_node() {
    let s = settings(&config(MAP), "fs2").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.ext_rtp_ip.to_string(), "203.0.113.10");
    assert_eq!(s.rtp_ip.to_string(), "192.0.2.12");
    assert_eq!(s.rtp_ports.to_string(), "17384-18383");
    assert_eq!(
        (s.verto_bind.as_str(), s.verto_secure),
        ("192.0.2.12:8081", false)
    );
}

#[test]
fn a_wss_node_by_name_binds_its_rtp_ip_securely_and_ipv6_is_bracketed() {
    let map = MAP.replace("ws://192.0.2.12:8081", "wss://fs2.example.net:8082");
    let s = settings(&config(&map), "fs2").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.verto_bind.as_str(), s.verto_secure),
        ("192.0.2.12:8082", true)
    );
    let profile = xml::verto_profile(&s);
    assert!(
        profile.contains("value=\"$${vertogw_verto_bind}\" secure=\"true\"/>"),
        "{profile}"
    );
    let v6 = MAP
        .replace("203.0.113.10", "2001:db8:ffff::10")
        .replace("snat_ip = \"192.0.2.1\"", "snat_ip = \"2001:db8::1\"")
        .replace("ws://192.0.2.11:8081", "ws://[2001:db8::11]:8081")
        .replace("ws://192.0.2.12:8081", "ws://[2001:db8::12]:8081")
        .replace("rtp_ip = \"192.0.2.12\"", "rtp_ip = \"2001:db8::12\"");
    let s = settings(&config(&v6), "fs1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.verto_bind, "[2001:db8::11]:8081");
}

#[test]
fn comments_never_hold_a_pre_process_element_or_a_double_dash() {
    let mut c = config(MAP);
    c.source = "maps--old/x.toml".into();
    for file in render(&c, "fs1").unwrap_or_else(|e| panic!("{e}")) {
        well_formed(&file.text).unwrap_or_else(|e| panic!("{}: {e}", file.name));
        for comment in file.text.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap_or_default();
            assert!(!body.contains("<X-PRE-PROCESS"), "{}", file.text);
        }
    }
}

#[test]
fn missing_node_media_or_range_are_errors() {
    let c = config(MAP);
    assert!(matches!(render(&c, "fs9"), Err(FsConfigError::UnknownNode(n)) if n == "fs9"));
    let no_media = config(MAP.split("[media]").next().unwrap_or_default());
    assert!(matches!(
        render(&no_media, "fs1"),
        Err(FsConfigError::NoMedia)
    ));
    let spare = format!("{MAP}\n[[node]]\nname = \"spare\"\nverto_url = \"ws://192.0.2.13\"\n");
    assert!(matches!(
        render(&config(&spare), "spare"),
        Err(FsConfigError::NoRtpPorts(_))
    ));
}
