//! The worker's one error type, and the line between "try again" and "give up".
//!
//! Design rule 5: throttling, dropped connections and timeouts never fail a user by themselves;
//! they are retried with backoff. Everything else (a rejected login, a folder the target refuses)
//! is permanent and becomes a user-facing error that names the user and folder.

use mailfleet_shared::store_error::StoreError;

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
    #[error("{server} did not answer within {seconds} s ({operation})")]
    Timeout {
        server: String,
        operation: String,
        seconds: u64,
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
            | WorkerError::Timeout { .. }
            | WorkerError::Incomplete { .. }
            | WorkerError::LeaseLost { .. }
            | WorkerError::TokenUnavailable { .. } => true,
            WorkerError::Store(error) => error.is_retryable(),
            WorkerError::Connect { transient, .. } => *transient,
            WorkerError::LoginRejected { .. }
            | WorkerError::Refused { .. }
            | WorkerError::UnquotableName { .. }
            | WorkerError::TokenRefused { .. }
            | WorkerError::OAuth2Setup(_)
            | WorkerError::MissingCredentials(_) => false,
        }
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

/// Classifies an async-imap error for `server` while doing `context`.
pub fn from_imap(server: &str, context: &str, error: async_imap::error::Error) -> WorkerError {
    use async_imap::error::Error as E;
    let server = server.to_owned();
    match error {
        E::No(reason) | E::Bad(reason) if looks_throttled(&reason) => {
            WorkerError::Throttled { server, reason }
        }
        E::No(reason) | E::Bad(reason) => WorkerError::Refused {
            server,
            context: context.to_owned(),
            reason,
        },
        E::Io(e) => WorkerError::ConnectionLost {
            server,
            reason: format!("{context}: {e}"),
        },
        E::ConnectionLost => WorkerError::ConnectionLost {
            server,
            reason: format!("{context}: server closed it"),
        },
        // An answer we could not parse leaves the connection in an unknown state: reconnect.
        other => WorkerError::ConnectionLost {
            server,
            reason: format!("{context}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
