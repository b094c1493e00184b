//! The admin API over real HTTP against a monitored gateway with simulated nodes: every
//! endpoint and JSON-RPC method with its exact shape, the token rules, the error codes,
//! and the metrics moving as the gateway works.

mod common;

use std::time::Duration;

use common::admin::{http, metric, start_admin, Admin};
use common::*;
use serde_json::{json, Value};
use vertogw::health::state::NodeState;

/// A 16+ character token.
const TOKEN: &str = "test-token-0123456789abcdef";

/// The map body (after the `[gateway]` table) of a farm: `acme` on fs1 then fs2,
/// `beta` on fs3.
fn farm_body() -> String {
    format!(
        "{}{}{}",
        node_tables(&["fs1", "fs2", "fs3"]),
        partition("acme", &["fs1", "fs2"], r#"["acme.test"]"#, None),
        partition("beta", &["fs3"], r#"["beta.test"]"#, None),
    )
}

fn urls(gw: &TestGateway) -> Vec<(&'static str, String)> {
    ["fs1", "fs2", "fs3"]
        .into_iter()
        .map(|n| (n, gw.node(n).url()))
        .collect()
}

/// The farm, monitored with quick probes, its admin API, and `extra` appended to the
/// map (e.g. an `[admin]` table).
async fn farm(extra: &str) -> (TestGateway, Admin) {
    let body = format!("{}{extra}", farm_body());
    let gw = Setup::new(&body)
        .node(sim("fs1"))
        .node(sim("fs2"))
        .node(sim("fs3"))
        .tweak(quick)
        .start_monitored()
        .await;
    let admin = start_admin(&gw, &format!("{body}{QUICK_HEALTH}"), &urls(&gw)).await;
    (gw, admin)
}

/// The probe settings of [`quick`], as a reloaded map writes them.
const QUICK_HEALTH: &str =
    "[health]\ninterval_ms = 100\ntimeout_ms = 100\nrise = 1\nfall = 2\nfailback_delay_ms = 600000\n";

fn quick(c: &mut vertogw::config::Config) {
    fast_probes(c);
    c.health.failback_delay = Duration::from_secs(600);
}

#[tokio::test]
async fn with_a_token_only_healthz_and_readyz_are_open() {
    let (_gw, admin) = farm(&format!("[admin]\ntoken = \"{TOKEN}\"\n")).await;
    let health = admin.get("/healthz", None).await;
    assert_eq!((health.status, health.json()), (200, json!({"ok": true})));
    let ready = admin.get("/readyz", None).await;
    assert_eq!((ready.status, ready.json()), (200, json!({"ready": true})));
    for path in ["/status", "/metrics", "/route/1000@acme.test"] {
        for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
            let reply = admin.get(path, token).await;
            assert_eq!(reply.status, 401, "{path} {token:?}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{path}");
        }
        assert_eq!(admin.get(path, Some(TOKEN)).await.status, 200, "{path}");
    }
    let rpc = admin
        .rpc_raw(None, r#"{"jsonrpc":"2.0","method":"x","id":1}"#)
        .await;
    assert_eq!(rpc.status, 401);
    let unknown = admin.get("/nothing", Some(TOKEN)).await;
    assert_eq!(unknown.status, 404);
    let wrong_method = http(admin.addr, "POST", "/status", Some(TOKEN), Some("")).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn readyz_lists_the_partitions_without_a_node_and_an_empty_map_is_ready() {
    let (gw, admin) = farm("").await;
    gw.node("fs3").vanish();
    wait_state(&gw, "fs3", NodeState::Down).await;
    let ready = admin.get("/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json(),
        json!({"ready": false, "partitions_without_node": ["beta"]})
    );
    // Draining counts as up.
    gw.gateway.drain("fs1", None).expect("drain");
    gw.gateway.drain("fs2", None).expect("drain");
    assert_eq!(admin.get("/readyz", None).await.status, 503, "still beta");
    let empty = Setup::new("").start_monitored().await;
    let empty_admin = start_admin(&empty, "", &[]).await;
    let ready = empty_admin.get("/readyz", None).await;
    assert_eq!((ready.status, ready.json()), (200, json!({"ready": true})));
}

#[tokio::test]
async fn status_shows_nodes_partitions_and_the_last_reload() {
    let (gw, admin) = farm("").await;
    let (mut ws, _) = lands_on(&gw, "1000@acme.test", "s-1").await;
    let invite = json!({"jsonrpc": "2.0", "method": "verto.invite", "id": 5,
        "params": {"sdp": "v=0\r\n", "dialogParams": {"callID": "call-1"}}});
    send_json(&mut ws, &invite).await;
    assert_eq!(
        recv_json(&mut ws).await["result"]["message"],
        "CALL CREATED"
    );
    gw.gateway
        .drain("fs3", Some(Duration::from_secs(60)))
        .expect("drain");
    let status = admin.get("/status", None).await.json();
    let fs1 = &status["nodes"]["fs1"];
    assert_eq!(fs1["state"], "up", "{status}");
    assert_eq!(fs1["verto_url"], gw.node("fs1").url());
    assert!(
        fs1["probe_rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{fs1}"
    );
    assert_eq!(
        (fs1["sessions"].clone(), fs1["calls"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        (fs1["draining"].clone(), fs1["drain_deadline_s"].clone()),
        (json!(false), Value::Null)
    );
    let fs3 = &status["nodes"]["fs3"];
    assert_eq!(
        (fs3["state"].clone(), fs3["draining"].clone()),
        (json!("drain"), json!(true))
    );
    assert!(
        fs3["drain_deadline_s"]
            .as_u64()
            .is_some_and(|s| (59..=60).contains(&s)),
        "{fs3}"
    );
    assert_eq!(
        status["partitions"]["acme"],
        json!({"active": "fs1", "pinned": false, "failback": "auto",
               "nodes": ["fs1", "fs2"], "sessions": 1})
    );
    assert_eq!(
        status["partitions"]["beta"]["active"],
        Value::Null,
        "its only node drains"
    );
    assert_eq!(status["last_reload"], Value::Null);
    let keys: Vec<&String> = fs1.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "calls",
            "drain_deadline_s",
            "draining",
            "probe_rtt_ms",
            "sessions",
            "state",
            "verto_url"
        ]
    );

    // A rejected reload is shown, then an applied one.
    std::fs::write(&admin.map, "[gateway]\nlisten = 1\n").expect("write");
    let reply = admin.rpc(None, "config.reload", json!({})).await;
    assert_eq!(reply["error"]["code"], -32000, "{reply}");
    let last = &admin.get("/status", None).await.json()["last_reload"];
    assert_eq!(
        (last["source"].clone(), last["result"].clone()),
        (json!("rpc"), json!("error"))
    );
    assert!(
        last["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{last}"
    );
    assert!(
        last["at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{last}"
    );
    admin.write_map(&format!("{}{QUICK_HEALTH}", farm_body()), &urls(&gw));
    let reply = admin.rpc(None, "config.reload", json!({})).await;
    assert_eq!(
        reply["result"],
        json!({"applied": true, "partitions": 2, "nodes": 3})
    );
    let last = &admin.get("/status", None).await.json()["last_reload"];
    assert_eq!(
        (last["result"].clone(), last["errors"].clone()),
        (json!("ok"), json!([]))
    );
}

#[tokio::test]
async fn route_names_the_active_node_and_where_the_login_is_connected() {
    let (gw, admin) = farm("").await;
    let (_ws, _) = lands_on(&gw, "1000@acme.test", "s-1").await;
    for path in ["/route/1000@acme.test", "/route/1000%40acme.test"] {
        let reply = admin.get(path, None).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            reply.json(),
            json!({"login": "1000@acme.test", "partition": "acme", "node": "fs1",
                   "verto_url": gw.node("fs1").url(), "nodes": ["fs1", "fs2"],
                   "sessions": [{"node": "fs1", "sessid": "s-1"}]})
        );
    }
    let missing = admin.get("/route/1000@nowhere.test", None).await;
    assert_eq!(missing.status, 404);
    let body = missing.json();
    assert_eq!(body["login"], "1000@nowhere.test");
    assert!(body["error"].is_string(), "{body}");
    let rpc = admin
        .rpc(None, "route.lookup", json!({"login": "1000@acme.test"}))
        .await;
    assert_eq!(rpc["result"]["node"], "fs1", "{rpc}");
}

#[tokio::test]
async fn route_during_a_failback_window_lists_both_nodes() {
    let (gw, admin) = farm("").await;
    // The call is set up on fs2 while acme is pinned there, then the pin ends: fs1 is
    // active again, the call stays on fs2 until it ends.
    gw.gateway.switch("acme", Some("fs2")).expect("pin");
    let (mut ws, node) = lands_on(&gw, "1000@acme.test", "s-1").await;
    assert_eq!(node, "fs2");
    let invite = json!({"jsonrpc": "2.0", "method": "verto.invite", "id": 5,
        "params": {"sdp": "v=0\r\n", "dialogParams": {"callID": "call-1"}}});
    send_json(&mut ws, &invite).await;
    assert_eq!(
        recv_json(&mut ws).await["result"]["message"],
        "CALL CREATED"
    );
    gw.gateway.switch("acme", None).expect("unpin");
    let route = admin.get("/route/1000@acme.test", None).await.json();
    assert_eq!(route["node"], "fs1", "{route}");
    assert_eq!(route["sessions"], json!([{"node": "fs2", "sessid": "s-1"}]));
}

#[tokio::test]
async fn rpc_methods_answer_in_their_shapes() {
    let (gw, admin) = farm("").await;
    let (_ws, _) = lands_on(&gw, "1000@acme.test", "s-1").await;
    let drained = admin
        .rpc(None, "node.drain", json!({"node": "fs2", "deadline_s": 30}))
        .await;
    let r = &drained["result"];
    assert_eq!(
        (r["node"].clone(), r["state"].clone()),
        (json!("fs2"), json!("drain"))
    );
    assert!(
        r["deadline_s_left"].as_u64().is_some_and(|s| s == 30),
        "{r}"
    );
    let undrained = admin
        .rpc(None, "node.undrain", json!({"node": "fs2"}))
        .await;
    assert_eq!(
        undrained["result"],
        json!({"node": "fs2", "state": "up", "sessions": 0, "calls": 0, "deadline_s_left": null})
    );
    let switched = admin
        .rpc(
            None,
            "partition.switch",
            json!({"partition": "acme", "node": "fs2"}),
        )
        .await;
    assert_eq!(
        switched["result"],
        json!({"partition": "acme", "active": "fs2", "pinned": true})
    );
    let unpinned = admin
        .rpc(
            None,
            "partition.switch",
            json!({"partition": "acme", "node": null}),
        )
        .await;
    assert_eq!(unpinned["result"]["pinned"], false, "{unpinned}");
    let listed = admin
        .rpc(None, "sessions.list", json!({"partition": "acme"}))
        .await;
    let rows = listed["result"].as_array().expect("array").clone();
    assert_eq!(rows.len(), 1, "{listed}");
    let row = &rows[0];
    assert_eq!(
        (
            row["sessid"].clone(),
            row["login"].clone(),
            row["partition"].clone(),
            row["node"].clone(),
            row["calls"].clone()
        ),
        (
            json!("s-1"),
            json!("1000@acme.test"),
            json!("acme"),
            json!("fs1"),
            json!([])
        )
    );
    assert!(
        row["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{row}"
    );
    assert!(row["since_s"].is_u64(), "{row}");
    let none = admin
        .rpc(None, "sessions.list", json!({"node": "fs3", "limit": 5}))
        .await;
    assert_eq!(none["result"], json!([]));
    let all = admin
        .rpc_raw(
            None,
            r#"{"jsonrpc":"2.0","method":"sessions.list","id":"x"}"#,
        )
        .await;
    assert_eq!(all.json()["id"], "x");
    assert_eq!(all.json()["result"].as_array().map(Vec::len), Some(1));

    // Errors.
    let code = |reply: &Value| reply["error"]["code"].as_i64();
    assert_eq!(
        code(&admin.rpc(None, "node.drain", json!({"node": "fs9"})).await),
        Some(-32602)
    );
    assert_eq!(
        code(&admin.rpc(None, "node.drain", json!({"nod": "fs1"})).await),
        Some(-32602)
    );
    let forever = json!({"node": "fs1", "deadline_s": u64::MAX});
    let reply = admin.rpc(None, "node.drain", forever).await;
    assert_eq!(code(&reply), Some(-32602), "{reply}");
    assert!(
        !gw.gateway.health().expect("health").is_draining("fs1"),
        "nothing changed"
    );
    assert_eq!(
        code(
            &admin
                .rpc(
                    None,
                    "partition.switch",
                    json!({"partition": "acme", "node": "fs3"})
                )
                .await
        ),
        Some(-32602)
    );
    assert_eq!(
        code(&admin.rpc(None, "no.such", json!({})).await),
        Some(-32601)
    );
    let batch = admin
        .rpc_raw(
            None,
            r#"[{"jsonrpc":"2.0","method":"sessions.list","id":1}]"#,
        )
        .await
        .json();
    assert_eq!(
        (code(&batch), batch["id"].clone()),
        (Some(-32600), Value::Null)
    );
    let parse = admin.rpc_raw(None, "{not json").await.json();
    assert_eq!(code(&parse), Some(-32700));
    let invalid = admin
        .rpc_raw(None, r#"{"jsonrpc":"1.0","method":"x","id":1}"#)
        .await
        .json();
    assert_eq!(code(&invalid), Some(-32600));
    // A notification is carried out and gets no reply.
    let note = admin
        .rpc_raw(
            None,
            r#"{"jsonrpc":"2.0","method":"node.drain","params":{"node":"fs2"}}"#,
        )
        .await;
    assert_eq!((note.status, note.body.as_str()), (204, ""));
    assert!(gw.gateway.health().expect("health").is_draining("fs2"));
}

#[tokio::test]
async fn session_kick_closes_with_1008_and_punts_first_when_asked() {
    let (gw, admin) = farm("").await;
    let (mut plain, _) = lands_on(&gw, "1000@acme.test", "kick-me").await;
    let reply = admin
        .rpc(None, "session.kick", json!({"sessid": "kick-me"}))
        .await;
    assert_eq!(reply["result"], json!({"kicked": 1}));
    assert_eq!(closed_with(&mut plain).await, Some(1008));
    let (mut punted, _) = lands_on(&gw, "1001@acme.test", "punt-me").await;
    let reply = admin
        .rpc(
            None,
            "session.kick",
            json!({"sessid": "punt-me", "punt": true}),
        )
        .await;
    assert_eq!(reply["result"], json!({"kicked": 1}));
    let punt = recv_json(&mut punted).await;
    assert_eq!(punt["method"], "verto.punt", "{punt}");
    assert_eq!(punt["params"], json!({}));
    assert_eq!(closed_with(&mut punted).await, Some(1008));
    let none = admin
        .rpc(None, "session.kick", json!({"sessid": "nobody"}))
        .await;
    assert_eq!(none["result"], json!({"kicked": 0}));
}

/// Sends a login and returns the answer, whatever it is.
async fn try_login(ws: &mut Client, user: &str, passwd: &str, id: u64) -> Value {
    send_json(ws, &login_request(user, passwd, &sessid(), id)).await;
    recv_json(ws).await
}

#[tokio::test]
async fn metrics_move_as_the_gateway_works() {
    let (gw, admin) = farm("").await;
    let text = admin.get("/metrics", None).await.body;
    for pair in [
        "partition=\"acme\",node=\"fs1\"",
        "partition=\"acme\",node=\"fs2\"",
        "partition=\"beta\",node=\"fs3\"",
    ] {
        assert_eq!(
            metric(&text, "vertogw_sessions", pair),
            Some(0.0),
            "{pair}\n{text}"
        );
        assert_eq!(metric(&text, "vertogw_calls", pair), Some(0.0), "{pair}");
    }
    assert_eq!(metric(&text, "vertogw_connections_open", ""), Some(0.0));
    assert_eq!(metric(&text, "vertogw_node_up", "node=\"fs1\""), Some(1.0));
    assert_eq!(
        metric(&text, "vertogw_node_draining", "node=\"fs1\""),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "vertogw_failovers_total", "partition=\"acme\""),
        Some(0.0)
    );
    let probes = |text: &str| {
        let labels = "node=\"fs1\",result=\"ok\"";
        metric(text, "vertogw_probe_seconds_count", labels).unwrap_or(0.0)
    };
    assert!(probes(&text) >= 1.0, "{text}");
    // One more probe, sent here: the count moves by at least one.
    let health = gw.gateway.health().expect("health");
    let before = probes(&admin.get("/metrics", None).await.body);
    let tls = vertogw::health::client_tls(&gw.config).expect("probe TLS");
    assert!(health
        .probe_once("fs1", &tls)
        .await
        .is_some_and(|r| r.is_ok()));
    let after = probes(&admin.get("/metrics", None).await.body);
    assert!(after > before, "{before} -> {after}");

    // A session with a call, an echo each way, and logins of every result.
    let (mut ws, _) = lands_on(&gw, "1000@acme.test", "m-1").await;
    let invite = json!({"jsonrpc": "2.0", "method": "verto.invite", "id": 5,
        "params": {"sdp": "v=0\r\n", "dialogParams": {"callID": "call-1"}}});
    send_json(&mut ws, &invite).await;
    assert_eq!(
        recv_json(&mut ws).await["result"]["message"],
        "CALL CREATED"
    );
    let mut refused = gw.client().await;
    let reply = try_login(&mut refused, "1001@acme.test", "wrong", 1).await;
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    let reply = try_login(&mut refused, "1001@nowhere.test", PASSWORD, 2).await;
    assert!(reply["error"].is_object(), "{reply}");
    gw.node("fs3").vanish();
    wait_state(&gw, "fs3", NodeState::Down).await;
    let mut nobody = gw.client().await;
    let reply = try_login(&mut nobody, "1000@beta.test", PASSWORD, 1).await;
    assert_eq!(reply["error"]["code"], -32002, "{reply}");

    let text = admin.get("/metrics", None).await.body;
    let fs1 = "partition=\"acme\",node=\"fs1\"";
    assert_eq!(metric(&text, "vertogw_sessions", fs1), Some(1.0), "{text}");
    assert_eq!(metric(&text, "vertogw_calls", fs1), Some(1.0));
    assert_eq!(metric(&text, "vertogw_connections_open", ""), Some(3.0));
    let logins = |labels: &str| metric(&text, "vertogw_logins_total", labels);
    assert_eq!(logins("partition=\"acme\",result=\"ok\""), Some(1.0));
    assert_eq!(logins("partition=\"acme\",result=\"rejected\""), Some(1.0));
    assert_eq!(logins("partition=\"\",result=\"no_partition\""), Some(1.0));
    assert_eq!(logins("partition=\"beta\",result=\"no_node\""), Some(1.0));
    assert_eq!(metric(&text, "vertogw_node_up", "node=\"fs3\""), Some(0.0));
    assert_eq!(
        metric(&text, "vertogw_failovers_total", "partition=\"beta\""),
        Some(0.0),
        "no other node to fail over to"
    );
    let up = metric(&text, "vertogw_messages_total", "direction=\"to_node\"").expect("to_node");
    let down =
        metric(&text, "vertogw_messages_total", "direction=\"to_browser\"").expect("to_browser");
    assert!(
        up >= 1.0 && down >= 2.0,
        "invite up; reply and answer down: {up} {down}"
    );
    assert!(metric(&text, "vertogw_bytes_total", "direction=\"to_node\"").is_some_and(|b| b > 0.0));

    // Drain moves an idle session; a reload counts.
    let (mut idle, _) = lands_on(&gw, "1002@acme.test", "m-2").await;
    gw.gateway.drain("fs1", None).expect("drain");
    assert_eq!(closed_with(&mut idle).await, Some(1012));
    let reply = admin.rpc(None, "config.reload", json!({})).await;
    assert!(
        reply["result"]["applied"].as_bool().unwrap_or(false),
        "{reply}"
    );
    let text = admin.get("/metrics", None).await.body;
    assert_eq!(
        metric(&text, "vertogw_migrations_total", "reason=\"drain\""),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "vertogw_migrations_total", "reason=\"failback\""),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "vertogw_node_draining", "node=\"fs1\""),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "vertogw_config_reloads_total", "result=\"ok\""),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "vertogw_config_reloads_total", "result=\"error\""),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "vertogw_failovers_total", "partition=\"acme\""),
        Some(0.0),
        "a drain is no failover"
    );
    // fs1 back in service, then down: that is a failover.
    gw.gateway.undrain("fs1").expect("undrain");
    let status = admin.get("/status", None).await.json();
    assert_eq!(status["partitions"]["acme"]["active"], "fs1");
    gw.node("fs1").vanish();
    wait_state(&gw, "fs1", NodeState::Down).await;
    // /status evaluates every partition's active node, like the migrator on the change.
    let status = admin.get("/status", None).await.json();
    assert_eq!(status["partitions"]["acme"]["active"], "fs2");
    let text = admin.get("/metrics", None).await.body;
    assert_eq!(
        metric(&text, "vertogw_failovers_total", "partition=\"acme\""),
        Some(1.0)
    );
}
