//! Tasks and reports: the only things that travel through the queue (as JSON).
//!
//! They carry ids and names, never secrets: workers look passwords up in the credential store.
//! Every task has a deterministic `task_id`, and every report repeats it, so a collector that sees
//! a report twice (redelivery after a crash) counts it once.

use serde::{Deserialize, Serialize};

/// One CSV row, without its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxUser {
    /// Target mailbox (EmailAddress column).
    pub email: String,
    /// Source login (UserName column).
    pub user_name: String,
    /// Courier/Oracle-style root folder of the user on the source (UserRoot column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_root: Option<String>,
}

/// A source folder to copy, as planned by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderPlan {
    /// Name on the source, exactly as LIST returned it (modified UTF-7).
    pub source_name: String,
    /// Name to use on the target, already encoded for it (modified UTF-7, target separator).
    pub target_name: String,
    /// Human-readable target path (decoded, `/`-separated) for reports.
    pub display_name: String,
    /// Whether messages are copied (false for `\Noselect` parents, which are only created).
    pub selectable: bool,
    pub messages: u32,
    pub uid_validity: u32,
    /// Which part of a big folder this task copies; the default is the whole folder.
    #[serde(default, skip_serializing_if = "FolderPart::is_whole")]
    pub part: FolderPart,
}

/// A big folder is copied in parts so that every task stays short (well inside the broker's
/// consumer timeout) and a huge folder moves on whichever worker is free next.
///
/// Parts of one folder run one after another: each part's task publishes the next when it
/// finishes. They share the folder's single checkpoint, so the fingerprint guard stays exact
/// (two writers appending into one target folder at once could claim each other's copies of
/// identical messages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderPart {
    /// 0 for the first part (and for a folder copied whole).
    pub index: u32,
    /// This part copies source UIDs above this one.
    pub after_uid: u32,
    /// Upper UID bounds of this part and the parts after it, ascending. Empty for the last part,
    /// which copies everything above `after_uid` (mail that arrived since discovery included).
    pub upper_bounds: Vec<u32>,
}

impl FolderPart {
    /// Splits a folder whose UIDs (ascending) are `uids` into parts of at most `part_size`.
    pub fn first_of(uids: &[u32], part_size: usize) -> FolderPart {
        let chunks: Vec<&[u32]> = uids.chunks(part_size.max(1)).collect();
        let upper_bounds = chunks
            .iter()
            .take(chunks.len().saturating_sub(1))
            .filter_map(|chunk| chunk.last().copied())
            .collect();
        FolderPart {
            index: 0,
            after_uid: 0,
            upper_bounds,
        }
    }

    pub fn is_whole(&self) -> bool {
        self.index == 0 && self.upper_bounds.is_empty()
    }

    /// The highest source UID this part copies; `None` for the last part.
    pub fn upper_uid(&self) -> Option<u32> {
        self.upper_bounds.first().copied()
    }

    /// The part after this one, if any.
    pub fn next(&self) -> Option<FolderPart> {
        let upper = self.upper_uid()?;
        Some(FolderPart {
            index: self.index + 1,
            after_uid: upper,
            upper_bounds: self.upper_bounds[1..].to_vec(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Log in to source and target, list folders, publish one `SyncFolder` per folder.
    DiscoverUser {
        batch: String,
        /// The sync pass that published it (see [`Task::pass`]).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pass: String,
        user: MailboxUser,
    },
    /// Copy one folder's messages that are not on the target yet.
    SyncFolder {
        batch: String,
        /// The sync pass that published it (see [`Task::pass`]).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pass: String,
        user: MailboxUser,
        folder: FolderPlan,
    },
}

impl Task {
    pub fn task_id(&self) -> String {
        match self {
            Task::DiscoverUser { batch, user, .. } => format!("{batch}/{}/discover", user.email),
            Task::SyncFolder {
                batch,
                user,
                folder,
                ..
            } if folder.part.is_whole() => {
                format!("{batch}/{}/folder/{}", user.email, folder.source_name)
            }
            Task::SyncFolder {
                batch,
                user,
                folder,
                ..
            } => format!(
                "{batch}/{}/folder/{}/part/{}",
                user.email, folder.source_name, folder.part.index
            ),
        }
    }

    pub fn batch(&self) -> &str {
        match self {
            Task::DiscoverUser { batch, .. } | Task::SyncFolder { batch, .. } => batch,
        }
    }

    pub fn user(&self) -> &MailboxUser {
        match self {
            Task::DiscoverUser { user, .. } | Task::SyncFolder { user, .. } => user,
        }
    }

    /// The sync pass that published this task (or the discovery that did): a coordinator
    /// counts only its own pass's reports, since tasks of an interrupted earlier pass may still
    /// be in the broker and be worked on meanwhile. Empty from publishers that predate it.
    pub fn pass(&self) -> &str {
        match self {
            Task::DiscoverUser { pass, .. } | Task::SyncFolder { pass, .. } => pass,
        }
    }
}

/// A message or folder that was deliberately not copied; always reported, never silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedItem {
    pub folder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub reason: String,
}

/// What a folder sync achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderOutcome {
    /// Messages appended by this run.
    pub appended: u64,
    /// Messages found already on the target (earlier run, or crash before checkpoint).
    pub already_present: u64,
    pub bytes: u64,
    pub skipped: Vec<SkippedItem>,
    /// Copies whose flags were brought in line with changes made on the source.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags_updated: u64,
    /// Copies moved on the target because their message moved to another folder on the source.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub moved: u64,
    /// Copies removed because their message was deleted on the source (`--mirror-deletions`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleted: u64,
    /// Messages deleted on the source whose copies stay on the target (no
    /// `--mirror-deletions`): listed, not a warning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_on_source_kept: Vec<SkippedItem>,
    /// Folders renamed on the target because they were renamed on the source.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renamed_folders: u64,
    /// What was migrated but not exactly as on the source, because the target's rules
    /// (`server_profile`) or its PERMANENTFLAGS say so: a keyword not kept, a folder renamed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SkippedItem>,
}

impl FolderOutcome {
    pub fn is_empty(&self) -> bool {
        *self == FolderOutcome::default()
    }

    /// Adds another folder's outcome to this one.
    pub fn add(&mut self, other: FolderOutcome) {
        self.appended += other.appended;
        self.already_present += other.already_present;
        self.bytes += other.bytes;
        self.skipped.extend(other.skipped);
        self.flags_updated += other.flags_updated;
        self.moved += other.moved;
        self.deleted += other.deleted;
        self.renamed_folders += other.renamed_folders;
        self.warnings.extend(other.warnings);
        self.deleted_on_source_kept
            .extend(other.deleted_on_source_kept);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// Discovery finished and published `folder_tasks` SyncFolder tasks for the user.
    Discovered {
        task_id: String,
        batch: String,
        /// The pass of the task this reports on ([`Task::pass`]).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pass: String,
        user: String,
        folder_tasks: u32,
        /// Messages of folders that needed no task: complete on the target already.
        #[serde(default, skip_serializing_if = "is_zero")]
        already_synced: u64,
        /// What discovery did itself: copied a mailbox's small folders, which would cost more as
        /// tasks than their mail does (see the worker's `small_folders`; not in `folder_tasks`),
        /// and mirrored what the user did on the source since the last pass (the worker's
        /// `mirror`: flags, moves, deletions).
        #[serde(default, skip_serializing_if = "FolderOutcome::is_empty")]
        copied: FolderOutcome,
        /// Every folder of the user on the target (display names), including empty ones.
        folders: Vec<String>,
        /// Folders not migrated (excluded by no rule the user chose, e.g. unmappable names).
        skipped: Vec<SkippedItem>,
    },
    FolderSynced {
        task_id: String,
        batch: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pass: String,
        user: String,
        folder: String,
        outcome: FolderOutcome,
        /// This was one part of a big folder and the next part is queued: the folder is not
        /// finished yet.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        continued: bool,
    },
    /// The task failed for good; `folder` is `None` when the whole user failed (e.g. login).
    Failed {
        task_id: String,
        batch: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pass: String,
        user: String,
        folder: Option<String>,
        error: String,
        /// What the task did before it failed: messages it appended are on the target and
        /// count in the user's report (and are found present by the next pass).
        #[serde(default, skip_serializing_if = "FolderOutcome::is_empty")]
        outcome: FolderOutcome,
    },
}

impl Report {
    pub fn task_id(&self) -> &str {
        match self {
            Report::Discovered { task_id, .. }
            | Report::FolderSynced { task_id, .. }
            | Report::Failed { task_id, .. } => task_id,
        }
    }

    pub fn user(&self) -> &str {
        match self {
            Report::Discovered { user, .. }
            | Report::FolderSynced { user, .. }
            | Report::Failed { user, .. } => user,
        }
    }

    pub fn pass(&self) -> &str {
        match self {
            Report::Discovered { pass, .. }
            | Report::FolderSynced { pass, .. }
            | Report::Failed { pass, .. } => pass,
        }
    }
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_folder_splits_into_consecutive_parts_the_last_open_ended() {
        let uids = [3, 4, 9, 10, 11, 20, 21];
        let first = FolderPart::first_of(&uids, 3);
        assert_eq!((first.after_uid, first.upper_uid()), (0, Some(9)));
        let second = first.next().unwrap();
        assert_eq!(
            (second.index, second.after_uid, second.upper_uid()),
            (1, 9, Some(20))
        );
        let last = second.next().unwrap();
        assert_eq!(
            (last.index, last.after_uid, last.upper_uid()),
            (2, 20, None)
        );
        assert!(last.next().is_none());
        assert!(!last.is_whole());
    }

    #[test]
    fn a_small_folder_is_one_whole_part() {
        let part = FolderPart::first_of(&[1, 2, 3], 3);
        assert!(part.is_whole());
        assert!(part.next().is_none());
        assert!(FolderPart::first_of(&[], 3).is_whole());
    }
}
