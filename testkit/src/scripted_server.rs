//! A scripted IMAP source on loopback that logs anyone in and then misbehaves, for one login.
//!
//! It reproduces what broken or hostile IMAP servers do after a successful login: fall silent,
//! list folders without end, answer with random bytes (NUL included), trickle an answer one
//! byte at a time, announce a literal of a terabyte, cut a literal short (then silence, a close
//! or a `* BYE`), send a line that never ends or untagged responses without end, answer FETCH
//! for the wrong UIDs, complete commands with wrong or repeated tags, or (honest but slow)
//! deliver every answer in small pieces with pauses. Only the chosen login meets the misbehaviour; every other login
//! is passed through to a real server (Dovecot), so one migration holds a good user and a bad
//! one and a test can show that a bad server costs one user, never the process.
//!
//! Where the misbehaviour needs a mailbox to get that far (endless LIST, the huge literal, the
//! trickle), the script plays a minimal one: an INBOX holding one small message, answered as
//! RFC 3501 prescribes for CAPABILITY, LIST, STATUS, EXAMINE, SEARCH and FETCH.

use std::net::SocketAddr;
use std::time::Duration;

use rand::RngCore;
use rand::SeedableRng;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the misbehaving login meets after its LOGIN is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Never answers again: commands are read and dropped.
    Silent,
    /// Answers LIST with `* LIST` lines without end.
    EndlessList,
    /// Answers the first command with random bytes, NUL included, without end.
    RandomBytes,
    /// Answers correctly, one byte at a time, this long apart.
    Trickle(Duration),
    /// Answers the message body FETCH with a literal of this many bytes announced, then sends
    /// filler bytes for as long as the client reads.
    HugeLiteral(u64),
    /// Honest: passed through to the real server, but every answer arrives in pieces of
    /// `piece` bytes, `pause` apart.
    Fragmenting { piece: usize, pause: Duration },
    /// Answers the message body FETCH with a literal of 100 bytes announced and 10 sent, then
    /// falls silent, or (`close`) closes the connection.
    UnterminatedLiteral { close: bool },
    /// Answers the first command with one line of this many bytes that never ends (no CRLF),
    /// then falls silent.
    EndlessLine(u64),
    /// Answers EXAMINE with `* 1 EXISTS` and `* OK` lines without end, never completing it.
    EndlessUntagged,
    /// Sends `* BYE` in the middle of the message body's literal, then closes.
    ByeInLiteral,
    /// Plays an INBOX of two messages (UIDs 1 and 2) whose FETCH answers hold a message not
    /// asked for (UID 9) and leave out UID 2, which SEARCH still finds.
    WrongFetchUids,
    /// Answers correctly, but before each tagged completion sends one with a tag never sent
    /// (`ZZ9 OK`), and after it the same completion again.
    WrongTags,
    /// Lists, beside INBOX, folders named like paths that escape: `..`, `.`, `a/../b`, `/lead`
    /// (a leading separator) and the empty name; each opens as the one-message INBOX does.
    HostileNames,
    /// Plays the one-message INBOX, but EXAMINE says UIDVALIDITY 8 where STATUS says 7.
    ShiftingUidValidity,
}

/// The names [`Misbehaviour::HostileNames`] lists beside INBOX.
pub const HOSTILE_NAMES: [&str; 5] = ["..", ".", "a/../b", "/lead", ""];

pub struct ScriptedServer {
    address: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl ScriptedServer {
    /// Listens on a free loopback port; `login` meets `misbehaviour`, every other login is
    /// passed through to `upstream`.
    pub async fn start(
        upstream: SocketAddr,
        login: &str,
        misbehaviour: Misbehaviour,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let login = login.to_owned();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let login = login.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream, &login, misbehaviour).await;
                });
            }
        });
        Ok(ScriptedServer {
            address,
            accept_loop,
        })
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.address.port())
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    misbehaving_login: &str,
    misbehaviour: Misbehaviour,
) -> std::io::Result<()> {
    let (from_client, mut to_client) = client.into_split();
    let mut from_client = BufReader::new(from_client);
    to_client
        .write_all(b"* OK [CAPABILITY IMAP4rev1] scripted server ready\r\n")
        .await?;
    let login_line = loop {
        let line = read_line(&mut from_client).await?;
        let (tag, command) = split_command(&line);
        if command.to_ascii_uppercase().starts_with("LOGIN ") {
            break line;
        }
        to_client
            .write_all(format!("{tag} BAD log in first\r\n").as_bytes())
            .await?;
    };
    let (tag, command) = split_command(&login_line);
    let user = command["LOGIN ".len()..]
        .split(' ')
        .next()
        .unwrap_or("")
        .trim_matches('"');
    let piece = match misbehaviour {
        Misbehaviour::Fragmenting { piece, pause } if user == misbehaving_login => {
            Some((piece, pause))
        }
        _ if user == misbehaving_login => {
            to_client
                .write_all(format!("{tag} OK LOGIN completed\r\n").as_bytes())
                .await?;
            return misbehave(from_client, to_client, misbehaviour).await;
        }
        _ => None,
    };
    // Passed through: the real server's greeting is dropped (the client had ours), the LOGIN
    // goes on as the client sent it.
    let (from_server, mut to_server) = TcpStream::connect(upstream).await?.into_split();
    let mut from_server = BufReader::new(from_server);
    read_line(&mut from_server).await?;
    to_server
        .write_all(format!("{login_line}\r\n").as_bytes())
        .await?;
    let upstream_copy = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
    });
    let result = match piece {
        None => tokio::io::copy(&mut from_server, &mut to_client)
            .await
            .map(drop),
        Some((piece, pause)) => fragment(&mut from_server, &mut to_client, piece, pause).await,
    };
    upstream_copy.abort();
    result
}

async fn fragment(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    piece: usize,
    pause: Duration,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; piece.max(1)];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..n]).await?;
        tokio::time::sleep(pause).await;
    }
}

async fn misbehave(
    mut from_client: BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut to_client: tokio::net::tcp::OwnedWriteHalf,
    misbehaviour: Misbehaviour,
) -> std::io::Result<()> {
    loop {
        let line = read_line(&mut from_client).await?;
        let (tag, command) = split_command(&line);
        let verb = command_verb(command);
        match misbehaviour {
            Misbehaviour::Silent => continue,
            Misbehaviour::RandomBytes => return endless(&mut to_client, random_chunk).await,
            Misbehaviour::EndlessList if verb == "LIST" => {
                let mut folder = 0u64;
                return endless(&mut to_client, |chunk| {
                    while chunk.len() < 64 * 1024 {
                        folder += 1;
                        let line =
                            format!("* LIST (\\HasNoChildren) \"/\" \"folder-{folder}\"\r\n");
                        chunk.extend_from_slice(line.as_bytes());
                    }
                })
                .await;
            }
            Misbehaviour::HugeLiteral(size) if is_body_fetch(&verb, command) => {
                let announcement = format!("* 1 FETCH (UID 1 BODY[] {{{size}}}\r\n");
                to_client.write_all(announcement.as_bytes()).await?;
                return endless(&mut to_client, |chunk| chunk.resize(64 * 1024, b'x')).await;
            }
            Misbehaviour::UnterminatedLiteral { close } if is_body_fetch(&verb, command) => {
                let start = "* 1 FETCH (UID 1 BODY[] {100}\r\nFrom: a@e";
                to_client.write_all(start.as_bytes()).await?;
                if close {
                    return to_client.shutdown().await;
                }
                return silent(from_client).await;
            }
            Misbehaviour::ByeInLiteral if is_body_fetch(&verb, command) => {
                let start = "* 1 FETCH (UID 1 BODY[] {100}\r\nFrom: a@e\r\n* BYE shutting down\r\n";
                to_client.write_all(start.as_bytes()).await?;
                return to_client.shutdown().await;
            }
            Misbehaviour::EndlessLine(bytes) => {
                let mut left = bytes;
                to_client.write_all(b"* CAPABILITY IMAP4rev1 ").await?;
                let chunk = vec![b'A'; 64 * 1024];
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    to_client.write_all(&chunk[..n]).await?;
                    left -= n as u64;
                }
                return silent(from_client).await;
            }
            Misbehaviour::EndlessUntagged if verb == "EXAMINE" || verb == "SELECT" => {
                return endless(&mut to_client, |chunk| {
                    while chunk.len() < 64 * 1024 {
                        chunk.extend_from_slice(b"* 1 EXISTS\r\n* OK still here\r\n");
                    }
                })
                .await;
            }
            Misbehaviour::WrongTags => {
                let answer = answer(tag, &verb, command);
                let (data, done) = answer.split_at(answer.rfind(&format!("{tag} ")).unwrap_or(0));
                let text = format!("{data}ZZ9 OK {verb} completed\r\n{done}{done}");
                to_client.write_all(text.as_bytes()).await?
            }
            Misbehaviour::HostileNames if verb == "LIST" => {
                let mut lines = String::from("* LIST (\\HasNoChildren) \"/\" INBOX\r\n");
                for name in HOSTILE_NAMES {
                    lines.push_str(&format!("* LIST (\\HasNoChildren) \"/\" \"{name}\"\r\n"));
                }
                lines.push_str(&format!("{tag} OK LIST completed\r\n"));
                to_client.write_all(lines.as_bytes()).await?
            }
            Misbehaviour::ShiftingUidValidity if verb == "EXAMINE" || verb == "SELECT" => {
                let answer = answer(tag, &verb, command).replace("UIDVALIDITY 7", "UIDVALIDITY 8");
                to_client.write_all(answer.as_bytes()).await?
            }
            Misbehaviour::WrongFetchUids => {
                let answer = wrong_uids_answer(tag, &verb, command);
                to_client.write_all(answer.as_bytes()).await?
            }
            Misbehaviour::Trickle(interval) => {
                for byte in answer(tag, &verb, command).as_bytes() {
                    to_client.write_all(&[*byte]).await?;
                    tokio::time::sleep(interval).await;
                }
            }
            _ => {
                to_client
                    .write_all(answer(tag, &verb, command).as_bytes())
                    .await?
            }
        }
    }
}

/// Reads the client's commands and never answers again, until it goes away.
async fn silent(mut from_client: impl AsyncBufReadExt + Unpin) -> std::io::Result<()> {
    loop {
        read_line(&mut from_client).await?;
    }
}

fn is_body_fetch(verb: &str, command: &str) -> bool {
    verb == "FETCH" && command.contains("BODY.PEEK[]")
}

/// The [`Misbehaviour::WrongFetchUids`] INBOX's answer: two messages, UID 2 never fetched.
fn wrong_uids_answer(tag: &str, verb: &str, command: &str) -> String {
    let message =
        |uid: u32| format!("From: a@example.com\r\nSubject: scripted {uid}\r\n\r\nhi\r\n");
    let data = match verb {
        "STATUS" => "* STATUS INBOX (MESSAGES 2 UIDNEXT 10 UIDVALIDITY 7)\r\n".to_owned(),
        "EXAMINE" | "SELECT" => "* 2 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen)\r\n\
             * OK [UIDVALIDITY 7] UIDs valid\r\n* OK [UIDNEXT 10] next\r\n"
            .to_owned(),
        // Every UID asked for exists (`UID 1:*`, or the ones a client finds missing).
        "SEARCH" if command.contains("UID 2") => "* SEARCH 2\r\n".to_owned(),
        "SEARCH" => "* SEARCH 1 2\r\n".to_owned(),
        "FETCH" if command.contains("BODY.PEEK[]") => [1, 9]
            .map(|uid| {
                let body = message(uid);
                format!(
                    "* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n{body})\r\n",
                    body.len()
                )
            })
            .concat(),
        "FETCH" if command.contains("RFC822.SIZE") => [1, 2, 9]
            .map(|uid| {
                format!(
                    "* {uid} FETCH (UID {uid} RFC822.SIZE {} FLAGS (\\Seen) \
                     INTERNALDATE \"01-Jan-2024 10:00:00 +0000\")\r\n",
                    message(uid).len()
                )
            })
            .concat(),
        _ => return answer(tag, verb, command),
    };
    format!("{data}{tag} OK {verb} completed\r\n")
}

/// Writes what `fill` puts in a 64 KiB chunk, again and again, until the client goes away.
async fn endless(
    to_client: &mut (impl AsyncWrite + Unpin),
    mut fill: impl FnMut(&mut Vec<u8>),
) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(80 * 1024);
    loop {
        chunk.clear();
        fill(&mut chunk);
        to_client.write_all(&chunk).await?;
    }
}

fn random_chunk(chunk: &mut Vec<u8>) {
    thread_local! {
        static RNG: std::cell::RefCell<rand::rngs::StdRng> =
            std::cell::RefCell::new(rand::rngs::StdRng::seed_from_u64(17));
    }
    chunk.resize(64 * 1024, 0);
    RNG.with(|rng| rng.borrow_mut().fill_bytes(chunk));
}

/// The answer of a one-message INBOX to `command`.
fn answer(tag: &str, verb: &str, command: &str) -> String {
    const MESSAGE: &str = "From: a@example.com\r\nSubject: scripted\r\n\r\nhello\r\n";
    let data = match verb {
        "CAPABILITY" => "* CAPABILITY IMAP4rev1\r\n".to_owned(),
        "LIST" => "* LIST (\\HasNoChildren) \"/\" INBOX\r\n".to_owned(),
        "STATUS" => "* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)\r\n".to_owned(),
        "EXAMINE" | "SELECT" => "* 1 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen)\r\n\
             * OK [UIDVALIDITY 7] UIDs valid\r\n* OK [UIDNEXT 2] next\r\n"
            .to_owned(),
        "SEARCH" => "* SEARCH 1\r\n".to_owned(),
        "FETCH" if command.contains("BODY.PEEK[]") => format!(
            "* 1 FETCH (UID 1 BODY[] {{{}}}\r\n{MESSAGE})\r\n",
            MESSAGE.len()
        ),
        "FETCH" if command.contains("RFC822.SIZE") => format!(
            "* 1 FETCH (UID 1 RFC822.SIZE {} FLAGS (\\Seen) \
             INTERNALDATE \"01-Jan-2024 10:00:00 +0000\")\r\n",
            MESSAGE.len()
        ),
        "LOGOUT" => "* BYE logging out\r\n".to_owned(),
        _ => String::new(),
    };
    format!("{data}{tag} OK {verb} completed\r\n")
}

/// The command's name, `UID` dropped: `UID FETCH 1 (…)` → `FETCH`.
fn command_verb(command: &str) -> String {
    let mut words = command.split(' ');
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    if first == "UID" {
        words.next().unwrap_or("").to_ascii_uppercase()
    } else {
        first
    }
}

fn split_command(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap_or((line, ""))
}

/// One line from the client, CRLF removed; an error at end of stream.
async fn read_line(from: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<String> {
    let mut line = String::new();
    if from.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
