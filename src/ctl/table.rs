//! The human rendering of the admin API's answers: aligned tables for `status` and
//! `sessions`, one sentence for the actions. Pure, and lenient: a field the API leaves
//! out shows as `-` rather than failing, so an older or newer gateway still prints.

use serde_json::Value;

/// `/status`: the nodes table, the partitions table and the last reload.
pub fn status(doc: &Value) -> String {
    let nodes = entries(&doc["nodes"])
        .map(|(name, n)| {
            vec![
                name.to_owned(),
                cell(&n["state"]),
                cell(&n["sessions"]),
                cell(&n["calls"]),
                n["probe_rtt_ms"]
                    .as_f64()
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}")),
                drain_cell(n),
            ]
        })
        .collect();
    let partitions = entries(&doc["partitions"])
        .map(|(name, p)| {
            vec![
                name.to_owned(),
                cell(&p["active"]),
                cell(&p["pinned"]),
                cell(&p["failback"]),
                list(&p["nodes"], ","),
                cell(&p["sessions"]),
            ]
        })
        .collect();
    let mut out = table(
        &["NODE", "STATE", "SESSIONS", "CALLS", "RTT_MS", "DRAIN"],
        nodes,
    );
    out.push('\n');
    out.push_str(&table(
        &[
            "PARTITION",
            "ACTIVE",
            "PINNED",
            "FAILBACK",
            "NODES",
            "SESSIONS",
        ],
        partitions,
    ));
    out.push('\n');
    out.push_str(&last_reload(&doc["last_reload"]));
    out
}

fn drain_cell(node: &Value) -> String {
    match (
        node["draining"].as_bool(),
        node["drain_deadline_s"].as_u64(),
    ) {
        (Some(true), Some(left)) => format!("yes ({left} s left)"),
        (Some(true), None) => "yes".to_owned(),
        _ => "-".to_owned(),
    }
}

fn last_reload(r: &Value) -> String {
    if r.is_null() {
        return "last reload: none since start\n".to_owned();
    }
    let mut out = format!(
        "last reload: {} ({}): {}\n",
        cell(&r["at"]),
        cell(&r["source"]),
        cell(&r["result"])
    );
    for line in r["errors"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", cell(line)));
    }
    out
}

/// `sessions.list`'s rows.
pub fn sessions(rows: &Value) -> String {
    let rows: Vec<Vec<String>> = rows
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let calls = s["calls"]
                .as_array()
                .map_or_else(|| cell(&s["calls"]), |c| c.len().to_string());
            vec![
                cell(&s["sessid"]),
                cell(&s["login"]),
                cell(&s["partition"]),
                cell(&s["node"]),
                cell(&s["peer"]),
                calls,
                cell(&s["since_s"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no sessions\n".to_owned();
    }
    let headers = [
        "SESSID",
        "LOGIN",
        "PARTITION",
        "NODE",
        "PEER",
        "CALLS",
        "SINCE_S",
    ];
    table(&headers, rows)
}

/// `node.drain` and `node.undrain`: the node's state and load now.
pub fn drain(r: &Value) -> String {
    let mut line = format!(
        "{}: {}, {}, {}",
        cell(&r["node"]),
        cell(&r["state"]),
        count(&r["sessions"], "session"),
        count(&r["calls"], "call"),
    );
    if let Some(left) = r["deadline_s_left"].as_u64() {
        line.push_str(&format!(", closing the rest in {left} s"));
    }
    line.push('\n');
    line
}

/// `partition.switch`: the pin and the active node now.
pub fn switch(r: &Value) -> String {
    let partition = cell(&r["partition"]);
    let active = r["active"].as_str();
    match (r["pinned"].as_bool(), active) {
        (Some(true), Some(node)) => format!("{partition}: pinned to {node}\n"),
        (_, Some(node)) => format!("{partition}: not pinned, active node {node}\n"),
        (_, None) => format!("{partition}: not pinned, no active node (none is up)\n"),
    }
}

/// `session.kick` of `sessid`.
pub fn kick(r: &Value, sessid: &str, punt: bool) -> String {
    match r["kicked"].as_u64() {
        Some(0) => format!("no session has sessid {sessid}\n"),
        _ => {
            let how = match punt {
                true => "verto.punt, then close 1008",
                false => "close 1008",
            };
            let n = count(&r["kicked"], "session");
            format!("{sessid}: kicked {n} ({how})\n")
        }
    }
}

/// `/route/{login}`: the partition, the node it would use, and its sessions.
pub fn route(doc: &Value) -> String {
    let node = match (doc["node"].as_str(), doc["verto_url"].as_str()) {
        (Some(node), Some(url)) => format!("node {node} ({url})"),
        (Some(node), None) => format!("node {node}"),
        (None, _) => "no node is up".to_owned(),
    };
    let sessions: Vec<String> = doc["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} on {}", cell(&s["sessid"]), cell(&s["node"])))
        .collect();
    let sessions = match sessions.is_empty() {
        true => "none".to_owned(),
        false => sessions.join(", "),
    };
    format!(
        "{} -> partition {}, {node}\n  nodes: {}\n  sessions: {sessions}\n",
        cell(&doc["login"]),
        cell(&doc["partition"]),
        list(&doc["nodes"], ", "),
    )
}

/// `config.reload`: what the new map holds.
pub fn reload(r: &Value) -> String {
    format!(
        "map reloaded: {}, {}\n",
        count(&r["partitions"], "partition"),
        count(&r["nodes"], "node")
    )
}

/// An object's members in the order the API sent them (a non-object has none).
fn entries(v: &Value) -> impl Iterator<Item = (&str, &Value)> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v))
}

/// One value as a table cell: strings bare, booleans `yes`/`no`, absent `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

fn list(v: &Value, sep: &str) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items.iter().map(cell).collect::<Vec<_>>().join(sep),
        _ => "-".to_owned(),
    }
}

/// `1 call`, `3 calls`, `? calls` when the API left the number out.
fn count(n: &Value, noun: &str) -> String {
    match n.as_u64() {
        Some(1) => format!("1 {noun}"),
        Some(n) => format!("{n} {noun}s"),
        None => format!("? {noun}s"),
    }
}

/// Columns padded to their widest cell, two spaces apart; the last is not padded.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            match i == last {
                true => out.push_str(c),
                false => out.push_str(&format!("{c:<w$}  ")),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_shows_a_nodes_table_a_partitions_table_and_the_last_reload() {
        let doc = json!({
            "nodes": {
                "fs1": {"state": "drain", "verto_url": "ws://a/", "probe_rtt_ms": 0.4321,
                        "sessions": 3, "calls": 1, "draining": true, "drain_deadline_s": 55},
                "fs2": {"state": "down", "verto_url": "ws://b/", "probe_rtt_ms": null,
                        "sessions": 0, "calls": 0, "draining": false, "drain_deadline_s": null}
            },
            "partitions": {
                "acme": {"active": "fs2", "pinned": true, "failback": "auto",
                         "nodes": ["fs1", "fs2"], "sessions": 3},
                "empty": {"active": null, "pinned": false, "failback": "manual",
                          "nodes": [], "sessions": 0}
            },
            "last_reload": {"at": "2025-01-02T03:04:05Z", "source": "rpc", "result": "error",
                            "errors": ["m.toml:3: bad", "m.toml:7: worse"]}
        });
        assert_eq!(
            status(&doc),
            "\
NODE  STATE  SESSIONS  CALLS  RTT_MS  DRAIN
fs1   drain  3         1      0.4     yes (55 s left)
fs2   down   0         0      -       -

PARTITION  ACTIVE  PINNED  FAILBACK  NODES    SESSIONS
acme       fs2     yes     auto      fs1,fs2  3
empty      -       no      manual    -        0

last reload: 2025-01-02T03:04:05Z (rpc): error
  m.toml:3: bad
  m.toml:7: worse
"
        );
    }

    #[test]
    fn status_without_a_reload_says_so() {
        let doc = json!({"nodes": {}, "partitions": {}, "last_reload": null});
        assert!(status(&doc).ends_with("\nlast reload: none since start\n"));
    }

    #[test]
    fn sessions_are_one_row_each_with_their_call_count() {
        let rows = json!([
            {"sessid": "s-1", "login": "1000@acme.test", "partition": "acme", "node": "fs1",
             "peer": "127.0.0.1:5555", "calls": ["c1", "c2"], "since_s": 12},
            {"sessid": null, "login": "1001@acme.test", "partition": "acme", "node": "fs2",
             "peer": "[::1]:6", "calls": [], "since_s": 0}
        ]);
        assert_eq!(
            sessions(&rows),
            "\
SESSID  LOGIN           PARTITION  NODE  PEER            CALLS  SINCE_S
s-1     1000@acme.test  acme       fs1   127.0.0.1:5555  2      12
-       1001@acme.test  acme       fs2   [::1]:6         0      0
"
        );
        assert_eq!(sessions(&json!([])), "no sessions\n");
    }

    #[test]
    fn drain_is_one_sentence_with_the_deadline_when_set() {
        let r = json!({"node": "fs1", "state": "drain", "sessions": 3, "calls": 1,
                       "deadline_s_left": 60});
        assert_eq!(
            drain(&r),
            "fs1: drain, 3 sessions, 1 call, closing the rest in 60 s\n"
        );
        let r = json!({"node": "fs1", "state": "up", "sessions": 1, "calls": 0,
                       "deadline_s_left": null});
        assert_eq!(drain(&r), "fs1: up, 1 session, 0 calls\n");
    }

    #[test]
    fn switch_says_whether_the_partition_is_pinned() {
        let r = json!({"partition": "acme", "active": "fs2", "pinned": true});
        assert_eq!(switch(&r), "acme: pinned to fs2\n");
        let r = json!({"partition": "acme", "active": "fs1", "pinned": false});
        assert_eq!(switch(&r), "acme: not pinned, active node fs1\n");
        let r = json!({"partition": "acme", "active": null, "pinned": false});
        assert_eq!(
            switch(&r),
            "acme: not pinned, no active node (none is up)\n"
        );
    }

    #[test]
    fn kick_counts_the_sessions_or_says_none_had_the_sessid() {
        assert_eq!(
            kick(&json!({"kicked": 1}), "s-1", false),
            "s-1: kicked 1 session (close 1008)\n"
        );
        assert_eq!(
            kick(&json!({"kicked": 2}), "s-1", true),
            "s-1: kicked 2 sessions (verto.punt, then close 1008)\n"
        );
        assert_eq!(
            kick(&json!({"kicked": 0}), "s-9", false),
            "no session has sessid s-9\n"
        );
    }

    #[test]
    fn route_names_the_partition_the_node_and_the_sessions() {
        let doc = json!({"login": "1000@acme.test", "partition": "acme", "node": "fs1",
                         "verto_url": "ws://127.0.0.1:1/", "nodes": ["fs1", "fs2"],
                         "sessions": [{"node": "fs1", "sessid": "s-1"}]});
        assert_eq!(
            route(&doc),
            "1000@acme.test -> partition acme, node fs1 (ws://127.0.0.1:1/)\n  \
             nodes: fs1, fs2\n  sessions: s-1 on fs1\n"
        );
        let doc = json!({"login": "1@a", "partition": "a", "node": null, "verto_url": null,
                         "nodes": ["fs1"], "sessions": []});
        assert_eq!(
            route(&doc),
            "1@a -> partition a, no node is up\n  nodes: fs1\n  sessions: none\n"
        );
    }

    #[test]
    fn reload_counts_what_the_new_map_holds() {
        let r = json!({"applied": true, "partitions": 1, "nodes": 2});
        assert_eq!(reload(&r), "map reloaded: 1 partition, 2 nodes\n");
    }
}
