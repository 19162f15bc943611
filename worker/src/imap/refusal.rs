//! What a server's tagged NO or BAD says, read from its response code where it gives one.
//!
//! async-imap keeps the parsed answer in its error text, `code: Some(TryCreate), info: ...`;
//! [`answer`] writes our own exchanges' refusals the same way, so one reader serves both.
//! imap-proto knows RFC 3501's `[TRYCREATE]` and leaves codes it does not know, RFC 5530's
//! `[ALREADYEXISTS]` among them, at the start of the information text.

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
    /// The code of the refusal whose text (as async-imap or [`answer`] wrote it) is `reason`.
    pub fn of(reason: &str) -> Option<RefusalCode> {
        let code = reason
            .strip_prefix("code: Some(")
            .and_then(|rest| rest.split(')').next());
        match code {
            Some("TryCreate") => return Some(RefusalCode::TryCreate),
            Some(_) => return None,
            None => {}
        }
        let info = reason
            .split_once("info: Some(\"")
            .map_or(reason, |(_, info)| info);
        if starts_with_code(info, "[ALREADYEXISTS]") {
            return Some(RefusalCode::AlreadyExists);
        }
        if starts_with_code(info, "[TRYCREATE]") {
            return Some(RefusalCode::TryCreate);
        }
        // Text only where a server gives no RFC 5530 code: those built on go-imap v1 answer
        // CREATE of an existing folder with "mailbox already exists" alone. Dovecot sends
        // `NO [ALREADYEXISTS] Mailbox already exists`; TRYCREATE is RFC 3501's own.
        info.to_ascii_lowercase()
            .contains("already exists")
            .then_some(RefusalCode::AlreadyExists)
    }
}

fn starts_with_code(info: &str, code: &str) -> bool {
    info.get(..code.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(code))
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
