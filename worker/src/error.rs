//! The worker's one error type, and the line between "try again" and "give up".
//!
//! Design rule 5: throttling, dropped connections and timeouts never fail a user by themselves;
//! they are retried with backoff. Everything else (a rejected login, a folder the target refuses)
//! is permanent and becomes a user-facing error that names the user and folder.

use mailfleet_shared::store_error::StoreError;

use crate::imap::guard::{LimitHit, printable_excerpt};
use crate::imap::refusal::server_words;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The server refused our credentials; retrying cannot help.
    #[error("login rejected for {login} on {server}: {reason}")]
    LoginRejected {
        login: String,
        server: String,
        reason: String,
    },
    #[error("cannot connect to {server}: {reason}")]
    Connect {
        server: String,
        reason: String,
        transient: bool,
    },
    #[error("{server} is throttling: {reason}")]
    Throttled { server: String, reason: String },
    #[error("connection to {server} lost: {reason}")]
    ConnectionLost { server: String, reason: String },
    /// Exchange Online's "User is authenticated but not connected": the login worked, the
    /// mailbox cannot be opened. Sometimes passing (too many reconnects), so retried a few
    /// times ([`NOT_CONNECTED_ATTEMPTS`]), then the likely causes go to the report.
    #[error(
        "{server}: {reason} (likely causes: the login lacks FullAccess to the mailbox, IMAP is \
         disabled for the mailbox, or it reconnected too often; tried {NOT_CONNECTED_ATTEMPTS} \
         times)"
    )]
    NotConnected { server: String, reason: String },
    /// Exchange Online's "Server Unavailable. 15" to APPEND: the mailbox is full. Every further
    /// message would meet it, so the user fails at once instead of skipping each message.
    #[error("{server} refused {context}: {reason}: mailbox quota exceeded on the target")]
    QuotaExceeded {
        server: String,
        context: String,
        reason: String,
    },
    /// The server kept us waiting past a limit (retried: ARCHITECTURE.md, rule 5).
    #[error("{server} timed out during {operation}: {reason}")]
    Timeout {
        server: String,
        operation: String,
        reason: String,
    },
    /// The server answered with bytes that are not IMAP; the connection's state is unknown.
    #[error(
        "{server} answered {context} with something that is not IMAP: {excerpt} \
         (expected a response as RFC 3501 defines it)"
    )]
    Unparsable {
        server: String,
        context: String,
        /// A printable excerpt of what it sent.
        excerpt: String,
    },
    /// The server went past a limit on what it may make us hold: an endless line, a literal
    /// over the message size limit, too many folders. It would do so again: not retried.
    #[error("{server} answered {context} with {reason}")]
    Misbehaved {
        server: String,
        context: String,
        reason: String,
    },
    /// The server answered NO/BAD to a command; `context` says what we were doing.
    #[error("{server} refused {context}: {reason}")]
    Refused {
        server: String,
        context: String,
        reason: String,
    },
    /// A multi-line answer (FETCH, SEARCH, LIST) came back short: retried, never trusted.
    #[error("{server} gave an incomplete answer: {reason}")]
    Incomplete { server: String, reason: String },
    /// The target answered OK to APPENDs whose messages it did not store: its UIDNEXT rose by
    /// less than the messages it confirmed (UIDNEXT only grows, so other clients' mail can hide
    /// a loss, never invent one). Retried: the next attempt's fingerprint index finds which are
    /// missing and appends them again, saying so (`folder_sync.rs`); a target that keeps doing
    /// it fails the user with this text.
    #[error(
        "{server} confirmed {confirmed} message(s) appended to {folder} but holds at most \
         {stored} of them (its UIDNEXT went from {uid_next_before} to {uid_next_after}): the \
         target did not keep what it accepted"
    )]
    NotStored {
        server: String,
        folder: String,
        confirmed: u32,
        stored: u32,
        uid_next_before: u32,
        uid_next_after: u32,
    },
    /// Another worker took over this folder while this one stalled.
    #[error("lost the lease on folder {folder} to another worker")]
    LeaseLost { folder: String },
    /// A folder name that cannot travel as an IMAP quoted string (see `imap::quote`).
    #[error("folder name {name:?} cannot be sent to an IMAP server: {reason}")]
    UnquotableName { name: String, reason: &'static str },
    #[error("missing credentials: {0}")]
    MissingCredentials(String),
    /// The identity provider refused to issue a token (a wrong client secret, a mailbox the
    /// service account may not act as): its answer decides, asking again cannot change it.
    #[error("{provider} refused a token for {subject}: {reason}")]
    TokenRefused {
        provider: String,
        subject: String,
        reason: String,
    },
    /// The identity provider could not be reached or failed (network, 429, 5xx).
    #[error("{provider} is unavailable: {reason}")]
    TokenUnavailable { provider: String, reason: String },
    /// OAuth2 settings or secrets that cannot work (a key that is no RSA key, no token file).
    #[error("OAuth2: {0}")]
    OAuth2Setup(String),
    /// A seam failed (checkpoints, credentials, the queue); transient only when the store was
    /// unavailable, not when what it holds cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WorkerError {
    /// Whether retrying (after reconnecting) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            WorkerError::Throttled { .. }
            | WorkerError::ConnectionLost { .. }
            | WorkerError::NotConnected { .. }
            | WorkerError::Timeout { .. }
            | WorkerError::Unparsable { .. }
            | WorkerError::Incomplete { .. }
            | WorkerError::NotStored { .. }
            | WorkerError::LeaseLost { .. }
            | WorkerError::TokenUnavailable { .. } => true,
            WorkerError::Store(error) => error.is_retryable(),
            WorkerError::Connect { transient, .. } => *transient,
            WorkerError::LoginRejected { .. }
            | WorkerError::Refused { .. }
            | WorkerError::QuotaExceeded { .. }
            | WorkerError::UnquotableName { .. }
            | WorkerError::TokenRefused { .. }
            | WorkerError::OAuth2Setup(_)
            | WorkerError::Misbehaved { .. }
            | WorkerError::MissingCredentials(_) => false,
        }
    }
}

/// Attempts at a mailbox Exchange Online says is "authenticated but not connected".
pub const NOT_CONNECTED_ATTEMPTS: u32 = 3;

impl WorkerError {
    /// At most this many attempts, whatever the retry policy allows.
    pub fn attempt_limit(&self) -> u32 {
        match self {
            WorkerError::NotConnected { .. } => NOT_CONNECTED_ATTEMPTS,
            _ => u32::MAX,
        }
    }
}

/// A NO or BAD whose words name a condition of the server rather than of the command:
/// throttling (retried with its backoff), Exchange Online's "not connected" (retried a few
/// times) and its quota answer (fails the user). `None` for an ordinary refusal.
pub fn server_condition(server: &str, context: &str, reason: &str) -> Option<WorkerError> {
    let (server, context, reason) = (server.to_owned(), context.to_owned(), reason.to_owned());
    let lower = reason.to_ascii_lowercase();
    if lower.contains("server unavailable. 15") {
        Some(WorkerError::QuotaExceeded {
            server,
            context,
            reason: cut(&reason),
        })
    } else if lower.contains("authenticated but not connected") {
        Some(WorkerError::NotConnected {
            server,
            reason: cut(&reason),
        })
    } else if looks_throttled(&reason) {
        Some(WorkerError::Throttled { server, reason })
    } else {
        None
    }
}

/// What stopped a batch of commands, given what stopped it so far (`stopped`, if anything) and
/// an error answer to one of its commands. A server that throttles or refuses a command and
/// then closes the connection (Exchange: `NO Request is throttled. Suggested Backoff Time: N
/// milliseconds`, then `* BYE`) stops the batch twice, and its answer says why: it wins over
/// the lost connection, so the retry waits the server's backoff (ARCHITECTURE.md, rule 5).
/// Otherwise the first error stands.
pub fn batch_failure(stopped: Option<WorkerError>, answer: WorkerError) -> WorkerError {
    match stopped {
        None | Some(WorkerError::ConnectionLost { .. }) => answer,
        Some(first) => first,
    }
}

/// Words servers use when they ask a client to slow down: Exchange Online's
/// "Request is throttled. Suggested Backoff Time: N", RFC 5530's `[THROTTLED]`, `[UNAVAILABLE]`,
/// `[LIMIT]`-free "try again later" texts of Zimbra/Gmail.
pub fn looks_throttled(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "[throttled]",
        "throttl",
        "[unavailable]",
        "try again later",
        "too many",
        "backoff",
        "[inuse]",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// A server's suggested pause ("Suggested Backoff Time: 12000 milliseconds"), if it gave one.
pub fn suggested_backoff_ms(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let rest = &lower[lower.find("backoff time:")? + "backoff time:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let value: u64 = digits.parse().ok()?;
    let unit = rest.trim_start()[digits.len()..].trim_start();
    // Saturating: a hostile or broken server may suggest more seconds than milliseconds fit
    // in a u64; the retry policy caps the pause anyway.
    Some(if unit.starts_with("sec") {
        value.saturating_mul(1000)
    } else {
        value
    })
}

/// Classifies an async-imap error for `server` while doing `context`: the one boundary where
/// the library's errors (some of which carry whole buffers as byte arrays) become text a person
/// can read, quoting at most [`EXCERPT_BYTES`] of what the server sent.
pub fn from_imap(server: &str, context: &str, error: async_imap::error::Error) -> WorkerError {
    use async_imap::error::{Error as E, ParseError as P};
    let server = server.to_owned();
    let context = context.to_owned();
    match error {
        E::No(reason) | E::Bad(reason) => {
            let reason = server_words(&reason);
            server_condition(&server, &context, &reason).unwrap_or_else(|| WorkerError::Refused {
                server,
                context,
                reason: cut(&reason),
            })
        }
        E::Io(e) => from_io(&server, &context, e),
        E::ConnectionLost => WorkerError::ConnectionLost {
            server,
            reason: format!("{context}: server closed it"),
        },
        E::Parse(P::Invalid(bytes) | P::DataNotUtf8(bytes, _)) => WorkerError::Unparsable {
            server,
            context,
            excerpt: printable_excerpt(&bytes, EXCERPT_BYTES),
        },
        // An answer we could not parse leaves the connection in an unknown state: reconnect.
        other => WorkerError::Unparsable {
            server,
            context,
            excerpt: printable_excerpt(other.to_string().as_bytes(), EXCERPT_BYTES),
        },
    }
}

/// Bytes of a server's answer quoted in an error.
const EXCERPT_BYTES: usize = 100;

/// Classifies an I/O error on the stream to `server` while doing `context`: a limit the stream's
/// guard enforced, an answer async-imap could not parse, or a lost connection.
pub fn from_io(server: &str, context: &str, error: std::io::Error) -> WorkerError {
    let server = server.to_owned();
    let context = context.to_owned();
    if let Some(hit) = LimitHit::of(&error) {
        return if hit.is_timeout() {
            WorkerError::Timeout {
                server,
                operation: context,
                reason: hit.to_string(),
            }
        } else {
            WorkerError::Misbehaved {
                server,
                context,
                reason: hit.to_string(),
            }
        };
    }
    let text = error.to_string();
    if let Some(excerpt) = unparsed_excerpt(&text) {
        return WorkerError::Unparsable {
            server,
            context,
            excerpt,
        };
    }
    // async-imap's words when the stream ends inside a response (a literal cut short, a BYE
    // in the middle of one): say what happened instead.
    let text = if error.kind() == std::io::ErrorKind::UnexpectedEof
        && text == "bytes remaining in stream"
    {
        "the server closed the connection in the middle of a response".to_owned()
    } else {
        text
    };
    WorkerError::ConnectionLost {
        server,
        reason: format!("{context}: {}", cut(&text)),
    }
}

/// async-imap reports an unparsable answer as an I/O error reading `{nom error:?} during parsing
/// of {buffer as text:?}`: the nom part is a byte array, the buffer may be megabytes. Only the
/// start of the buffer is kept, non-ASCII escaped.
fn unparsed_excerpt(message: &str) -> Option<String> {
    let (_, quoted) = message.split_once(" during parsing of \"")?;
    let text = quoted.strip_suffix('"').unwrap_or(quoted);
    let mut excerpt = String::from("`");
    for (count, c) in text.chars().enumerate() {
        if count == EXCERPT_BYTES {
            excerpt.push_str("`…");
            return Some(excerpt);
        }
        match c {
            '`' => excerpt.push_str("\\`"),
            ' '..='~' => excerpt.push(c),
            _ => excerpt.extend(c.escape_unicode()),
        }
    }
    excerpt.push('`');
    Some(excerpt)
}

/// A server's free text, cut to a length that fits a report line.
fn cut(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    match text.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exchange's throttling answer, then its BYE: the batch fails as throttled (waiting the
    /// suggested backoff), not as a lost connection (waiting the doubling delay).
    #[test]
    fn a_throttling_answer_before_the_lost_connection_is_what_stopped_the_batch() {
        let reason = "Request is throttled. Suggested Backoff Time: 500 milliseconds";
        let throttled = server_condition("t", "APPEND", reason).unwrap();
        let lost = WorkerError::ConnectionLost {
            server: "t".into(),
            reason: "APPEND: server closed it".into(),
        };
        let failure = batch_failure(Some(lost), throttled);
        assert!(matches!(&failure, WorkerError::Throttled { reason: r, .. } if r == reason));
        let quota = server_condition("t", "APPEND", "Server Unavailable. 15").unwrap();
        assert!(matches!(
            batch_failure(Some(failure), quota),
            WorkerError::Throttled { .. }
        ));
    }

    #[test]
    fn exchange_conditions_are_told_apart_from_refusals() {
        let quota = server_condition("t", "APPEND", "Server Unavailable. 15").unwrap();
        assert!(!quota.is_transient());
        assert!(
            quota
                .to_string()
                .contains("mailbox quota exceeded on the target")
        );
        let not_connected =
            server_condition("t", "SELECT", "User is authenticated but not connected.").unwrap();
        assert!(not_connected.is_transient());
        assert_eq!(not_connected.attempt_limit(), NOT_CONNECTED_ATTEMPTS);
        assert!(not_connected.to_string().contains("FullAccess"));
        assert!(server_condition("t", "CREATE", "Folder name is reserved").is_none());
    }

    #[test]
    fn exchange_throttling_text_is_recognised_with_its_backoff() {
        let text = "Request is throttled. Suggested Backoff Time: 12000 milliseconds";
        assert!(looks_throttled(text));
        assert_eq!(suggested_backoff_ms(text), Some(12000));
        assert_eq!(
            suggested_backoff_ms("Suggested Backoff Time: 3 seconds"),
            Some(3000)
        );
        assert!(looks_throttled("[THROTTLED] slow down"));
        // Overflowed and panicked; found writing the server_text fuzz target, whose seeds keep it.
        assert_eq!(
            suggested_backoff_ms("Suggested Backoff Time: 18446744073709551615 seconds"),
            Some(u64::MAX)
        );
        assert!(!looks_throttled("[ALREADYEXISTS] Mailbox exists"));
    }

    #[test]
    fn only_an_unavailable_store_is_worth_retrying() {
        let down = WorkerError::from(StoreError::unavailable("redis"));
        assert!(down.is_transient());
        let altered = WorkerError::from(StoreError::corrupt("unreadable checkpoint"));
        assert!(!altered.is_transient());
        assert_eq!(altered.to_string(), "unreadable checkpoint");
    }

    #[test]
    fn timeouts_are_retried_and_other_limits_are_not() {
        let io = |hit: LimitHit| from_io("source imap://x:1", "LIST", std::io::Error::other(hit));
        let silent = io(LimitHit::Silent { seconds: 3 });
        assert!(silent.is_transient());
        assert_eq!(
            silent.to_string(),
            "source imap://x:1 timed out during LIST: no answer for 3 s"
        );
        let long = io(LimitHit::LineTooLong {
            limit: 10,
            excerpt: "`* LIST`…".into(),
        });
        assert!(!long.is_transient());
        assert!(
            long.to_string()
                .starts_with("source imap://x:1 answered LIST with a response line longer"),
            "{long}"
        );
    }

    #[test]
    fn a_stream_ending_inside_a_response_says_so() {
        let eof = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "bytes remaining in stream",
        );
        let error = from_io("source imap://x:1", "FETCH bodies", eof);
        assert!(error.is_transient());
        assert_eq!(
            error.to_string(),
            "connection to source imap://x:1 lost: FETCH bodies: the server closed the \
             connection in the middle of a response"
        );
    }

    #[test]
    fn unparsable_answers_are_quoted_readably_never_as_byte_arrays() {
        let buffer = "\u{1f}\u{fffd}\u{7}* OK".repeat(40);
        let io = std::io::Error::other(format!(
            "Error(Error {{ input: [31, 151, 7, 21], code: Tag }}) during parsing of {buffer:?}"
        ));
        let error = from_imap("source imap://x:1", "CAPABILITY", io.into()).to_string();
        assert!(
            error.starts_with(
                "source imap://x:1 answered CAPABILITY with something that is not IMAP: \
                 `\\u{1f}\\u{fffd}\\u{7}* OK"
            ),
            "{error}"
        );
        assert!(!error.contains("[31, 151"), "{error}");
        assert!(error.len() < 400, "{error}");
    }
}
