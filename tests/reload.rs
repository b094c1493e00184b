//! Hot reload through the admin API (`config.reload`, the same path SIGHUP takes): a
//! valid map applies and moves only the sessions it concerns, anything invalid —
//! the map, a key that is not its certificate's, a changed listener — changes nothing
//! and says why, and a new certificate serves new handshakes only.

mod common;

use std::sync::Arc;

use common::admin::{metric, start_admin, Admin};
use common::*;
use serde_json::{json, Value};
use vertogw_net::tls;

fn body(acme: &[&str], beta: &[&str]) -> String {
    format!(
        "{}{}{}[health]\ninterval_ms = 100\ntimeout_ms = 100\nrise = 1\nfall = 2\n",
        node_tables(&["fs1", "fs2", "fs3"]),
        partition("acme", acme, r#"["acme.test"]"#, None),
        partition("beta", beta, r#"["beta.test"]"#, None),
    )
}

async fn farm() -> (TestGateway, Admin, Vec<(&'static str, String)>) {
    let first = body(&["fs1"], &["fs3"]);
    let gw = Setup::new(&first)
        .node(sim("fs1"))
        .node(sim("fs2"))
        .node(sim("fs3"))
        .tweak(fast_probes)
        .start_monitored()
        .await;
    let urls: Vec<(&'static str, String)> = ["fs1", "fs2", "fs3"]
        .into_iter()
        .map(|n| (n, gw.node(n).url()))
        .collect();
    let admin = start_admin(&gw, &first, &urls).await;
    (gw, admin, urls)
}

async fn reload(admin: &Admin) -> Value {
    admin.rpc(None, "config.reload", json!({})).await
}

/// An echo through `ws` comes back.
async fn relays(ws: &mut Client, id: u64) {
    send_json(ws, &request("echo", json!({"n": id}), id)).await;
    let reply = recv_json(ws).await;
    assert_eq!(reply["result"]["n"], id, "{reply}");
}

#[tokio::test]
async fn a_valid_map_moves_only_the_sessions_it_concerns() {
    let (gw, admin, urls) = farm().await;
    let (mut acme, _) = lands_on(&gw, "1000@acme.test", "a").await;
    let (mut beta, node) = lands_on(&gw, "1000@beta.test", "b").await;
    assert_eq!(node, "fs3");
    // beta moves to fs2; acme is untouched.
    admin.write_map(&body(&["fs1"], &["fs2"]), &urls);
    let reply = reload(&admin).await;
    assert_eq!(
        reply["result"],
        json!({"applied": true, "partitions": 2, "nodes": 3})
    );
    assert_eq!(closed_with(&mut beta).await, Some(1012));
    assert_eq!(lands_on(&gw, "1000@beta.test", "b").await.1, "fs2");
    relays(&mut acme, 7).await;
    let text = admin.get("/metrics", None).await.body;
    assert_eq!(
        metric(&text, "vertogw_migrations_total", "reason=\"reload\""),
        Some(1.0)
    );
}

#[tokio::test]
async fn an_invalid_map_changes_nothing_and_says_why() {
    let (gw, admin, urls) = farm().await;
    admin.write_map(&body(&["fs1"], &["fs9"]), &urls);
    let reply = reload(&admin).await;
    assert_eq!(reply["error"]["code"], -32000, "{reply}");
    assert_eq!(reply["error"]["message"], "invalid map");
    let errors = reply["error"]["data"]["errors"].as_array().expect("errors");
    let map = admin.map.display().to_string();
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{map}:")) && e.contains("fs9"))),
        "{reply}"
    );
    // Still the first map: beta on fs3.
    assert_eq!(lands_on(&gw, "1000@beta.test", "b").await.1, "fs3");
    let text = admin.get("/metrics", None).await.body;
    assert_eq!(
        metric(&text, "vertogw_config_reloads_total", "result=\"error\""),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_changed_listener_needs_a_restart() {
    let (_gw, admin, urls) = farm().await;
    for (table, listen) in [("gateway", "127.0.0.1:1"), ("admin", "127.0.0.1:2")] {
        let moved = match table {
            "gateway" => format!(
                "{}{}",
                common::admin::DISK_HEAD.replace("127.0.0.1:0", listen),
                body(&["fs1"], &["fs3"])
            ),
            _ => format!(
                "{}{}[admin]\nlisten = \"{listen}\"\n",
                common::admin::DISK_HEAD,
                body(&["fs1"], &["fs3"])
            ),
        };
        let mut map = moved;
        for (name, url) in &urls {
            map = map.replace(&format!("{{{name}}}"), url);
        }
        std::fs::write(&admin.map, map).expect("write map");
        let reply = reload(&admin).await;
        let errors = reply["error"]["data"]["errors"].to_string();
        assert!(
            errors.contains(&format!("[{table}] listen changed"))
                && errors.contains("restart needed"),
            "{reply}"
        );
    }
}

#[tokio::test]
async fn a_new_certificate_serves_new_handshakes_and_old_sessions_keep_theirs() {
    let (gw, admin, urls) = farm().await;
    let (mut old, _) = lands_on(&gw, "1000@acme.test", "a").await;
    let next = tls::self_signed(&["localhost", "127.0.0.1"]).expect("certificate");
    // A key that is not the certificate's is refused, and nothing changes.
    admin.write_certificate(&next.cert_pem, &certs().key_pem);
    admin.write_map(&body(&["fs1"], &["fs3"]), &urls);
    let reply = reload(&admin).await;
    assert_eq!(reply["error"]["code"], -32000, "{reply}");
    let _still = gw.client().await;

    admin.write_certificate(&next.cert_pem, &next.key_pem);
    let reply = reload(&admin).await;
    assert_eq!(reply["result"]["applied"], true, "{reply}");
    let trusting_new = tls::client_config_trusting(next.cert_pem.as_bytes()).expect("client");
    let mut fresh = connect_trusting(gw.addr, &trusting_new).await;
    let reply = login(&mut fresh, "1001@acme.test", PASSWORD, 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{reply}");
    // A client that trusts only the old certificate no longer completes a handshake.
    let tcp = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let old_trust = tokio_rustls::TlsConnector::from(Arc::clone(&certs().client));
    let handshake = within("the handshake", old_trust.connect(name, tcp)).await;
    assert!(
        handshake.is_err(),
        "the old certificate is no longer served"
    );
    // The session from before the reload keeps its TLS session and relays.
    relays(&mut old, 3).await;
}
