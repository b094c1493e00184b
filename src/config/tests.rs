//! Tests of map parsing and validation: one per rule, asserting the operator's message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const GATEWAY: &str = r#"[gateway]
listen = "0.0.0.0:8443"
tls_cert = "../certs/gw.crt"
tls_key = "/etc/vertogw/gw.key"
"#;

pub(super) const NODES: &str = r#"
[[node]]
name = "fs1"
verto_url = "ws://192.0.2.11:8081"
rtp_ip = "192.0.2.11"
rtp_ports = "10000-10399"

[[node]]
name = "fs2"
verto_url = "wss://fs2.example.net/verto"
rtp_ports = "10400-10799"
"#;

pub(super) const PARTITION: &str = r#"
[[partition]]
name = "acme"
nodes = ["fs1", "fs2"]
domains = ["Acme.Example.com", "*.acme.test"]
extensions = ["1000-1999", "alice"]
"#;

fn parse(text: &str) -> Result<Loaded, ConfigErrors> {
    Config::parse(text, Path::new("maps/t.toml"))
}

pub(super) fn map(gateway_extra: &str, rest: &str) -> String {
    format!("{GATEWAY}{gateway_extra}{NODES}{rest}")
}

/// Every error line, asserting the map is refused.
pub(super) fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("map accepted:\n{text}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

/// The only error, asserting there is exactly one.
pub(super) fn error(text: &str) -> String {
    let all = errors(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap_or_default()
}

pub(super) fn loaded(text: &str) -> Loaded {
    parse(text).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn partition(name: &str, domains: &str, extensions: Option<&str>) -> String {
    let ext = extensions
        .map(|e| format!("extensions = {e}\n"))
        .unwrap_or_default();
    format!("\n[[partition]]\nname = \"{name}\"\nnodes = [\"fs1\"]\ndomains = {domains}\n{ext}")
}

#[test]
fn good_map_becomes_domain_types_with_defaults() {
    let Loaded {
        config, warnings, ..
    } = loaded(&map("", PARTITION));
    // The one thing `check` says about an otherwise fine map without allowed_origins.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("allowed_origins is not set") && warnings[0].contains("Origin"),
        "{warnings:?}"
    );
    assert_eq!(config.gateway.allowed_origins, None);
    let gw = &config.gateway;
    assert_eq!(gw.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(gw.login_timeout, Duration::from_millis(10_000));
    assert_eq!(gw.connect_timeout, Duration::from_millis(3_000));
    assert_eq!(gw.max_message_bytes, 999_999);
    assert_eq!(
        (gw.default_domain.clone(), gw.upstream_ca.clone()),
        (None, None)
    );
    let fs2 = config.node("fs2").unwrap_or_else(|| panic!("fs2 missing"));
    assert_eq!(
        (
            fs2.verto_url.secure,
            fs2.verto_url.port,
            fs2.verto_url.path.as_str()
        ),
        (true, 443, "/verto")
    );
    assert_eq!(
        fs2.rtp_ports,
        Some(PortRange {
            start: 10400,
            end: 10799
        })
    );
    assert!(config.node("fs9").is_none());
    let acme = &config.partitions[0];
    assert_eq!(acme.nodes, ["fs1", "fs2"]);
    assert_eq!(
        acme.domains,
        [
            DomainPattern::Exact("acme.example.com".into()),
            DomainPattern::Suffix("acme.test".into())
        ]
    );
    assert_eq!(
        acme.extensions,
        Some(vec![
            ExtensionRule::Range {
                start: 1000,
                end: 1999
            },
            ExtensionRule::Exact("alice".into())
        ])
    );
}

#[test]
fn relative_paths_resolve_against_the_map_directory() {
    let extra = "upstream_ca = \"ca.pem\"\n";
    let gw = loaded(&map(extra, PARTITION)).config.gateway;
    assert_eq!(gw.tls_cert, PathBuf::from("maps/../certs/gw.crt"));
    assert_eq!(gw.tls_key, PathBuf::from("/etc/vertogw/gw.key"));
    assert_eq!(gw.upstream_ca, Some(PathBuf::from("maps/ca.pem")));
}

#[test]
fn optional_gateway_keys_are_read() {
    let extra = "default_domain = \"Example.COM\"\nlogin_timeout_ms = 5000\nconnect_timeout_ms = 250\nmax_message_bytes = 65536\n";
    let gw = loaded(&map(extra, PARTITION)).config.gateway;
    assert_eq!(gw.default_domain.as_deref(), Some("example.com"));
    assert_eq!(
        (gw.login_timeout, gw.connect_timeout),
        (Duration::from_secs(5), Duration::from_millis(250))
    );
    assert_eq!(gw.max_message_bytes, 65536);
}

#[test]
fn max_message_bytes_above_verto_limit_is_accepted_with_a_warning() {
    let loaded = loaded(&map("max_message_bytes = 1000000\n", PARTITION));
    assert_eq!(loaded.config.gateway.max_message_bytes, 1_000_000);
    assert_eq!(loaded.warnings.len(), 2);
    assert!(
        loaded.warnings[0]
            .starts_with("maps/t.toml:5: [gateway]: max_message_bytes = 1000000 exceeds"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn zero_sizes_and_timeouts_are_errors() {
    let e = errors(&map(
        "max_message_bytes = 0\nlogin_timeout_ms = 0\nconnect_timeout_ms = 0\n",
        PARTITION,
    ));
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with("maps/t.toml:5: [gateway]: max_message_bytes = 0"),
        "{e:#?}"
    );
    assert!(
        e[1].contains(":6: [gateway]: login_timeout_ms = 0"),
        "{e:#?}"
    );
    assert!(
        e[2].contains(":7: [gateway]: connect_timeout_ms = 0"),
        "{e:#?}"
    );
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let e = error(&map("login_timout_ms = 5\n", PARTITION));
    assert!(
        e.starts_with("maps/t.toml:5: [gateway]: unknown field `login_timout_ms`"),
        "{e}"
    );
    let e = error(&map("", &PARTITION.replace("extensions", "extension")));
    assert!(
        e.contains(":21: partition \"acme\": unknown field `extension`"),
        "{e}"
    );
}

#[test]
fn unknown_top_level_table_and_wrong_table_shapes_are_rejected() {
    let e = error(&map("", &format!("{PARTITION}\n[partitions]\nx = 1\n")));
    assert!(e.contains(":23: unknown top-level key `partitions`"), "{e}");
    let text = format!("{GATEWAY}[node]\nname = \"fs1\"\nverto_url = \"ws://h\"\n");
    let e = error(&text);
    assert!(
        e.contains(
            "`node` has the wrong shape: write one [[node]] table (double brackets) per node"
        ),
        "{e}"
    );
}

#[test]
fn toml_syntax_error_names_file_and_line() {
    let e = error(&map("", "\n[[partition]\nname = \"x\"\n"));
    assert!(e.starts_with("maps/t.toml:17: TOML syntax error:"), "{e}");
}

#[test]
fn missing_gateway_and_missing_required_keys_are_errors() {
    let e = error(&format!("{NODES}{PARTITION}"));
    assert_eq!(
        e,
        "maps/t.toml: missing [gateway] table (it needs listen, tls_cert and tls_key)"
    );
    let e = error(&map(
        "",
        &PARTITION.replace("nodes = [\"fs1\", \"fs2\"]\n", ""),
    ));
    assert!(
        e.contains(":17: partition \"acme\": missing field `nodes`"),
        "{e}"
    );
}

#[test]
fn bad_gateway_values_are_errors() {
    let text = map("default_domain = \"*.example.com\"\n", PARTITION)
        .replace("0.0.0.0:8443", "0.0.0.0")
        .replace("\"../certs/gw.crt\"", "\"\"");
    let e = errors(&text);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].ends_with("listen = \"0.0.0.0\" is not an IP:port address (e.g. \"0.0.0.0:8443\")")
    );
    assert!(
        e[1].ends_with("tls_cert is empty: give the path of a PEM file"),
        "{e:#?}"
    );
    assert!(
        e[2].contains("default_domain = \"*.example.com\": a wildcard"),
        "{e:#?}"
    );
}

#[test]
fn bad_node_names_and_duplicate_nodes_are_errors() {
    let text = map("", &format!("\n[[node]]\nname = \"fs 3\"\nverto_url = \"ws://h\"\n\n[[node]]\nname = \"fs1\"\nverto_url = \"ws://h\"\n{PARTITION}"));
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].ends_with("node \"fs 3\": name \"fs 3\" is invalid: use letters, digits, '_' or '-'"),
        "{e:#?}"
    );
    assert!(
        e[1].ends_with("node \"fs1\": defined twice (first on line 7): rename one of them"),
        "{e:#?}"
    );
}

#[test]
fn bad_urls_ips_and_rtp_ranges_are_errors() {
    let text = map("", PARTITION)
        .replace("ws://192.0.2.11:8081", "http://192.0.2.11")
        .replace("rtp_ip = \"192.0.2.11\"", "rtp_ip = \"192.0.2\"")
        .replace("10400-10799", "10799-10400");
    let e = errors(&text);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!(e[0], "maps/t.toml:8: node \"fs1\": verto_url \"http://192.0.2.11\": use ws:// or wss:// (mod_verto speaks WebSocket)");
    assert!(
        e[1].ends_with("node \"fs1\": rtp_ip \"192.0.2\" is not an IP address"),
        "{e:#?}"
    );
    assert!(e[2].ends_with("node \"fs2\": rtp_ports \"10799-10400\": it is reversed (write the smaller number first)"), "{e:#?}");
    for outside in ["0-10", "1000-1100", "1023-2000", "10000-70000"] {
        let e = error(&map("", PARTITION).replace("10000-10399", outside));
        assert!(
            e.ends_with(&format!(
                "rtp_ports \"{outside}\": RTP ports must lie within 1024-65535 \
                 (FreeSWITCH's RTP range; ports below 1024 belong to system services)"
            )),
            "{e}"
        );
    }
    let edges = map("", PARTITION)
        .replace("10000-10399", "1024-1024")
        .replace("10400-10799", "65535-65535");
    loaded(&edges);
}

#[test]
fn overlapping_rtp_ports_are_errors_whatever_the_rtp_ip() {
    let e = error(&map("", PARTITION).replace("10400-10799", "10399-10799"));
    assert_eq!(
        e,
        "maps/t.toml:15: node \"fs2\": rtp_ports 10399-10799 overlaps 10000-10399 of node \"fs1\" (line 10): \
         all nodes share the load balancer's public address, so their RTP ranges must be disjoint"
    );
}

#[test]
fn all_errors_are_reported_together_in_file_order() {
    let text = map(
        "listen_port = 1\n",
        &PARTITION.replace("\"fs2\"]", "\"fs9\"]"),
    )
    .replace("ws://192.0.2.11:8081", "ws://");
    let e = errors(&text);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].contains(":5: [gateway]: unknown field `listen_port`"),
        "{e:#?}"
    );
    assert!(
        e[1].contains(":9: node \"fs1\": verto_url \"ws://\": it has no host"),
        "{e:#?}"
    );
    assert!(
        e[2].contains(":20: partition \"acme\": node \"fs9\" is not defined"),
        "{e:#?}"
    );
    let all = parse(&text)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(all.lines().count(), 3);
}

#[test]
fn a_node_with_a_bad_url_is_still_known_to_partitions() {
    let e = error(&map("", PARTITION).replace("ws://192.0.2.11:8081", "ws://h:99999"));
    assert!(
        e.contains("port \"99999\" is not a number from 1 to 65535"),
        "{e}"
    );
}

/// A fresh directory for files `load` reads.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vertogw-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn load_checks_certificate_and_key_relative_to_the_map() {
    let dir = temp_dir("load");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
    let ss = vertogw_net::tls::self_signed(&["localhost"]).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(certs.join("gw.crt"), &ss.cert_pem).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(certs.join("gw.key"), &ss.key_pem).unwrap_or_else(|e| panic!("{e}"));
    let good = map("", PARTITION)
        .replace("../certs/gw.crt", "certs/gw.crt")
        .replace("/etc/vertogw/gw.key", "certs/gw.key");
    let path = dir.join("good.toml");
    std::fs::write(&path, &good).unwrap_or_else(|e| panic!("{e}"));
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"));

    let bad = good
        .replace("certs/gw.key", "certs/missing.key")
        .replace("\"fs2\"]", "\"fs9\"]");
    std::fs::write(&path, bad).unwrap_or_else(|e| panic!("{e}"));
    let e = Config::load(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("node \"fs9\" is not defined"), "{e}");
    assert!(
        e.contains(":3: [gateway]: tls_cert/tls_key: cannot read"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_of_a_missing_file_is_one_error() {
    let e = Config::load(Path::new("/nonexistent/vertogw.toml"))
        .err()
        .map(|e| e.to_string());
    assert!(e
        .unwrap_or_default()
        .starts_with("/nonexistent/vertogw.toml: cannot read the map:"));
}

#[test]
fn shipped_example_maps_are_valid() {
    for (name, text) in [
        (
            "config/vertogw.toml",
            include_str!("../../config/vertogw.toml"),
        ),
        ("config/demo.toml", include_str!("../../config/demo.toml")),
    ] {
        let loaded = Config::parse(text, Path::new(name)).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
    }
}

#[test]
fn no_prefix_of_the_example_map_panics_the_parser() {
    let text = include_str!("../../config/vertogw.toml");
    let cuts = text.char_indices().map(|(i, _)| i).step_by(7);
    for cut in cuts {
        let _ = Config::parse(&text[..cut], Path::new("cut.toml"));
    }
}

#[test]
fn a_node_url_moved_to_another_port_keeps_scheme_host_and_path() {
    let config = loaded(&map("", PARTITION)).config;
    let moved = config.nodes[1].verto_url.with_port(9443);
    assert_eq!(moved.raw, "wss://fs2.example.net:9443/verto");
    assert_eq!((moved.port, moved.secure), (9443, true));
    let v6 = crate::config::NodeUrl {
        raw: "ws://[::1]:1/".into(),
        secure: false,
        host: "::1".into(),
        port: 1,
        path: "/".into(),
    };
    assert_eq!(v6.with_port(2).raw, "ws://[::1]:2/");
}

#[test]
fn limits_default_when_the_table_is_absent() {
    let config = loaded(&map("", PARTITION)).config;
    assert_eq!(config.limits, crate::config::Limits::default());
    let l = &config.limits;
    assert_eq!(
        (l.max_prelogin_message_bytes, l.max_prelogin_messages),
        (16384, 20)
    );
    assert_eq!(
        (
            l.per_ip_connections,
            l.per_ip_connect_rate,
            l.per_ip_connect_burst
        ),
        (256, 20, 100)
    );
    assert_eq!(l.tls_handshake_timeout, Duration::from_secs(5));
    assert_eq!(
        (l.login_failures_per_minute, l.login_cooldown),
        (10, Duration::from_secs(60))
    );
    assert_eq!(
        (l.stall_timeout, l.browser_ping),
        (Duration::from_secs(30), Duration::from_secs(30))
    );
    assert!(l.is_trusted("127.0.0.9".parse().unwrap()));
    assert!(l.is_trusted("::1".parse().unwrap()));
    assert!(l.is_trusted("::ffff:127.0.0.1".parse().unwrap()));
    assert!(!l.is_trusted("192.0.2.1".parse().unwrap()));
}

#[test]
fn limits_are_read_and_bad_values_named() {
    let limits = "\n[limits]\nmax_prelogin_messages = 5\ntrusted_networks = [\"192.0.2.0/24\", \"2001:db8::1\", \"198.51.100.7/16\"]\nbrowser_ping_ms = 1500\n";
    let l = loaded(&format!("{}{limits}", map("", PARTITION)))
        .config
        .limits;
    assert_eq!(l.max_prelogin_messages, 5);
    assert_eq!(l.browser_ping, Duration::from_millis(1500));
    assert!(l.is_trusted("192.0.2.200".parse().unwrap()));
    assert!(
        l.is_trusted("198.51.3.4".parse().unwrap()),
        "host bits are dropped"
    );
    assert!(l.is_trusted("2001:db8::1".parse().unwrap()));
    assert!(!l.is_trusted("2001:db8::2".parse().unwrap()));
    assert!(
        !l.is_trusted("127.0.0.1".parse().unwrap()),
        "the list replaces the default"
    );

    let bad = "\n[limits]\nper_ip_connections = 0\ntrusted_networks = [\"10.0.0.0/33\"]\nstall_timeout_ms = 0\nmax_prelogin_bytes = 1\n";
    let all = errors(&format!("{}{bad}", map("", PARTITION)));
    assert_eq!(all.len(), 1, "a schema error is reported alone: {all:#?}");
    assert!(all[0].contains("max_prelogin_bytes"), "{all:#?}");
    let bad = bad.replace("max_prelogin_bytes = 1\n", "");
    let all = errors(&format!("{}{bad}", map("", PARTITION)));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all.iter()
            .any(|e| e.contains("[limits]: per_ip_connections = 0")),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("\"10.0.0.0/33\" is not a network")),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("[limits]: stall_timeout_ms = 0")),
        "{all:#?}"
    );
}

#[test]
fn per_address_limits_key_ipv4_alone_and_ipv6_by_its_64() {
    use crate::config::address_key;
    let key = |s: &str| address_key(s.parse().unwrap()).to_string();
    assert_eq!(key("192.0.2.7"), "192.0.2.7");
    assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
    assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
    assert_eq!(key("2001:db8:1:2:ffff::1"), key("2001:db8:1:2::9"));
    assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
}

#[test]
fn allowed_origins_are_read_and_bad_ones_named() {
    let gw = |extra: &str| map(extra, PARTITION);
    let l = loaded(&gw(
        "allowed_origins = [\"https://App.example.com\", \"https://*.example.net:8443\"]\n",
    ));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let origins = l.config.gateway.allowed_origins.unwrap_or_default();
    let shown: Vec<String> = origins.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["https://app.example.com", "https://*.example.net:8443"]
    );
    let l = loaded(&gw("allowed_origins = [\"*\"]\n"));
    assert!(
        l.warnings.is_empty(),
        "an explicit star is a choice: {:?}",
        l.warnings
    );
    let e = error(&gw("allowed_origins = [\"app.example.com\"]\n"));
    assert!(
        e.contains("allowed_origins: \"app.example.com\": write scheme://host"),
        "{e}"
    );
}

#[test]
fn client_ip_param_must_be_a_variable_name() {
    let gw = |extra: &str| map(extra, PARTITION);
    let l = loaded(&gw("client_ip_param = \"vertogw_client_ip\"\n"));
    assert_eq!(
        l.config.gateway.client_ip_param.as_deref(),
        Some("vertogw_client_ip")
    );
    for bad in ["", "has space", "dot.ted", "quo\\\"te"] {
        let e = error(&gw(&format!("client_ip_param = \"{bad}\"\n")));
        assert!(e.contains("client_ip_param"), "{bad}: {e}");
    }
}

#[test]
fn public_and_fallback_urls_must_be_websocket_urls_and_ws_is_warned() {
    let e = error(&map(
        "public_url = \"https://verto.example.com/\"\n",
        PARTITION,
    ));
    assert!(
        e.contains("[gateway]: public_url \"https://verto.example.com/\": use ws:// or wss://"),
        "{e}"
    );
    let l = loaded(&map(
        "public_url = \"ws://verto.example.com/\"\nfallback_url = \"wss://backup.example.com/\"\n",
        PARTITION,
    ));
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("public_url \"ws://verto.example.com/\" is ws://")),
        "{:?}",
        l.warnings
    );
    let acme = &l.config.partitions[0];
    let urls = l.config.client_urls(acme);
    assert_eq!(urls.ws_url, "ws://verto.example.com/");
    assert_eq!(
        urls.fallback_url.as_deref(),
        Some("wss://backup.example.com/")
    );
}

#[test]
fn a_partition_public_url_overrides_the_gateways_and_the_default_is_derived() {
    let own = format!(
        "{PARTITION}public_url = \"wss://acme.example.net/\"\nfallback_url = \"wss://b.acme.example.net/\"\n"
    );
    let l = loaded(&map("", &own));
    let urls = l.config.client_urls(&l.config.partitions[0]);
    assert_eq!(urls.ws_url, "wss://acme.example.net/");
    assert_eq!(
        urls.fallback_url.as_deref(),
        Some("wss://b.acme.example.net/")
    );
    let l = loaded(&map("", PARTITION));
    assert_eq!(l.config.public_url(), "wss://localhost:8443/");
    let e = error(&map("", &format!("{PARTITION}public_url = \"ftp://x\"\n")));
    assert!(
        e.contains("partition \"acme\": public_url \"ftp://x\""),
        "{e}"
    );
}

#[test]
fn a_web_root_that_is_not_a_folder_is_an_error_when_loading() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ss = vertogw_net::tls::self_signed(&["localhost"]).unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"))
    };
    write("gw.crt", &ss.cert_pem);
    write("gw.key", &ss.key_pem);
    write("file.txt", "not a folder");
    let text = |root: &str| {
        format!(
            "[gateway]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"gw.crt\"\ntls_key = \"gw.key\"\nallowed_origins = [\"*\"]\nweb_root = \"{root}\"\n{NODES}{PARTITION}"
        )
    };
    for (root, expected) in [("missing", "No such file"), ("file.txt", "it is a file")] {
        write("m.toml", &text(root));
        let err = match Config::load(&dir.path().join("m.toml")) {
            Ok(_) => panic!("{root}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("web_root") && err.contains(expected),
            "{root}: {err}"
        );
    }
    std::fs::create_dir(dir.path().join("site")).unwrap_or_else(|e| panic!("{e}"));
    write("m.toml", &text("site"));
    let loaded = Config::load(&dir.path().join("m.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.config.gateway.web_root,
        Some(dir.path().join("site"))
    );
}

#[test]
fn admin_defaults_to_loopback_without_a_token() {
    let admin = loaded(&map("", PARTITION)).config.admin;
    assert_eq!(admin.listen, "127.0.0.1:9090".parse().expect("address"));
    assert_eq!(admin.token, None);
}

#[test]
fn admin_off_loopback_needs_a_token_and_the_token_is_never_printed() {
    let open = map(
        "",
        &format!("{PARTITION}[admin]\nlisten = \"0.0.0.0:9090\"\n"),
    );
    let err = error(&open);
    assert!(err.starts_with("maps/t.toml:"), "{err}");
    assert!(
        err.contains(
            "[admin]: listen = \"0.0.0.0:9090\" is not a loopback address and [admin] has no token"
        ),
        "{err}"
    );
    let token = "s3cret-token-0123456789";
    let with_token = map(
        "",
        &format!("{PARTITION}[admin]\nlisten = \"[::]:9090\"\ntoken = \"{token}\"\n"),
    );
    let admin = loaded(&with_token).config.admin;
    assert_eq!(admin.token.as_deref(), Some(token));
    let shown = format!("{admin:?}");
    assert!(
        !shown.contains(token) && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn admin_rejects_a_bad_listen_and_a_weak_token() {
    let bad = map("", &format!("{PARTITION}[admin]\nlisten = \"localhost\"\n"));
    assert!(error(&bad).contains("listen = \"localhost\" is not an IP:port address"));
    for token in ["short", "has spaces in it 0123456789", ""] {
        let weak = map("", &format!("{PARTITION}[admin]\ntoken = \"{token}\"\n"));
        assert!(
            error(&weak).contains("token must be at least 16 printable ASCII"),
            "{token:?}"
        );
    }
    let unknown = map("", &format!("{PARTITION}[admin]\nport = 1\n"));
    assert!(error(&unknown).contains("port"), "{}", error(&unknown));
}

#[test]
fn every_duration_is_at_most_a_year_so_no_deadline_overflows() {
    for (table, key) in [
        ("gateway", "login_timeout_ms"),
        ("limits", "stall_timeout_ms"),
        ("limits", "browser_ping_ms"),
        ("health", "sticky_ms"),
    ] {
        let huge = format!("[{table}]\n{key} = 18446744073709551615\n");
        let text = match table {
            "gateway" => map(&format!("{key} = 18446744073709551615\n"), PARTITION),
            _ => map("", &format!("{PARTITION}{huge}")),
        };
        let err = error(&text);
        assert!(
            err.contains("is more than a year: use at most 31536000000 milliseconds"),
            "{err}"
        );
    }
    let year = map(
        "",
        &format!("{PARTITION}[health]\nsticky_ms = 31536000000\n"),
    );
    assert_eq!(
        loaded(&year).config.health.sticky.as_secs(),
        365 * 24 * 3600
    );
}
