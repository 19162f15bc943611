//! APPENDing a batch of messages to one folder, pipelined where the server allows it.
//!
//! async-imap's `append` sends a synchronizing literal: the command line, a wait for the
//! server's `+`, the body, a wait for the tagged answer — two round trips and two server wake-ups
//! per message, one message at a time. When the server advertises LITERAL+ (RFC 7888; Dovecot,
//! Cyrus, Exchange Online, Zimbra do), the literal needs no `+`, so we write APPEND after APPEND
//! without waiting and read the tagged answers as they come, keeping up to [`PIPELINE_WINDOW`]
//! commands outstanding. Each message still gets its own command and its own answer, so one
//! refused message is reported alone (MULTIAPPEND, RFC 3502, would refuse the whole batch).
//! Without LITERAL+ the batch is appended one message at a time.

use std::collections::HashMap;

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::{Response, Status};
use tokio::io::AsyncWriteExt;

use super::ImapConnection;
use super::connect::Session;
use crate::error::{WorkerError, from_imap};

/// Commands written ahead of their answers. Enough to keep a loopback or LAN server busy; the
/// answers they produce (a few hundred bytes) always fit the socket buffers, so writing never
/// blocks on answers we have not read yet.
pub const PIPELINE_WINDOW: usize = 32;

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
        let pipelined = self.has_capability("LITERAL+");
        let stopped = self
            .run("APPEND", |session| async {
                if pipelined {
                    append_pipelined(session, folder, messages, &mut answers).await
                } else {
                    append_one_by_one(session, folder, messages, &mut answers).await
                }
            })
            .await
            .err();
        self.discard_unsolicited();
        AppendOutcome { answers, stopped }
    }
}

/// Each APPEND waits for the server's `+` before its literal and for its answer before the
/// next one (servers without LITERAL+). A server may refuse a message at the command line,
/// answering NO instead of `+` (Dovecot does so for a size over its limit): then the literal is
/// never sent. async-imap's `append` takes that answer for a broken exchange, hence our own.
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
            .write_all(append_line(&tag, &mailbox, message, Literal::Synchronizing).as_bytes())
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

/// APPENDs with non-synchronizing literals, up to [`PIPELINE_WINDOW`] ahead of their answers.
/// The tags are ours (`MFA1`, `MFA2`, …): async-imap's counter is private, and a tag need only
/// differ from those of other commands in flight, of which there are none.
async fn append_pipelined(
    session: &mut Session,
    folder: &str,
    messages: &[Appendable<'_>],
    answers: &mut [Option<Result<(), ImapError>>],
) -> async_imap::error::Result<()> {
    let mailbox = quoted(folder)?;
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    let mut next = 0;
    while next < messages.len() || !in_flight.is_empty() {
        if next < messages.len() && in_flight.len() < PIPELINE_WINDOW {
            let tag = format!("MFA{}", next + 1);
            write_append(session, &tag, &mailbox, &messages[next]).await?;
            in_flight.insert(tag, next);
            next += 1;
            continue;
        }
        session.get_mut().flush().await?;
        let (tag, answer) = read_tagged_answer(session).await?;
        if let Some(index) = in_flight.remove(&tag) {
            answers[index] = Some(answer);
        }
    }
    Ok(())
}

/// Writes one APPEND with its literal into the session's write buffer (not flushed).
async fn write_append(
    session: &mut Session,
    tag: &str,
    mailbox: &str,
    message: &Appendable<'_>,
) -> std::io::Result<()> {
    let line = append_line(tag, mailbox, message, Literal::NonSynchronizing);
    let stream = session.get_mut();
    stream.write_all(line.as_bytes()).await?;
    stream.write_all(message.body).await?;
    stream.write_all(b"\r\n").await
}

#[derive(Clone, Copy)]
enum Literal {
    /// `{n}`: the server says `+` before the client sends the bytes.
    Synchronizing,
    /// `{n+}` (LITERAL+): the bytes follow at once.
    NonSynchronizing,
}

/// `TAG APPEND "mailbox" (flags) "date" {n}` with its CRLF.
fn append_line(tag: &str, mailbox: &str, message: &Appendable<'_>, literal: Literal) -> String {
    let mut line = format!("{tag} APPEND {mailbox}");
    for part in [&message.flags, &message.date].into_iter().flatten() {
        line.push(' ');
        line.push_str(part);
    }
    let plus = match literal {
        Literal::Synchronizing => "",
        Literal::NonSynchronizing => "+",
    };
    line.push_str(&format!(" {{{}{plus}}}\r\n", message.body.len()));
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
