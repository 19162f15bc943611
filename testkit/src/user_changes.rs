//! What a user does between two passes, done to a seeded mailbox so that an incremental pass has
//! something to carry: about 1 % of the messages touched, a third each flagged or unflagged,
//! moved to another folder, and joined by a new message in their folder. The single-mailbox
//! benchmark (`loadtest bench single`) measures passes after it; `coordinator/tests/
//! incremental.rs` checks that such a pass leaves the target exactly the source.

use crate::client::{Result, connect_login, folder_counts};
use futures_util::TryStreamExt;

/// What [`change_one_percent`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Changes {
    pub flagged: usize,
    pub moved: usize,
    pub added: usize,
}

impl Changes {
    pub fn total(&self) -> usize {
        self.flagged + self.moved + self.added
    }
}

/// Touches every 100th message of each folder (by position), in turn: `\Flagged` toggled (with
/// `\Seen` set when flagging), `UID MOVE` to the next folder, a new small message appended
/// beside it. `round` keeps the new messages' Message-IDs apart from earlier calls'.
///
/// Nothing else changes: a folder is left by selecting the next one, never by CLOSE, which
/// would expunge the messages the corpus keeps marked `\Deleted` (a deletion, which a pass
/// without `--mirror-deletions` rightly keeps on the target).
pub async fn change_one_percent(port: u16, user: (&str, &str), round: usize) -> Result<Changes> {
    let folders: Vec<String> = folder_counts(port, user)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut session = connect_login(port, user.0, user.1).await?;
    let mut changes = Changes::default();
    let mut turn = 0usize;
    for (index, folder) in folders.iter().enumerate() {
        session.select(folder).await?;
        let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
        uids.sort_unstable();
        let picked: Vec<u32> = uids.iter().copied().step_by(100).collect();
        let (mut flag, mut unflag, mut moves, mut beside) = (vec![], vec![], vec![], 0usize);
        for uid in picked {
            match turn % 3 {
                0 => {
                    let fetched: Vec<_> = session
                        .uid_fetch(uid.to_string(), "(UID FLAGS)")
                        .await?
                        .try_collect()
                        .await?;
                    let flagged = fetched.iter().any(|f| {
                        f.flags()
                            .any(|flag| matches!(flag, async_imap::types::Flag::Flagged))
                    });
                    if flagged { &mut unflag } else { &mut flag }.push(uid);
                }
                1 => moves.push(uid),
                _ => beside += 1,
            }
            turn += 1;
        }
        for (uids, change) in [
            (&flag, "+FLAGS.SILENT (\\Flagged \\Seen)"),
            (&unflag, "-FLAGS.SILENT (\\Flagged)"),
        ] {
            if !uids.is_empty() {
                let _: Vec<_> = session
                    .uid_store(uid_list(uids), change)
                    .await?
                    .try_collect()
                    .await?;
                changes.flagged += uids.len();
            }
        }
        if !moves.is_empty() {
            let to = &folders[(index + 1) % folders.len()];
            session.uid_mv(uid_list(&moves), to).await?;
            changes.moved += moves.len();
        }
        for n in 0..beside {
            let bytes = format!(
                "Message-ID: <round{round}-{index}-{n}@user-changes.loadtest>\r\n\
                 Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: colleague@example.com\r\n\
                 To: {}\r\nSubject: new mail {round}/{index}/{n}\r\n\r\n{}\r\n",
                user.0,
                "A new message arrived between two passes.\r\n".repeat(40)
            );
            session.append(folder, None, None, bytes.as_bytes()).await?;
            changes.added += 1;
        }
    }
    session.logout().await?;
    Ok(changes)
}

fn uid_list(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
