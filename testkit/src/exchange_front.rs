//! An Exchange Online personality in front of a real Dovecot: what Exchange Online does
//! differently from Dovecot at the IMAP level, for the parts a migration meets when it writes.
//!
//! Reproduced (Microsoft's documentation, imapsync's FAQ):
//! - no `MULTIAPPEND` in CAPABILITY (greeting, after login, and `CAPABILITY` answers);
//! - `PERMANENTFLAGS (\Seen \Answered \Flagged \Deleted \Draft $MDNSent)`: no custom keywords,
//!   no `\*`;
//! - an APPEND whose flag list carries any other keyword is answered
//!   `BAD Command Argument Error. 11`;
//! - `\Flagged` in an APPEND flag list is dropped (Exchange does not keep it reliably; here it
//!   never does, so only a later `STORE` sets it);
//! - `CREATE` of a top-level `Files` (any case) is answered `NO Folder name is reserved`.
//!
//! On request ([`Condition`]): a mailbox that is full (`NO Server Unavailable. 15` to every
//! APPEND after the first few) or that is "authenticated but not connected" (every command
//! after login answered so).
//!
//! Not reproduced: XOAUTH2-only logins (the front passes Dovecot's LOGIN through), throttling
//! and `* BYE Connection closed. 14`, disconnection after 10 errors, case-insensitive names, `$MDNSent` shown as a
//! category, size limits. Only synchronizing literals are understood from the client (`{n}`,
//! what mailfleet sends), and a literal is read as soon as its line is forwarded: a server refusing
//! an APPEND at its command line (instead of `+`) would leave the front waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// What Exchange Online lists as PERMANENTFLAGS.
pub const EXCHANGE_PERMANENT_FLAGS: &str =
    "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)";

pub struct ExchangeFront {
    address: SocketAddr,
    accept_loop: JoinHandle<()>,
}

/// A state of the mailbox behind the front, on top of Exchange's ordinary behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Healthy,
    /// This many APPENDs (over all connections) go in; every later one is answered
    /// `NO Server Unavailable. 15`, as Exchange does for a mailbox over its quota.
    FullAfterAppends(usize),
    /// Every command after login is answered `NO User is authenticated but not connected.`
    NotConnected,
}

impl ExchangeFront {
    /// Listens on a free loopback port and forwards each connection to `upstream` (Dovecot).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(upstream, Condition::Healthy).await
    }

    /// As [`ExchangeFront::start`], with the mailbox in `condition`.
    pub async fn start_with(upstream: SocketAddr, condition: Condition) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let appends = Arc::new(AtomicUsize::new(0));
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mailbox = Mailbox {
                    condition,
                    appends: appends.clone(),
                };
                tokio::spawn(async move {
                    let _ = serve(client, upstream, mailbox).await;
                });
            }
        });
        Ok(ExchangeFront {
            address,
            accept_loop,
        })
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.address.port())
    }
}

impl Drop for ExchangeFront {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The condition and what counts toward it, shared by every connection.
#[derive(Clone)]
struct Mailbox {
    condition: Condition,
    appends: Arc<AtomicUsize>,
}

impl Mailbox {
    /// The answer this condition gives `verb` instead of the server, if any.
    fn refusal(&self, tag: &str, verb: &str) -> Option<String> {
        let verb = verb.to_ascii_uppercase();
        match self.condition {
            Condition::Healthy => None,
            Condition::FullAfterAppends(allowed) => (verb == "APPEND"
                && self.appends.fetch_add(1, Ordering::SeqCst) >= allowed)
                .then(|| format!("{tag} NO Server Unavailable. 15\r\n")),
            Condition::NotConnected => (!matches!(
                verb.as_str(),
                "CAPABILITY" | "LOGIN" | "AUTHENTICATE" | "LOGOUT" | "ID" | "NOOP"
            ))
            .then(|| format!("{tag} NO User is authenticated but not connected.\r\n")),
        }
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, mailbox: Mailbox) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // The front answers some commands itself, so both directions write to the client.
    let client_write = std::sync::Arc::new(Mutex::new(client_write));
    let to_client = tokio::spawn(server_to_client(server_read, client_write.clone()));
    let result = client_to_server(client_read, server_write, client_write, mailbox).await;
    to_client.abort();
    result
}

/// Reads one line (through CRLF) and, when it announces a literal, that literal's bytes too.
async fn read_line<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut raw = Vec::new();
    if reader.read_until(b'\n', &mut raw).await? == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&raw).into_owned();
    let mut literal = Vec::new();
    if let Some(size) = literal_size(&line) {
        literal.resize(size, 0);
        reader.read_exact(&mut literal).await?;
    }
    Ok(Some((line, literal)))
}

/// `n` of a line ending in `{n}` (or `{n+}`).
fn literal_size(line: &str) -> Option<usize> {
    let body = line.trim_end_matches(['\r', '\n']);
    let inner = body.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

async fn server_to_client(
    server: OwnedReadHalf,
    client: std::sync::Arc<Mutex<OwnedWriteHalf>>,
) -> std::io::Result<()> {
    let mut server = BufReader::new(server);
    while let Some((line, literal)) = read_line(&mut server).await? {
        let line = exchange_answer(&line);
        let mut client = client.lock().await;
        client.write_all(line.as_bytes()).await?;
        client.write_all(&literal).await?;
        client.flush().await?;
    }
    Ok(())
}

/// A server line as Exchange Online would write it.
fn exchange_answer(line: &str) -> String {
    let mut line = line.to_owned();
    if line.to_ascii_uppercase().contains("CAPABILITY") {
        line = line.replace(" MULTIAPPEND", "");
    }
    if let Some(start) = line.find("[PERMANENTFLAGS (") {
        let list_start = start + "[PERMANENTFLAGS ".len();
        if let Some(length) = line[list_start..].find(')') {
            line.replace_range(list_start..=list_start + length, EXCHANGE_PERMANENT_FLAGS);
        }
    }
    line
}

async fn client_to_server(
    client: OwnedReadHalf,
    mut server: OwnedWriteHalf,
    client_write: std::sync::Arc<Mutex<OwnedWriteHalf>>,
    mailbox: Mailbox,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    loop {
        let mut raw = Vec::new();
        if client.read_until(b'\n', &mut raw).await? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&raw).into_owned();
        let mut words = line.split(' ');
        let refusal = match (words.next(), words.next()) {
            (Some(tag), Some(verb)) => mailbox.refusal(tag, verb.trim_end()),
            _ => None,
        };
        let command = refusal.map_or_else(|| exchange_command(&line), Command::Answer);
        match command {
            Command::Forward(line) => {
                server.write_all(line.as_bytes()).await?;
                // A synchronizing literal: the client sends it after the server's `+`.
                if let Some(size) = literal_size(&line) {
                    server.flush().await?;
                    let mut literal = vec![0; size];
                    client.read_exact(&mut literal).await?;
                    server.write_all(&literal).await?;
                }
                server.flush().await?;
            }
            Command::Answer(answer) => {
                let mut writer = client_write.lock().await;
                writer.write_all(answer.as_bytes()).await?;
                writer.flush().await?;
            }
        }
    }
}

enum Command {
    /// Send this line on to Dovecot.
    Forward(String),
    /// Answer the client with this line instead (the literal, if any, is never sent).
    Answer(String),
}

/// A client line as Exchange Online would take it.
fn exchange_command(line: &str) -> Command {
    let mut words = line.splitn(3, ' ');
    let (Some(tag), Some(verb), Some(rest)) = (words.next(), words.next(), words.next()) else {
        return Command::Forward(line.to_owned());
    };
    if verb.eq_ignore_ascii_case("CREATE") {
        let name = rest.trim_end().trim_matches('"');
        if name.eq_ignore_ascii_case("Files") {
            return Command::Answer(format!("{tag} NO Folder name is reserved\r\n"));
        }
    }
    if verb.eq_ignore_ascii_case("APPEND")
        && let Some(after_name) = mailbox_end(rest)
        && rest[after_name..].starts_with(" (")
        && let Some(length) = rest[after_name..].find(')')
    {
        let (open, close) = (after_name, after_name + length);
        let flags: Vec<&str> = rest[open + 2..close].split(' ').collect();
        if flags
            .iter()
            .any(|f| !f.is_empty() && !f.starts_with('\\') && *f != "$MDNSent")
        {
            return Command::Answer(format!("{tag} BAD Command Argument Error. 11\r\n"));
        }
        let kept: Vec<&str> = flags
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Flagged"))
            .collect();
        let rest = format!(
            "{} ({}){}",
            &rest[..open],
            kept.join(" "),
            &rest[close + 1..]
        );
        return Command::Forward(format!("{tag} {verb} {rest}"));
    }
    Command::Forward(line.to_owned())
}

/// Where the mailbox argument at the start of `rest` ends: a quoted string (with `\` escapes)
/// or an atom.
fn mailbox_end(rest: &str) -> Option<usize> {
    let Some(quoted) = rest.strip_prefix('"') else {
        return rest.find(' ').or(Some(rest.len()));
    };
    let mut escaped = false;
    for (index, c) in quoted.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(index + 2),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(line: &str) -> String {
        match exchange_command(line) {
            Command::Forward(line) => line,
            Command::Answer(answer) => panic!("answered {answer}"),
        }
    }

    #[test]
    fn appends_lose_flagged_and_keywords_are_refused() {
        assert_eq!(
            forwarded(
                "A1 APPEND \"INBOX\" (\\Seen \\Flagged) \"01-Jan-2024 00:00:00 +0000\" {5}\r\n"
            ),
            "A1 APPEND \"INBOX\" (\\Seen) \"01-Jan-2024 00:00:00 +0000\" {5}\r\n"
        );
        assert!(matches!(
            exchange_command("A2 APPEND \"INBOX\" (\\Seen Work) {5}\r\n"),
            Command::Answer(a) if a == "A2 BAD Command Argument Error. 11\r\n"
        ));
        assert!(matches!(
            exchange_command("A3 CREATE \"files\"\r\n"),
            Command::Answer(a) if a.contains("NO Folder name is reserved")
        ));
        assert_eq!(
            forwarded("A4 CREATE \"Files (migrated)\"\r\n"),
            "A4 CREATE \"Files (migrated)\"\r\n"
        );
    }

    #[test]
    fn answers_lose_multiappend_and_keywords() {
        assert_eq!(
            exchange_answer("* CAPABILITY IMAP4rev1 UIDPLUS MULTIAPPEND MOVE\r\n"),
            "* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n"
        );
        assert_eq!(
            exchange_answer("* OK [PERMANENTFLAGS (\\Seen $Forwarded \\*)] Flags permitted.\r\n"),
            format!("* OK [PERMANENTFLAGS {EXCHANGE_PERMANENT_FLAGS}] Flags permitted.\r\n")
        );
    }
}
