//! Hostile browsers against the login path (issue 8 §1–2): every pre-login bound closes
//! with its code, and no login FreeSWITCH would read reaches a node of another
//! partition, however it is written. Each test keeps an honest session going on the
//! same gateway, busy from another address throughout (its round trips are printed).

mod common;

use common::*;
use serde_json::json;

/// An honest session on `acme` from another address, busy throughout the attack.
async fn honest(gw: &TestGateway) -> Bystander {
    let bystander = Bystander::start(gw, "1999@acme.test").await;
    bystander.attack_begins();
    bystander
}

async fn still_works(ws: &mut Client) {
    send_json(ws, &request("echo", json!({"still": "here"}), 77)).await;
    let reply = recv_json(ws).await;
    assert_eq!(reply["result"]["still"], "here", "{reply}");
}

#[tokio::test]
async fn logins_for_another_partition_never_reach_the_node_however_written() {
    let gw = two_partitions().await;
    let bystander = honest(&gw).await;
    // Each is what FreeSWITCH reads as a login for 1000@acme.test (or, unreadable, might).
    let forged = [
        r#"{"jsonrpc":"2.0","method":"\u006cogin","params":{"login":"1000@acme.test","passwd":"pw"},"id":10}"#,
        r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1000@acme.test","passwd":"pw","login":"1500@beta.test"},"id":11}"#,
        r#"{"jsonrpc":"2.0","METHOD":"login","Params":{"LOGIN":"1000@acme.test","passwd":"pw"},"id":12}"#,
        r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1000@\u0061cme.test","passwd":"pw"},"id":13}"#,
        r#"[{"jsonrpc":"2.0","method":"echo","params":{},"id":14},{"jsonrpc":"2.0","method":"login","params":{"login":"1000@acme.test","passwd":"pw"},"id":15}]"#,
        r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1000@acme.test","passwd":"pw"},"id":16} trailing"#,
        r#"{"jsonrpc":"2.0","method":"\login","params":{"login":"1000@acme.test","passwd":"pw"},"id":17}"#,
    ];
    let mut ws = gw.client().await;
    assert_eq!(login_ready(&mut ws, "1500@beta.test", 1).await, "fsb");
    for text in forged {
        send_text(&mut ws, text).await;
        let reply = recv_json(&mut ws).await;
        let code = reply["error"]["code"].as_i64();
        assert!(
            code == Some(-32001) || code == Some(-32600),
            "{text}\nanswered {reply}"
        );
        assert!(
            !gw.node("fsb").received().iter().any(|m| m == text),
            "reached the node: {text}"
        );
    }
    // A login for the session's own user still passes, and the session still works.
    let own = r#"{"jsonrpc":"2.0","method":"login","params":{"login":"1500@beta.test","passwd":"pw"},"id":20}"#;
    send_text(&mut ws, own).await;
    assert_eq!(recv_json(&mut ws).await["result"]["message"], "logged in");
    assert_eq!(gw.node("fsb").stats().logins_ok, 2);
    assert_eq!(gw.node("fsa").stats().logins_ok, 1, "only the bystander");
    still_works(&mut ws).await;
    bystander
        .finish("logins_for_another_partition_never_reach_the_node_however_written")
        .await;
}

#[tokio::test]
async fn pre_login_bounds_close_with_their_codes() {
    let gw = two_partitions().await;
    let bystander = honest(&gw).await;
    let ping = r#"{"jsonrpc":"2.0","method":"echo","params":{},"id":1}"#.to_owned();
    let big_batch = format!("[{}]", vec!["1"; 200_000].join(","));
    let batch_17 = format!("[{}]", vec![ping.as_str(); 17].join(","));
    let too_big = format!(r#"{{"jsonrpc":"2.0","pad":"{}"}}"#, "x".repeat(16_400));
    for (what, messages, code) in [
        ("a 400 KB batch", vec![big_batch], 1009),
        ("a batch of 17", vec![batch_17], 1008),
        ("a 16 KiB message", vec![too_big], 1009),
        ("21 messages", vec![ping.clone(); 21], 1008),
    ] {
        let mut ws = gw.client().await;
        let last = messages.len() - 1;
        for (i, text) in messages.iter().enumerate() {
            send_text(&mut ws, text).await;
            if i < last {
                assert_eq!(recv_json(&mut ws).await["error"]["code"], -32000, "{what}");
            }
        }
        assert_eq!(recv_close(&mut ws).await, Some(code), "{what}");
    }
    // A batch of 16 is still answered, element by element.
    let mut ws = gw.client().await;
    send_text(&mut ws, &format!("[{}]", vec![ping.as_str(); 16].join(","))).await;
    let replies = recv_json(&mut ws).await;
    assert_eq!(replies.as_array().map(Vec::len), Some(16), "{replies}");
    gw.node("fsb").stats();
    assert_eq!(
        gw.node("fsb").stats().tcp_accepted,
        0,
        "no node was contacted"
    );
    bystander
        .finish("pre_login_bounds_close_with_their_codes")
        .await;
}

#[tokio::test]
async fn alternating_partitions_open_at_most_four_node_connections() {
    let gw = two_partitions().await;
    let bystander = honest(&gw).await;
    let mut ws = gw.client().await;
    let users = ["1000@acme.test", "1500@beta.test"];
    for id in 1..=4u64 {
        let user = users[(id % 2) as usize];
        // A wrong password keeps the login pending, so every login is routed afresh.
        send_json(&mut ws, &login_request(user, "wrong", &sessid(), id)).await;
        let reply = recv_json(&mut ws).await;
        assert_eq!(reply["error"]["code"], -32001, "route {id}: {reply}");
    }
    send_json(&mut ws, &login_request(users[1], "wrong", &sessid(), 5)).await;
    assert_eq!(recv_close(&mut ws).await, Some(1008));
    let opened = gw.node("fsa").stats().tcp_accepted + gw.node("fsb").stats().tcp_accepted;
    // The bystander's connection, and four routes.
    assert_eq!(opened, 5, "{:?}", gw.all_stats());
    bystander
        .finish("alternating_partitions_open_at_most_four_node_connections")
        .await;
}

#[tokio::test]
async fn password_guessing_cools_down_the_address_and_the_login() {
    let map = format!(
        "{}{}",
        node_tables(&["fsa"]),
        partition("acme", &["fsa"], r#"["acme.test"]"#, None),
    );
    let gw = Setup::new(&map)
        .node(sim("fsa"))
        .tweak(|c| {
            c.limits.trusted_networks = Vec::new();
            c.limits.login_failures_per_minute = 3;
        })
        .start()
        .await;
    let other: std::net::IpAddr = [127, 0, 0, 2].into();
    let bystander = honest(&gw).await;

    let mut guesser = gw.client().await;
    for id in 1..=3u64 {
        send_json(
            &mut guesser,
            &login_request("1000@acme.test", "guess", &sessid(), id),
        )
        .await;
        let reply = recv_json(&mut guesser).await;
        assert_eq!(
            reply["error"]["message"], "Authentication Failure",
            "{reply}"
        );
    }
    let cooling = |reply: &serde_json::Value| {
        reply["error"]["code"] == -32001
            && reply["error"]["message"] == "Too many failed logins, retry later"
    };
    // The address cools down: any login from it, on any socket.
    for (ws, user) in [
        (&mut guesser, "1000@acme.test"),
        (&mut gw.client().await, "1001@acme.test"),
    ] {
        send_json(ws, &login_request(user, PASSWORD, &sessid(), 9)).await;
        let reply = recv_json(ws).await;
        assert!(cooling(&reply), "{user}: {reply}");
    }
    // The login cools down too, from any address.
    let mut elsewhere = connect_from(gw.addr, other).await;
    send_json(
        &mut elsewhere,
        &login_request("1000@acme.test", PASSWORD, &sessid(), 1),
    )
    .await;
    assert!(cooling(&recv_json(&mut elsewhere).await));
    // Nothing reached the node while cooling down: three guesses, no more.
    assert_eq!(gw.node("fsa").stats().logins_failed, 3);
    // Another user from another address logs in, and the bystander carries on.
    let mut fresh = connect_from(gw.addr, other).await;
    assert_eq!(login_ready(&mut fresh, "1500@acme.test", 1).await, "fsa");
    bystander
        .finish("password_guessing_cools_down_the_address_and_the_login")
        .await;
}
