//! Turns the stream of worker reports into per-user results (ARCHITECTURE.md, "From a CSV row to an
//! APPEND").
//!
//! Idempotent: a report whose task id was already counted (a redelivered task) is ignored, and
//! so is a report of another pass (tasks an interrupted earlier pass left in the broker, which
//! workers may still be finishing). A user is finished when its discovery failed, or when as
//! many folder reports arrived as discovery announced folder tasks.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use mailfleet_shared::messages::{FolderOutcome, Report, SkippedItem};
use serde::Serialize;

/// User states reported by the one-shot `migrate` command (names from ARCHITECTURE.md, "States").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UserStatus {
    Queued,
    Syncing,
    Completed,
    CompletedWithWarnings,
    Failed,
}

impl UserStatus {
    pub fn is_success(self) -> bool {
        matches!(
            self,
            UserStatus::Completed | UserStatus::CompletedWithWarnings
        )
    }
}

/// One user's line in the `--json` document and the human summary.
#[derive(Debug, Clone, Serialize)]
pub struct UserResult {
    pub email: String,
    pub status: UserStatus,
    /// Folders of the user on the target (display names).
    pub folders: Vec<String>,
    /// Messages confirmed on the target: copied now or found there already.
    pub items_synced: u64,
    /// Of those, copied by this run.
    pub items_copied: u64,
    pub items_skipped: u64,
    pub bytes_copied: u64,
    pub skipped: Vec<SkippedItem>,
    /// Copies whose flags took changes made on the source since the last pass.
    pub flags_updated: u64,
    /// Copies moved on the target because their message moved on the source.
    pub moved: u64,
    /// Copies removed because their message was deleted on the source (`--mirror-deletions`).
    pub deleted: u64,
    /// Deleted on the source, kept on the target (no `--mirror-deletions`).
    pub deleted_on_source_kept: Vec<SkippedItem>,
    /// Folders renamed on the target because they were renamed on the source.
    pub renamed_folders: u64,
    /// Migrated, but not exactly as on the source: keywords the target cannot keep, folders
    /// renamed by the target's rules (`--target-profile`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SkippedItem>,
    pub errors: Vec<String>,
    /// From the user's admission (its discovery task published) to its last report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl UserResult {
    /// Adds what a task copied, found present or skipped.
    fn count(&mut self, outcome: FolderOutcome) {
        self.items_synced += outcome.appended + outcome.already_present;
        self.items_copied += outcome.appended;
        self.bytes_copied += outcome.bytes;
        self.items_skipped += outcome.skipped.len() as u64;
        self.skipped.extend(outcome.skipped);
        self.flags_updated += outcome.flags_updated;
        self.moved += outcome.moved;
        self.deleted += outcome.deleted;
        self.renamed_folders += outcome.renamed_folders;
        self.warnings.extend(outcome.warnings);
        self.deleted_on_source_kept
            .extend(outcome.deleted_on_source_kept);
    }
}

#[derive(Debug)]
struct UserProgress {
    result: UserResult,
    admitted_at: Option<Instant>,
    folder_tasks: Option<u32>,
    folder_reports: u32,
    discovery_failed: bool,
}

impl UserProgress {
    fn is_finished(&self) -> bool {
        self.discovery_failed || self.folder_tasks == Some(self.folder_reports)
    }
}

#[derive(Debug, Default)]
pub struct Collector {
    /// The pass whose reports count.
    pass: String,
    users: BTreeMap<String, UserProgress>,
    seen_tasks: HashSet<String>,
    /// Kept with every report, so asking whether the run is over does not walk every user.
    finished_users: usize,
}

impl Collector {
    pub fn new<'a>(pass: &str, emails: impl IntoIterator<Item = &'a str>) -> Self {
        let mut collector = Collector {
            pass: pass.to_owned(),
            ..Collector::default()
        };
        for email in emails {
            collector.users.insert(
                email.to_owned(),
                UserProgress {
                    result: UserResult {
                        email: email.to_owned(),
                        status: UserStatus::Queued,
                        folders: Vec::new(),
                        items_synced: 0,
                        items_copied: 0,
                        items_skipped: 0,
                        bytes_copied: 0,
                        skipped: Vec::new(),
                        flags_updated: 0,
                        moved: 0,
                        deleted: 0,
                        deleted_on_source_kept: Vec::new(),
                        renamed_folders: 0,
                        warnings: Vec::new(),
                        errors: Vec::new(),
                        seconds: None,
                    },
                    admitted_at: None,
                    folder_tasks: None,
                    folder_reports: 0,
                    discovery_failed: false,
                },
            );
        }
        collector
    }

    /// The clock of these users' timings starts now.
    pub fn admitted<'a>(&mut self, emails: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        for email in emails {
            if let Some(user) = self.users.get_mut(email) {
                user.admitted_at.get_or_insert(now);
            }
        }
    }

    /// Counts `report` once; returns the user's email when this report finished that user.
    pub fn apply(&mut self, report: Report) -> Option<String> {
        if report.pass() != self.pass {
            tracing::debug!(
                task = report.task_id(),
                pass = report.pass(),
                "report of another pass ignored"
            );
            return None;
        }
        if !self.seen_tasks.insert(report.task_id().to_owned()) {
            return None;
        }
        let user = self.users.get_mut(report.user())?;
        let was_finished = user.is_finished();
        match report {
            Report::Discovered {
                folder_tasks,
                already_synced,
                copied,
                folders,
                skipped,
                ..
            } => {
                user.folder_tasks = Some(folder_tasks);
                user.result.items_synced += already_synced;
                user.result.folders = folders;
                user.result.items_skipped += skipped.len() as u64;
                user.result.skipped.extend(skipped);
                user.result.count(copied);
            }
            Report::FolderSynced {
                outcome, continued, ..
            } => {
                if !continued {
                    user.folder_reports += 1;
                }
                user.result.count(outcome);
            }
            Report::Failed {
                folder,
                error,
                outcome,
                ..
            } => {
                match folder {
                    Some(_) => user.folder_reports += 1,
                    None => user.discovery_failed = true,
                }
                user.result.errors.push(error);
                user.result.count(outcome);
            }
        }
        user.result.status = status_of(user);
        match (was_finished, user.is_finished()) {
            (false, true) => {
                self.finished_users += 1;
                user.result.seconds = user.admitted_at.map(|at| at.elapsed().as_secs_f64());
                Some(user.result.email.clone())
            }
            (true, false) => {
                self.finished_users -= 1;
                None
            }
            _ => None,
        }
    }

    pub fn result(&self, email: &str) -> Option<&UserResult> {
        self.users.get(email).map(|u| &u.result)
    }

    pub fn all_finished(&self) -> bool {
        self.finished_users == self.users.len()
    }

    pub fn results(&self) -> Vec<UserResult> {
        self.users.values().map(|u| u.result.clone()).collect()
    }
}

fn status_of(user: &UserProgress) -> UserStatus {
    if !user.is_finished() {
        UserStatus::Syncing
    } else if !user.result.errors.is_empty() {
        UserStatus::Failed
    } else if user.result.items_skipped > 0 || !user.result.warnings.is_empty() {
        UserStatus::CompletedWithWarnings
    } else {
        UserStatus::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "p1";

    fn discovered(user: &str, tasks: u32) -> Report {
        Report::Discovered {
            task_id: format!("b/{user}/discover"),
            batch: "b".into(),
            pass: PASS.into(),
            user: user.into(),
            folder_tasks: tasks,
            already_synced: 0,
            copied: FolderOutcome::default(),
            folders: vec!["INBOX".into()],
            skipped: vec![],
        }
    }

    fn synced(user: &str, folder: &str, appended: u64) -> Report {
        Report::FolderSynced {
            task_id: format!("b/{user}/folder/{folder}"),
            batch: "b".into(),
            pass: PASS.into(),
            user: user.into(),
            folder: folder.into(),
            outcome: FolderOutcome {
                appended,
                ..Default::default()
            },
            continued: false,
        }
    }

    #[test]
    fn user_finishes_after_all_announced_folders_and_duplicates_count_once() {
        let mut collector = Collector::new(PASS, ["a@x.org"]);
        assert_eq!(collector.apply(discovered("a@x.org", 2)), None);
        assert_eq!(collector.apply(synced("a@x.org", "INBOX", 3)), None);
        assert_eq!(
            collector.apply(synced("a@x.org", "INBOX", 3)),
            None,
            "redelivered report"
        );
        assert_eq!(
            collector.apply(synced("a@x.org", "Sent", 1)),
            Some("a@x.org".into())
        );
        let result = &collector.results()[0];
        assert_eq!(
            (result.items_copied, result.status),
            (4, UserStatus::Completed)
        );
        assert!(collector.all_finished());
    }

    #[test]
    fn failed_discovery_finishes_the_user_as_failed() {
        let mut collector = Collector::new(PASS, ["a@x.org", "b@x.org"]);
        let failure = Report::Failed {
            task_id: "b/a@x.org/discover".into(),
            batch: "b".into(),
            pass: PASS.into(),
            user: "a@x.org".into(),
            folder: None,
            error: "login rejected".into(),
            outcome: FolderOutcome::default(),
        };
        assert_eq!(collector.apply(failure), Some("a@x.org".into()));
        assert_eq!(collector.results()[0].status, UserStatus::Failed);
        assert!(!collector.all_finished());
    }

    /// A folder task that failed after appending messages: they are on the target and count.
    #[test]
    fn a_failed_folder_counts_what_it_copied_before_it_failed() {
        let mut collector = Collector::new(PASS, ["a@x.org"]);
        assert_eq!(collector.apply(discovered("a@x.org", 2)), None);
        assert_eq!(collector.apply(synced("a@x.org", "INBOX", 3)), None);
        let failure = Report::Failed {
            task_id: "b/a@x.org/Sent".into(),
            batch: "b".into(),
            pass: PASS.into(),
            user: "a@x.org".into(),
            folder: Some("Sent".into()),
            error: "a@x.org: folder Sent: connection lost".into(),
            outcome: FolderOutcome {
                appended: 5,
                bytes: 5_000,
                ..FolderOutcome::default()
            },
        };
        assert_eq!(collector.apply(failure), Some("a@x.org".into()));
        let result = &collector.results()[0];
        assert_eq!(result.status, UserStatus::Failed);
        assert_eq!((result.items_copied, result.items_synced), (8, 8));
        assert_eq!(result.bytes_copied, 5_000);
    }

    #[test]
    fn reports_of_an_earlier_pass_are_not_counted() {
        let mut collector = Collector::new(PASS, ["a@x.org"]);
        let mut earlier = synced("a@x.org", "INBOX", 5);
        if let Report::FolderSynced { pass, .. } = &mut earlier {
            *pass = "p0".into();
        }
        assert_eq!(collector.apply(discovered("a@x.org", 1)), None);
        assert_eq!(collector.apply(earlier), None, "not this pass's report");
        assert!(!collector.all_finished());
        assert_eq!(
            collector.apply(synced("a@x.org", "INBOX", 2)),
            Some("a@x.org".into())
        );
        assert_eq!(collector.results()[0].items_copied, 2);
    }
}
