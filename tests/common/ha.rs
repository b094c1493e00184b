//! Helpers of the high-availability tests: waits on node states, landing a login
//! with its sessid, the close code that ends a socket, and reloading the map.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use vertogw::config::Config;
use vertogw::health::state::NodeState;

use super::{client_ready_node, login_with_sessid, within, Client, TestGateway, PASSWORD};

/// Waits until `node`'s state is `want`.
pub async fn wait_state(gw: &TestGateway, node: &str, want: NodeState) {
    let health = gw.gateway.health().expect("health is monitored");
    let mut changes = health.changes();
    within(&format!("{node} to be {want}"), async {
        while health.state(node) != want {
            changes.changed().await.expect("health alive");
        }
    })
    .await;
}

/// Logs `login` in with `sessid` and returns the socket and the node that took it.
pub async fn lands_on(gw: &TestGateway, login: &str, sessid: &str) -> (Client, String) {
    let mut ws = gw.client().await;
    let reply = login_with_sessid(&mut ws, login, PASSWORD, sessid, 1).await;
    assert_eq!(reply["result"]["message"], "logged in", "{login}: {reply}");
    let node = client_ready_node(&mut ws).await;
    (ws, node)
}

/// The close code that ends `ws`, skipping any messages before it.
pub async fn closed_with(ws: &mut Client) -> Option<u16> {
    within("the gateway to close the socket", async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Close(frame) = msg {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
}

/// Reloads `gw` with `map` (with `{name}` placeholders filled from `urls`), changed by
/// `tweak` after parsing, as SIGHUP would.
pub async fn reload(
    gw: &TestGateway,
    map: &str,
    urls: &[(&str, String)],
    tweak: impl FnOnce(&mut Config),
) {
    let mut map = map.to_owned();
    for (name, url) in urls {
        map = map.replace(&format!("{{{name}}}"), url);
    }
    let mut config = match Config::parse(&map, std::path::Path::new("test.toml")) {
        Ok(loaded) => loaded.config,
        Err(errs) => panic!("reloaded map does not parse:\n{errs}\n---\n{map}"),
    };
    tweak(&mut config);
    gw.gateway.replace_config(Arc::new(config)).await;
}

/// Probes every 100 ms (each bounded by 100 ms), a node down after 2 failures and up
/// after 1 success: state changes within a few hundred milliseconds.
pub fn fast_probes(c: &mut Config) {
    c.health.interval = std::time::Duration::from_millis(100);
    c.health.timeout = std::time::Duration::from_millis(100);
    c.health.rise = 1;
    c.health.fall = 2;
}

/// How many sessions the gateway has moved or closed for `reason` so far.
pub fn migrations(gw: &TestGateway, reason: &str) -> u64 {
    gw.gateway
        .migration_counts()
        .into_iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| n)
}
