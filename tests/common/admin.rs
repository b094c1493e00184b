//! The admin API of a test gateway: served on `127.0.0.1:0`, with the map written to a
//! temporary directory (real certificate files) so that reloads read a real file, and
//! a plain HTTP/1.1 client that shows status, headers and body as they are.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vertogw::admin::{self, AdminApi};
use vertogw::reload::Reloader;

use super::{certs, within, TestGateway};

/// A running admin API and the map file its reloads read.
pub struct Admin {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The map file (in `dir`).
    pub map: PathBuf,
    /// Its reloader.
    pub reloader: Arc<Reloader>,
    /// Holds the map and certificate files.
    pub dir: tempfile::TempDir,
}

/// The `[gateway]` table of a map on disk, with the test certificate's files.
pub const DISK_HEAD: &str = r#"
[gateway]
listen = "127.0.0.1:0"
tls_cert = "cert.pem"
tls_key = "key.pem"
"#;

impl Admin {
    /// Writes `body` (after [`DISK_HEAD`], with `{name}` placeholders filled from
    /// `urls`) as the map file the next reload reads.
    pub fn write_map(&self, body: &str, urls: &[(&str, String)]) {
        let mut map = format!("{DISK_HEAD}{body}");
        for (name, url) in urls {
            map = map.replace(&format!("{{{name}}}"), url);
        }
        std::fs::write(&self.map, map).expect("write the map");
    }

    /// Writes a new certificate and key for the next reload.
    pub fn write_certificate(&self, cert_pem: &str, key_pem: &str) {
        std::fs::write(self.dir.path().join("cert.pem"), cert_pem).expect("write cert");
        std::fs::write(self.dir.path().join("key.pem"), key_pem).expect("write key");
    }

    /// `GET path`, with `token` as the bearer token if given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> HttpReply {
        http(self.addr, "GET", path, token, None).await
    }

    /// A JSON-RPC call; returns the whole reply object.
    pub async fn rpc(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        self.rpc_raw(token, &request.to_string()).await.json()
    }

    /// `POST /rpc` with `body` as it is.
    pub async fn rpc_raw(&self, token: Option<&str>, body: &str) -> HttpReply {
        http(self.addr, "POST", "/rpc", token, Some(body)).await
    }
}

/// Serves the admin API of `gw`, reloading from a map file that holds `body` (see
/// [`Admin::write_map`]).
pub async fn start_admin(gw: &TestGateway, body: &str, urls: &[(&str, String)]) -> Admin {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = dir.path().join("vertogw.toml");
    let reloader = Arc::new(Reloader::new(map.clone(), Arc::clone(&gw.gateway)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
    let addr = listener.local_addr().expect("admin address");
    let api = AdminApi::new(Arc::clone(&gw.gateway), Some(Arc::clone(&reloader)));
    tokio::spawn(admin::serve(listener, api, gw.shutdown.clone()));
    let admin = Admin {
        addr,
        map,
        reloader,
        dir,
    };
    let certs = certs();
    admin.write_certificate(&certs.cert_pem, &certs.key_pem);
    admin.write_map(body, urls);
    admin
}

/// One HTTP response.
#[derive(Debug)]
pub struct HttpReply {
    /// Its status code.
    pub status: u16,
    /// Its headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: String,
}

impl HttpReply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("not JSON ({e}): {:?}", self.body),
        }
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to its end.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> HttpReply {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    within(&format!("{method} {path}"), async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect to admin");
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read the response");
        parse(&raw)
    })
    .await
}

fn parse(raw: &[u8]) -> HttpReply {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "incomplete HTTP response ({other:?}): {:?}",
            String::from_utf8_lossy(raw)
        ),
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut body = raw[head..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpReply {
        status: response.code.expect("status code"),
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Bounded by the body's length: each chunk consumes at least its size line.
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
    out
}

/// The value of the sample `name{labels}` in metrics `text` (labels as written, e.g.
/// `partition="acme",node="fs1"`; empty for none).
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = match labels.is_empty() {
        true => format!("{name} "),
        false => format!("{name}{{{labels}}} "),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}
