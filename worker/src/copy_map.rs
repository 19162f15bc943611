//! Keeping a folder's map of copies (`shared::uid_map`) up with what its checkpoint covers, so
//! that later passes know which target message is mailfleet's copy of which source message.
//!
//! Run after a folder task copied (under the folder's lease): the source messages the checkpoint
//! newly covers are matched, by fingerprint (ARCHITECTURE.md, rule 1) and in UID order, with the
//! target messages the checkpoint's target mark newly covers. A target message no source message
//! claims arrived there by itself and is never mapped, so nothing mirrored can touch it. Matching
//! by fingerprint rather than by APPENDUID also maps copies a crashed attempt made before its
//! checkpoint, and copies moved into the folder by the mirror step (`mirror`).
//!
//! A newly mapped copy is given its source's flags now (the source wins): normally they are the
//! flags it was appended with; for a copy moved on the target they carry what the user did to
//! the message after moving it. The map is written after those STOREs, so a crash in between
//! repeats them, which sets the same flags again.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use futures_util::TryStreamExt;
use mailfleet_shared::fingerprint::{FINGERPRINT_FIELDS, Fingerprint, header_value};
use mailfleet_shared::folder_map::MappedFolder;
use mailfleet_shared::messages::{FolderPart, FolderPlan, MailboxUser};
use mailfleet_shared::uid_map::{MappedMessage, UidMap};

use crate::error::WorkerError;
use crate::flag_sync::{normalised, storable, store_flags};
use crate::imap::ImapConnection;
use crate::imap::flags::{PermanentFlags, flag_text};
use crate::job::{Job, Side};
use crate::lease::FolderLease;

/// One message as the mirror needs it: identity, flags and what to call it in a report.
#[derive(Debug, Clone)]
pub struct Identified {
    pub uid: u32,
    pub fingerprint: Fingerprint,
    pub flags: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<String>,
}

/// Fingerprints and flags of the selected folder's messages in `uids` (an IMAP UID set such as
/// `5:*` or `3,9:12`); only UIDs for which `wanted` holds are kept (`n:*` also answers the
/// highest message below n). Header fields only: a few hundred bytes a message.
pub async fn identify(
    connection: &mut ImapConnection,
    uids: String,
    wanted: impl Fn(u32) -> bool + Send,
) -> Result<Vec<Identified>, WorkerError> {
    let query = format!(
        "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({})])",
        FINGERPRINT_FIELDS.join(" ")
    );
    let mut found: Vec<Identified> = connection
        .run("FETCH fingerprints", |s| async move {
            let mut answers = s.uid_fetch(uids, query).await?;
            let mut found = Vec::new();
            while let Some(fetch) = answers.try_next().await? {
                let Some(uid) = fetch.uid.filter(|&uid| wanted(uid)) else {
                    continue;
                };
                let header = fetch.header().unwrap_or_default();
                let text = |name| {
                    header_value(header, name)
                        .map(|v| String::from_utf8_lossy(&v).trim().to_owned())
                };
                found.push(Identified {
                    uid,
                    fingerprint: Fingerprint::from_header(
                        header,
                        u64::from(fetch.size.unwrap_or(0)),
                    ),
                    flags: fetch.flags().map(|flag| flag_text(&flag)).collect(),
                    subject: text("Subject"),
                    date: text("Date"),
                });
            }
            Ok(found)
        })
        .await?;
    connection.confirm_complete("FETCH fingerprints")?;
    found.sort_by_key(|m| m.uid);
    Ok(found)
}

/// Brings the map of a folder that got no task this pass up to its checkpoint, under the
/// folder's lease: its checkpoint moved on in a pass killed before the map was written, or was
/// written by a version without maps. Returns how many copies needed their source's flags.
pub async fn catch_up(
    job: &Job,
    user: &MailboxUser,
    folder: &MappedFolder,
) -> Result<u64, WorkerError> {
    let key = job.checkpoint_key(user, &folder.source_name);
    let Some(checkpoint) = job.checkpoints.load(&key).await? else {
        return Ok(0);
    };
    let covered = job
        .checkpoints
        .load_uid_map(&key)
        .await?
        .filter(|map| {
            map.is_valid_for(checkpoint.source_uidvalidity, checkpoint.target_uidvalidity)
        })
        .map_or(0, |map| map.source_covered);
    if covered >= checkpoint.last_source_uid {
        return Ok(0);
    }
    let plan = FolderPlan {
        source_name: folder.source_name.clone(),
        target_name: folder.target_name.clone(),
        display_name: folder.display_name.clone(),
        selectable: true,
        messages: 0,
        uid_validity: checkpoint.source_uidvalidity,
        part: FolderPart::default(),
    };
    let lease = FolderLease::acquire(job.checkpoints.clone(), key).await?;
    let result = record_copies(job, user, &plan).await;
    lease.release().await;
    result
}

/// Extends `plan`'s folder map to its checkpoint, retrying transient failures. Returns how
/// many newly mapped copies needed their source's flags.
pub async fn record_copies(
    job: &Job,
    user: &MailboxUser,
    plan: &FolderPlan,
) -> Result<u64, WorkerError> {
    let what = format!("{} folder {}: map of copies", user.email, plan.display_name);
    let mut attempt_number = 1;
    loop {
        match record_attempt(job, user, plan).await {
            Ok(updated) => return Ok(updated),
            Err(error)
                if job
                    .tuning
                    .retry
                    .backoff(&what, attempt_number, &error)
                    .await =>
            {
                attempt_number += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn record_attempt(
    job: &Job,
    user: &MailboxUser,
    plan: &FolderPlan,
) -> Result<u64, WorkerError> {
    let key = job.checkpoint_key(user, &plan.source_name);
    let Some(checkpoint) = job.checkpoints.load(&key).await? else {
        return Ok(0);
    };
    let mut map = job
        .checkpoints
        .load_uid_map(&key)
        .await?
        .filter(|map| {
            map.is_valid_for(checkpoint.source_uidvalidity, checkpoint.target_uidvalidity)
        })
        .unwrap_or_else(|| {
            UidMap::new(checkpoint.source_uidvalidity, checkpoint.target_uidvalidity)
        });
    if map.source_covered >= checkpoint.last_source_uid {
        return Ok(0);
    }
    let mut source = job.open(Side::Source, user).await?;
    let source_box = source
        .run("EXAMINE", |s| s.examine(&plan.source_name))
        .await?;
    if source_box.uid_validity != Some(checkpoint.source_uidvalidity) {
        source.run("CLOSE", |s| s.close()).await?;
        job.release(Side::Source, user, source);
        return Ok(0);
    }
    // The folder's mod-sequence before the copies' flags are read, for a map that has none:
    // the next pass asks only for flag changes since (with QRESYNC it skips a folder where
    // nothing changed, ARCHITECTURE.md rule 6). An older value is kept: the map's earlier
    // entries were read before this one.
    if map.highest_modseq == 0 && source.has_capability("CONDSTORE") {
        map.highest_modseq = source_box.highest_modseq.unwrap_or(0);
    }
    let (first, last) = (map.source_covered + 1, checkpoint.last_source_uid);
    let copied = identify(&mut source, format!("{first}:{last}"), |uid| {
        (first..=last).contains(&uid)
    })
    .await?;
    source.run("CLOSE", |s| s.close()).await?;
    source.discard_unsolicited();
    job.release(Side::Source, user, source);

    let mut target = job.open(Side::Target, user).await?;
    let target_box = target
        .run("SELECT", |s| s.select(&plan.target_name))
        .await?;
    if target_box.uid_validity != Some(checkpoint.target_uidvalidity) {
        leave_selected(&mut target, &plan.target_name).await?;
        job.release(Side::Target, user, target);
        return Ok(0);
    }
    let permanent = PermanentFlags::from_mailbox(&target_box.permanent_flags)
        .withholding(job.target_profile.rules());
    let (target_first, target_last) = (map.target_covered + 1, checkpoint.target_uid_mark);
    let mapped_targets: HashSet<u32> = map.entries().iter().map(|e| e.target_uid).collect();
    let candidates = if target_first <= target_last {
        identify(
            &mut target,
            format!("{target_first}:{target_last}"),
            |uid| (target_first..=target_last).contains(&uid) && !mapped_targets.contains(&uid),
        )
        .await?
    } else {
        Vec::new()
    };
    let matched = match_copies(&copied, candidates);

    let mut entries = map.entries();
    let mut wanted_flags = BTreeMap::new();
    for (source_message, target_message) in matched {
        let flags = storable(&source_message.flags, &permanent);
        if normalised(&flags) != normalised(&target_message.flags) {
            wanted_flags.insert(target_message.uid, flags.clone());
        }
        entries.push(MappedMessage {
            source_uid: source_message.uid,
            target_uid: target_message.uid,
            flags,
        });
    }
    let updated = store_flags(&mut target, &permanent, &wanted_flags).await?;
    leave_selected(&mut target, &plan.target_name).await?;
    job.release(Side::Target, user, target);

    map.set_entries(entries);
    map.target_folder = plan.target_name.clone();
    map.source_covered = last;
    map.target_covered = map.target_covered.max(target_last);
    job.checkpoints.store_uid_map(&key, &map).await?;
    Ok(updated)
}

/// Each source message takes the lowest-UID unclaimed target message with its fingerprint (the
/// multiset rule of `target_index`), so identical messages pair up one to one.
fn match_copies(
    sources: &[Identified],
    targets: Vec<Identified>,
) -> Vec<(&Identified, Identified)> {
    let mut by_fingerprint: HashMap<Fingerprint, VecDeque<Identified>> = HashMap::new();
    for target in targets {
        by_fingerprint
            .entry(target.fingerprint)
            .or_default()
            .push_back(target);
    }
    sources
        .iter()
        .filter_map(|source| {
            let copy = by_fingerprint.get_mut(&source.fingerprint)?.pop_front()?;
            Some((source, copy))
        })
        .collect()
}

/// Leaves a folder SELECTed read-write without expunging anything: CLOSE would expunge the
/// messages marked `\Deleted`, perhaps by the user on the target. EXAMINE of the same folder
/// first (RFC 3501 §6.3.1: selecting another closes the current one without expunging), then
/// CLOSE on the read-only one.
pub async fn leave_selected(target: &mut ImapConnection, name: &str) -> Result<(), WorkerError> {
    target.run("EXAMINE", |s| s.examine(name)).await?;
    target.run("CLOSE", |s| s.close()).await?;
    target.discard_unsolicited();
    Ok(())
}
