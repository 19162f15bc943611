//! What a server's tagged NO or BAD says, in its own words and by its response code.
//!
//! async-imap keeps the parsed answer in its error text in Rust's Debug form, `code:
//! Some(TryCreate), info: Some("Mailbox doesn't exist")`; [`answer`] writes our own exchanges'
//! refusals the same way. [`server_words`] turns both back into what the server sent, `[TRYCREATE]
//! Mailbox doesn't exist`, for errors a person reads and for [`RefusalCode::of`]. imap-proto
//! knows RFC 3501's codes and leaves others, RFC 5530's `[ALREADYEXISTS]` among them, at the
//! start of the information text, where they read the same.

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::{Outcome, Status};

/// A refusal the engine acts on rather than reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// `[TRYCREATE]` (RFC 3501 §6.3.11): the folder is missing; create it and try again.
    TryCreate,
    /// `[ALREADYEXISTS]` (RFC 5530): CREATE of a folder that is there, which is what we wanted.
    AlreadyExists,
}

impl RefusalCode {
    /// The code of the refusal whose text (async-imap's, [`answer`]'s, or [`server_words`]) is
    /// `reason`.
    pub fn of(reason: &str) -> Option<RefusalCode> {
        let words = server_words(reason);
        match response_code(&words) {
            Some(code) if code.eq_ignore_ascii_case("TRYCREATE") => Some(RefusalCode::TryCreate),
            Some(code) if code.eq_ignore_ascii_case("ALREADYEXISTS") => {
                Some(RefusalCode::AlreadyExists)
            }
            Some(_) => None,
            // Text only where a server gives no code: those built on go-imap v1 answer CREATE
            // of an existing folder with "mailbox already exists" alone. Dovecot sends
            // `NO [ALREADYEXISTS] Mailbox already exists`; TRYCREATE is RFC 3501's own.
            None => words
                .to_ascii_lowercase()
                .contains("already exists")
                .then_some(RefusalCode::AlreadyExists),
        }
    }
}

/// The response code a refusal's words start with: `TRYCREATE` of `[TRYCREATE] …`.
fn response_code(words: &str) -> Option<&str> {
    let (inside, _) = words.strip_prefix('[')?.split_once(']')?;
    inside.split(' ').next()
}

/// A refusal as the server sent it (`[CODE] text`), from the Debug form async-imap and
/// [`answer`] write it in; any other text as it is.
pub fn server_words(reason: &str) -> String {
    let Some((code, info)) = reason
        .strip_prefix("code: ")
        .and_then(|rest| rest.split_once(", info: "))
    else {
        return reason.to_owned();
    };
    let code = code
        .strip_prefix("Some(")
        .and_then(|code| code.strip_suffix(')'))
        .map(code_name);
    let info = info
        .strip_prefix("Some(\"")
        .and_then(|info| info.strip_suffix("\")"))
        .map(unescaped);
    match (code, info) {
        (Some(code), Some(info)) => format!("[{code}] {info}"),
        (Some(code), None) => format!("[{code}]"),
        (None, Some(info)) => info,
        (None, None) => "(no text)".to_owned(),
    }
}

/// A response code's name from its Debug form: `TRYCREATE` of `TryCreate`, `OVERQUOTA` of
/// `Other("OVERQUOTA", None)`, `UIDNEXT` of `UidNext(5)`.
fn code_name(debug: &str) -> String {
    if let Some(other) = debug.strip_prefix("Other(\"") {
        return other.split('"').next().unwrap_or_default().to_owned();
    }
    debug
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The text of a Debug-escaped string (`\"`, `\\`, `\n`, `\u{…}`…).
fn unescaped(debug: &str) -> String {
    let mut text = String::with_capacity(debug.len());
    let mut chars = debug.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('r') => text.push('\r'),
            Some('t') => text.push('\t'),
            Some('0') => text.push('\0'),
            Some('u') => {
                let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                text.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => text.push(other),
            None => {}
        }
    }
    text
}

/// A tagged answer to one of our own commands: `Ok(Ok)` done, `Ok(Err)` refused (NO or BAD),
/// `Err` for a status that ends the exchange.
pub fn answer(
    status: &Status,
    outcome: &Outcome<'_>,
) -> async_imap::error::Result<Result<(), ImapError>> {
    // Same wording as async-imap's own errors, so callers classify both alike.
    let text = || format!("code: {:?}, info: {:?}", outcome.code, outcome.information);
    match status {
        Status::Ok => Ok(Ok(())),
        Status::No => Ok(Err(ImapError::No(text()))),
        Status::Bad => Ok(Err(ImapError::Bad(text()))),
        other => Err(ImapError::Io(std::io::Error::other(format!(
            "unexpected tagged status {other:?}: {}",
            text()
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trycreate_is_read_from_the_parsed_code() {
        let dovecot = "code: Some(TryCreate), info: Some(\"Mailbox doesn't exist: Lost\")";
        assert_eq!(RefusalCode::of(dovecot), Some(RefusalCode::TryCreate));
        assert_eq!(
            RefusalCode::of("[TRYCREATE] no such mailbox"),
            Some(RefusalCode::TryCreate)
        );
        assert_eq!(RefusalCode::of("code: None, info: Some(\"too big\")"), None);
    }

    #[test]
    fn a_folder_named_like_a_code_is_no_code() {
        let text = "code: Some(Parse), info: Some(\"already exists\")";
        assert_eq!(RefusalCode::of(text), None);
        let text = "code: None, info: Some(\"Mailbox doesn't exist: trycreate\")";
        assert_eq!(RefusalCode::of(text), None);
    }

    #[test]
    fn alreadyexists_by_rfc_5530_code_or_by_text_without_one() {
        let dovecot = "code: None, info: Some(\"[ALREADYEXISTS] Mailbox already exists\")";
        assert_eq!(RefusalCode::of(dovecot), Some(RefusalCode::AlreadyExists));
        let courier = "code: None, info: Some(\"Mailbox already exists.\")";
        assert_eq!(RefusalCode::of(courier), Some(RefusalCode::AlreadyExists));
        let other = "code: None, info: Some(\"[CANNOT] Invalid mailbox name\")";
        assert_eq!(RefusalCode::of(other), None);
    }

    #[test]
    fn refusals_read_as_the_server_sent_them() {
        let exchange = "code: None, info: Some(\"Request is throttled. Suggested Backoff Time: \
                        500 milliseconds\")";
        assert_eq!(
            server_words(exchange),
            "Request is throttled. Suggested Backoff Time: 500 milliseconds"
        );
        let quoted =
            "code: Some(Other(\"OVERQUOTA\", None)), info: Some(\"say \\\"no\\\" \\u{e9}\")";
        assert_eq!(server_words(quoted), "[OVERQUOTA] say \"no\" \u{e9}");
        assert_eq!(server_words("code: Some(Alert), info: None"), "[ALERT]");
        assert_eq!(server_words("code: None, info: None"), "(no text)");
        assert_eq!(server_words("plain words"), "plain words");
        let dovecot = "code: Some(TryCreate), info: Some(\"Mailbox doesn't exist: Lost\")";
        assert_eq!(
            server_words(dovecot),
            "[TRYCREATE] Mailbox doesn't exist: Lost"
        );
        assert_eq!(
            RefusalCode::of(&server_words(dovecot)),
            Some(RefusalCode::TryCreate)
        );
    }

    #[test]
    fn our_answers_read_like_async_imaps() {
        let outcome = Outcome {
            code: Some(async_imap::imap_proto::ResponseCode::TryCreate),
            information: Some("Mailbox doesn't exist".into()),
        };
        let Ok(Err(ImapError::No(text))) = answer(&Status::No, &outcome) else {
            panic!("a NO is a refusal");
        };
        assert_eq!(RefusalCode::of(&text), Some(RefusalCode::TryCreate));
    }
}
