//! Each login lands on its partition's node, end to end: the most specific domain
//! pattern wins, extensions beat no extensions, and the login reaches the node as sent.

mod common;

use common::*;
use serde_json::json;

/// Logs `user` in on a fresh socket and returns the node that greeted it.
async fn landing_node(gw: &TestGateway, user: &str) -> String {
    let mut ws = gw.client().await;
    login_ready(&mut ws, user, 1).await
}

#[tokio::test]
async fn exact_domain_beats_suffix_which_beats_star() {
    let map = format!(
        "{}{}{}{}",
        node_tables(&["exact", "suffix", "star"]),
        partition("p-star", &["star"], r#"["*"]"#, None),
        partition("p-suffix", &["suffix"], r#"["*.example.test"]"#, None),
        partition("p-exact", &["exact"], r#"["acme.example.test"]"#, None),
    );
    let gw = start(&map, &["exact", "suffix", "star"]).await;
    assert_eq!(landing_node(&gw, "1000@acme.example.test").await, "exact");
    assert_eq!(
        landing_node(&gw, "1001@globex.example.test").await,
        "suffix"
    );
    assert_eq!(landing_node(&gw, "1002@elsewhere.test").await, "star");
    for (name, stats) in gw.all_stats() {
        assert_eq!(stats.logins_ok, 1, "node {name}: {stats:?}");
    }
}

#[tokio::test]
async fn longer_suffix_beats_shorter_suffix() {
    let map = format!(
        "{}{}{}",
        node_tables(&["short", "long"]),
        partition("p-short", &["short"], r#"["*.example.test"]"#, None),
        partition("p-long", &["long"], r#"["*.eu.example.test"]"#, None),
    );
    let gw = start(&map, &["short", "long"]).await;
    assert_eq!(landing_node(&gw, "1000@b.eu.example.test").await, "long");
    assert_eq!(landing_node(&gw, "1000@us.example.test").await, "short");
}

#[tokio::test]
async fn extensions_partition_beats_the_plain_partition_of_the_same_domain() {
    let map = format!(
        "{}{}{}",
        node_tables(&["sales", "rest"]),
        partition("p-rest", &["rest"], r#"["acme.test"]"#, None),
        partition(
            "p-sales",
            &["sales"],
            r#"["acme.test"]"#,
            Some(r#"["1000-1099"]"#)
        ),
    );
    let gw = start(&map, &["sales", "rest"]).await;
    assert_eq!(landing_node(&gw, "1050@acme.test").await, "sales");
    assert_eq!(landing_node(&gw, "1500@acme.test").await, "rest");
    assert_eq!(gw.node("sales").stats().logins_ok, 1);
    assert_eq!(gw.node("rest").stats().logins_ok, 1);
}

#[tokio::test]
async fn login_without_domain_routes_by_the_default_domain() {
    let map = format!(
        "{}{}",
        node_tables(&["fs1"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
    );
    // mod_verto needs a domain too: a node that serves domain-less logins is set up
    // with force-register-domain, as the README says.
    let gw = Setup::new(&map)
        .node(sim("fs1").with_force_domain(Some("acme.test".into())))
        .tweak(|c| c.gateway.default_domain = Some("acme.test".into()))
        .start()
        .await;
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1000", 1).await, "fs1");
}

#[tokio::test]
async fn a_replaced_map_routes_new_logins_and_leaves_sessions_where_they_are() {
    let old = format!(
        "{}{}",
        node_tables(&["old", "new"]),
        partition("acme", &["old"], r#"["acme.test"]"#, None),
    );
    let gw = start(&old, &["old", "new"]).await;
    let mut before = gw.client().await;
    assert_eq!(login_ready(&mut before, "1000@acme.test", 1).await, "old");

    let mut config = (*gw.config).clone();
    config.partitions[0].nodes = vec!["new".into()];
    gw.gateway.replace_config(std::sync::Arc::new(config)).await;

    assert_eq!(landing_node(&gw, "1001@acme.test").await, "new");
    send_json(&mut before, &request("echo", json!({"n": 1}), 2)).await;
    let reply = recv_json(&mut before).await;
    assert_eq!(
        reply["result"]["n"], 1,
        "the old session still works: {reply}"
    );
    assert_eq!(gw.node("old").stats().logins_ok, 1);
    assert_eq!(gw.node("new").stats().logins_ok, 1);
}

#[tokio::test]
async fn the_login_reaches_the_node_byte_for_byte() {
    let gw = start(&one_node_map(), &["fs1"]).await;
    let mut ws = gw.client().await;
    let sid = sessid();
    // Odd spacing and key order: the gateway must forward the frame it got, not a
    // re-serialisation.
    let text = format!(
        r#"{{ "params" : {{"passwd":"{PASSWORD}", "login":"1000@acme.test","sessid":"{sid}","loginParams":{{}},"userVariables":{{}}}}, "jsonrpc":"2.0","method":"login", "id" : 77 }}"#
    );
    send_text(&mut ws, &text).await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(
        reply,
        json!({"jsonrpc":"2.0","id":77,"result":{"message":"logged in","sessid":sid}})
    );
    let received = gw.node("fs1").received();
    assert!(
        received.contains(&text),
        "the node's log should hold the exact login text; it has {received:?}"
    );
}

#[tokio::test]
async fn a_wss_node_is_reached_over_tls() {
    let gw = Setup::new(&one_node_map())
        .node(sim_tls("fs1"))
        .start()
        .await;
    assert!(gw.config.nodes[0].verto_url.secure);
    assert_eq!(landing_node(&gw, "1000@acme.test").await, "fs1");
}

#[tokio::test]
async fn the_browsers_address_reaches_the_node_in_every_forwarded_login() {
    let gw = Setup::new(&one_node_map())
        .node(sim("fs1"))
        .tweak(|c| c.gateway.client_ip_param = Some("vertogw_client_ip".into()))
        .start()
        .await;
    let mut ws = connect_from(gw.addr, [127, 0, 0, 2].into()).await;
    let sid = sessid();
    // The browser tries to choose the address FreeSWITCH sees.
    let spoofed = format!(
        r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"1000@acme.test","passwd":"{PASSWORD}","sessid":"{sid}","loginParams":{{"Vertogw_Client_IP":"203.0.113.66"}}}},"id":1}}"#
    );
    send_text(&mut ws, &spoofed).await;
    assert_eq!(recv_json(&mut ws).await["result"]["message"], "logged in");
    let stamped = format!(
        r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"1000@acme.test","passwd":"{PASSWORD}","sessid":"{sid}","loginParams":{{"vertogw_client_ip":"127.0.0.2"}},"userVariables":{{"vertogw_client_ip":"127.0.0.2"}}}},"id":1}}"#
    );
    assert!(
        gw.node("fs1").received().contains(&stamped),
        "the node should get exactly {stamped}\nit got {:?}",
        gw.node("fs1").received()
    );
    // A re-login on the established session is stamped too.
    let again = format!(
        r#"{{"jsonrpc":"2.0","method":"login","params":{{"login":"1000@acme.test","passwd":"{PASSWORD}","sessid":"{sid}"}},"id":2}}"#
    );
    send_text(&mut ws, &again).await;
    let reply = recv_json(&mut ws).await;
    assert_eq!(reply["id"], 2, "{reply}");
    let received = gw.node("fs1").received();
    let last_login = received.iter().rev().find(|m| m.contains(r#""id":2"#));
    assert!(
        last_login.is_some_and(|m| m.ends_with(r#""loginParams":{"vertogw_client_ip":"127.0.0.2"},"userVariables":{"vertogw_client_ip":"127.0.0.2"}},"id":2}"#)),
        "{received:?}"
    );
}
