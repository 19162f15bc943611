//! Folders renamed on the source are renamed on the target, not copied a second time.
//!
//! A renamed folder looks like two events: a folder with a map of copies (`copy_map`) is gone
//! from the source, and a folder without one appeared. IMAP RENAME keeps the mailbox and so its
//! UIDVALIDITY (RFC 3501 §6.3.5: the UIDs stay valid), so an appeared folder whose UIDVALIDITY
//! is that of exactly one gone folder is that folder renamed. Its copies are renamed on the
//! target (RENAME also takes any subfolders along) and its checkpoint and map move to the new
//! name, so the next copy starts where the old one ended.
//!
//! Some servers (and users who "rename" by creating a folder, moving everything into it and
//! deleting the old one) give the renamed folder a new UIDVALIDITY. So an appeared folder with
//! no UIDVALIDITY match is also taken for a gone folder when it holds the same messages: as many
//! as the gone folder's map of copies, and the same fingerprints (ARCHITECTURE.md, rule 1) as
//! those copies on the target. Only then is anything fetched (header fields of two folders);
//! the target folder is renamed and the old state forgotten, as its UIDs mean nothing under the
//! new UIDVALIDITY: the next copy finds every message present and maps it again.
//!
//! Runs in discovery before the target hierarchy is created. Crash-safe in any order of events:
//! the state is written under the new name before the RENAME and forgotten under the old name
//! after it. A pass killed in between finds the target folder already renamed (old name gone,
//! new one there) and only moves the state; if the target's RENAME did not happen and its
//! folder is created anew instead, its new UIDVALIDITY voids the moved checkpoint and map, and
//! the fingerprint guard (ARCHITECTURE.md, rule 1) copies only what the new folder lacks. A gone
//! folder that still exists on the source (merely excluded by the folder rules now) is left
//! alone; one with no unique match stays as it is (nothing on the target is removed).

use mailfleet_shared::fingerprint::Fingerprint;
use mailfleet_shared::folder_map::MappedFolder;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::uid_map::UidMap;

use crate::copy_map::identify;
use crate::error::WorkerError;
use crate::imap::ImapConnection;
use crate::job::Job;
use crate::uid_set::uid_set;

/// Renames on the target what was renamed on the source among `wanted`; returns how many
/// folders were renamed there.
pub async fn follow_renames(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    target: &mut ImapConnection,
    wanted: &[MappedFolder],
) -> Result<u64, WorkerError> {
    let stored = job
        .checkpoints
        .mapped_folders(&job.batch, &user.email)
        .await?;
    let mut gone: Vec<(String, UidMap)> = Vec::new();
    for name in &stored {
        if wanted.iter().any(|f| &f.source_name == name) || exists(source, name).await? {
            continue;
        }
        let key = job.checkpoint_key(user, name);
        if let Some(map) = job.checkpoints.load_uid_map(&key).await?
            && !map.target_folder.is_empty()
        {
            gone.push((name.clone(), map));
        }
    }
    let mut renamed = 0;
    let appeared = wanted
        .iter()
        .filter(|f| f.selectable && !stored.contains(&f.source_name));
    for folder in appeared {
        if gone.is_empty() {
            break;
        }
        let name = folder.source_name.clone();
        let status = source
            .run("STATUS", |s| s.status(&name, "(UIDVALIDITY MESSAGES)"))
            .await?;
        source.discard_unsolicited();
        let same: Vec<usize> = (0..gone.len())
            .filter(|&i| Some(gone[i].1.source_uidvalidity) == status.uid_validity)
            .collect();
        if same.is_empty() {
            if let Some(index) = same_messages(source, target, folder, &gone, status.exists).await?
                && rename_target(user, target, &gone[index].1.target_folder, folder).await?
            {
                let (old_name, _) = gone.remove(index);
                job.checkpoints
                    .forget_folder(&job.checkpoint_key(user, &old_name))
                    .await?;
                renamed += 1;
                tracing::info!(user = %user.email, from = %old_name, to = %folder.source_name,
                    "folder recreated on the source with the same messages; renamed on the target");
            }
            continue;
        }
        let [index] = same[..] else {
            continue;
        };
        let old_target = gone[index].1.target_folder.clone();
        let old_there = exists(target, &old_target).await?;
        if old_there == exists(target, &folder.target_name).await? {
            // Both or neither: nothing to rename; the fingerprint guard copies what is missing.
            continue;
        }
        let (old_name, mut map) = gone.remove(index);
        let old_key = job.checkpoint_key(user, &old_name);
        let new_key = job.checkpoint_key(user, &folder.source_name);
        if let Some(checkpoint) = job.checkpoints.load(&old_key).await? {
            job.checkpoints.advance(&new_key, checkpoint).await?;
        }
        map.target_folder = folder.target_name.clone();
        job.checkpoints.store_uid_map(&new_key, &map).await?;
        if old_there {
            if !rename_target(user, target, &old_target, folder).await? {
                continue;
            }
            renamed += 1;
        }
        job.checkpoints.forget_folder(&old_key).await?;
        tracing::info!(user = %user.email, from = %old_name, to = %folder.source_name,
            "folder renamed on the source; renamed on the target");
    }
    Ok(renamed)
}

/// RENAME on the target; `false` when the target refuses (the folder is then copied instead).
async fn rename_target(
    user: &MailboxUser,
    target: &mut ImapConnection,
    old_target: &str,
    folder: &MappedFolder,
) -> Result<bool, WorkerError> {
    let new_target = folder.target_name.clone();
    match target
        .run("RENAME", |s| s.rename(old_target, &new_target))
        .await
    {
        Ok(()) => Ok(true),
        Err(WorkerError::Refused { reason, .. }) => {
            tracing::warn!(user = %user.email, from = %old_target, to = %new_target,
                %reason, "the target refused to rename; the folder is copied instead");
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

/// The one gone folder whose copies are the messages `folder` (holding `messages`) has now:
/// as many, and the same fingerprints. Its target folder must still be there and `folder`'s
/// not yet.
async fn same_messages(
    source: &mut ImapConnection,
    target: &mut ImapConnection,
    folder: &MappedFolder,
    gone: &[(String, UidMap)],
    messages: u32,
) -> Result<Option<usize>, WorkerError> {
    let sized: Vec<usize> = (0..gone.len())
        .filter(|&i| messages > 0 && gone[i].1.len() == messages as usize)
        .collect();
    let [index] = sized[..] else {
        return Ok(None);
    };
    let map = &gone[index].1;
    if !exists(target, &map.target_folder).await? || exists(target, &folder.target_name).await? {
        return Ok(None);
    }
    let here = fingerprints(source, &folder.source_name, "1:*".into(), |_| true).await?;
    let copies: Vec<u32> = map.entries().iter().map(|e| e.target_uid).collect();
    let mapped: std::collections::HashSet<u32> = copies.iter().copied().collect();
    let there = fingerprints(target, &map.target_folder, uid_set(&copies), move |uid| {
        mapped.contains(&uid)
    })
    .await?;
    Ok((here == there).then_some(index))
}

/// The sorted fingerprints of folder `name`'s messages in `uids` (EXAMINEd: nothing changes).
async fn fingerprints(
    connection: &mut ImapConnection,
    name: &str,
    uids: String,
    wanted: impl Fn(u32) -> bool + Send,
) -> Result<Vec<Fingerprint>, WorkerError> {
    connection.run("EXAMINE", |s| s.examine(name)).await?;
    let found = identify(connection, uids, wanted).await?;
    connection.run("CLOSE", |s| s.close()).await?;
    connection.discard_unsolicited();
    let mut prints: Vec<Fingerprint> = found.into_iter().map(|m| m.fingerprint).collect();
    prints.sort_unstable();
    Ok(prints)
}

/// Whether folder `name` exists (STATUS answers; NO means it does not).
async fn exists(connection: &mut ImapConnection, name: &str) -> Result<bool, WorkerError> {
    let found = match connection
        .run("STATUS", |s| s.status(name, "(MESSAGES)"))
        .await
    {
        Ok(_) => true,
        Err(WorkerError::Refused { .. }) => false,
        Err(other) => return Err(other),
    };
    connection.discard_unsolicited();
    Ok(found)
}
