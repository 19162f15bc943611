//! STATUS of a folder that is not selected, for any folder name.
//!
//! async-imap's `status` keeps only the untagged STATUS line whose name equals the one asked
//! for, but compares it with the name as the server escaped it: for a folder called `a"b` it
//! finds no line and reports 0 messages, without an error. Only one STATUS is ever in flight on
//! a connection, and a server sends untagged STATUS only in answer to one (RFC 3501 §7.2.4; we
//! never enable NOTIFY), so here the line is taken whatever its spelling.

use async_imap::imap_proto::{MailboxDatum, Response, StatusAttribute};
use async_imap::types::Mailbox;

use super::ImapConnection;
use super::quote::quoted;
use super::refusal::answer;
use crate::error::WorkerError;

impl ImapConnection {
    /// `STATUS name (items)`: the counts asked for in `items` (`MESSAGES` as `exists`).
    pub async fn status(&mut self, name: &str, items: &str) -> Result<Mailbox, WorkerError> {
        let command = format!("STATUS {} {items}", quoted(name)?);
        let status = self
            .run("STATUS", |session| async move {
                let tag = session.run_command(command).await?;
                let mut mailbox = Mailbox::default();
                loop {
                    let Some(response) = session.read_response().await? else {
                        return Err(async_imap::error::Error::ConnectionLost);
                    };
                    match response.parsed() {
                        Response::MailboxData(MailboxDatum::Status { status, .. }) => {
                            status.iter().for_each(|item| record(&mut mailbox, item));
                        }
                        Response::Done {
                            tag: done,
                            status,
                            outcome,
                        } if *done == tag => return Ok(answer(status, outcome)?.map(|()| mailbox)),
                        _ => {}
                    }
                }
            })
            .await?;
        self.discard_unsolicited();
        status.map_err(|refusal| crate::error::from_imap(&self.server, "STATUS", refusal))
    }
}

fn record(mailbox: &mut Mailbox, item: &StatusAttribute) {
    match *item {
        StatusAttribute::Messages(messages) => mailbox.exists = messages,
        StatusAttribute::Recent(recent) => mailbox.recent = recent,
        StatusAttribute::UidNext(next) => mailbox.uid_next = Some(next),
        StatusAttribute::UidValidity(validity) => mailbox.uid_validity = Some(validity),
        StatusAttribute::Unseen(unseen) => mailbox.unseen = Some(unseen),
        _ => {}
    }
}
