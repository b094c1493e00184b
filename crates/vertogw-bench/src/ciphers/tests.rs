use std::time::Duration;

use super::measure::{HandshakeMeasurement, RecordMeasurement, SuiteMeasurement};
use super::*;

#[test]
fn suite_names_are_the_ones_rustls_prints() {
    for suite in Suite::ALL {
        assert_eq!(suite.name(), format!("{:?}", suite.supported().suite()));
        assert_eq!(Suite::of(suite.supported()), Some(suite));
    }
}

#[test]
fn suites_parse_from_any_of_their_spellings() {
    for suite in Suite::ALL {
        assert_eq!(suite.name().parse::<Suite>(), Ok(suite));
        assert_eq!(suite.alias().parse::<Suite>(), Ok(suite));
        assert_eq!(suite.name().to_lowercase().parse::<Suite>(), Ok(suite));
    }
    assert_eq!("TLS_AES_128_GCM_SHA256".parse(), Ok(Suite::Aes128Gcm));
    assert_eq!(
        "chacha20_poly1305_sha256".parse(),
        Ok(Suite::Chacha20Poly1305)
    );
    assert_eq!(" AES256 ".parse(), Ok(Suite::Aes256Gcm));
}

#[test]
fn an_unknown_suite_is_refused_with_the_known_names() {
    let err = "TLS13_AES_128_CCM_SHA256".parse::<Suite>().unwrap_err();
    for suite in Suite::ALL {
        assert!(err.contains(suite.name()), "{err}");
    }
    // A bare name means the TLS 1.3 suite, never the TLS 1.2 one.
    assert_eq!("AES_128_GCM_SHA256".parse(), Ok(Suite::Aes128Gcm));
}

#[test]
fn the_default_plan_times_fewer_full_records_than_messages() {
    let config = CipherConfig::default();
    assert!(config.validate().is_ok());
    assert_eq!(
        config.plan(),
        [
            (MESSAGE_BYTES, DEFAULT_MESSAGE_ITERATIONS),
            (FULL_RECORD_BYTES, DEFAULT_FULL_RECORD_ITERATIONS)
        ]
    );
    let config = CipherConfig {
        iterations: Some(7),
        ..CipherConfig::default()
    };
    assert_eq!(config.plan(), [(MESSAGE_BYTES, 7), (FULL_RECORD_BYTES, 7)]);
}

#[test]
fn settings_out_of_bounds_name_the_option() {
    let cases = [
        (
            CipherConfig {
                suites: Vec::new(),
                ..CipherConfig::default()
            },
            "--suite",
        ),
        (
            CipherConfig {
                suites: vec![Suite::Aes128Gcm, Suite::Aes128Gcm],
                ..CipherConfig::default()
            },
            "--suite",
        ),
        (
            CipherConfig {
                iterations: Some(0),
                ..CipherConfig::default()
            },
            "--iterations",
        ),
        (
            CipherConfig {
                iterations: Some(MAX_ITERATIONS + 1),
                ..CipherConfig::default()
            },
            "--iterations",
        ),
        (
            CipherConfig {
                handshakes: 0,
                ..CipherConfig::default()
            },
            "--handshakes",
        ),
    ];
    for (config, option) in cases {
        match config.validate() {
            Err(CipherError::Invalid(m)) => assert!(m.contains(option), "{m}"),
            other => panic!("{option}: {other:?}"),
        }
    }
}

fn measured(suite: Suite, ns_200: u64, ns_16k: u64) -> SuiteMeasurement {
    let record = |bytes, ns: u64| RecordMeasurement {
        bytes,
        wire_bytes: bytes + 22,
        iterations: 1000,
        total: Duration::from_nanos(ns * 1000),
        seal: Duration::from_nanos(ns * 400),
    };
    SuiteMeasurement {
        suite,
        handshakes: HandshakeMeasurement {
            count: 10,
            server: Duration::from_micros(1500),
            client: Duration::from_micros(2500),
            kx_group: "X25519".into(),
            client_bytes: 300,
            server_bytes: 900,
        },
        records: vec![
            record(MESSAGE_BYTES, ns_200),
            record(FULL_RECORD_BYTES, ns_16k),
        ],
    }
}

fn report() -> CipherReport {
    CipherReport::new(
        vec![
            measured(Suite::Aes128Gcm, 500, 4000),
            measured(Suite::Aes256Gcm, 520, 3900),
            measured(Suite::Chacha20Poly1305, 600, 9000),
            measured(Suite::Tls12EcdsaAes128Gcm, 100, 100),
        ],
        vec![(
            Group::X25519Mlkem768,
            HandshakeMeasurement {
                count: 4,
                server: Duration::from_micros(400),
                client: Duration::from_micros(600),
                kx_group: "X25519MLKEM768".into(),
                client_bytes: 1500,
                server_bytes: 1300,
            },
        )],
        vec![Negotiation {
            client: "rustls default client".into(),
            offers: vec!["TLS13_AES_256_GCM_SHA384".into()],
            negotiated: "TLS13_AES_256_GCM_SHA384".into(),
            offers_groups: vec!["X25519".into()],
            kx_group: "X25519".into(),
        }],
        Some("Test CPU".into()),
        Some(true),
    )
}

#[test]
fn the_report_turns_totals_into_means_and_rates() {
    let r = report();
    let rec = &r.suites[0].records[0];
    assert_eq!(rec.ns_per_record, 500.0);
    assert_eq!(rec.seal_ns, 200.0);
    assert_eq!(rec.open_ns, 300.0);
    // 200 bytes in 500 ns = 0.4 bytes/ns = 400 MB/s.
    assert!((rec.mb_per_s - 400.0).abs() < 1e-9, "{}", rec.mb_per_s);
    let h = &r.suites[0].handshake_us;
    assert_eq!((h.server, h.client, h.pair), (150.0, 250.0, 400.0));
    assert_eq!(r.suites[3].protocol, "TLSv1.2");
    let g = &r.groups[0];
    assert_eq!(
        (g.group, g.suite),
        ("X25519MLKEM768", "TLS13_AES_128_GCM_SHA256")
    );
    let h = &g.handshake_us;
    assert_eq!((h.server, h.client, h.pair), (100.0, 150.0, 250.0));
    assert_eq!((g.client_bytes, g.server_bytes), (1500, 1300));
}

#[test]
fn the_cheapest_suite_is_a_tls13_one_chosen_per_size() {
    let r = report();
    // The TLS 1.2 suite is cheaper in this made-up data, but browsers negotiate TLS 1.3.
    assert_eq!(r.cheapest, Some("TLS13_AES_128_GCM_SHA256"));
    let winners: Vec<(usize, &str)> = r
        .cheapest_by_size
        .iter()
        .map(|w| (w.bytes, w.suite))
        .collect();
    assert_eq!(
        winners,
        [
            (MESSAGE_BYTES, "TLS13_AES_128_GCM_SHA256"),
            (FULL_RECORD_BYTES, "TLS13_AES_256_GCM_SHA384")
        ]
    );
    let first = &r.cheapest_by_size[0];
    assert_eq!(first.runner_up, Some("TLS13_AES_256_GCM_SHA384"));
    // 520 ns against 500: 4 % more.
    assert!((first.margin_pct.unwrap() - 4.0).abs() < 1e-9);
}

#[test]
fn without_a_tls13_suite_nothing_is_cheapest() {
    let r = CipherReport::new(
        vec![measured(Suite::Tls12EcdsaAes128Gcm, 1, 1)],
        Vec::new(),
        Vec::new(),
        None,
        None,
    );
    assert_eq!(r.cheapest, None);
    assert!(r.cheapest_by_size.is_empty());
}

#[test]
fn the_json_report_has_the_documented_keys() {
    let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    for key in [
        "mode",
        "cpu_model",
        "aes_hw",
        "suites",
        "cheapest",
        "cheapest_by_size",
        "groups",
        "negotiated",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["mode"], "ciphers");
    let suite = &v["suites"][0];
    for key in ["suite", "protocol", "kx_group", "records", "handshake_us"] {
        assert!(suite.get(key).is_some(), "missing suites[].{key}");
    }
    for key in [
        "bytes",
        "wire_bytes",
        "iterations",
        "ns_per_record",
        "seal_ns",
        "open_ns",
        "mb_per_s",
    ] {
        assert!(
            suite["records"][0].get(key).is_some(),
            "missing records[].{key}"
        );
    }
    for key in ["count", "server", "client", "pair"] {
        assert!(
            suite["handshake_us"].get(key).is_some(),
            "missing handshake_us.{key}"
        );
    }
    for key in [
        "group",
        "suite",
        "handshake_us",
        "client_bytes",
        "server_bytes",
    ] {
        assert!(v["groups"][0].get(key).is_some(), "missing groups[].{key}");
    }
    for key in [
        "client",
        "offers",
        "negotiated",
        "offers_groups",
        "kx_group",
    ] {
        assert!(
            v["negotiated"][0].get(key).is_some(),
            "missing negotiated[].{key}"
        );
    }
}

#[test]
fn the_human_summary_names_the_essentials() {
    let text = report().to_string();
    for want in [
        "Test CPU",
        "500.0",
        "cheapest TLS 1.3 suite for 200-byte records: TLS13_AES_128_GCM_SHA256 (500.0 ns), \
         then TLS13_AES_256_GCM_SHA384 (+4.0 %)",
        "→ TLS13_AES_256_GCM_SHA384, X25519",
        "full handshake (AES_128_GCM_SHA256), mean µs",
        "1500 / 1300",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn a_short_run_measures_every_suite_in_memory() {
    let config = CipherConfig {
        suites: Suite::ALL.to_vec(),
        iterations: Some(5),
        handshakes: 2,
    };
    let r = run(&config).unwrap();
    assert_eq!(r.suites.len(), Suite::ALL.len());
    for s in &r.suites {
        assert_eq!(s.handshake_us.count, 2);
        assert!(s.handshake_us.server > 0.0, "{}", s.suite);
        for rec in &s.records {
            assert!(rec.ns_per_record > 0.0, "{} {}", s.suite, rec.bytes);
        }
    }
    // One record each: 5-byte header, the content type byte (TLS 1.3) or the explicit
    // nonce (TLS 1.2), and the 16-byte tag.
    let wire = |i: usize, j: usize| r.suites[i].records[j].wire_bytes;
    assert_eq!(wire(0, 0), MESSAGE_BYTES + 22);
    assert_eq!(wire(0, 1), FULL_RECORD_BYTES + 22);
    assert_eq!(wire(3, 0), MESSAGE_BYTES + 29);
    let got: Vec<(&str, &str, &str)> = r
        .negotiated
        .iter()
        .map(|n| {
            (
                n.client.as_str(),
                n.negotiated.as_str(),
                n.kx_group.as_str(),
            )
        })
        .collect();
    // The gateway follows the client's order for groups as for suites: browsers get the
    // post-quantum hybrid they offer first.
    assert_eq!(
        got,
        [
            (
                "rustls default client",
                "TLS13_AES_256_GCM_SHA384",
                "X25519"
            ),
            ("Chrome order", "TLS13_AES_128_GCM_SHA256", "X25519MLKEM768"),
            (
                "Firefox order",
                "TLS13_AES_128_GCM_SHA256",
                "X25519MLKEM768"
            ),
        ]
    );
    let groups: Vec<&str> = r.groups.iter().map(|g| g.group).collect();
    assert_eq!(groups, ["X25519", "X25519MLKEM768", "secp256r1"]);
    for g in &r.groups {
        assert_eq!(g.handshake_us.count, 2);
        assert!(g.handshake_us.server > 0.0, "{}", g.group);
    }
    // The hybrid's key shares: 1,216 bytes from the client, 1,120 from the server,
    // against X25519's 32 each way. The client's flight is the same size every time;
    // the server's carries an ECDSA signature, whose length varies by a byte or two.
    let bytes = |i: usize| (r.groups[i].client_bytes, r.groups[i].server_bytes);
    let ((hybrid_c, hybrid_s), (x_c, x_s)) = (bytes(1), bytes(0));
    assert_eq!(hybrid_c - x_c, 1184, "{:?} {:?}", bytes(1), bytes(0));
    assert!(
        (1088 - 8..=1088 + 8).contains(&(hybrid_s as i64 - x_s as i64)),
        "{:?} {:?}",
        bytes(1),
        bytes(0)
    );
}
