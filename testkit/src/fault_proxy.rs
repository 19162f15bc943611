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
    /// Forward this many bytes from the server, then cut the connection just before the next
    /// `* <n> FETCH` response begins: the answer ends between two responses, with no partial
    /// response left over, as when a server process dies between writes.
    CutBeforeFetchResponse(usize),
    /// Forward, but answer every LOGIN and AUTHENTICATE itself with Dovecot's own words for an
    /// authentication backend that is down: `NO [UNAVAILABLE] Temporary authentication
    /// failure.` — a server refusing logins for a while, not a wrong password.
    RefuseLogins,
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
        Action::RefuseLogins => refuse_logins(client, upstream).await,
        Action::CutBeforeFetchResponse(limit) => {
            let mut spliced = Spliced::open(client, upstream).await?;
            let mut forwarded = 0;
            // Read but not forwarded: past the limit, an unfinished line is held back until it
            // is known not to start a FETCH response. `pending` always begins a line.
            let mut pending: Vec<u8> = Vec::new();
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let n = spliced.from_server.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                pending.extend_from_slice(&buffer[..n]);
                if forwarded >= limit
                    && let Some(start) = fetch_response_start(&pending)
                {
                    spliced.to_client.write_all(&pending[..start]).await?;
                    break;
                }
                let ready = pending
                    .windows(2)
                    .rposition(|pair| pair == b"\r\n")
                    .map_or(0, |at| at + 2);
                spliced.to_client.write_all(&pending[..ready]).await?;
                pending.drain(..ready);
                forwarded += ready;
            }
            spliced.cut().await
        }
        Action::CutAfter(limit) => {
            let mut spliced = Spliced::open(client, upstream).await?;
            let mut forwarded = 0;
            let mut buffer = vec![0u8; 16 * 1024];
            while forwarded < limit {
                let n = spliced.from_server.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                let n = n.min(limit - forwarded);
                spliced.to_client.write_all(&buffer[..n]).await?;
                forwarded += n;
            }
            spliced.cut().await
        }
    }
}

/// Passes the server's bytes through; reads the client's line by line and answers a login
/// command in the server's place instead of forwarding it.
async fn refuse_logins(client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let (from_server, mut to_server) = TcpStream::connect(upstream).await?.into_split();
    let (from_client, to_client) = client.into_split();
    let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
    let writer = to_client.clone();
    let downstream = tokio::spawn(async move {
        let mut from_server = from_server;
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = from_server.read(&mut buffer).await {
            if n == 0 || writer.lock().await.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = writer.lock().await.shutdown().await;
    });
    let mut lines = tokio::io::BufReader::new(from_client);
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let mut words = text.split_ascii_whitespace();
        let tag = words.next().unwrap_or("*").to_owned();
        let command = words.next().unwrap_or_default().to_ascii_uppercase();
        if command == "LOGIN" || command == "AUTHENTICATE" {
            let answer = format!("{tag} NO [UNAVAILABLE] Temporary authentication failure.\r\n");
            to_client.lock().await.write_all(answer.as_bytes()).await?;
        } else {
            to_server.write_all(&line).await?;
        }
    }
    downstream.abort();
    Ok(())
}

/// A connection through the proxy whose client-to-server bytes flow untouched while the
/// server-to-client bytes are the caller's to forward, until it cuts the connection.
struct Spliced {
    from_server: tokio::net::tcp::OwnedReadHalf,
    to_client: tokio::net::tcp::OwnedWriteHalf,
    upstream_copy: JoinHandle<()>,
}

impl Spliced {
    async fn open(client: TcpStream, upstream: SocketAddr) -> std::io::Result<Self> {
        let (from_server, mut to_server) = TcpStream::connect(upstream).await?.into_split();
        let (mut from_client, to_client) = client.into_split();
        let upstream_copy = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        });
        Ok(Spliced {
            from_server,
            to_client,
            upstream_copy,
        })
    }

    /// Closes the client's side as a dropped connection would.
    async fn cut(mut self) -> std::io::Result<()> {
        self.upstream_copy.abort();
        self.to_client.shutdown().await
    }
}

/// Where a line `* <digits> FETCH` begins in `data`, whose first byte begins a line.
fn fetch_response_start(data: &[u8]) -> Option<usize> {
    let line_starts = std::iter::once(0).chain(
        data.windows(2)
            .enumerate()
            .filter(|(_, pair)| *pair == b"\r\n")
            .map(|(at, _)| at + 2),
    );
    line_starts.into_iter().find(|&line| {
        let Some(rest) = data[line..].strip_prefix(b"* ") else {
            return false;
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        digits > 0 && rest[digits..].starts_with(b" FETCH")
    })
}
