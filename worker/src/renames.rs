//! Folders renamed on the source are renamed on the target, not copied a second time.
//!
//! A renamed folder looks like two events: a folder with a map of copies (`copy_map`) is gone
//! from the source, and a folder without one appeared. IMAP RENAME keeps the mailbox and so its
//! UIDVALIDITY (RFC 3501 §6.3.5: the UIDs stay valid), so an appeared folder whose UIDVALIDITY
//! is that of exactly one gone folder is that folder renamed. Its copies are renamed on the
//! target (RENAME also takes any subfolders along) and its checkpoint and map move to the new
//! name, so the next copy starts where the old one ended.
//!
//! Runs in discovery before the target hierarchy is created. Crash-safe in any order of events:
//! the state is written under the new name before the RENAME and forgotten under the old name
//! after it. A pass killed in between finds the target folder already renamed (old name gone,
//! new one there) and only moves the state; if the target's RENAME did not happen and its
//! folder is created anew instead, its new UIDVALIDITY voids the moved checkpoint and map, and
//! the fingerprint guard (ARCHITECTURE.md, rule 1) copies only what the new folder lacks. A gone
//! folder that still exists on the source (merely excluded by the folder rules now) is left
//! alone; one with no unique match stays as it is (nothing on the target is removed).

use mailfleet_shared::folder_map::MappedFolder;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::uid_map::UidMap;

use crate::error::WorkerError;
use crate::imap::ImapConnection;
use crate::job::Job;

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
            .run("STATUS", |s| s.status(&name, "(UIDVALIDITY)"))
            .await?;
        source.discard_unsolicited();
        let same: Vec<usize> = (0..gone.len())
            .filter(|&i| Some(gone[i].1.source_uidvalidity) == status.uid_validity)
            .collect();
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
            let new_target = folder.target_name.clone();
            match target
                .run("RENAME", |s| s.rename(&old_target, &new_target))
                .await
            {
                Ok(()) => renamed += 1,
                Err(WorkerError::Refused { reason, .. }) => {
                    tracing::warn!(user = %user.email, from = %old_target, to = %new_target,
                        %reason, "the target refused to rename; the folder is copied instead");
                    continue;
                }
                Err(other) => return Err(other),
            }
        }
        job.checkpoints.forget_folder(&old_key).await?;
        tracing::info!(user = %user.email, from = %old_name, to = %folder.source_name,
            "folder renamed on the source; renamed on the target");
    }
    Ok(renamed)
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
