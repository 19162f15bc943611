//! Verification: is every source message on the target exactly once? Independent of
//! checkpoints and of what any run reported — it reads both servers now.
//!
//! For each folder the batch migrates, both sides' messages are fingerprinted (one FETCH of
//! the fingerprint's header fields and sizes per folder) and compared as multisets: a source
//! message with fewer copies on the target is *missing*, one with more copies is *duplicated*.
//! Messages only on the target (mail delivered there after the MX switch, or deleted on the
//! source and kept) are counted, not faulted; messages over the batch's size limit are expected
//! to be missing. A message once on each side whose system flags differ (read, answered,
//! flagged, deleted, draft) is listed, not faulted: a pass carries the source's flag changes,
//! but a change made on the target since is kept (ARCHITECTURE.md), so a difference is either
//! that or a change the next pass has yet to carry.

use std::collections::HashMap;

use chrono::NaiveDate;
use mailfleet_shared::fingerprint::{Fingerprint, header_value};
use mailfleet_shared::messages::MailboxUser;
use serde::{Deserialize, Serialize};

use crate::discovery::select_user_folders;
use crate::error::WorkerError;
use crate::imap::ImapConnection;
use crate::imap::flags::flag_text;
use crate::imap::quote::quotable;
use crate::job::{Job, Side};
use crate::target_index::fetch_fingerprints;

/// Enough of a message for a person to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    pub subject: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
    pub size: u64,
    /// INTERNALDATE's day (what `received_after` compares with).
    #[serde(skip)]
    pub received: Option<NaiveDate>,
    /// Its system flags, in [`SYSTEM_FLAGS`] order (what [`FlagDifference`] compares).
    #[serde(skip)]
    pub flags: Vec<&'static str>,
}

/// The flags a user sees and a pass carries; keywords are left out, since a target may not
/// keep them (its PERMANENTFLAGS, a server profile) and the report names those already.
const SYSTEM_FLAGS: [&str; 5] = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// A message once on each side whose system flags differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagDifference {
    pub folder: String,
    pub message: MessageSummary,
    pub source_flags: Vec<String>,
    pub target_flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub folder: String,
    /// Copies missing on the target, or extra copies on it.
    pub copies: u32,
    pub message: MessageSummary,
}

/// Serialized by `verify --json` and the API; read back by `verify --api`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct UserVerification {
    pub folders: usize,
    pub source_messages: u64,
    pub target_messages: u64,
    pub missing: Vec<Discrepancy>,
    pub duplicated: Vec<Discrepancy>,
    /// Missing because they exceed the batch's size limit (reported as skipped when synced).
    pub over_size_limit: u64,
    /// On the target only (delivered there after the MX switch, or deleted on the source and
    /// kept without `--mirror-deletions`).
    pub target_only: u64,
    /// On the source, received before the batch's `received_after` day: not migrated.
    pub before_received_after: u64,
    /// Messages once on each side whose system flags differ; not a fault (see the module).
    #[serde(default)]
    pub flags_differ: Vec<FlagDifference>,
}

impl UserVerification {
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty()
    }
}

/// How many copies of each fingerprint a folder holds, with one message to describe it.
type FolderIndex = HashMap<Fingerprint, (u32, MessageSummary)>;

pub async fn verify_user(job: &Job, user: &MailboxUser) -> Result<UserVerification, WorkerError> {
    let mut source = job.open(Side::Source, user).await?;
    let mut target = job.open(Side::Target, user).await?;
    let selection = select_user_folders(job, user, &mut source, &mut target).await?;
    let mut result = UserVerification::default();
    for folder in selection.wanted.iter().filter(|f| f.selectable) {
        result.folders += 1;
        let source_index = index_folder(&mut source, &folder.source_name).await?;
        let target_index = if selection.target_folders.contains(&folder.target_name) {
            index_folder(&mut target, &folder.target_name).await?
        } else {
            FolderIndex::new()
        };
        compare(
            &folder.display_name,
            &source_index,
            &target_index,
            Scope {
                max_message_size: job.max_message_size,
                received_after: job.received_after,
            },
            &mut result,
        );
    }
    source.logout().await;
    target.logout().await;
    Ok(result)
}

/// Which source messages the batch migrates at all.
#[derive(Debug, Clone, Copy)]
struct Scope {
    max_message_size: u64,
    received_after: Option<NaiveDate>,
}

fn compare(
    folder: &str,
    source: &FolderIndex,
    target: &FolderIndex,
    scope: Scope,
    result: &mut UserVerification,
) {
    result.source_messages += source.values().map(|(n, _)| u64::from(*n)).sum::<u64>();
    result.target_messages += target.values().map(|(n, _)| u64::from(*n)).sum::<u64>();
    for (fingerprint, (copies, message)) in source {
        let on_target = target.get(fingerprint).map_or(0, |(n, _)| *n);
        let discrepancy = |copies: u32| Discrepancy {
            folder: folder.to_owned(),
            copies,
            message: message.clone(),
        };
        let too_old = scope
            .received_after
            .zip(message.received)
            .is_some_and(|(after, received)| received < after);
        if too_old && on_target == 0 {
            result.before_received_after += u64::from(*copies);
        } else if on_target < *copies {
            if message.size > scope.max_message_size {
                result.over_size_limit += u64::from(copies - on_target);
            } else {
                result.missing.push(discrepancy(copies - on_target));
            }
        } else if on_target > *copies {
            result.duplicated.push(discrepancy(on_target - copies));
        } else if let Some((1, copy)) = target.get(fingerprint).filter(|_| *copies == 1)
            && copy.flags != message.flags
        {
            let names = |flags: &[&str]| flags.iter().map(|f| (*f).to_owned()).collect();
            result.flags_differ.push(FlagDifference {
                folder: folder.to_owned(),
                message: message.clone(),
                source_flags: names(&message.flags),
                target_flags: names(&copy.flags),
            });
        }
    }
    result.target_only += target
        .iter()
        .filter(|(fingerprint, _)| !source.contains_key(fingerprint))
        .map(|(_, (n, _))| u64::from(*n))
        .sum::<u64>();
}

/// Fingerprints of every message of `folder`, read-only (EXAMINE), checked complete.
async fn index_folder(
    connection: &mut ImapConnection,
    folder: &str,
) -> Result<FolderIndex, WorkerError> {
    let folder = quotable(folder)?;
    let mailbox = connection.run("EXAMINE", |s| s.examine(folder)).await?;
    let mut index = FolderIndex::new();
    if mailbox.exists == 0 {
        return Ok(index);
    }
    fetch_fingerprints(
        connection,
        1,
        " INTERNALDATE FLAGS",
        |fingerprint, fetch| {
            let mut message = summary(
                fetch.header().unwrap_or_default(),
                u64::from(fetch.size.unwrap_or(0)),
            );
            message.received = fetch.internal_date().map(|d| d.date_naive());
            let flags: Vec<String> = fetch.flags().map(|flag| flag_text(&flag)).collect();
            message.flags = SYSTEM_FLAGS
                .into_iter()
                .filter(|system| flags.iter().any(|f| f.eq_ignore_ascii_case(system)))
                .collect();
            index.entry(fingerprint).or_insert((0, message)).0 += 1;
        },
    )
    .await
    .map_err(|error| match error {
        WorkerError::Incomplete { server, reason } => WorkerError::Incomplete {
            server,
            reason: format!("{folder}: {reason}"),
        },
        other => other,
    })?;
    connection.run("CLOSE", |s| s.close()).await?;
    connection.discard_unsolicited();
    Ok(index)
}

fn summary(header: &[u8], size: u64) -> MessageSummary {
    let field = |name: &str| {
        header_value(header, name).map(|value| String::from_utf8_lossy(&value).trim().to_owned())
    };
    MessageSummary {
        subject: field("SUBJECT"),
        date: field("DATE"),
        message_id: field("MESSAGE-ID"),
        size,
        received: None,
        flags: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(u8, u32, u64)]) -> FolderIndex {
        entries
            .iter()
            .map(|&(id, copies, size)| {
                let message = MessageSummary {
                    subject: Some(format!("m{id}")),
                    date: None,
                    message_id: None,
                    size,
                    received: None,
                    flags: Vec::new(),
                };
                (Fingerprint([id; 16]), (copies, message))
            })
            .collect()
    }

    #[test]
    fn missing_duplicated_oversized_and_target_only_are_told_apart() {
        let source = index(&[(1, 1, 10), (2, 2, 10), (3, 1, 10), (4, 1, 999)]);
        let target = index(&[(1, 1, 10), (2, 1, 10), (3, 3, 10), (9, 2, 10)]);
        let mut result = UserVerification::default();
        let scope = Scope {
            max_message_size: 100,
            received_after: None,
        };
        compare("INBOX", &source, &target, scope, &mut result);
        let names = |list: &[Discrepancy]| -> Vec<(Option<String>, u32)> {
            list.iter()
                .map(|d| (d.message.subject.clone(), d.copies))
                .collect()
        };
        assert_eq!(names(&result.missing), [(Some("m2".into()), 1)]);
        assert_eq!(names(&result.duplicated), [(Some("m3".into()), 2)]);
        assert_eq!((result.over_size_limit, result.target_only), (1, 2));
        assert_eq!((result.source_messages, result.target_messages), (5, 7));
        assert!(!result.is_exact());
        assert!(result.flags_differ.is_empty());
    }

    #[test]
    fn differing_system_flags_are_listed_without_making_a_user_inexact() {
        let flagged = |mut index: FolderIndex, id: u8, flags: &[&'static str]| {
            index.get_mut(&Fingerprint([id; 16])).unwrap().1.flags = flags.to_vec();
            index
        };
        let source = flagged(
            index(&[(1, 1, 10), (2, 1, 10)]),
            1,
            &["\\Seen", "\\Flagged"],
        );
        let target = flagged(index(&[(1, 1, 10), (2, 1, 10)]), 1, &["\\Seen"]);
        let mut result = UserVerification::default();
        let scope = Scope {
            max_message_size: 100,
            received_after: None,
        };
        compare("INBOX", &source, &target, scope, &mut result);
        assert_eq!(result.flags_differ.len(), 1);
        let difference = &result.flags_differ[0];
        assert_eq!(difference.message.subject.as_deref(), Some("m1"));
        assert_eq!(difference.source_flags, ["\\Seen", "\\Flagged"]);
        assert_eq!(difference.target_flags, ["\\Seen"]);
        assert!(result.is_exact(), "a flag difference is told, not a fault");
    }
}
