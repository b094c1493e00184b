//! Plain HTTP on the gateway's TLS port (issue 9 §3): `/verto-config` answers from the
//! map, and `web_root`'s files are served with their types, `HEAD` and 405, while
//! nothing outside the folder ever is — a table of traversal attempts, symlinks
//! included, all answered 404.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vertogw::config::Config;

/// What the secret file outside the web root holds: no answer may contain it.
const SECRET: &str = "the-secret-outside-web-root";

/// An HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one request over TLS (`Connection: close`) and reads the whole answer.
async fn request(gw: &TestGateway, method: &str, target: &str) -> Answer {
    let raw = http_exchange(tls_connect(gw.addr).await, method, target).await;
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let body_at = match parsed.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "{method} {target}: no HTTP answer ({other:?}): {:?}",
            String::from_utf8_lossy(&raw)
        ),
    };
    Answer {
        status: parsed.code.unwrap_or(0),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: raw[body_at..].to_vec(),
    }
}

/// A gateway on [`one_node_map`] plus `beta` (own `public_url` and `fallback_url`),
/// tweaked by `f`.
async fn gateway(f: impl FnOnce(&mut Config) + 'static) -> TestGateway {
    let map = format!(
        "{}{}{}",
        node_tables(&["fs1"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
        partition("beta", &["fs1"], r#"["beta.test"]"#, None)
            + "public_url = \"wss://beta.example.net/\"\nfallback_url = \"wss://backup.beta.example.net/\"\n",
    );
    Setup::new(&map).node(sim("fs1")).tweak(f).start().await
}

#[tokio::test]
async fn verto_config_gives_the_partitions_urls_and_nothing_else() {
    let gw = gateway(|c| {
        c.gateway.public_url = Some("wss://verto.example.com/".parse().expect("url"));
    })
    .await;
    let acme = request(&gw, "GET", "/verto-config?login=1000%40acme.test").await;
    assert_eq!(acme.status, 200);
    assert_eq!(acme.header("content-type"), Some("application/json"));
    assert_eq!(acme.header("cache-control"), Some("no-store"));
    assert_eq!(acme.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        acme.json(),
        json!({"login": "1000@acme.test", "wsURL": "wss://verto.example.com/"})
    );
    let beta = request(&gw, "GET", "/verto-config?login=1000@beta.test").await;
    assert_eq!(
        beta.json(),
        json!({
            "login": "1000@beta.test",
            "wsURL": "wss://beta.example.net/",
            "wsFallbackURL": "wss://backup.beta.example.net/"
        })
    );
}

#[tokio::test]
async fn verto_config_refuses_unknown_missing_and_invalid_logins() {
    let gw = gateway(|_| {}).await;
    for (target, status, error) in [
        ("/verto-config?login=1000@nowhere.test", 404, "no partition"),
        ("/verto-config", 400, ""),
        ("/verto-config?login=", 400, ""),
        ("/verto-config?login=%40acme.test", 400, "invalid login"),
        ("/verto-config?login=a%0Ab@acme.test", 400, "invalid login"),
    ] {
        let answer = request(&gw, "GET", target).await;
        assert_eq!(answer.status, status, "{target}");
        let body = answer.json();
        let text = body["error"].as_str().unwrap_or_default();
        assert!(text.contains(error), "{target}: {body}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{target}");
    }
    assert_eq!(
        request(&gw, "POST", "/verto-config?login=1000@acme.test")
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn without_public_url_the_listener_address_is_given() {
    let gw = gateway(|_| {}).await;
    let answer = request(&gw, "GET", "/verto-config?login=1000@acme.test").await;
    let expected = format!("wss://127.0.0.1:{}/", gw.addr.port());
    assert_eq!(answer.json()["wsURL"], json!(expected));
}

#[tokio::test]
async fn without_web_root_other_requests_keep_the_426_answer() {
    let gw = gateway(|_| {}).await;
    assert_eq!(request(&gw, "GET", "/").await.status, 426);
    assert_eq!(request(&gw, "GET", "/index.html").await.status, 426);
}

/// A web root with pages, a secret next to it, and symlinks in and out.
struct Site {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn site() -> Site {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let write = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        std::fs::write(path, text).expect("file");
    };
    write(
        &root.join("index.html"),
        "<!doctype html><title>client</title>",
    );
    write(&root.join("app.js"), "export const ok = true;\n");
    write(&root.join("style.css"), "body { margin: 0 }\n");
    write(&root.join("sub/index.html"), "<p>sub</p>");
    write(&dir.path().join("secret.txt"), SECRET);
    write(&dir.path().join("outside/index.html"), SECRET);
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("out")).expect("symlink");
    std::os::unix::fs::symlink(root.join("app.js"), root.join("alias.js")).expect("symlink");
    Site { _dir: dir, root }
}

async fn site_gateway(site: &Site) -> TestGateway {
    let root = site.root.clone();
    gateway(move |c| c.gateway.web_root = Some(root)).await
}

#[tokio::test]
async fn files_are_served_with_their_types_and_dates_and_head_has_no_body() {
    let site = site();
    let gw = site_gateway(&site).await;
    for (target, content_type, body) in [
        ("/", "text/html", "<title>client</title>"),
        ("/index.html", "text/html", "<title>client</title>"),
        ("/app.js", "text/javascript", "export const ok"),
        ("/style.css", "text/css", "margin"),
        ("/sub/", "text/html", "<p>sub</p>"),
        ("/alias.js", "text/javascript", "export const ok"),
    ] {
        let answer = request(&gw, "GET", target).await;
        assert_eq!(answer.status, 200, "{target}");
        let got_type = answer.header("content-type").unwrap_or_default();
        assert!(got_type.starts_with(content_type), "{target}: {got_type}");
        assert!(answer.header("last-modified").is_some(), "{target}");
        assert!(
            String::from_utf8_lossy(&answer.body).contains(body),
            "{target}"
        );
    }
    let head = request(&gw, "HEAD", "/app.js").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    assert_eq!(head.header("content-length"), Some("24"));
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(
            request(&gw, method, "/app.js").await.status,
            405,
            "{method}"
        );
    }
    assert_eq!(request(&gw, "GET", "/missing.js").await.status, 404);
    // /verto-config still answers with a web root.
    assert_eq!(
        request(&gw, "GET", "/verto-config?login=1000@acme.test")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn nothing_outside_the_web_root_is_ever_served() {
    let site = site();
    let gw = site_gateway(&site).await;
    let attempts = [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/..%5csecret.txt",
        "//secret.txt",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/leak.txt",
        "/out/",
        "/out/index.html",
        "/%00",
        "/index.html%00.js",
    ];
    let mut failures = Vec::new();
    for target in attempts {
        let answer = request(&gw, "GET", target).await;
        let leaked = String::from_utf8_lossy(&answer.body).contains(SECRET);
        if answer.status != 404 || leaked {
            failures.push(format!("{target}: {} (leaked: {leaked})", answer.status));
        }
    }
    assert!(
        failures.is_empty(),
        "not a clean 404:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_static_connection_ends_at_the_login_timeout_like_a_socket() {
    let site = site();
    let root = site.root.clone();
    let gw = gateway(move |c| {
        c.gateway.web_root = Some(root);
        c.gateway.login_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let mut tls = tls_connect(gw.addr).await;
    let head = "GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n";
    within("writing", tls.write_all(head.as_bytes()))
        .await
        .expect("written");
    // Keep-alive: the answer comes, then the connection stays until the deadline ends it.
    let mut raw = Vec::new();
    let _ = within(
        "the gateway to end the connection",
        tls.read_to_end(&mut raw),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"),
        "{raw:?}"
    );
}
