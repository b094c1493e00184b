//! The server stream against tokio-rustls clients: over real loopback sockets, and over
//! in-memory pipes narrow enough that every record arrives in pieces.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, Join};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream as ClientTls;
use tokio_rustls::TlsConnector;

use super::{accept, ServerTls, MAX_HANDSHAKE_BUFFER};
use crate::tls::{self, self_signed};

/// Every test's bound: none waits on the clock otherwise.
const LIMIT: Duration = Duration::from_secs(30);

const TLS13: &SupportedProtocolVersion = &rustls::version::TLS13;
const TLS12: &SupportedProtocolVersion = &rustls::version::TLS12;

fn configs(version: &'static SupportedProtocolVersion) -> (Arc<ServerConfig>, TlsConnector) {
    let cert = self_signed(&["localhost"]).unwrap();
    let server =
        tls::server_config_from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes(), "test")
            .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in tls::certs_from_pem(cert.cert_pem.as_bytes(), "test").unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, TlsConnector::from(Arc::new(client)))
}

fn name() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f).await.expect("test bound")
}

/// A client and an accepted server over loopback TCP.
async fn tcp_pair(
    version: &'static SupportedProtocolVersion,
) -> (ClientTls<TcpStream>, ServerTls<TcpStream>) {
    let (server_config, connector) = configs(version);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(tcp, server_config, async {}, None).await.unwrap()
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = connector.connect(name(), tcp).await.unwrap();
    (client, bounded(server).await.unwrap())
}

/// The server's end of [`pipe_echo`]: it reads from one pipe and writes to another.
type ServerPipe = Join<DuplexStream, DuplexStream>;

/// A client whose bytes reach the server through a pipe that carries `width` bytes at
/// a time, so the server reads every record in pieces (its replies come back through a
/// wide pipe: tokio-rustls's client itself stalls reading records 5 bytes at a time),
/// and a server that accepts and echoes `until` bytes; its task returns its stream.
async fn pipe_echo(
    version: &'static SupportedProtocolVersion,
    width: usize,
    until: usize,
) -> (ClientTls<ServerPipe>, JoinHandle<ServerTls<ServerPipe>>) {
    let (server_config, connector) = configs(version);
    let (up_near, up_far) = tokio::io::duplex(width);
    let (down_near, down_far) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let io = tokio::io::join(up_far, down_far);
        let s = accept(io, server_config, async {}, None).await.unwrap();
        echo(s, 16_384, until).await
    });
    let io = tokio::io::join(down_near, up_near);
    let client = bounded(connector.connect(name(), io)).await.unwrap();
    (client, server)
}

/// Echoes everything back through reads of `read_size` until EOF, then closes; returns
/// the stream so its buffers can be looked at.
async fn echo<S>(mut s: ServerTls<S>, read_size: usize, until: usize) -> ServerTls<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0; read_size];
    let mut seen = 0;
    while seen < until {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "EOF after {seen} of {until} bytes");
        s.write_all(&buf[..n]).await.unwrap();
        seen += n;
    }
    s.flush().await.unwrap();
    s
}

fn message(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Sends messages of `sizes` and checks each comes back whole and in order.
async fn exchange<C>(client: C, sizes: &[usize], what: &str) -> C
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(client);
    let owned = sizes.to_vec();
    let writer = tokio::spawn(async move {
        for len in owned {
            wr.write_all(&message(len)).await.unwrap();
        }
        wr.flush().await.unwrap();
        wr
    });
    for &len in sizes {
        let mut back = vec![0; len];
        bounded(rd.read_exact(&mut back)).await.unwrap();
        assert!(
            back == message(len),
            "{what}: the {len}-byte message differs"
        );
    }
    let wr = bounded(writer).await.unwrap();
    rd.unsplit(wr)
}

const SIZES: [usize; 8] = [1, 100, 16_383, 16_384, 16_385, 65_537, 200_000, 999_999];

#[tokio::test]
async fn every_size_echoes_whole_on_tls13_and_tls12_through_small_and_large_reads() {
    for version in [TLS13, TLS12] {
        for read_size in [1, 7, 8_192, 2_000_000] {
            let sizes: &[usize] = match read_size {
                1 => &SIZES[..6],
                _ => &SIZES,
            };
            let total = sizes.iter().sum();
            let (client, server) = bounded(tcp_pair(version)).await;
            let server = tokio::spawn(echo(server, read_size, total));
            let what = format!("{version:?}, reads of {read_size}");
            exchange(client, sizes, &what).await;
            let server = bounded(server).await.unwrap();
            assert_eq!(
                server.buffered_capacity(),
                0,
                "{what}: idle again, nothing held"
            );
        }
    }
}

#[tokio::test]
async fn records_that_arrive_a_few_bytes_at_a_time_are_read_whole() {
    for version in [TLS13, TLS12] {
        for width in [1, 4, 5, 6, 7, 4_096] {
            let sizes = [1, 16_385, 40_000];
            let (client, server) = pipe_echo(version, width, sizes.iter().sum()).await;
            exchange(client, &sizes, &format!("{version:?}, pipe of {width}")).await;
            let server = bounded(server).await.unwrap();
            assert_eq!(server.buffered_capacity(), 0);
        }
    }
}

#[tokio::test]
async fn a_close_notify_either_way_is_a_clean_end_of_stream() {
    for version in [TLS13, TLS12] {
        // The client closes: the server reads EOF, then may still answer and close.
        let (mut client, mut server) = bounded(tcp_pair(version)).await;
        client.write_all(b"last words").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        bounded(server.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got, b"last words");
        server.write_all(b"reply").await.unwrap();
        server.shutdown().await.unwrap();
        let mut reply = Vec::new();
        bounded(client.read_to_end(&mut reply)).await.unwrap();
        assert_eq!(reply, b"reply");

        // The server closes first: the client reads a clean EOF.
        let (mut client, mut server) = bounded(tcp_pair(version)).await;
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        assert!(
            server.write_all(b"more").await.is_err(),
            "nothing after close_notify"
        );
        let mut got = Vec::new();
        bounded(client.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got, b"bye");
    }
}

#[tokio::test]
async fn a_connection_cut_without_close_notify_is_an_unexpected_eof() {
    let (client, mut server) = bounded(tcp_pair(TLS13)).await;
    let (mut tcp, _) = client.into_inner();
    // A FIN, not a reset: the client never read the session tickets, and closing a
    // socket with unread bytes resets it.
    tcp.shutdown().await.unwrap();
    let mut buf = [0u8; 64];
    let err = bounded(server.read(&mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    let again = bounded(server.read(&mut buf)).await.unwrap_err();
    assert_eq!(
        again.kind(),
        std::io::ErrorKind::UnexpectedEof,
        "stays ended"
    );
}

#[tokio::test]
async fn a_key_update_the_client_asks_for_is_answered_and_traffic_goes_on() {
    let (mut client, server) = bounded(tcp_pair(TLS13)).await;
    let server = tokio::spawn(echo(server, 16_384, 3 * 1000));
    client = exchange(client, &[1000], "before").await;
    // rustls asks the peer to update too (update_requested): the server must send its
    // own key_update, or the client could not read what follows.
    client.get_mut().1.refresh_traffic_keys().unwrap();
    client = exchange(client, &[1000], "after one key update").await;
    client.get_mut().1.refresh_traffic_keys().unwrap();
    exchange(client, &[1000], "after two").await;
    bounded(server).await.unwrap();
}

#[tokio::test]
async fn a_corrupt_record_fails_the_read_as_invalid_data() {
    let (client, mut server) = bounded(tcp_pair(TLS13)).await;
    let (mut tcp, _) = client.into_inner();
    let mut record = vec![23, 3, 3, 0, 40];
    record.extend_from_slice(&[0x5a; 40]);
    tcp.write_all(&record).await.unwrap();
    let mut buf = [0u8; 64];
    let err = bounded(server.read(&mut buf)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
}

/// A real ClientHello, as a client would send it first.
fn client_hello() -> Vec<u8> {
    let (_, connector) = configs(TLS13);
    let mut conn = rustls::ClientConnection::new(Arc::clone(connector.config()), name()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

/// Polls `fut` once without a waker that does anything.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[tokio::test]
async fn the_turn_is_taken_only_once_the_whole_client_hello_is_there() {
    let hello = client_hello();
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());
    let (server_config, _) = configs(TLS13);
    let (mut near, far) = tokio::io::duplex(64 * 1024);
    let taken = AtomicBool::new(false);
    let turn = async { taken.store(true, Ordering::SeqCst) };
    let mut accepting = pin!(accept(far, server_config, turn, None));
    for cut in [1, 5, 6, hello.len() / 2, hello.len() - 1] {
        let already = near_written(&hello, cut);
        near.write_all(&hello[already..cut]).await.unwrap();
        assert!(poll_once(accepting.as_mut()).is_pending());
        assert!(
            !taken.load(Ordering::SeqCst),
            "turn taken after {cut} bytes"
        );
    }
    near.write_all(&hello[hello.len() - 1..]).await.unwrap();
    assert!(
        poll_once(accepting.as_mut()).is_pending(),
        "waits for the client's reply"
    );
    assert!(
        taken.load(Ordering::SeqCst),
        "turn taken once the hello is whole"
    );
}

/// How much of `hello` the loop above wrote before cutting at `cut`.
fn near_written(hello: &[u8], cut: usize) -> usize {
    let cuts = [1, 5, 6, hello.len() / 2, hello.len() - 1];
    cuts.iter().copied().filter(|&c| c < cut).max().unwrap_or(0)
}

#[tokio::test]
async fn a_client_hello_that_never_ends_is_refused_at_the_handshake_bound() {
    let (server_config, _) = configs(TLS13);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let taken = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&taken);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let turn = async move { flag.store(true, Ordering::SeqCst) };
        accept(tcp, server_config, turn, None).await
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // A ClientHello announced at 64 KiB, sent one byte per record: more than the bound
    // before it could ever be whole.
    let mut wire = vec![22, 3, 1, 0, 4, 1, 0, 0xff, 0xff];
    while wire.len() < MAX_HANDSHAKE_BUFFER + 64 * 1024 {
        wire.extend_from_slice(&[22, 3, 1, 0, 1, 0xab]);
    }
    // The server stops reading at the bound: the rest may not be taken.
    let _ = bounded(tcp.write_all(&wire)).await;
    let err = bounded(server).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(
        !taken.load(Ordering::SeqCst),
        "no turn for an endless hello"
    );
}

#[tokio::test]
async fn anything_but_tls_gets_an_alert_and_an_error() {
    let (server_config, _) = configs(TLS13);
    let (mut near, far) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(accept(far, server_config, async {}, None));
    // A ClientHello that says it is 4 bytes long and cannot be decoded.
    near.write_all(&[22, 3, 1, 0, 8, 1, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef])
        .await
        .unwrap();
    let err = bounded(server).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    let mut alert = Vec::new();
    bounded(near.read_to_end(&mut alert)).await.unwrap();
    assert_eq!(
        alert.first(),
        Some(&21),
        "an alert record: {alert:?} after {err}"
    );
}

#[tokio::test]
async fn a_tls13_session_resumes_from_its_ticket() {
    let (server_config, connector) = configs(TLS13);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let s = accept(tcp, Arc::clone(&server_config), async {}, None)
                .await
                .unwrap();
            echo(s, 4096, 5).await;
        }
    });
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let client = bounded(connector.connect(name(), tcp)).await.unwrap();
        // The ticket arrives after the handshake: one echo reads it.
        let client = exchange(client, &[5], "resume").await;
        kinds.push(client.get_ref().1.handshake_kind());
    }
    bounded(server).await.unwrap();
    assert_eq!(
        kinds,
        [
            Some(rustls::HandshakeKind::Full),
            Some(rustls::HandshakeKind::Resumed)
        ]
    );
}

/// Serves one certificate and notes the thread that picked it.
#[derive(Debug)]
struct NotingResolver {
    key: Arc<rustls::sign::CertifiedKey>,
    threads: std::sync::Mutex<Vec<Option<String>>>,
}

impl rustls::server::ResolvesServerCert for NotingResolver {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let name = std::thread::current().name().map(str::to_owned);
        self.threads.lock().unwrap().push(name);
        Some(Arc::clone(&self.key))
    }
}

#[tokio::test]
async fn an_offloaded_handshake_does_its_first_pass_on_the_other_runtime() {
    let cert = self_signed(&["localhost"]).unwrap();
    let key = tls::certified_key_from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes(), "t")
        .unwrap();
    let resolver = Arc::new(NotingResolver {
        key: Arc::new(key),
        threads: Default::default(),
    });
    let server_config = tls::server_config(Arc::clone(&resolver) as _).unwrap();
    let (_, connector) = configs(TLS13);
    let mut roots = rustls::RootCertStore::empty();
    for c in tls::certs_from_pem(cert.cert_pem.as_bytes(), "t").unwrap() {
        roots.add(c).unwrap();
    }
    let client =
        ClientConfig::builder_with_provider(Arc::clone(connector.config().crypto_provider()))
            .with_protocol_versions(&[TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    let offload = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("offload-test")
        .build()
        .unwrap();
    let handle = offload.handle().clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let s = accept(tcp, server_config, async {}, Some(&handle))
            .await
            .unwrap();
        echo(s, 4096, 100).await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = bounded(connector.connect(name(), tcp)).await.unwrap();
    exchange(client, &[100], "offloaded").await;
    bounded(server).await.unwrap();
    offload.shutdown_background();
    let threads = resolver.threads.lock().unwrap().clone();
    assert_eq!(threads, [Some("offload-test".to_owned())]);
}

#[tokio::test]
async fn a_peer_flooding_key_updates_is_refused_and_leaves_nothing_queued() {
    let (mut client, mut server) = bounded(tcp_pair(TLS13)).await;
    // Each asks the server to update too; the client never reads the answers. rustls
    // allows 32 between two application data records (as BoringSSL does), then fails
    // the connection: the answers cannot pile up.
    let flood = async {
        for _ in 0..100 {
            if client.get_mut().1.refresh_traffic_keys().is_err() {
                break;
            }
            if client.flush().await.is_err() {
                break;
            }
        }
    };
    let mut buf = [0u8; 64];
    let (_, read) = tokio::join!(flood, bounded(server.read(&mut buf)));
    let err = read.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("KeyUpdate"), "{err}");
    assert!(
        server.buffered_capacity() <= 1024,
        "held {} bytes",
        server.buffered_capacity()
    );
}

/// A stream that notes the size of every write the socket took.
struct Logged<S> {
    io: S,
    sends: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Logged<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Logged<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            self.sends.lock().unwrap().push(n);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn the_session_tickets_go_out_with_the_answer_to_a_request_sent_with_the_finished() {
    let (server_config, connector) = configs(TLS13);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sends = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&sends);
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let io = Logged {
            io: tcp,
            sends: log,
        };
        let mut s = accept(io, server_config, async {}, None).await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(&buf[..n]).await.unwrap();
        s.flush().await.unwrap();
        s
    });
    // A request written before the handshake ends leaves with the client's Finished,
    // in one write, as a browser's HTTP request does.
    let mut client = rustls::ClientConnection::new(Arc::clone(connector.config()), name()).unwrap();
    std::io::Write::write_all(&mut client.writer(), b"request").unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut echoed = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    while echoed.len() < b"request".len() {
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        tcp.write_all(&out).await.unwrap();
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "the server closed");
        client.read_tls(&mut &buf[..n]).unwrap();
        client.process_new_packets().unwrap();
        let _ = std::io::Read::read_to_end(&mut client.reader(), &mut echoed);
    }
    assert_eq!(echoed, b"request");
    drop(bounded(server).await.unwrap());
    let sends = sends.lock().unwrap().clone();
    // The server's flight, then one send with both tickets (~200 bytes each) and the
    // 29-byte record of the answer: not a send for the tickets and one for the answer.
    assert_eq!(sends.len(), 2, "sends: {sends:?}");
    assert!(sends[1] > 300, "sends: {sends:?}");
}

/// A TLS 1.3 handshake driven step by step over a pipe: the client's Finished arrives
/// alone, and the accepted server's socket writes are logged (the handshake's flight
/// is the first).
async fn stepped_tls13() -> (
    rustls::ClientConnection,
    DuplexStream,
    ServerTls<Logged<DuplexStream>>,
    Arc<std::sync::Mutex<Vec<usize>>>,
) {
    let (server_config, connector) = configs(TLS13);
    let (mut near, far) = tokio::io::duplex(64 * 1024);
    let sends = Arc::new(std::sync::Mutex::new(Vec::new()));
    let io = Logged {
        io: far,
        sends: Arc::clone(&sends),
    };
    let mut accepting = pin!(accept(io, server_config, async {}, None));
    let mut client = rustls::ClientConnection::new(Arc::clone(connector.config()), name()).unwrap();
    let mut server = None;
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..4 {
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        near.write_all(&out).await.unwrap();
        if let Poll::Ready(accepted) = poll_once(accepting.as_mut()) {
            server = Some(accepted.unwrap());
            break;
        }
        let n = bounded(near.read(&mut buf)).await.unwrap();
        client.read_tls(&mut &buf[..n]).unwrap();
        client.process_new_packets().unwrap();
    }
    let server = server.expect("accepted within 4 flights");
    assert!(!client.is_handshaking());
    assert_eq!(sends.lock().unwrap().len(), 1, "the server's flight only");
    (client, near, server, sends)
}

#[tokio::test]
async fn the_session_tickets_wait_for_the_first_answer_when_the_request_follows_the_finished() {
    let (mut client, mut near, mut server, sends) = stepped_tls13().await;
    std::io::Write::write_all(&mut client.writer(), b"request").unwrap();
    let mut out = Vec::new();
    client.write_tls(&mut out).unwrap();
    near.write_all(&out).await.unwrap();
    let mut buf = [0u8; 64];
    let n = bounded(server.read(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"request");
    // hyper reads on and flushes while its service works out the answer.
    assert!(poll_once(pin!(server.read(&mut buf))).is_pending());
    bounded(server.flush()).await.unwrap();
    assert_eq!(sends.lock().unwrap().len(), 1, "the server's flight only");
    bounded(server.write_all(b"answer")).await.unwrap();
    bounded(server.flush()).await.unwrap();
    let sends = sends.lock().unwrap().clone();
    assert_eq!(sends.len(), 2, "sends: {sends:?}");
    assert!(sends[1] > 300, "tickets and answer together: {sends:?}");
    let mut back = vec![0u8; 16 * 1024];
    let n = bounded(near.read(&mut back)).await.unwrap();
    client.read_tls(&mut &back[..n]).unwrap();
    client.process_new_packets().unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut client.reader(), &mut answer);
    assert_eq!(answer, b"answer");
}

#[tokio::test]
async fn a_peer_that_never_reads_holds_one_write_beyond_the_small_queue_at_most() {
    let (server_config, connector) = configs(TLS13);
    let (up_near, up_far) = tokio::io::duplex(64 * 1024);
    let (down_near, down_far) = tokio::io::duplex(10_000);
    let accepting = accept(
        tokio::io::join(up_far, down_far),
        server_config,
        async {},
        None,
    );
    let connecting = connector.connect(name(), tokio::io::join(down_near, up_near));
    let (server, client) = bounded(async { tokio::join!(accepting, connecting) }).await;
    let (mut server, _client) = (server.unwrap(), client.unwrap());
    // 3,000-byte writes leave a remainder small enough to be sent along with the next
    // write; the one after that has to wait. The client never reads again.
    let chunk = message(3000);
    let mut accepted = 0;
    for _ in 0..100 {
        match poll_once(pin!(server.write(&chunk))) {
            Poll::Ready(n) => accepted += n.unwrap(),
            Poll::Pending => break,
        }
    }
    assert!(
        accepted < 100 * chunk.len(),
        "every write was taken: {accepted} bytes"
    );
    assert!(poll_once(pin!(server.write(&chunk))).is_pending());
    let held = server.buffered_capacity();
    assert!(
        held <= super::COALESCE_BYTES + super::WRITE_SCRATCH_BYTES,
        "held {held} bytes"
    );
}
