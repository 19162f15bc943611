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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// Log in to source and target, list folders, publish one `SyncFolder` per folder.
    DiscoverUser { batch: String, user: MailboxUser },
    /// Copy one folder's messages that are not on the target yet.
    SyncFolder {
        batch: String,
        user: MailboxUser,
        folder: FolderPlan,
    },
}

impl Task {
    pub fn task_id(&self) -> String {
        match self {
            Task::DiscoverUser { batch, user } => format!("{batch}/{}/discover", user.email),
            Task::SyncFolder {
                batch,
                user,
                folder,
            } => {
                format!("{batch}/{}/folder/{}", user.email, folder.source_name)
            }
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// Discovery finished and published `folder_tasks` SyncFolder tasks for the user.
    Discovered {
        task_id: String,
        batch: String,
        user: String,
        folder_tasks: u32,
        /// Every folder of the user on the target (display names), including empty ones.
        folders: Vec<String>,
        /// Folders not migrated (excluded by no rule the user chose, e.g. unmappable names).
        skipped: Vec<SkippedItem>,
    },
    FolderSynced {
        task_id: String,
        batch: String,
        user: String,
        folder: String,
        outcome: FolderOutcome,
    },
    /// The task failed for good; `folder` is `None` when the whole user failed (e.g. login).
    Failed {
        task_id: String,
        batch: String,
        user: String,
        folder: Option<String>,
        error: String,
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
}
