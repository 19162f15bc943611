//! An Exchange Online personality in front of a real Dovecot: what Exchange Online does
//! differently from Dovecot at the IMAP level, for the parts a migration meets when it logs in
//! and writes.
//!
//! Reproduced (Microsoft's documentation, imapsync's FAQ):
//! - no `MULTIAPPEND` in CAPABILITY (greeting, after login, and `CAPABILITY` answers);
//! - `PERMANENTFLAGS (\Seen \Answered \Flagged \Deleted \Draft $MDNSent)`: no custom keywords,
//!   no `\*`;
//! - an APPEND whose flag list carries any other keyword is answered
//!   `BAD Command Argument Error. 11`;
//! - `\Flagged` in an APPEND flag list is dropped (Exchange does not keep it reliably; here it
//!   never does, so only a later `STORE` sets it);
//! - `CREATE` of a top-level `Files` (any case) is answered `NO Folder name is reserved`;
//! - names are case-insensitive, as far as CREATE goes: a CREATE of a name equal but for case to
//!   one created earlier through the front (any connection, any user) is answered
//!   `NO Mailbox already exists.` (Exchange would then file the other name's messages into the
//!   existing folder; the front does not rewrite names in other commands);
//! - after 10 tagged `NO`/`BAD` answers in one session, `* BYE Connection closed. 14` and the
//!   connection is closed (Exchange disconnects after 10 errors; its exact words for this case
//!   are not documented, these are its busy-server words).
//!
//! With [`ExchangeFront::start_app_only`], Exchange's app-only login: CAPABILITY offers
//! `AUTH=PLAIN AUTH=XOAUTH2` only, `LOGIN` is answered `NO LOGIN failed.` and any mechanism but
//! XOAUTH2 `NO AUTHENTICATE failed.` (basic authentication is off); `AUTHENTICATE XOAUTH2`
//! (with SASL-IR or after a `+`) is accepted when the identity stand-in issued the token, it is
//! live, and its app was granted FullAccess to the mailbox named in `user=`
//! ([`crate::identity::IdentityProvider::grant_full_access`]) — else `NO AUTHENTICATE failed.`,
//! as Exchange answers a token without that grant. The front then logs in to Dovecot as its
//! master user for that mailbox. A session whose token has expired since is ended at its next
//! command with `* BYE Session invalidated - AccessTokenExpired`.
//!
//! On request ([`Condition`]): a mailbox that is full (`NO Server Unavailable. 15` to every
//! APPEND after the first few), one that is "authenticated but not connected" (every command
//! after login answered so), a busy server (`* BYE Connection closed. 14` instead of every Nth
//! APPEND), a throttled one (every Nth APPEND answered `NO Request is throttled. Suggested
//! Backoff Time: N milliseconds`, then `BYE`), tokens that expire after the Nth APPEND, or a
//! message size limit (an APPEND whose literal is over it refused at its command line, each
//! refusal one of the session's errors).
//!
//! Not reproduced: OAUTHBEARER, throttling of commands other than APPEND (Exchange throttles
//! any command, FETCH and SELECT included, sometimes with `BAD`), case-insensitivity beyond
//! CREATE, `$MDNSent` shown as a category. Only synchronizing literals are
//! understood from the client (`{n}`, what mailfleet sends), and a literal is read as soon as
//! its line is forwarded: a server refusing an APPEND at its command line (instead of `+`)
//! would leave the front waiting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::identity::TokenChecker;

/// What Exchange Online lists as PERMANENTFLAGS.
pub const EXCHANGE_PERMANENT_FLAGS: &str =
    "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)";

/// Tagged errors in one session after which Exchange disconnects.
pub const ERROR_LIMIT: usize = 10;

/// Exchange's disconnect when it is busy (and, here, after [`ERROR_LIMIT`] errors).
const BUSY_BYE: &str = "* BYE Connection closed. 14\r\n";

/// The front's refusal of an APPEND over [`Condition::SizeLimit`]. Exchange Online refuses a
/// message over the mailbox's maximum receive size; its exact IMAP words for that are not
/// documented, so these are the front's own (a NO without a response code, as Exchange's are).
pub const TOO_BIG: &str = "NO APPEND failed: the message exceeds the maximum message size";

/// The backoff the front suggests with [`Condition::ThrottleEveryAppends`]. Exchange suggests
/// minutes (imapsync's FAQ on Office 365 quotes 299961 ms); this is small so tests stay quick.
pub const THROTTLE_BACKOFF_MS: u64 = 500;

pub struct ExchangeFront {
    address: SocketAddr,
    accept_loop: JoinHandle<()>,
    error_limit_hits: Arc<AtomicUsize>,
    throttle_replies: Arc<AtomicUsize>,
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
    /// Every Nth APPEND (over all connections) is answered `* BYE Connection closed. 14` and
    /// the connection closed, as a busy Exchange server does; the message never arrives.
    BusyEveryAppends(usize),
    /// Every Nth APPEND (over all connections) is answered as a throttling Exchange does:
    /// `<tag> NO Request is throttled. Suggested Backoff Time: <`[`THROTTLE_BACKOFF_MS`]`>
    /// milliseconds`, then `* BYE Connection closed. 14` and the connection closed; the message
    /// never arrives.
    ThrottleEveryAppends(usize),
    /// Once this many APPENDs went in (over all connections), every token issued so far
    /// expires: sessions logged in with one end at their next command, and the token is
    /// refused at login. Only with [`ExchangeFront::start_app_only`].
    TokensExpireAfterAppends(usize),
    /// An APPEND whose literal is over this many bytes is answered [`TOO_BIG`] instead of `+`
    /// (the message is never sent), as Exchange refuses a message over the size limit; like any
    /// tagged error it counts toward the session's [`ERROR_LIMIT`].
    SizeLimit(usize),
}

/// Exchange's app-only logins: tokens checked with the identity stand-in, the mailbox opened
/// through Dovecot's master user.
pub struct AppOnlyLogins {
    pub tokens: TokenChecker,
    /// Dovecot's master user (login, password): `mailbox*login` opens `mailbox`.
    pub master: (String, String),
}

impl ExchangeFront {
    /// Listens on a free loopback port and forwards each connection to `upstream` (Dovecot).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(upstream, Condition::Healthy).await
    }

    /// As [`ExchangeFront::start`], with the mailbox in `condition`.
    pub async fn start_with(upstream: SocketAddr, condition: Condition) -> std::io::Result<Self> {
        Self::listen(upstream, condition, None).await
    }

    /// As [`ExchangeFront::start_with`], taking only XOAUTH2 app-only logins (see the module
    /// documentation).
    pub async fn start_app_only(
        upstream: SocketAddr,
        condition: Condition,
        logins: AppOnlyLogins,
    ) -> std::io::Result<Self> {
        Self::listen(upstream, condition, Some(Arc::new(logins))).await
    }

    async fn listen(
        upstream: SocketAddr,
        condition: Condition,
        logins: Option<Arc<AppOnlyLogins>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let mailbox = Mailbox::new(condition, logins);
        let error_limit_hits = mailbox.error_limit_hits.clone();
        let throttle_replies = mailbox.throttle_replies.clone();
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mailbox = mailbox.clone();
                tokio::spawn(async move {
                    let _ = serve(client, upstream, mailbox).await;
                });
            }
        });
        Ok(ExchangeFront {
            address,
            accept_loop,
            error_limit_hits,
            throttle_replies,
        })
    }

    /// APPENDs the front answered with a throttling reply ([`Condition::ThrottleEveryAppends`]).
    pub fn throttle_replies(&self) -> usize {
        self.throttle_replies.load(Ordering::SeqCst)
    }

    /// Sessions the front ended at their [`ERROR_LIMIT`]th error: that a client met the limit.
    pub fn error_limit_hits(&self) -> usize {
        self.error_limit_hits.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.address.port())
    }

    pub fn port(&self) -> u16 {
        self.address.port()
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
    /// Lowercased name → the name as first created through the front.
    created: Arc<std::sync::Mutex<HashMap<String, String>>>,
    logins: Option<Arc<AppOnlyLogins>>,
    /// Sessions ended at their [`ERROR_LIMIT`]th error.
    error_limit_hits: Arc<AtomicUsize>,
    /// APPENDs answered with a throttling reply.
    throttle_replies: Arc<AtomicUsize>,
}

/// What the front says instead of the server.
enum Reply {
    /// A tagged answer; the session goes on.
    Answer(String),
    /// An untagged BYE; the connection is closed.
    Bye(&'static str),
    /// This tagged answer, then [`BUSY_BYE`]; the connection is closed.
    AnswerThenBye(String),
    /// This line goes to the server instead of the client's.
    Forward(String),
}

impl Mailbox {
    fn new(condition: Condition, logins: Option<Arc<AppOnlyLogins>>) -> Self {
        Mailbox {
            condition,
            appends: Arc::default(),
            created: Arc::default(),
            logins,
            error_limit_hits: Arc::default(),
            throttle_replies: Arc::default(),
        }
    }

    /// Exchange's answer to a CREATE of a name equal but for case to an earlier one.
    fn name_taken(&self, tag: &str, verb: &str, line: &str) -> Option<Reply> {
        if !verb.eq_ignore_ascii_case("CREATE") {
            return None;
        }
        let rest = line.splitn(3, ' ').nth(2)?.trim_end();
        let name = rest.get(..mailbox_end(rest)?)?.to_owned();
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        let first = created
            .entry(name.to_lowercase())
            .or_insert_with(|| name.clone());
        (*first != name).then(|| Reply::Answer(format!("{tag} NO Mailbox already exists.\r\n")))
    }

    /// The answer this condition gives `verb` (on `line`) instead of the server, if any.
    fn refusal(&self, tag: &str, verb: &str, line: &str) -> Option<Reply> {
        let verb = verb.to_ascii_uppercase();
        let append = (verb == "APPEND").then(|| self.appends.fetch_add(1, Ordering::SeqCst) + 1);
        match (self.condition, append) {
            (Condition::FullAfterAppends(allowed), Some(count)) if count > allowed => Some(
                Reply::Answer(format!("{tag} NO Server Unavailable. 15\r\n")),
            ),
            (Condition::BusyEveryAppends(every), Some(count)) if count % every == 0 => {
                Some(Reply::Bye(BUSY_BYE))
            }
            (Condition::ThrottleEveryAppends(every), Some(count)) if count % every == 0 => {
                self.throttle_replies.fetch_add(1, Ordering::SeqCst);
                Some(Reply::AnswerThenBye(format!(
                    "{tag} NO Request is throttled. Suggested Backoff Time: \
                     {THROTTLE_BACKOFF_MS} milliseconds\r\n"
                )))
            }
            (Condition::SizeLimit(limit), Some(_))
                if literal_size(line).is_some_and(|size| size > limit) =>
            {
                Some(Reply::Answer(format!("{tag} {TOO_BIG}\r\n")))
            }
            (Condition::TokensExpireAfterAppends(after), Some(count)) if count == after => {
                if let Some(logins) = &self.logins {
                    logins.tokens.expire_all();
                }
                None
            }
            (Condition::NotConnected, _)
                if !matches!(
                    verb.as_str(),
                    "CAPABILITY" | "LOGIN" | "AUTHENTICATE" | "LOGOUT" | "ID" | "NOOP"
                ) =>
            {
                Some(Reply::Answer(format!(
                    "{tag} NO User is authenticated but not connected.\r\n"
                )))
            }
            _ => None,
        }
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, mailbox: Mailbox) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // The front answers some commands itself, so both directions write to the client.
    let client = Arc::new(ToClient {
        writer: Mutex::new(client_write),
        errors: AtomicUsize::new(0),
        app_only: mailbox.logins.is_some(),
        error_limit_hits: mailbox.error_limit_hits.clone(),
    });
    let to_client = tokio::spawn(server_to_client(server_read, client.clone()));
    let result = client_to_server(client_read, server_write, client, mailbox).await;
    to_client.abort();
    result
}

/// The client's side of a session: written by both directions, counting tagged errors.
struct ToClient {
    writer: Mutex<OwnedWriteHalf>,
    errors: AtomicUsize,
    /// Capabilities offer XOAUTH2 only.
    app_only: bool,
    /// The front's count of sessions ended at the limit, shared by every session.
    error_limit_hits: Arc<AtomicUsize>,
}

/// Whether the session goes on after a write.
#[derive(PartialEq)]
enum Session {
    Open,
    Closed,
}

impl ToClient {
    /// Writes `line` (and its literal); the [`ERROR_LIMIT`]th tagged error ends the session.
    async fn deliver(&self, line: &str, literal: &[u8]) -> std::io::Result<Session> {
        let mut writer = self.writer.lock().await;
        writer.write_all(line.as_bytes()).await?;
        writer.write_all(literal).await?;
        if is_tagged_error(line) && self.errors.fetch_add(1, Ordering::SeqCst) + 1 >= ERROR_LIMIT {
            self.error_limit_hits.fetch_add(1, Ordering::SeqCst);
            writer.write_all(BUSY_BYE.as_bytes()).await?;
            writer.shutdown().await?;
            return Ok(Session::Closed);
        }
        writer.flush().await?;
        Ok(Session::Open)
    }

    async fn bye(&self, bye: &str) -> std::io::Result<Session> {
        let mut writer = self.writer.lock().await;
        writer.write_all(bye.as_bytes()).await?;
        writer.shutdown().await?;
        Ok(Session::Closed)
    }
}

/// A tagged `NO` or `BAD` (not a continuation, not untagged).
fn is_tagged_error(line: &str) -> bool {
    let mut words = line.split(' ');
    let tag = words.next().unwrap_or_default();
    let status = words.next().unwrap_or_default().trim_end();
    !tag.is_empty()
        && tag != "*"
        && tag != "+"
        && (status.eq_ignore_ascii_case("NO") || status.eq_ignore_ascii_case("BAD"))
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

async fn server_to_client(server: OwnedReadHalf, client: Arc<ToClient>) -> std::io::Result<()> {
    let mut server = BufReader::new(server);
    while let Some((line, literal)) = read_line(&mut server).await? {
        let mut line = exchange_answer(&line);
        if client.app_only {
            line = xoauth2_only(&line);
        }
        if client.deliver(&line, &literal).await? == Session::Closed {
            break;
        }
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

/// A capability line offering only what Exchange Online offers for logins.
fn xoauth2_only(line: &str) -> String {
    if !line.to_ascii_uppercase().contains("CAPABILITY") {
        return line.to_owned();
    }
    let mut words: Vec<String> = Vec::new();
    for word in line.split(' ') {
        match word.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("AUTH=") => {
                // Keep what closes the list or the line (`]`, CRLF).
                let tail = &word[word.find([']', '\r', '\n']).unwrap_or(word.len())..];
                if let Some(last) = words.last_mut() {
                    last.push_str(tail);
                }
            }
            _ => words.push(word.to_owned()),
        }
    }
    words
        .join(" ")
        .replacen("IMAP4rev1", "IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2", 1)
}

async fn client_to_server(
    client: OwnedReadHalf,
    mut server: OwnedWriteHalf,
    to_client: Arc<ToClient>,
    mailbox: Mailbox,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    // The token this session logged in with (app-only logins).
    let mut token: Option<String> = None;
    loop {
        let mut raw = Vec::new();
        if client.read_until(b'\n', &mut raw).await? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&raw).into_owned();
        let mut words = line.split(' ');
        let (tag, verb) = match (words.next(), words.next()) {
            (Some(tag), Some(verb)) => (tag, verb.trim_end()),
            _ => ("*", ""),
        };
        let mut reply = None;
        if let Some(logins) = &mailbox.logins {
            if token.as_deref().is_some_and(|t| !logins.tokens.is_live(t)) {
                reply = Some(Reply::Bye(
                    "* BYE Session invalidated - AccessTokenExpired\r\n",
                ));
            } else {
                match app_only_login(logins, tag, verb, &line, &mut client, &to_client).await? {
                    LoginStep::Other => {}
                    LoginStep::Refused(refusal) => reply = Some(refusal),
                    LoginStep::Accepted { user, bearer } => {
                        token = Some(bearer);
                        let (master, password) = &logins.master;
                        let login = format!("{tag} LOGIN \"{user}*{master}\" \"{password}\"\r\n");
                        reply = Some(Reply::Forward(login));
                    }
                }
            }
        }
        let reply = reply
            .or_else(|| mailbox.refusal(tag, verb, &line))
            .or_else(|| mailbox.name_taken(tag, verb, &line));
        let command = match reply {
            Some(Reply::Bye(bye)) => return to_client.bye(bye).await.map(drop),
            Some(Reply::AnswerThenBye(answer)) => {
                return to_client
                    .bye(&format!("{answer}{BUSY_BYE}"))
                    .await
                    .map(drop);
            }
            Some(Reply::Answer(answer)) => Command::Answer(answer),
            Some(Reply::Forward(line)) => Command::Forward(line),
            None => exchange_command(&line),
        };
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
                if to_client.deliver(&answer, &[]).await? == Session::Closed {
                    return Ok(());
                }
            }
        }
    }
}

/// What an app-only front makes of a client line.
enum LoginStep {
    /// Not a login: the line goes on.
    Other,
    Refused(Reply),
    /// An XOAUTH2 login Exchange would accept: Dovecot's master login for `user` instead.
    Accepted {
        user: String,
        bearer: String,
    },
}

/// Exchange's view of a login: only XOAUTH2 with a live token whose app has FullAccess to the
/// mailbox. Reads the SASL response after a `+` when the client did not send it with the
/// command.
async fn app_only_login(
    logins: &AppOnlyLogins,
    tag: &str,
    verb: &str,
    line: &str,
    client: &mut BufReader<OwnedReadHalf>,
    to_client: &ToClient,
) -> std::io::Result<LoginStep> {
    if verb.eq_ignore_ascii_case("LOGIN") {
        let refused = format!("{tag} NO LOGIN failed.\r\n");
        return Ok(LoginStep::Refused(Reply::Answer(refused)));
    }
    if !verb.eq_ignore_ascii_case("AUTHENTICATE") {
        return Ok(LoginStep::Other);
    }
    let refused = LoginStep::Refused(Reply::Answer(format!("{tag} NO AUTHENTICATE failed.\r\n")));
    let mut words = line.trim_end().split(' ').skip(2);
    let (mechanism, initial) = (words.next().unwrap_or_default(), words.next());
    if !mechanism.eq_ignore_ascii_case("XOAUTH2") {
        return Ok(refused);
    }
    let response = match initial {
        Some(response) => response.to_owned(),
        None => {
            to_client.deliver("+ \r\n", &[]).await?;
            let mut raw = Vec::new();
            client.read_until(b'\n', &mut raw).await?;
            String::from_utf8_lossy(&raw).trim_end().to_owned()
        }
    };
    match xoauth2_response(&response) {
        Some((user, bearer)) if logins.tokens.app_may_open(&bearer, &user) => {
            Ok(LoginStep::Accepted { user, bearer })
        }
        _ => Ok(refused),
    }
}

/// (mailbox, token) of a base64 XOAUTH2 response `user=…^Aauth=Bearer …^A^A`.
fn xoauth2_response(base64: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(BASE64.decode(base64).ok()?).ok()?;
    let mut parts = decoded.split('\x01');
    let user = parts.next()?.strip_prefix("user=")?.to_owned();
    let token = parts.next()?.strip_prefix("auth=Bearer ")?.to_owned();
    Some((user, token))
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

    /// A client of `front`, past the upstream's greeting (`* OK ready`): its lines, and its
    /// half to write to.
    async fn greeted_client(
        front: &ExchangeFront,
    ) -> (
        tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        tokio::net::tcp::OwnedWriteHalf,
    ) {
        let client = TcpStream::connect(("127.0.0.1", front.port()))
            .await
            .unwrap();
        let (read, write) = client.into_split();
        let mut lines = BufReader::new(read).lines();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "* OK ready");
        (lines, write)
    }

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
    fn app_only_fronts_offer_xoauth2_and_count_tagged_errors() {
        assert_eq!(
            xoauth2_only("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] ready.\r\n"),
            "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR] ready.\r\n"
        );
        let response = BASE64.encode("user=ann@contoso.com\x01auth=Bearer abc\x01\x01");
        assert_eq!(
            xoauth2_response(&response),
            Some(("ann@contoso.com".to_owned(), "abc".to_owned()))
        );
        assert!(is_tagged_error("A7 BAD Command Argument Error. 11\r\n"));
        assert!(is_tagged_error("A8 NO AUTHENTICATE failed.\r\n"));
        assert!(!is_tagged_error("* NO [ALERT] quota\r\n"));
        assert!(!is_tagged_error("A9 OK done\r\n"));
    }

    /// An upstream that refuses every command: the front ends the session after the tenth.
    #[tokio::test]
    async fn the_tenth_error_in_a_session_ends_it() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = upstream.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            write.write_all(b"* OK ready\r\n").await.unwrap();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let tag = line.split(' ').next().unwrap_or_default().to_owned();
                let _ = write.write_all(format!("{tag} NO no\r\n").as_bytes()).await;
            }
        });
        let front = ExchangeFront::start(address).await.unwrap();
        let (mut lines, mut write) = greeted_client(&front).await;
        for n in 1..=ERROR_LIMIT {
            write
                .write_all(format!("a{n} NOOP\r\n").as_bytes())
                .await
                .unwrap();
            assert_eq!(
                lines.next_line().await.unwrap().unwrap(),
                format!("a{n} NO no")
            );
        }
        assert_eq!(
            lines.next_line().await.unwrap().unwrap(),
            BUSY_BYE.trim_end()
        );
        assert_eq!(
            lines.next_line().await.unwrap(),
            None,
            "the connection is closed"
        );
        assert_eq!(front.error_limit_hits(), 1);
    }

    /// Every second APPEND is throttled as Exchange throttles: the tagged `NO` with its
    /// suggested backoff, then `BYE`, the connection closed, and the message never sent on.
    #[tokio::test]
    async fn every_nth_append_is_throttled_then_the_connection_closed() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = upstream.local_addr().unwrap();
        let stored = Arc::new(AtomicUsize::new(0));
        let upstream_stored = stored.clone();
        tokio::spawn(async move {
            let (socket, _) = upstream.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            write.write_all(b"* OK ready\r\n").await.unwrap();
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
                let tag = line.split(' ').next().unwrap_or_default().to_owned();
                if let Some(size) = literal_size(&line) {
                    write.write_all(b"+ go\r\n").await.unwrap();
                    let mut literal = vec![0; size + 2];
                    reader.read_exact(&mut literal).await.unwrap();
                    upstream_stored.fetch_add(1, Ordering::SeqCst);
                }
                let _ = write
                    .write_all(format!("{tag} OK done\r\n").as_bytes())
                    .await;
                line.clear();
            }
        });
        let front = ExchangeFront::start_with(address, Condition::ThrottleEveryAppends(2))
            .await
            .unwrap();
        let (mut lines, mut write) = greeted_client(&front).await;
        write.write_all(b"a1 APPEND INBOX {2}\r\n").await.unwrap();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "+ go");
        write.write_all(b"hi\r\n").await.unwrap();
        assert_eq!(lines.next_line().await.unwrap().unwrap(), "a1 OK done");
        write.write_all(b"a2 APPEND INBOX {2}\r\n").await.unwrap();
        assert_eq!(
            lines.next_line().await.unwrap().unwrap(),
            format!(
                "a2 NO Request is throttled. Suggested Backoff Time: {THROTTLE_BACKOFF_MS} \
                 milliseconds"
            )
        );
        assert_eq!(
            lines.next_line().await.unwrap().unwrap(),
            BUSY_BYE.trim_end()
        );
        assert_eq!(lines.next_line().await.unwrap(), None, "closed");
        assert_eq!(front.throttle_replies(), 1);
        assert_eq!(
            stored.load(Ordering::SeqCst),
            1,
            "the throttled one not sent"
        );
    }

    #[test]
    fn appends_over_the_size_limit_are_refused_before_their_literal() {
        let mailbox = Mailbox::new(Condition::SizeLimit(100), None);
        let over = "A1 APPEND \"INBOX\" (\\Seen) {101}\r\n";
        assert!(matches!(
            mailbox.refusal("A1", "APPEND", over),
            Some(Reply::Answer(a)) if a == format!("A1 {TOO_BIG}\r\n") && is_tagged_error(&a)
        ));
        let within = "A2 APPEND \"INBOX\" {100}\r\n";
        assert!(mailbox.refusal("A2", "APPEND", within).is_none());
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
