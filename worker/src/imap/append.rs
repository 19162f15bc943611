//! APPENDing a batch of messages to one folder, one message at a time.
//!
//! Each APPEND sends a synchronizing literal: the command line, the server's `+`, the body, the
//! tagged answer. A server may refuse a message at the command line, answering NO instead of
//! `+` (Dovecot does so for a size over its limit); async-imap's `append` takes that for a
//! broken exchange, hence this module.
//!
//! Why not pipelined with LITERAL+ (RFC 7888), which saves a round trip per message: it was
//! measured, and it breaks exactly-once. With 32 APPENDs written ahead, a worker killed mid-batch
//! leaves the server holding up to 32 complete commands it goes on executing after the client is
//! gone; the next attempt builds its fingerprint index of the target before those land, and
//! appends them again (`faults.rs` caught it: duplicates after kill -9). One message at a time
//! keeps that window to the single message whose answer was not read. Pipelining needs a repair
//! step first: APPENDUID (UIDPLUS) to tell our copies from late arrivals, and removing our copy
//! of any message a late arrival duplicates.

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::{Response, Status};
use tokio::io::AsyncWriteExt;

use super::ImapConnection;
use super::connect::Session;
use crate::error::{WorkerError, from_imap};

/// One message to append.
pub struct Appendable<'a> {
    pub body: &'a [u8],
    /// An IMAP flag list, `(\Seen $Label1)`, or `None` for no flags.
    pub flags: Option<String>,
    /// INTERNALDATE as a quoted RFC 3501 date-time.
    pub date: Option<String>,
}

/// What became of each message: `Some(Ok)` appended, `Some(Err)` refused by the server (NO or
/// BAD, that message alone), `None` unknown (the batch stopped before its answer arrived).
/// `stopped` says why the batch stopped, if it did: the connection failed or timed out, and the
/// messages without an answer may or may not be on the target.
#[derive(Debug, Default)]
pub struct AppendOutcome {
    pub answers: Vec<Option<Result<(), ImapError>>>,
    pub stopped: Option<WorkerError>,
}

impl ImapConnection {
    /// Appends `messages` to `folder`, in order.
    pub async fn append_batch(
        &mut self,
        folder: &str,
        messages: &[Appendable<'_>],
    ) -> AppendOutcome {
        let mut answers: Vec<Option<Result<(), ImapError>>> =
            messages.iter().map(|_| None).collect();
        let stopped = self
            .run("APPEND", |session| {
                append_one_by_one(session, folder, messages, &mut answers)
            })
            .await
            .err();
        self.discard_unsolicited();
        AppendOutcome { answers, stopped }
    }
}

/// Each APPEND waits for the server's `+` before its literal and for its answer before the
/// next one. A message refused at the command line never has its literal sent.
async fn append_one_by_one(
    session: &mut Session,
    folder: &str,
    messages: &[Appendable<'_>],
    answers: &mut [Option<Result<(), ImapError>>],
) -> async_imap::error::Result<()> {
    let mailbox = quoted(folder)?;
    for (index, (message, answer)) in messages.iter().zip(answers.iter_mut()).enumerate() {
        let tag = format!("MFA{}", index + 1);
        let stream = session.get_mut();
        stream
            .write_all(append_line(&tag, &mailbox, message).as_bytes())
            .await?;
        stream.flush().await?;
        if let Some(refused) = read_until_continuation(session, &tag).await? {
            *answer = Some(refused);
            continue;
        }
        let stream = session.get_mut();
        stream.write_all(message.body).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
        loop {
            let (answered, result) = read_tagged_answer(session).await?;
            if answered == tag {
                *answer = Some(result);
                break;
            }
        }
    }
    Ok(())
}

/// Waits for the server's go-ahead for a literal: `None` on `+`, or the server's answer when it
/// refused the command outright.
async fn read_until_continuation(
    session: &mut Session,
    tag: &str,
) -> async_imap::error::Result<Option<Result<(), ImapError>>> {
    loop {
        let Some(response) = session.read_response().await? else {
            return Err(ImapError::ConnectionLost);
        };
        match response.parsed() {
            Response::Continue { .. } => return Ok(None),
            Response::Done {
                tag: answered,
                status,
                outcome,
            } if answered.0 == tag => return answer(status, outcome).map(Some),
            _ => {}
        }
    }
}

/// `TAG APPEND "mailbox" (flags) "date" {n}` with its CRLF.
fn append_line(tag: &str, mailbox: &str, message: &Appendable<'_>) -> String {
    let mut line = format!("{tag} APPEND {mailbox}");
    for part in [&message.flags, &message.date].into_iter().flatten() {
        line.push(' ');
        line.push_str(part);
    }
    line.push_str(&format!(" {{{}}}\r\n", message.body.len()));
    line
}

/// Reads responses up to the next tagged one; untagged data (EXISTS, RECENT) is dropped.
async fn read_tagged_answer(
    session: &mut Session,
) -> async_imap::error::Result<(String, Result<(), ImapError>)> {
    loop {
        let Some(response) = session.read_response().await? else {
            return Err(ImapError::ConnectionLost);
        };
        if let Response::Done {
            tag,
            status,
            outcome,
        } = response.parsed()
        {
            return Ok((tag.0.clone(), answer(status, outcome)?));
        }
    }
}

/// A tagged answer to one APPEND: `Ok(Ok)` appended, `Ok(Err)` that message refused; `Err`
/// for a status that ends the exchange.
fn answer(
    status: &Status,
    outcome: &async_imap::imap_proto::Outcome<'_>,
) -> async_imap::error::Result<Result<(), ImapError>> {
    // Same wording as async-imap's own errors, so callers classify both alike.
    let text = || format!("code: {:?}, info: {:?}", outcome.code, outcome.information);
    match status {
        Status::Ok => Ok(Ok(())),
        Status::No => Ok(Err(ImapError::No(text()))),
        Status::Bad => Ok(Err(ImapError::Bad(text()))),
        other => Err(ImapError::Io(std::io::Error::other(format!(
            "unexpected APPEND status {other:?}: {}",
            text()
        )))),
    }
}

/// A mailbox name as an IMAP quoted string. Names are modified UTF-7 (ASCII); CR and LF cannot
/// be quoted at all.
fn quoted(name: &str) -> async_imap::error::Result<String> {
    if name.contains(['\r', '\n']) {
        return Err(ImapError::Bad(format!(
            "folder name {name:?} holds a line break"
        )));
    }
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Whether a refusal asks us to create the folder first (RFC 3501 `[TRYCREATE]`): not a
/// problem with this message, so never a reason to skip it.
pub fn asks_to_create_folder(reason: &str) -> bool {
    reason.to_ascii_lowercase().contains("trycreate")
}

/// Turns a server's answer to one APPEND into the engine's error, for reports.
pub fn refusal(connection: &ImapConnection, error: ImapError) -> WorkerError {
    from_imap(&connection.server, "APPEND", error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_are_quoted_with_escapes() {
        assert_eq!(quoted("INBOX/a b").unwrap(), "\"INBOX/a b\"");
        assert_eq!(quoted(r#"say "hi"\x"#).unwrap(), r#""say \"hi\"\\x""#);
        assert!(quoted("bad\r\nname").is_err());
    }

    #[test]
    fn trycreate_is_recognised_in_any_spelling() {
        assert!(asks_to_create_folder(
            "code: Some(TryCreate), info: Some(\"Mailbox doesn't exist\")"
        ));
        assert!(asks_to_create_folder("[TRYCREATE] no such mailbox"));
        assert!(!asks_to_create_folder(
            "code: None, info: Some(\"too big\")"
        ));
    }
}
