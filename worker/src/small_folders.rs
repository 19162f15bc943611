//! A mailbox's small folders are copied by its discovery task, one after another over the
//! connections discovery logged in with, instead of as one task each.
//!
//! A folder task has a fixed cost that a small folder's mail does not pay back: a trip through
//! the queue and a report, a lease and checkpoint in the store, EXAMINE and STATUS on both sides,
//! and usually a fresh login on each side, since the user's tasks land on different workers.
//! `loadtest bench fleet` (100 mailboxes of 14 folders of about 14 messages) showed the servers
//! spending a fifth of their CPU on logins: mailfleet logged in about 5 times for each login
//! mbsync needed. Copied here, a small mailbox costs one login per side, as with mbsync.
//!
//! Big folders still get their own tasks (published first, so other workers start on them at
//! once), and what discovery copies is bounded, so a discovery task stays as short as a folder
//! task. Each folder is copied exactly as its task would copy it ([`sync_folder`]: lease,
//! checkpoints, fingerprint guard), so a discovery killed half-way is redelivered and finds the
//! folders it finished already complete and the one it was in resumable.

use mailfleet_shared::messages::{FolderOutcome, FolderPlan, MailboxUser};

use crate::folder_sync::{FolderFailed, sync_folder};
use crate::job::Job;

/// A folder with at most this many messages is small: its task's fixed cost would outweigh it.
pub const SMALL_FOLDER_MESSAGES: u32 = 200;

/// At most this many messages are copied by one discovery task (fewer than a big folder's part),
/// so it stays well inside the broker's consumer timeout.
pub const SMALL_FOLDERS_TOTAL_MESSAGES: u64 = 2_000;

/// Splits planned folders into those that need their own task and the small ones discovery
/// copies itself (the smallest first, up to [`SMALL_FOLDERS_TOTAL_MESSAGES`]).
pub fn split_small(plans: Vec<FolderPlan>) -> (Vec<FolderPlan>, Vec<FolderPlan>) {
    let mut candidates: Vec<&FolderPlan> = plans
        .iter()
        .filter(|plan| plan.part.is_whole() && plan.messages <= SMALL_FOLDER_MESSAGES)
        .collect();
    candidates.sort_by_key(|plan| plan.messages);
    let mut total = 0;
    let chosen: Vec<String> = candidates
        .into_iter()
        .take_while(|plan| {
            total += u64::from(plan.messages);
            total <= SMALL_FOLDERS_TOTAL_MESSAGES
        })
        .map(|plan| plan.source_name.clone())
        .collect();
    plans
        .into_iter()
        .partition(|plan| !chosen.contains(&plan.source_name))
}

/// What copying the small folders achieved.
#[derive(Debug, Default)]
pub struct SmallFoldersCopied {
    /// Every copied folder's outcome, added up.
    pub outcome: FolderOutcome,
    /// Folders not copied: the first that failed after its retries and every one after it.
    /// They become ordinary folder tasks, which retry on any worker and report their own
    /// failure, so a folder discovery could not copy is never silently dropped.
    pub left_for_tasks: Vec<FolderPlan>,
}

/// Copies `folders` one after another. After a failure the rest are left for tasks too: the
/// cause (a server gone, a lost connection) usually affects them all, and retrying each folder
/// here in turn would hold the discovery task for every folder's backoff.
pub async fn copy_small_folders(
    job: &Job,
    user: &MailboxUser,
    folders: Vec<FolderPlan>,
) -> SmallFoldersCopied {
    let mut copied = SmallFoldersCopied::default();
    let mut folders = folders.into_iter();
    for folder in folders.by_ref() {
        match sync_folder(job, user, &folder).await {
            Ok(synced) => copied.outcome.add(synced.outcome),
            // What the attempt appended is found present by the folder's own task, which
            // counts it then.
            Err(FolderFailed { error, .. }) => {
                tracing::warn!(user = %user.email, folder = %folder.display_name, %error,
                    "small folder left for its own task");
                copied.left_for_tasks.push(folder);
                break;
            }
        }
    }
    copied.left_for_tasks.extend(folders);
    copied
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailfleet_shared::messages::FolderPart;

    fn plan(name: &str, messages: u32) -> FolderPlan {
        FolderPlan {
            source_name: name.into(),
            target_name: name.into(),
            display_name: name.into(),
            selectable: true,
            messages,
            uid_validity: 1,
            part: FolderPart::default(),
        }
    }

    fn names(plans: &[FolderPlan]) -> Vec<&str> {
        plans.iter().map(|p| p.source_name.as_str()).collect()
    }

    #[test]
    fn small_folders_are_copied_by_discovery_up_to_the_total_smallest_first() {
        let mut plans = vec![plan("INBOX", 5_000), plan("Sent", 150)];
        plans.extend((0..12).map(|i| plan(&format!("F{i}"), 200 - i)));
        let (tasks, small) = split_small(plans);
        let small_total: u64 = small.iter().map(|p| u64::from(p.messages)).sum();
        assert!(small_total <= SMALL_FOLDERS_TOTAL_MESSAGES);
        assert!(names(&small).contains(&"Sent"), "the smallest is taken");
        assert!(
            names(&tasks).contains(&"INBOX"),
            "a big folder keeps its task"
        );
        assert!(
            names(&tasks).contains(&"F0"),
            "the largest small one is left over"
        );
        assert_eq!(tasks.len() + small.len(), 14);
    }

    #[test]
    fn a_folder_split_into_parts_keeps_its_tasks() {
        let mut parted = plan("INBOX", 150);
        parted.part = FolderPart::first_of(&(1..=150).collect::<Vec<_>>(), 100);
        let (tasks, small) = split_small(vec![parted, plan("Sent", 3)]);
        assert_eq!(
            (names(&tasks), names(&small)),
            (vec!["INBOX"], vec!["Sent"])
        );
    }
}
