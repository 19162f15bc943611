//! A TCP proxy in front of a real server that injects the faults real networks and busy servers
//! produce: a `* BYE` greeting from an overloaded server, and connections cut mid-transfer.
//!
//! The server behind it is real (Dovecot); only the network between is made unreliable, so the
//! engine's retry and resume logic is exercised against real IMAP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does with one client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forward both ways untouched.
    Pass,
    /// Greet with `* BYE [UNAVAILABLE] ... try again later` and close, as a throttling server does.
    BusyGreeting,
    /// Forward, but cut the connection after this many bytes from the server.
    CutAfter(usize),
}

pub struct FaultProxy {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`; `policy(n)` decides the fate of the n-th connection (from 1).
    pub async fn start(
        upstream: SocketAddr,
        policy: impl Fn(usize) -> Action + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let policy = Arc::new(policy);
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let action = policy(number);
                tokio::spawn(async move {
                    let _ = serve(client, upstream, action).await;
                });
            }
        });
        Ok(FaultProxy {
            address,
            connections,
            accept_loop,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.address.port())
    }

    /// How many connections clients have opened so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, action: Action) -> std::io::Result<()> {
    match action {
        Action::BusyGreeting => {
            client
                .write_all(b"* BYE [UNAVAILABLE] Server busy, try again later\r\n")
                .await?;
            client.shutdown().await
        }
        Action::Pass => {
            let mut server = TcpStream::connect(upstream).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server)
                .await
                .map(drop)
        }
        Action::CutAfter(limit) => {
            let server = TcpStream::connect(upstream).await?;
            let (mut server_read, mut server_write) = server.into_split();
            let (mut client_read, mut client_write) = client.into_split();
            let upstream_copy = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            let mut forwarded = 0;
            let mut buffer = vec![0u8; 16 * 1024];
            while forwarded < limit {
                let n = server_read.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                let n = n.min(limit - forwarded);
                client_write.write_all(&buffer[..n]).await?;
                forwarded += n;
            }
            upstream_copy.abort();
            client_write.shutdown().await
        }
    }
}
