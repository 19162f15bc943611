//! Discovery: what folders a user has, what they are called on the target, and which tasks
//! copy them.
//!
//! LIST both sides, read each side's personal namespace, map every name (namespaces, separators,
//! special-use, modified UTF-7), apply the batch's include/exclude rules, create the target
//! hierarchy parent-before-child (`\Noselect` parents only as hierarchy), and plan one folder task
//! per selectable folder holding messages. Anything not migrated is reported with its reason.

use std::collections::HashSet;

use async_imap::imap_proto::NameAttribute;
use async_imap::types::Name;
use mailfleet_shared::checkpoint::FolderCheckpoint;
use mailfleet_shared::folder_filter::FolderFilter;
use mailfleet_shared::folder_map::{FolderMapper, ListedFolder, MappedFolder, Namespace};
use mailfleet_shared::messages::{FolderOutcome, FolderPart, FolderPlan, MailboxUser, SkippedItem};

use crate::error::WorkerError;
use crate::imap::ImapConnection;
use crate::imap::namespace::personal_namespace;
use crate::imap::quote::{listed_name, quotable, quoted};
use crate::imap::refusal::RefusalCode;
use crate::imap::responses::at_most;
use crate::job::{Job, Side};
use crate::mirror::mirror_user;
use crate::renames::follow_renames;

#[derive(Debug, Default)]
pub struct Discovery {
    /// One task per selectable folder that holds messages.
    pub plans: Vec<FolderPlan>,
    /// Every folder of the user on the target (display names), empty ones included.
    pub folders: Vec<String>,
    pub skipped: Vec<SkippedItem>,
    /// Messages in the planned folders, for progress.
    pub total_messages: u64,
    /// Messages of folders already complete on the target per their checkpoints: no task.
    pub already_synced: u64,
    /// What the user did on the source since the last pass, done on the target (`mirror`).
    pub mirrored: FolderOutcome,
}

/// Virtual folders that show messages stored elsewhere (Gmail's "All Mail", "Starred"); copying
/// them would duplicate every message.
const VIRTUAL_ATTRIBUTES: [&str; 2] = ["\\All", "\\Flagged"];

/// The user's source folders the batch migrates, with their target names, and what the target
/// already has: everything discovery decides before it changes anything.
pub struct FolderSelection {
    /// Wanted folders, parents before children (`\Noselect` parents only as hierarchy).
    pub wanted: Vec<MappedFolder>,
    /// Raw names of the folders that exist on the target.
    pub target_folders: HashSet<String>,
    /// Folders not migrated, with the reason.
    pub skipped: Vec<SkippedItem>,
    /// Folders migrated under another name by the target's rules, with the reason.
    pub renamed: Vec<SkippedItem>,
}

/// LIST and NAMESPACE on both sides, names mapped, the batch's rules applied.
pub async fn select_user_folders(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    target: &mut ImapConnection,
) -> Result<FolderSelection, WorkerError> {
    let source_folders = list_folders(source, user.user_root.as_deref()).await?;
    let target_folders = list_folders(target, None).await?;
    let source_namespace = namespace_of(source, &source_folders).await?;
    let target_namespace = namespace_of(target, &target_folders).await?;

    let mapper = FolderMapper::new(
        source_namespace,
        user.user_root.clone(),
        target_namespace,
        &target_folders,
    )
    .with_rules(job.target_profile.rules());
    let (mapped, unmappable) = mapper.map_all(&source_folders);
    let mut skipped: Vec<SkippedItem> = unmappable
        .into_iter()
        .map(|skip| folder_skip(&skip.display_name, skip.reason))
        .collect();
    // A folder the target's rules renamed is copied, and the report says where it went.
    let renamed = mapped
        .iter()
        .filter_map(|m| Some(folder_skip(&m.display_name, m.renamed.clone()?)))
        .collect();
    let mapped = drop_unsendable(mapped, &mut skipped);
    let wanted = select_folders(&job.filter, &source_folders, mapped, &mut skipped);
    Ok(FolderSelection {
        wanted,
        target_folders: target_folders.into_iter().map(|f| f.raw_name).collect(),
        skipped,
        renamed,
    })
}

pub async fn discover(job: &Job, user: &MailboxUser) -> Result<Discovery, WorkerError> {
    let mut source = job.open(Side::Source, user).await?;
    let mut target = job.open(Side::Target, user).await?;
    let FolderSelection {
        wanted,
        target_folders: mut existing,
        skipped,
        renamed,
    } = select_user_folders(job, user, &mut source, &mut target).await?;
    let mut discovery = Discovery {
        skipped,
        ..Discovery::default()
    };
    // Before the hierarchy is created, so a renamed folder is renamed, not created and copied.
    discovery.mirrored.renamed_folders =
        follow_renames(job, user, &mut source, &mut target, &wanted).await?;

    let mut refused: Vec<String> = Vec::new();
    let mut on_target: Vec<MappedFolder> = Vec::new();
    for folder in wanted {
        if refused
            .iter()
            .any(|parent| is_under(&folder.display_name, parent))
        {
            discovery.skipped.push(folder_skip(
                &folder.display_name,
                "its parent folder could not be created on the target".into(),
            ));
            continue;
        }
        if !existing.contains(&folder.target_name) {
            if let Err(reason) = create_folder(&mut target, &folder.target_name).await? {
                discovery.skipped.push(folder_skip(
                    &folder.display_name,
                    format!("the target refused to create the folder: {reason}"),
                ));
                refused.push(folder.display_name.clone());
                continue;
            }
            existing.insert(folder.target_name.clone());
        }
        discovery.folders.push(folder.display_name.clone());
        if folder.selectable {
            on_target.push(folder.clone());
            plan_folder(job, user, &mut source, &mut target, folder, &mut discovery).await?;
        }
    }
    // Before any folder is copied, so that a moved message is moved, not copied again.
    let renamed_folders = discovery.mirrored.renamed_folders;
    discovery.mirrored = mirror_user(job, user, &mut source, &mut target, &on_target).await?;
    discovery.mirrored.renamed_folders = renamed_folders;
    discovery.mirrored.warnings.extend(renamed);
    job.release(Side::Source, user, source);
    job.release(Side::Target, user, target);
    Ok(discovery)
}

/// Applies the batch's rules and drops virtual folders; keeps `\Noselect` parents only where a
/// wanted folder lies beneath them.
fn select_folders(
    filter: &FolderFilter,
    listed: &[ListedFolder],
    mapped: Vec<MappedFolder>,
    skipped: &mut Vec<SkippedItem>,
) -> Vec<MappedFolder> {
    let is_virtual = |name: &str| {
        listed.iter().any(|f| {
            f.raw_name == name
                && f.attributes
                    .iter()
                    .any(|a| VIRTUAL_ATTRIBUTES.iter().any(|v| v.eq_ignore_ascii_case(a)))
        })
    };
    let mut selectable = Vec::new();
    for folder in mapped.iter().filter(|f| f.selectable) {
        if is_virtual(&folder.source_name) {
            skipped.push(folder_skip(
                &folder.display_name,
                "virtual folder (\\All or \\Flagged): its messages are copied from their own folders".into(),
            ));
        } else if filter.allows(folder) {
            selectable.push(folder.display_name.clone());
        }
    }
    mapped
        .into_iter()
        .filter(|f| {
            if f.selectable {
                selectable.contains(&f.display_name)
            } else {
                selectable
                    .iter()
                    .any(|child| is_under(child, &f.display_name))
            }
        })
        .collect()
}

/// Drops folders whose source or target name cannot be sent in an IMAP command (see
/// `imap::quote`), each reported with the reason.
fn drop_unsendable(mapped: Vec<MappedFolder>, skipped: &mut Vec<SkippedItem>) -> Vec<MappedFolder> {
    mapped
        .into_iter()
        .filter(|folder| {
            let unsendable = [&folder.source_name, &folder.target_name]
                .into_iter()
                .find_map(|name| quotable(name).err());
            if let Some(error) = &unsendable {
                skipped.push(folder_skip(&folder.display_name, error.to_string()));
            }
            unsendable.is_none()
        })
        .collect()
}

fn is_under(path: &str, parent: &str) -> bool {
    path.len() > parent.len() && path.starts_with(parent) && path.as_bytes()[parent.len()] == b'/'
}

/// Plans one folder task; a folder above `part_size` messages is split into parts (by its UIDs
/// now), of which only the first is planned: each part queues the next when it is done. A
/// folder whose checkpoint already covers every UID (same UIDVALIDITY on both sides, nothing
/// above it) needs no task: a re-run with nothing new costs one STATUS per side and folder.
async fn plan_folder(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    target: &mut ImapConnection,
    folder: MappedFolder,
    discovery: &mut Discovery,
) -> Result<(), WorkerError> {
    let part_size = job.folder_part_messages;
    let name = folder.source_name.clone();
    let status = source
        .status(&name, "(MESSAGES UIDNEXT UIDVALIDITY)")
        .await?;
    if status.exists == 0 {
        return Ok(());
    }
    if is_up_to_date(job, user, target, &folder, &status).await? {
        discovery.already_synced += u64::from(status.exists);
        return Ok(());
    }
    discovery.total_messages += u64::from(status.exists);
    let part = if status.exists as usize > part_size {
        FolderPart::first_of(&all_uids(source, &name).await?, part_size)
    } else {
        FolderPart::default()
    };
    discovery.plans.push(FolderPlan {
        source_name: folder.source_name,
        target_name: folder.target_name,
        display_name: folder.display_name,
        selectable: true,
        messages: status.exists,
        uid_validity: status.uid_validity.unwrap_or(0),
        part,
    });
    Ok(())
}

/// Whether the folder's checkpoint says every source message up to UIDNEXT is on the target.
/// Not with a received-after filter: the folder's message count would then overstate what
/// the batch migrates.
async fn is_up_to_date(
    job: &Job,
    user: &MailboxUser,
    target: &mut ImapConnection,
    folder: &MappedFolder,
    status: &async_imap::types::Mailbox,
) -> Result<bool, WorkerError> {
    let (Some(uid_next), Some(uid_validity)) = (status.uid_next, status.uid_validity) else {
        return Ok(false);
    };
    if job.received_after.is_some() {
        return Ok(false);
    }
    let key = job.checkpoint_key(user, &folder.source_name);
    let Some(checkpoint) = job.checkpoints.load(&key).await? else {
        return Ok(false);
    };
    if !covers_source(&checkpoint, uid_validity, uid_next) {
        return Ok(false);
    }
    let target_status = target.status(&folder.target_name, "(UIDVALIDITY)").await?;
    Ok(target_status.uid_validity == Some(checkpoint.target_uidvalidity))
}

/// Whether `checkpoint` reaches every source UID below `uid_next` under the folder's current
/// `uid_validity` (the target's UIDVALIDITY is the caller's second check).
fn covers_source(checkpoint: &FolderCheckpoint, uid_validity: u32, uid_next: u32) -> bool {
    checkpoint.source_uidvalidity == uid_validity
        && u64::from(checkpoint.last_source_uid) + 1 >= u64::from(uid_next)
}

/// Every UID of folder `name`, ascending (4 bytes a message in memory).
async fn all_uids(source: &mut ImapConnection, name: &str) -> Result<Vec<u32>, WorkerError> {
    let name = quotable(name)?;
    source.run("EXAMINE", |s| s.examine(name)).await?;
    let found = source.run("UID SEARCH", |s| s.uid_search("ALL")).await?;
    source.confirm_complete("UID SEARCH")?;
    source.run("CLOSE", |s| s.close()).await?;
    source.discard_unsolicited();
    let mut uids: Vec<u32> = found.into_iter().collect();
    uids.sort_unstable();
    Ok(uids)
}

/// CREATE (and SUBSCRIBE, so mail clients show it). `Ok(Err(reason))` when the target refuses
/// the name; a folder that already exists is success.
pub(crate) async fn create_folder(
    target: &mut ImapConnection,
    name: &str,
) -> Result<Result<(), String>, WorkerError> {
    let mailbox = match quoted(name) {
        Ok(mailbox) => mailbox,
        Err(unsendable) => return Ok(Err(unsendable.to_string())),
    };
    let create = format!("CREATE {mailbox}");
    match target
        .run("CREATE", |s| s.run_command_and_check_ok(create))
        .await
    {
        Ok(()) => {}
        Err(WorkerError::Refused { reason, .. })
            if RefusalCode::of(&reason) == Some(RefusalCode::AlreadyExists) => {}
        Err(WorkerError::Refused { reason, .. }) => return Ok(Err(reason)),
        Err(other) => return Err(other),
    }
    // Subscription is a convenience; a server without it still has the folder.
    let subscribe = format!("SUBSCRIBE {mailbox}");
    let _ = target
        .run("SUBSCRIBE", |s| s.run_command_and_check_ok(subscribe))
        .await;
    target.discard_unsolicited();
    Ok(Ok(()))
}

fn folder_skip(folder: &str, reason: String) -> SkippedItem {
    SkippedItem {
        folder: folder.to_owned(),
        subject: None,
        date: None,
        size: None,
        reason,
    }
}

/// LIST every folder (under the user's root on Courier-style servers), at most the limit's
/// count: each name is kept as a small [`ListedFolder`] as it arrives, not as async-imap's
/// response buffer, and a server listing without end fails the user instead of the worker.
async fn list_folders(
    connection: &mut ImapConnection,
    user_root: Option<&str>,
) -> Result<Vec<ListedFolder>, WorkerError> {
    let pattern = quoted(&format!("{}*", user_root.unwrap_or_default()))?;
    let max_folders = connection.limits.max_folders;
    let folders = connection
        .run("LIST", |s| async move {
            let names = s.list(Some(""), Some(&pattern)).await?;
            at_most(names, max_folders, |name| listed_folder(&name)).await
        })
        .await?
        .ok_or_else(|| {
            let what = "folders (the limit: setting imap_max_folders)";
            connection.answered_too_many("LIST", max_folders, what)
        })?;
    connection.confirm_complete("LIST")?;
    Ok(folders)
}

fn listed_folder(name: &Name) -> ListedFolder {
    ListedFolder {
        raw_name: listed_name(name),
        separator: name.delimiter().and_then(|d| d.chars().next()),
        attributes: name.attributes().iter().map(attribute_text).collect(),
    }
}

fn attribute_text(attribute: &NameAttribute<'_>) -> String {
    match attribute {
        NameAttribute::NoInferiors => "\\Noinferiors".into(),
        NameAttribute::NoSelect => "\\Noselect".into(),
        NameAttribute::Marked => "\\Marked".into(),
        NameAttribute::Unmarked => "\\Unmarked".into(),
        NameAttribute::All => "\\All".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Flagged => "\\Flagged".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Extension(other) => other.to_string(),
        other => format!("{other:?}"),
    }
}

/// The personal namespace from NAMESPACE, or inferred from LIST when the server lacks it: the
/// separator any folder reports, and an `INBOX<sep>` prefix when every other folder lives there.
async fn namespace_of(
    connection: &mut ImapConnection,
    folders: &[ListedFolder],
) -> Result<Namespace, WorkerError> {
    if let Some(namespace) = personal_namespace(connection).await? {
        return Ok(namespace);
    }
    Ok(inferred_namespace(folders))
}

/// The personal namespace a server without NAMESPACE implies by its LIST: see [`namespace_of`].
fn inferred_namespace(folders: &[ListedFolder]) -> Namespace {
    let separator = folders.iter().find_map(|f| f.separator);
    let prefix = separator
        .map(|sep| format!("INBOX{sep}"))
        .filter(|prefix| {
            let others: Vec<_> = folders
                .iter()
                .filter(|f| !f.raw_name.eq_ignore_ascii_case("INBOX"))
                .collect();
            !others.is_empty()
                && others
                    .iter()
                    .all(|f| f.raw_name.starts_with(prefix.as_str()))
        })
        .unwrap_or_default();
    Namespace { prefix, separator }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(raw: &str, attributes: &[&str]) -> ListedFolder {
        ListedFolder {
            raw_name: raw.to_owned(),
            separator: Some('.'),
            attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn mapped(display: &str, selectable: bool) -> MappedFolder {
        MappedFolder {
            source_name: display.to_owned(),
            target_name: display.to_owned(),
            display_name: display.to_owned(),
            path: display.split('/').map(str::to_owned).collect(),
            special_use: None,
            selectable,
            renamed: None,
        }
    }

    fn names(folders: &[MappedFolder]) -> Vec<&str> {
        folders.iter().map(|f| f.display_name.as_str()).collect()
    }

    #[test]
    fn virtual_and_excluded_folders_go_and_parents_stay_only_above_wanted_folders() {
        let listed = [listed("[Gmail]/All Mail", &["\\All"])];
        let folders = vec![
            mapped("INBOX", true),
            mapped("[Gmail]", false),
            mapped("[Gmail]/All Mail", true),
            mapped("Old", false),
            mapped("Old/Spam", true),
            mapped("Work", false),
            mapped("Work/Alpha", true),
        ];
        let filter = FolderFilter::new(&[], &["Old/*".to_owned()]).unwrap();
        let mut skipped = Vec::new();
        let wanted = select_folders(&filter, &listed, folders, &mut skipped);
        assert_eq!(names(&wanted), ["INBOX", "Work", "Work/Alpha"]);
        assert_eq!(
            skipped.len(),
            1,
            "only the virtual folder is reported: {skipped:?}"
        );
        assert_eq!(skipped[0].folder, "[Gmail]/All Mail");
        assert!(skipped[0].reason.contains("virtual folder"));
    }

    #[test]
    fn a_folder_whose_name_cannot_be_sent_is_skipped_with_the_reason() {
        let mut bad = mapped("Line\r\nbreak", true);
        bad.target_name = "Line\r\nbreak".into();
        let mut skipped = Vec::new();
        let kept = drop_unsendable(vec![mapped("Fine \"one\"", true), bad], &mut skipped);
        assert_eq!(names(&kept), ["Fine \"one\""]);
        assert_eq!(skipped[0].folder, "Line\r\nbreak");
        assert!(
            skipped[0].reason.contains("line break"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn under_means_below_a_whole_level() {
        assert!(is_under("Work/Alpha", "Work"));
        assert!(!is_under("Workshop", "Work"));
        assert!(!is_under("Work", "Work"));
    }

    #[test]
    fn without_namespace_an_inbox_prefix_is_inferred_only_when_every_folder_has_it() {
        let courier = [
            listed("INBOX", &[]),
            listed("INBOX.Sent", &[]),
            listed("INBOX.a", &[]),
        ];
        let namespace = inferred_namespace(&courier);
        assert_eq!(
            (namespace.prefix.as_str(), namespace.separator),
            ("INBOX.", Some('.'))
        );
        let mixed = [
            listed("INBOX", &[]),
            listed("INBOX.Sent", &[]),
            listed("Other", &[]),
        ];
        assert_eq!(inferred_namespace(&mixed).prefix, "");
        assert_eq!(inferred_namespace(&[listed("INBOX", &[])]).prefix, "");
    }

    #[test]
    fn a_checkpoint_covers_the_source_up_to_uidnext_under_its_uidvalidity() {
        let checkpoint = FolderCheckpoint {
            source_uidvalidity: 3,
            last_source_uid: 10,
            target_uidvalidity: 4,
            target_uid_mark: 20,
        };
        assert!(covers_source(&checkpoint, 3, 11));
        assert!(!covers_source(&checkpoint, 3, 12), "UID 11 arrived since");
        assert!(!covers_source(&checkpoint, 5, 11), "a new UIDVALIDITY");
    }
}
