//! A TCP proxy in front of a real server that injects the faults real networks and busy servers
//! produce: a `* BYE` greeting from an overloaded server, and connections cut mid-transfer; and
//! one that lying servers produce: an APPEND answered OK and never stored.
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
    /// Forward, but the n-th APPEND command of the connection (from 1) never reaches the server:
    /// the proxy answers `+` to each of its literals, reads them and drops them, and completes
    /// the command with `OK`, as a target that acknowledges mail it does not store.
    SwallowAppend(usize),
    /// Forward, but hold the first command line holding this text (on every connection with
    /// this action) until [`FaultProxy::release`]: a test changes the mailbox in between, at a
    /// known point of the exchange, without guessing at timing.
    HoldCommand(&'static str),
}

/// Where held commands wait: whether one is held, and whether they may go on.
#[derive(Debug)]
struct Gate {
    held: tokio::sync::watch::Sender<bool>,
    released: tokio::sync::watch::Sender<bool>,
}

pub struct FaultProxy {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    gate: Arc<Gate>,
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
        let gate = Arc::new(Gate {
            held: tokio::sync::watch::Sender::new(false),
            released: tokio::sync::watch::Sender::new(false),
        });
        let connection_gate = gate.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let action = policy(number);
                let gate = connection_gate.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream, action, &gate).await;
                });
            }
        });
        Ok(FaultProxy {
            address,
            connections,
            gate,
            accept_loop,
        })
    }

    /// Waits until a [`Action::HoldCommand`] connection holds its command.
    pub async fn held(&self) {
        let mut held = self.gate.held.subscribe();
        let _ = held.wait_for(|held| *held).await;
    }

    /// Lets held commands (and every later one) go on to the server.
    pub fn release(&self) {
        self.gate.released.send_replace(true);
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

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    action: Action,
    gate: &Gate,
) -> std::io::Result<()> {
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
        Action::SwallowAppend(nth) => swallow_append(client, upstream, nth).await,
        Action::HoldCommand(text) => hold_command(client, upstream, text, gate).await,
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

/// Passes both ways, the server's bytes a line at a time so that the proxy's own answers land
/// between its lines; the `nth` APPEND command is answered by the proxy and its messages
/// dropped. (While a client waits for its APPEND's `+`, the server owes it no literal: at most
/// the previous APPEND's answer, so a line boundary is a response boundary here.)
async fn swallow_append(
    client: TcpStream,
    upstream: SocketAddr,
    nth: usize,
) -> std::io::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let (from_server, mut to_server) = TcpStream::connect(upstream).await?.into_split();
    let (from_client, to_client) = client.into_split();
    let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
    let writer = to_client.clone();
    let downstream = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(from_server);
        let mut line = Vec::new();
        while let Ok(n) = lines.read_until(b'\n', &mut line).await {
            if n == 0 || writer.lock().await.write_all(&line).await.is_err() {
                break;
            }
            line.clear();
        }
        let _ = writer.lock().await.shutdown().await;
    });
    let mut from_client = tokio::io::BufReader::new(from_client);
    let mut appends = 0;
    let mut swallowing: Option<String> = None;
    let mut line = Vec::new();
    while next_line(&mut from_client, &mut line).await? {
        if swallowing.is_none() {
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_ascii_whitespace();
            let tag = words.next().unwrap_or("*").to_owned();
            if words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("APPEND"))
            {
                appends += 1;
                if appends == nth {
                    swallowing = Some(tag);
                }
            }
        }
        let literal = literal_size(&line);
        match &swallowing {
            Some(tag) => match literal {
                Some((size, synchronizing)) => {
                    if synchronizing {
                        to_client.lock().await.write_all(b"+ OK\r\n").await?;
                    }
                    discard(&mut from_client, size).await?;
                }
                None => {
                    let done = format!("{tag} OK Append completed.\r\n");
                    to_client.lock().await.write_all(done.as_bytes()).await?;
                    swallowing = None;
                }
            },
            None => forward_line(&line, &mut from_client, &mut to_server).await?,
        }
    }
    downstream.abort();
    Ok(())
}

/// Passes both ways; the first client line holding `text` waits at the gate until released.
async fn hold_command(
    client: TcpStream,
    upstream: SocketAddr,
    text: &str,
    gate: &Gate,
) -> std::io::Result<()> {
    let (mut from_server, mut to_server) = TcpStream::connect(upstream).await?.into_split();
    let (from_client, mut to_client) = client.into_split();
    let downstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    });
    let mut from_client = tokio::io::BufReader::new(from_client);
    let mut line = Vec::new();
    let mut holding = true;
    while next_line(&mut from_client, &mut line).await? {
        if holding && String::from_utf8_lossy(&line).contains(text) {
            holding = false;
            gate.held.send_replace(true);
            let mut released = gate.released.subscribe();
            let _ = released.wait_for(|released| *released).await;
        }
        forward_line(&line, &mut from_client, &mut to_server).await?;
    }
    downstream.abort();
    Ok(())
}

/// The client's next line into `line`; `false` at the end of its stream.
async fn next_line(
    from_client: &mut (impl tokio::io::AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    use tokio::io::AsyncBufReadExt;
    line.clear();
    Ok(from_client.read_until(b'\n', line).await? > 0)
}

/// Sends a client's `line` on to the server, with the literal it announces, byte for byte.
async fn forward_line(
    line: &[u8],
    from_client: &mut (impl tokio::io::AsyncRead + Unpin),
    to_server: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<()> {
    to_server.write_all(line).await?;
    if let Some((size, _)) = literal_size(line) {
        tokio::io::copy(&mut from_client.take(size), to_server).await?;
    }
    Ok(())
}

/// The size of the literal a client's line announces at its end (`{n}`, or `{n+}` which waits
/// for no `+`, then CRLF), and whether it is synchronizing.
fn literal_size(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let (line, synchronizing) = match line.strip_suffix(b"+") {
        Some(line) => (line, false),
        None => (line, true),
    };
    let open = line.iter().rposition(|&b| b == b'{')?;
    let size = std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()?;
    Some((size, synchronizing))
}

async fn discard(from: &mut (impl tokio::io::AsyncRead + Unpin), size: u64) -> std::io::Result<()> {
    let copied = tokio::io::copy(&mut from.take(size), &mut tokio::io::sink()).await?;
    if copied < size {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
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
