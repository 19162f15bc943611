//! APPENDing a batch of messages to one folder, one literal at a time: as one MULTIAPPEND
//! command (RFC 3502) where the server offers it, else as one APPEND per message.
//!
//! Each APPEND sends a synchronizing literal: the command line, the server's `+`, the body, the
//! tagged answer; the next command line follows the body at once (see [`append_overlapped`]).
//! A server may refuse a message at the command line, answering NO instead of `+` (Dovecot does
//! so for a size over its limit); async-imap's `append` takes that for a broken exchange, hence
//! this module.
//!
//! Why not pipelined with LITERAL+ (RFC 7888), which saves a round trip per message: it was
//! measured, and it breaks exactly-once. With 32 APPENDs written ahead, a worker killed mid-batch
//! leaves the server holding up to 32 complete commands it goes on executing after the client is
//! gone; the next attempt builds its fingerprint index of the target before those land, and
//! appends them again (`faults.rs` caught it: duplicates after kill -9). Synchronizing literals
//! keep that window to the single message whose answer was not read. Pipelining needs a repair
//! step first: APPENDUID (UIDPLUS) to tell our copies from late arrivals, and removing our copy
//! of any message a late arrival duplicates.

use async_imap::error::Error as ImapError;
use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{Response, ResponseCode};
use tokio::io::AsyncWriteExt;

use super::ImapConnection;
use super::connect::Session;
use super::quote::quoted;
use super::refusal::answer;
use crate::error::WorkerError;

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
    /// The target UID of each appended message, where the server said it (APPENDUID, RFC
    /// 4315) to a one-message APPEND; what a later `UID STORE` on the copy needs.
    pub uids: Vec<Option<u32>>,
    pub stopped: Option<WorkerError>,
}

impl ImapConnection {
    /// Appends `messages` to `folder`, in order: as one MULTIAPPEND command where the server
    /// offers it, else (or when the server refuses the MULTIAPPEND) one APPEND per message.
    /// `each_uid`: one APPEND per message all the same, because the caller needs each copy's
    /// UID (a MULTIAPPEND's APPENDUID names a set, not which message got which UID).
    pub async fn append_batch(
        &mut self,
        folder: &str,
        messages: &[Appendable<'_>],
        each_uid: bool,
    ) -> AppendOutcome {
        if messages.len() > 1 && !each_uid && self.has_capability("MULTIAPPEND") {
            let all_at_once = self
                .run("APPEND", |session| {
                    append_all_at_once(session, folder, messages)
                })
                .await;
            self.discard_unsolicited();
            match all_at_once {
                Ok(Ok(())) => {
                    return AppendOutcome {
                        answers: messages.iter().map(|_| Some(Ok(()))).collect(),
                        uids: messages.iter().map(|_| None).collect(),
                        stopped: None,
                    };
                }
                // Refused as a whole, so none was appended (RFC 3502 §6.3.11): one by one,
                // the refusal falls on the messages it concerns and the others go in.
                Ok(Err(refusal)) => {
                    tracing::debug!(%refusal, folder, "MULTIAPPEND refused; appending one by one");
                }
                Err(stopped) => {
                    return AppendOutcome {
                        answers: messages.iter().map(|_| None).collect(),
                        uids: messages.iter().map(|_| None).collect(),
                        stopped: Some(stopped),
                    };
                }
            }
        }
        self.append_one_by_one(folder, messages).await
    }

    async fn append_one_by_one(
        &mut self,
        folder: &str,
        messages: &[Appendable<'_>],
    ) -> AppendOutcome {
        let mut answers: Vec<Option<Result<(), ImapError>>> =
            messages.iter().map(|_| None).collect();
        let mut uids: Vec<Option<u32>> = messages.iter().map(|_| None).collect();
        let stopped = self
            .run("APPEND", |session| {
                append_overlapped(session, folder, messages, &mut answers, &mut uids)
            })
            .await
            .err();
        self.discard_unsolicited();
        AppendOutcome {
            answers,
            uids,
            stopped,
        }
    }
}

/// Each APPEND's command line goes out right behind the previous message's literal, so the
/// server's answer to one and its `+` for the next arrive together: one round trip per message
/// instead of two. The literals stay synchronizing, so the server never holds more than one
/// complete message we have no answer for (see the module doc). A message refused at the
/// command line never has its literal sent.
async fn append_overlapped(
    session: &mut Session,
    folder: &str,
    messages: &[Appendable<'_>],
    answers: &mut [Option<Result<(), ImapError>>],
    uids: &mut [Option<u32>],
) -> async_imap::error::Result<()> {
    let Some(first) = messages.first() else {
        return Ok(());
    };
    let mailbox = mailbox_argument(folder)?;
    let stream = session.get_mut();
    stream
        .write_all(append_line(0, &mailbox, first).as_bytes())
        .await?;
    stream.flush().await?;
    for (index, message) in messages.iter().enumerate() {
        // The previous message's answer comes first, then this one's `+` (or its refusal).
        let go_ahead = loop {
            match next_event(session).await? {
                Event::GoAhead => break true,
                Event::Answer(tag, result, uid) => {
                    if let Some(answered) = message_index(&tag, messages.len()) {
                        answers[answered] = Some(result);
                        uids[answered] = uid;
                        if answered == index {
                            break false;
                        }
                    }
                }
            }
        };
        let stream = session.get_mut();
        if go_ahead {
            stream.write_all(message.body).await?;
            stream.write_all(b"\r\n").await?;
        }
        if let Some(next) = messages.get(index + 1) {
            stream
                .write_all(append_line(index + 1, &mailbox, next).as_bytes())
                .await?;
        }
        stream.flush().await?;
    }
    while answers.iter().any(Option::is_none) {
        if let Event::Answer(tag, result, uid) = next_event(session).await?
            && let Some(answered) = message_index(&tag, messages.len())
        {
            answers[answered] = Some(result);
            uids[answered] = uid;
        }
    }
    Ok(())
}

/// The whole batch as one APPEND command (RFC 3502 MULTIAPPEND): each message's flags, date and
/// literal follow the previous literal, and the server stores them all in one transaction when
/// the final CRLF arrives, or none. For the server that is one mailbox opened and one commit
/// per batch instead of per message (Dovecot opens the folder for every APPEND to a folder that
/// is not selected, and syncs its index for each). The literals stay synchronizing, so nothing
/// is stored before the command is complete: a connection lost mid-batch stores nothing, and
/// the window in which a stored batch's answer can be lost is the same single answer as before.
/// `Ok(Err)` when the server refused the command (nothing stored); `Err` when the exchange
/// broke (the batch may or may not be stored).
async fn append_all_at_once(
    session: &mut Session,
    folder: &str,
    messages: &[Appendable<'_>],
) -> async_imap::error::Result<Result<(), ImapError>> {
    let mut line = format!("{MULTIAPPEND_TAG} APPEND {}", mailbox_argument(folder)?);
    for message in messages {
        line.push_str(&message_spec(message));
        let stream = session.get_mut();
        stream.write_all(line.as_bytes()).await?;
        stream.flush().await?;
        line.clear();
        match next_event(session).await? {
            Event::GoAhead => {}
            Event::Answer(_, Ok(()), _) => {
                return Err(protocol_error("APPEND completed before all its messages"));
            }
            Event::Answer(_, Err(refusal), _) => return Ok(Err(refusal)),
        }
        session.get_mut().write_all(message.body).await?;
    }
    let stream = session.get_mut();
    stream.write_all(b"\r\n").await?;
    stream.flush().await?;
    match next_event(session).await? {
        Event::Answer(_, result, _) => Ok(result),
        Event::GoAhead => Err(protocol_error("a continuation after the last message")),
    }
}

const MULTIAPPEND_TAG: &str = "MFM";

/// The folder as an APPEND argument. Discovery skips names that cannot be quoted, so a refusal
/// here means a task built elsewhere; it fails that task's messages like any refusal.
fn mailbox_argument(folder: &str) -> async_imap::error::Result<String> {
    quoted(folder).map_err(|e| ImapError::Bad(e.to_string()))
}

fn protocol_error(what: &str) -> ImapError {
    ImapError::Io(std::io::Error::other(format!(
        "unexpected answer to APPEND: {what}"
    )))
}

/// What the server said that matters to an APPEND exchange.
enum Event {
    /// `+`: send the literal.
    GoAhead,
    /// The tagged answer to one APPEND, with the UID its APPENDUID gave a single message.
    Answer(String, Result<(), ImapError>, Option<u32>),
}

/// Reads up to the next continuation request or tagged answer; untagged data (EXISTS, RECENT)
/// is dropped.
async fn next_event(session: &mut Session) -> async_imap::error::Result<Event> {
    loop {
        let Some(response) = session.read_response().await? else {
            return Err(ImapError::ConnectionLost);
        };
        match response.parsed() {
            Response::Continue { .. } => return Ok(Event::GoAhead),
            Response::Done {
                tag,
                status,
                outcome,
            } => {
                let uid = match &outcome.code {
                    Some(ResponseCode::AppendUid(_, set)) => match set.as_slice() {
                        [UidSetMember::Uid(uid)] => Some(*uid),
                        _ => None,
                    },
                    _ => None,
                };
                return Ok(Event::Answer(tag.0.clone(), answer(status, outcome)?, uid));
            }
            _ => {}
        }
    }
}

/// Our tags are `MFA1`, `MFA2`, … for the batch's messages in order (async-imap's counter is
/// private; a tag need only differ from those of other commands in flight, of which there are
/// none).
fn tag(index: usize) -> String {
    format!("MFA{}", index + 1)
}

fn message_index(tag: &str, messages: usize) -> Option<usize> {
    let number: usize = tag.strip_prefix("MFA")?.parse().ok()?;
    number.checked_sub(1).filter(|&index| index < messages)
}

/// `TAG APPEND "mailbox" (flags) "date" {n}` with its CRLF, for the batch's message `index`.
fn append_line(index: usize, mailbox: &str, message: &Appendable<'_>) -> String {
    format!("{} APPEND {mailbox}{}", tag(index), message_spec(message))
}

/// ` (flags) "date" {n}` and CRLF: what announces one message in an APPEND command.
fn message_spec(message: &Appendable<'_>) -> String {
    let mut spec = String::new();
    for part in [&message.flags, &message.date].into_iter().flatten() {
        spec.push(' ');
        spec.push_str(part);
    }
    spec.push_str(&format!(" {{{}}}\r\n", message.body.len()));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_tags_name_messages_of_the_batch() {
        assert_eq!(message_index(&tag(0), 3), Some(0));
        assert_eq!(message_index("MFA3", 3), Some(2));
        assert_eq!(message_index("MFA4", 3), None);
        assert_eq!(message_index("MFA0", 3), None);
        assert_eq!(message_index("A0001", 3), None);
    }
}
