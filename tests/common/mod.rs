//! The integration-test harness: a gateway and simulated nodes on `127.0.0.1:0` per
//! test, a browser-like client over real TLS, and bounded, event-driven waits.
//!
//! Every test builds its own gateway and nodes, so tests run in parallel; the only
//! process-wide state is the generated certificate, which is read-only.

// Each test crate uses a different subset of the harness.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use vertogw::config::Config;
use vertogw::proxy::{serve, Gateway};
use vertogw_net::tls;
use vertogw_sim::{SimConfig, SimNode, SimStats, SimUsers};

pub mod admin;
mod bystander;
mod ha;
pub mod process;
mod switch;
#[allow(unused_imports)]
pub use bystander::Bystander;
#[allow(unused_imports)]
pub use ha::{closed_with, fast_probes, lands_on, migrations, reload, wait_state};
#[allow(unused_imports)]
pub use switch::{Mode, Switch};

/// The bound on every single wait of a test (one frame, one node event).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The password every simulated test user has unless a test says otherwise.
pub const PASSWORD: &str = "pw";

/// The start of every test map; nodes and partitions follow. The certificate paths
/// are never opened: `Config::parse` does no file I/O and the gateway gets its TLS
/// configuration from the harness.
pub const MAP_HEAD: &str = r#"
[gateway]
listen = "127.0.0.1:0"
tls_cert = "unused-cert.pem"
tls_key = "unused-key.pem"
"#;

/// The certificate of this test process, as PEM and as ready-made configs.
pub struct Certs {
    /// The certificate (for `localhost` and `127.0.0.1`), PEM.
    pub cert_pem: String,
    /// Its key, PEM.
    pub key_pem: String,
    /// The gateway's (and any `wss://` node's) server config.
    pub server: Arc<ServerConfig>,
    /// A client config trusting exactly this certificate.
    pub client: Arc<ClientConfig>,
}

/// The certificate generated once per test process.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let ss = tls::self_signed(&["localhost", "127.0.0.1"]).expect("generate certificate");
        let server =
            tls::server_config_from_pem(ss.cert_pem.as_bytes(), ss.key_pem.as_bytes(), "test")
                .expect("server config");
        let client = tls::client_config_trusting(ss.cert_pem.as_bytes()).expect("client config");
        Certs {
            cert_pem: ss.cert_pem,
            key_pem: ss.key_pem,
            server,
            client,
        }
    })
}

/// The test users of a simulated node: every id in 1000..=1999 with [`PASSWORD`],
/// allowed `verto.*` and `echo`.
pub fn users() -> SimUsers {
    SimUsers::new().with_range(1000..=1999, PASSWORD, &["verto", "echo"])
}

/// A simulated node called `name` with [`users`].
pub fn sim(name: &str) -> SimConfig {
    SimConfig::new(name.to_owned(), users())
}

/// A simulated `wss://` node called `name` with [`users`], using the test certificate.
pub fn sim_tls(name: &str) -> SimConfig {
    let mut config = sim(name);
    config.tls = Some(Arc::clone(&certs().server));
    config
}

/// A running gateway and its simulated nodes.
pub struct TestGateway {
    /// Where browsers connect.
    pub addr: SocketAddr,
    /// The map the gateway runs with.
    pub config: Arc<Config>,
    /// The gateway itself (to swap its map).
    pub gateway: Arc<Gateway>,
    /// The simulated nodes, by name.
    pub nodes: Vec<(String, SimNode)>,
    /// Cancelling it shuts the gateway down.
    pub shutdown: CancellationToken,
    /// The `serve` task.
    pub serve: JoinHandle<std::io::Result<()>>,
}

impl TestGateway {
    /// The simulated node called `name`.
    pub fn node(&self, name: &str) -> &SimNode {
        match self.nodes.iter().find(|(n, _)| n == name) {
            Some((_, node)) => node,
            None => panic!("the test started no node called {name}"),
        }
    }

    /// Takes the node called `name` out of the gateway's handle (to shut it down).
    pub fn take_node(&mut self, name: &str) -> SimNode {
        match self.nodes.iter().position(|(n, _)| n == name) {
            Some(i) => self.nodes.remove(i).1,
            None => panic!("the test started no node called {name}"),
        }
    }

    /// Every node's stats, by name (for failure messages).
    pub fn all_stats(&self) -> Vec<(String, SimStats)> {
        self.nodes
            .iter()
            .map(|(n, node)| (n.clone(), node.stats()))
            .collect()
    }

    /// Asserts that no node saw so much as a TCP connection.
    pub fn assert_no_node_contacted(&self) {
        for (name, node) in &self.nodes {
            assert_eq!(node.stats().tcp_accepted, 0, "node {name} was contacted");
        }
    }

    /// A browser connected to this gateway.
    pub async fn client(&self) -> Client {
        connect(self.addr).await
    }
}

/// A change to the parsed map before the gateway starts.
type Tweak = Box<dyn FnOnce(&mut Config)>;

/// What a test gateway is built from.
pub struct Setup {
    map: String,
    nodes: Vec<SimConfig>,
    urls: Vec<(String, String)>,
    tweak: Option<Tweak>,
    server_tls: Option<Arc<ServerConfig>>,
}

impl Setup {
    /// A gateway for `map` (appended to [`MAP_HEAD`]); `{name}` placeholders in it
    /// become the `ws://` URL of the node or extra URL of that name.
    pub fn new(map: &str) -> Setup {
        Setup {
            map: format!("{MAP_HEAD}{map}"),
            nodes: Vec::new(),
            urls: Vec::new(),
            tweak: None,
            server_tls: None,
        }
    }

    /// Terminates browsers' TLS with `config` instead of [`Certs::server`].
    pub fn server_tls(mut self, config: Arc<ServerConfig>) -> Setup {
        self.server_tls = Some(config);
        self
    }

    /// Adds a simulated node; its `{name}` placeholder becomes its URL.
    pub fn node(mut self, config: SimConfig) -> Setup {
        self.nodes.push(config);
        self
    }

    /// Substitutes `{name}` with `url` (for nodes that are not simulated).
    pub fn url(mut self, name: &str, url: String) -> Setup {
        self.urls.push((name.to_owned(), url));
        self
    }

    /// Changes the parsed map before the gateway starts (e.g. shorter timeouts).
    pub fn tweak(mut self, f: impl FnOnce(&mut Config) + 'static) -> Setup {
        self.tweak = Some(Box::new(f));
        self
    }

    /// Starts the nodes, the gateway, then its health monitoring (every node probed
    /// once before this returns).
    pub async fn start_monitored(self) -> TestGateway {
        let gw = self.start().await;
        gw.gateway
            .monitor(gw.shutdown.clone())
            .await
            .expect("health monitoring starts");
        gw
    }

    /// Starts the nodes, then the gateway.
    pub async fn start(self) -> TestGateway {
        let mut map = self.map;
        let mut nodes = Vec::new();
        for config in self.nodes {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind node");
            let name = config.name.clone();
            let node = SimNode::spawn(listener, config).await;
            map = map.replace(&format!("{{{name}}}"), &node.url());
            nodes.push((name, node));
        }
        for (name, url) in &self.urls {
            map = map.replace(&format!("{{{name}}}"), url);
        }
        let loaded = match Config::parse(&map, Path::new("test.toml")) {
            Ok(loaded) => loaded,
            Err(errs) => panic!("test map does not parse:\n{errs}\n---\n{map}"),
        };
        let mut config = loaded.config;
        if let Some(tweak) = self.tweak {
            tweak(&mut config);
        }
        let config = Arc::new(config);
        let certs = certs();
        let server_tls = self.server_tls.unwrap_or_else(|| Arc::clone(&certs.server));
        let gateway = Gateway::new(Arc::clone(&config), server_tls, Arc::clone(&certs.client));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind gateway");
        let addr = listener.local_addr().expect("gateway address");
        let shutdown = CancellationToken::new();
        let serve = tokio::spawn(serve(listener, Arc::clone(&gateway), shutdown.clone()));
        TestGateway {
            addr,
            config,
            gateway,
            nodes,
            shutdown,
            serve,
        }
    }
}

/// A gateway for `map` with simulated nodes named `names` (`{name}` placeholders).
pub async fn start(map: &str, names: &[&str]) -> TestGateway {
    names
        .iter()
        .fold(Setup::new(map), |setup, name| setup.node(sim(name)))
        .start()
        .await
}

/// Two partitions on two simulated nodes: `acme.test` on `fsa`, `beta.test` on `fsb`.
pub async fn two_partitions() -> TestGateway {
    let map = format!(
        "{}{}{}",
        node_tables(&["fsa", "fsb"]),
        partition("acme", &["fsa"], r#"["acme.test"]"#, None),
        partition("beta", &["fsb"], r#"["beta.test"]"#, None),
    );
    start(&map, &["fsa", "fsb"]).await
}

/// `[[node]]` tables for `names`, each with a `{name}` URL placeholder.
pub fn node_tables(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("[[node]]\nname = \"{n}\"\nverto_url = \"{{{n}}}\"\n"))
        .collect()
}

/// A `[[partition]]` table; `domains` and `extensions` are TOML arrays.
pub fn partition(name: &str, nodes: &[&str], domains: &str, extensions: Option<&str>) -> String {
    let nodes: Vec<String> = nodes.iter().map(|n| format!("\"{n}\"")).collect();
    let ext = extensions
        .map(|e| format!("extensions = {e}\n"))
        .unwrap_or_default();
    format!(
        "[[partition]]\nname = \"{name}\"\nnodes = [{}]\ndomains = {domains}\n{ext}",
        nodes.join(", ")
    )
}

/// One node `fs1` serving partition `acme` for `acme.test`: the map most tests use.
pub fn one_node_map() -> String {
    format!(
        "{}{}",
        node_tables(&["fs1"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None)
    )
}

/// [`one_node_map`] plus the partition `calm` (`calm.test`) on its own node `calm`, for
/// a [`Bystander`] whose traffic must not show in `fs1`'s figures.
pub fn one_node_map_and_calm() -> String {
    format!(
        "{}{}{}",
        node_tables(&["fs1", "calm"]),
        partition("acme", &["fs1"], r#"["acme.test"]"#, None),
        partition("calm", &["calm"], r#"["calm.test"]"#, None)
    )
}

/// The bystander's login on the `calm` partition of [`one_node_map_and_calm`].
pub const CALM_USER: &str = "1999@calm.test";

/// The browser's WebSocket.
pub type Client = WebSocketStream<TlsStream<TcpStream>>;

/// TLS to `addr` with SNI `localhost`, trusting the test certificate.
pub async fn tls_connect(addr: SocketAddr) -> TlsStream<TcpStream> {
    tls_connect_trusting(addr, &certs().client).await
}

/// TLS to `addr` with SNI `localhost`, trusting what `client` trusts.
pub async fn tls_connect_trusting(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
) -> TlsStream<TcpStream> {
    let tcp = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("TCP connect");
    tls_over(tcp, client).await
}

/// A TCP connection to `addr` from the local address `from` (any of 127/8 works on
/// Linux), so per-address limits see another client.
pub async fn tcp_from(addr: SocketAddr, from: std::net::IpAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind the client address");
    within("TCP connect", socket.connect(addr))
        .await
        .expect("TCP connect")
}

/// A browser-like WebSocket to the gateway at `addr` from the local address `from`.
pub async fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Client {
    let tcp = tcp_from(addr, from).await;
    upgrade(tls_over(tcp, &certs().client).await, addr, None)
        .await
        .0
}

async fn tls_over(tcp: TcpStream, client: &Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let name = ServerName::try_from("localhost").expect("server name");
    let connector = TlsConnector::from(Arc::clone(client));
    within("TLS handshake", connector.connect(name, tcp))
        .await
        .expect("TLS handshake")
}

/// A browser-like WebSocket to the gateway at `addr`.
pub async fn connect(addr: SocketAddr) -> Client {
    connect_offering(addr, None).await.0
}

/// Like [`connect`], offering `protocols` as `Sec-WebSocket-Protocol`; returns the
/// upgrade response too.
pub async fn connect_offering(addr: SocketAddr, protocols: Option<&str>) -> (Client, Response) {
    upgrade(tls_connect(addr).await, addr, protocols).await
}

/// A browser-like WebSocket to the gateway at `addr`, trusting what `client` trusts.
pub async fn connect_trusting(addr: SocketAddr, client: &Arc<ClientConfig>) -> Client {
    upgrade(tls_connect_trusting(addr, client).await, addr, None)
        .await
        .0
}

async fn upgrade(
    tls: TlsStream<TcpStream>,
    addr: SocketAddr,
    protocols: Option<&str>,
) -> (Client, Response) {
    let url = format!("wss://localhost:{}/", addr.port());
    let mut request = url.into_client_request().expect("request");
    if let Some(p) = protocols {
        let value = HeaderValue::from_str(p).expect("header value");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", value);
    }
    let upgrade = tokio_tungstenite::client_async_with_config(request, tls, None);
    within("WebSocket upgrade", upgrade)
        .await
        .expect("WebSocket upgrade")
}

/// Sends one plain HTTP request (`Connection: close`) over `tls` and returns the raw
/// answer, head and body. The gateway may end TLS without close_notify, so a read
/// error after the answer is not a failure.
pub async fn http_exchange(mut tls: TlsStream<TcpStream>, method: &str, target: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    within("writing the request", tls.write_all(head.as_bytes()))
        .await
        .expect("request written");
    let mut raw = Vec::new();
    let _ = within("the answer", tls.read_to_end(&mut raw)).await;
    raw
}

/// Awaits `fut` for at most [`TIMEOUT`], failing the test with `what` otherwise.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// Sends `value` as one text frame.
pub async fn send_json(ws: &mut Client, value: &Value) {
    send_text(ws, &value.to_string()).await;
}

/// Sends one text frame.
pub async fn send_text(ws: &mut Client, text: &str) {
    within("send", ws.send(Message::text(text)))
        .await
        .expect("send text");
}

/// Sends one binary frame.
pub async fn send_binary(ws: &mut Client, bytes: Vec<u8>) {
    within("send", ws.send(Message::binary(bytes)))
        .await
        .expect("send binary");
}

/// The next data message, skipping control frames; fails on a close or a timeout.
pub async fn recv_message(ws: &mut Client) -> Message {
    within("a message from the gateway", async {
        loop {
            match ws.next().await {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return m,
                Some(Ok(Message::Close(frame))) => panic!("closed instead of a message: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket failed instead of a message: {e}"),
                None => panic!("socket ended instead of a message"),
            }
        }
    })
    .await
}

/// The next text message.
pub async fn recv_text(ws: &mut Client) -> String {
    match recv_message(ws).await {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The next text message, parsed.
pub async fn recv_json(ws: &mut Client) -> Value {
    let text = recv_text(ws).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// How a socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code (1005 when it carried none).
    Close(u16),
    /// TCP ended (or failed) without a close frame.
    NoCloseFrame,
}

/// Waits for the gateway to close the socket; fails if a data message comes first.
/// Returns the close code, `None` if TCP ended without a close frame.
pub async fn recv_close(ws: &mut Client) -> Option<u16> {
    match recv_end(ws).await {
        Ended::Close(code) => Some(code),
        Ended::NoCloseFrame => None,
    }
}

async fn recv_end(ws: &mut Client) -> Ended {
    within("the gateway to close the socket", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return Ended::Close(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    panic!("expected a close, got a message: {}", preview(&m))
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ended::NoCloseFrame,
            }
        }
    })
    .await
}

/// Reads the gateway's close frame straight off the wire, bypassing the client
/// library's close-code validation (tungstenite reports a received 1014 as 1002).
/// Only for a socket whose earlier messages were all read: no frame but the close
/// may be pending. Returns the code, `None` if TCP ends without a close frame.
pub async fn recv_close_raw(ws: &mut Client) -> Option<u16> {
    let io = ws.get_mut();
    within("the gateway's close frame", async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            if buf.len() >= 4 {
                assert_eq!(
                    buf[0],
                    0x88,
                    "expected a close frame, got {:02x?}",
                    &buf[..buf.len().min(16)]
                );
                return Some(u16::from_be_bytes([buf[2], buf[3]]));
            }
            match tokio::io::AsyncReadExt::read(io, &mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
}

fn preview(m: &Message) -> String {
    let text = m.to_text().unwrap_or("<binary>");
    text.chars().take(300).collect()
}

/// Closes the socket from the browser side with `code`.
pub async fn close_with(ws: &mut Client, code: u16) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "test".into(),
    };
    within("sending a close", ws.close(Some(frame))).await.ok();
}

/// A fresh sessid, unique within the test process.
pub fn sessid() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id())
}

/// A JSON-RPC request.
pub fn request(method: &str, params: Value, id: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
}

/// A credentialed `login` request.
pub fn login_request(login: &str, passwd: &str, sessid: &str, id: u64) -> Value {
    request(
        "login",
        json!({"login": login, "passwd": passwd, "sessid": sessid}),
        id,
    )
}

/// The reference client's sequence: an empty `login` (answered -32000 by the gateway),
/// then the credentialed one with `id + 1`; returns the answer to the latter.
pub async fn login_with_sessid(
    ws: &mut Client,
    login: &str,
    passwd: &str,
    sessid: &str,
    id: u64,
) -> Value {
    send_json(ws, &request("login", json!({"sessid": sessid}), id)).await;
    let reply = recv_json(ws).await;
    assert_eq!(reply["error"]["code"], -32000, "empty login: {reply}");
    assert_eq!(reply["id"], id, "empty login: {reply}");
    send_json(ws, &login_request(login, passwd, sessid, id + 1)).await;
    recv_json(ws).await
}

/// [`login_with_sessid`] with a fresh sessid; asserts success and returns the result.
pub async fn login(ws: &mut Client, login: &str, passwd: &str, id: u64) -> Value {
    let reply = login_with_sessid(ws, login, passwd, &sessid(), id).await;
    assert_eq!(reply["id"], id + 1, "login answer: {reply}");
    assert_eq!(
        reply["result"]["message"], "logged in",
        "login answer: {reply}"
    );
    reply
}

/// Logs in and waits for `verto.clientReady`; returns the node that sent it.
pub async fn login_ready(ws: &mut Client, user: &str, id: u64) -> String {
    login(ws, user, PASSWORD, id).await;
    client_ready_node(ws).await
}

/// Waits for `verto.clientReady` and returns its `sim_node`.
pub async fn client_ready_node(ws: &mut Client) -> String {
    let ready = recv_json(ws).await;
    assert_eq!(
        ready["method"], "verto.clientReady",
        "expected clientReady: {ready}"
    );
    match ready["params"]["sim_node"].as_str() {
        Some(name) => name.to_owned(),
        None => panic!("clientReady without sim_node: {ready}"),
    }
}

/// Waits (bounded) until `node`'s stats satisfy `pred`; returns them.
pub async fn wait_stats(node: &SimNode, what: &str, pred: impl Fn(&SimStats) -> bool) -> SimStats {
    if !node.wait_for(&pred, TIMEOUT).await {
        panic!(
            "timed out waiting for the node: {what}; stats now {:?}",
            node.stats()
        );
    }
    node.stats()
}

/// A `ws://` URL on which nothing listens (a port bound, then released).
pub async fn refusing_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("ws://{addr}/")
}

/// A listener that accepts TCP and never says a word; its URL, and the task holding it
/// (abort it, or let the runtime drop it, to release the sockets).
pub async fn silent_node() -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (format!("ws://{addr}/"), task)
}
