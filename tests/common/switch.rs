//! A TCP relay in front of a node whose behaviour a test switches: the node "stops
//! answering" and "comes back" on the same address, as a black-holed host would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How a [`Switch`] treats new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Relay them to the node.
    Forward,
    /// Accept and never answer (a black-holed node).
    Hold,
    /// Accept and close at once (fails fast, as `handshake`).
    Drop,
}

/// A TCP relay in front of a node whose behaviour a test switches: the node "stops
/// answering" and "comes back" on the same address.
pub struct Switch {
    /// `ws://` URL of the relay.
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    task: JoinHandle<()>,
}

impl Switch {
    pub async fn new(target: SocketAddr) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/", listener.local_addr().expect("address"));
        let mode = Arc::new(Mutex::new(Mode::Forward));
        let current = Arc::clone(&mode);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mode = *current.lock().unwrap_or_else(|e| e.into_inner());
                match mode {
                    Mode::Forward => {
                        tokio::spawn(async move {
                            if let Ok(mut node) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut tcp, &mut node).await;
                            }
                        });
                    }
                    Mode::Hold => held.push(tcp),
                    Mode::Drop => drop(tcp),
                }
            }
        });
        Switch { url, mode, task }
    }

    /// How new connections are treated from now on.
    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
