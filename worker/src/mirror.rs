//! What users did on the source since the last pass, done to mailfleet's copies on the target:
//! flag changes, moves between folders and (with `--mirror-deletions`) deletions.
//!
//! It runs in discovery, per user, after the target folders exist and before any folder is
//! copied: a move is only visible per user (a message left folder A, a message with its
//! fingerprint appeared in folder B), and it must happen before B's copy, so that B's copy finds
//! the moved message on the target (above B's checkpoint mark, where the fingerprint guard
//! looks, ARCHITECTURE.md rule 1) and claims it instead of appending a second copy.
//!
//! ```text
//! per folder: its map of copies brought up to its checkpoint if behind (`copy_map::catch_up`)
//! per folder with a map of copies: UID FETCH 1:<covered> (UID FLAGS) on the source
//!   └─ mapped source UIDs missing: vanished; flags ≠ last synced: changed
//! if anything vanished: fingerprints of the vanished copies (target) and of each folder's
//!   source messages that arrived since the last mirror (above the checkpoint it recorded in
//!   the map); a vanished one whose fingerprint arrived in another folder moved there
//! moves: UID MOVE (RFC 6851), or UID COPY + \Deleted + UID EXPUNGE (UIDPLUS, RFC 4315); a copy
//!   whose destination holds one already: UID EXPUNGE of the old copy
//! rest of the vanished: UID STORE +FLAGS.SILENT (\Deleted) + UID EXPUNGE with
//!   --mirror-deletions (UIDPLUS only), else kept and reported
//! changed: UID STORE FLAGS.SILENT, merged as `flag_sync` explains
//! then each folder's map is written, with the checkpoint as this mirror found it
//! ```
//!
//! Only UIDs in the map are ever stored to, moved or expunged: copies mailfleet made. Mail that
//! arrived on the target by itself is never in it. A target without UIDPLUS gets no deletions
//! (plain EXPUNGE would also remove what the user marked `\Deleted` there).
//!
//! **Exactly once under kill -9.** Every step is either idempotent or re-derived from the
//! servers, and the map is written last:
//! - Flags are set to a computed value; a repeat computes and writes the same.
//! - A deletion repeated finds the copy gone; `UID STORE`/`UID EXPUNGE` of a UID that no longer
//!   exists does nothing.
//! - A move: before moving into B, B's target messages that arrived since the last mirror
//!   (above the target mark B's map recorded, at most B's checkpoint mark) are fingerprinted
//!   (under B's lease, so no copy of B runs meanwhile). For each fingerprint, only as many
//!   copies are moved as B's source messages that arrived since with it lack on the target; the
//!   rest of the vanished copies are already there (a MOVE or COPY done before a crash, which
//!   lands above the mark) and their old copy in A is just expunged. So a move interrupted
//!   before, during or after its MOVE (or between COPY and EXPUNGE) ends with one copy after
//!   the re-run, never 0 or 2. Without UIDPLUS and MOVE a message is not moved at all; B's copy
//!   appends it and A's copy stays (reported as kept).
//! - Every move is done (and every old copy whose destination holds one already expunged)
//!   before any folder's map is written with its new mark, so a folder's window of arrivals
//!   only closes once nothing that left for it is still waiting.
//!
//! **A move the pass saw only half of.** A message moved from A to B on the source while a
//! pass runs, after the mirror read A and before B was copied (or during the initial pass),
//! reaches the target as a new copy in B while A's copy stays: for one pass the user sees it
//! twice. The next pass settles it: A's mapped message vanished, and B's message arrived after
//! the mark the last mirror recorded (not only above B's checkpoint, which covers it by now),
//! so the two pair up as a move; the destination already holds its copy, and A's old copy is
//! expunged — with or without `--mirror-deletions`, as for any move.
//!
//! With CONDSTORE (RFC 7162) on the source, flags are fetched only for messages changed since
//! the mod-sequence the map was last mirrored at (`CHANGEDSINCE`), and `UID SEARCH ALL` tells
//! which still exist; without it, one FETCH of every mapped message's flags. With QRESYNC as
//! well, a folder whose HIGHESTMODSEQ has not moved since is left at its STATUS.
//!
//! Costs and gaps: the first pass that finds a vanished message in a mailbox whose maps have no
//! mark yet (the initial pass's, or older maps) fingerprints every folder's messages once, on
//! the source and in the destinations on the target; later passes only what arrived since the
//! last one. A message the source copied to B (not moved) during the last pass and then deleted
//! in A counts as a move as well, which is what the user ended up doing. Without CONDSTORE a
//! pass fetches the flags of every mapped message (UID and flags: a few dozen bytes each).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures_util::TryStreamExt;
use mailfleet_shared::checkpoint::CheckpointKey;
use mailfleet_shared::fingerprint::Fingerprint;
use mailfleet_shared::folder_map::MappedFolder;
use mailfleet_shared::messages::{FolderOutcome, MailboxUser, SkippedItem};
use mailfleet_shared::uid_map::{MappedMessage, UidMap};

use crate::copy_map::{Identified, catch_up, identify, leave_selected};
use crate::error::WorkerError;
use crate::flag_sync::{merged_flags, normalised, storable, store_flags};
use crate::imap::ImapConnection;
use crate::imap::flags::{PermanentFlags, flag_text};
use crate::job::Job;
use crate::lease::FolderLease;
use crate::uid_set::uid_set;

/// What the source says about one folder whose copies are mapped.
struct MappedFolderState<'f> {
    folder: &'f MappedFolder,
    key: CheckpointKey,
    map: UidMap,
    /// The source folder's HIGHESTMODSEQ before its flags were read (0 without CONDSTORE).
    highest_modseq: u64,
    /// Source flags now of the mapped source UIDs that still exist: all of them, or with
    /// CONDSTORE (RFC 7162) those changed since the map's mod-sequence.
    source_flags: HashMap<u32, Vec<String>>,
    /// Mapped messages whose source message is gone.
    vanished: Vec<MappedMessage>,
    /// The folder's checkpoint now (last source UID, target UID mark), for the map's
    /// `mirrored_*` marks once this mirror is done; the map's own marks if the checkpoint
    /// belongs to other UIDVALIDITYs.
    marks: (u32, u32),
}

/// A vanished copy and where it goes.
struct Departure {
    entry: MappedMessage,
    identity: Option<Identified>,
    /// Index (in the folder list) of the folder it moved to on the source.
    moved_to: Option<usize>,
}

/// Mirrors what happened on the source to `folders` (selectable, existing on the target). The
/// connections have no folder selected before and after (unless a command was refused).
///
/// A server refusing one of the mirror's commands does not keep the user's new mail from being
/// copied: the refusal is reported as a skipped item and the next pass tries again (every step
/// is repeatable). Connection failures and the like are returned, so discovery is retried.
pub async fn mirror_user(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    target: &mut ImapConnection,
    folders: &[MappedFolder],
) -> Result<FolderOutcome, WorkerError> {
    let mut outcome = FolderOutcome::default();
    match mirror_all(job, user, source, target, folders, &mut outcome).await {
        Ok(()) => Ok(outcome),
        Err(refused @ WorkerError::Refused { .. }) => {
            tracing::warn!(user = %user.email, error = %refused,
                "changes on the source not mirrored");
            outcome.skipped.push(SkippedItem {
                folder: "(the mailbox)".into(),
                subject: None,
                date: None,
                size: None,
                reason: format!("changes made on the source not mirrored: {refused}"),
            });
            Ok(outcome)
        }
        Err(other) => Err(other),
    }
}

async fn mirror_all(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    target: &mut ImapConnection,
    folders: &[MappedFolder],
    outcome: &mut FolderOutcome,
) -> Result<(), WorkerError> {
    let mut states = Vec::new();
    for folder in folders {
        outcome.flags_updated += catch_up(job, user, folder).await?;
        if let Some(state) = read_source(job, user, source, folder).await? {
            states.push(state);
        }
    }
    let mut departures: Vec<Vec<Departure>> = Vec::new();
    for state in &states {
        departures.push(identify_vanished(target, state).await?);
    }
    if departures.iter().any(|d| !d.is_empty()) {
        let appeared = appeared_by_folder(job, user, source, folders).await?;
        plan_moves(&states, &mut departures, folders, &appeared);
        move_copies(
            job,
            user,
            target,
            &states,
            &mut departures,
            folders,
            &appeared,
            outcome,
        )
        .await?;
    }
    for (state, departed) in states.into_iter().zip(departures) {
        apply_in_folder(job, target, state, departed, outcome).await?;
    }
    Ok(())
}

/// The folder's map (if any, and still valid), and which of its source messages vanished or
/// have other flags now.
async fn read_source<'f>(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    folder: &'f MappedFolder,
) -> Result<Option<MappedFolderState<'f>>, WorkerError> {
    let key = job.checkpoint_key(user, &folder.source_name);
    let Some(map) = job.checkpoints.load_uid_map(&key).await? else {
        return Ok(None);
    };
    if map.is_empty() {
        return Ok(None);
    }
    let marks = job
        .checkpoints
        .load(&key)
        .await?
        .filter(|cp| map.is_valid_for(cp.source_uidvalidity, cp.target_uidvalidity))
        .map_or((map.mirrored_source_uid, map.mirrored_target_uid), |cp| {
            (cp.last_source_uid, cp.target_uid_mark)
        });
    // Taken before the flags are read: a change after it has a higher mod-sequence and is
    // fetched by the next pass.
    let highest_modseq = if source.has_capability("CONDSTORE") {
        let name = folder.source_name.clone();
        let status = source
            .run("STATUS", |s| s.status(&name, "(HIGHESTMODSEQ UIDVALIDITY)"))
            .await?;
        source.discard_unsolicited();
        if unchanged_since(source, &map, status.uid_validity, status.highest_modseq) {
            return Ok(Some(MappedFolderState {
                folder,
                key,
                highest_modseq: map.highest_modseq,
                map,
                source_flags: HashMap::new(),
                vanished: Vec::new(),
                marks,
            }));
        }
        status.highest_modseq
    } else {
        None
    };
    let source_box = source
        .run("EXAMINE", |s| s.examine(&folder.source_name))
        .await?;
    if source_box.uid_validity != Some(map.source_uidvalidity) {
        source.run("CLOSE", |s| s.close()).await?;
        return Ok(None);
    }
    let covered = map.source_covered;
    let (present, source_flags) = match (highest_modseq, map.highest_modseq) {
        (Some(_), since) if since > 0 => {
            let present = source.run("UID SEARCH", |s| s.uid_search("ALL")).await?;
            source.confirm_complete("UID SEARCH")?;
            let changed = fetch_flags(
                source,
                &format!("1:{covered}"),
                &format!("(UID FLAGS) (CHANGEDSINCE {since})"),
            )
            .await?;
            tracing::debug!(user = %user.email, folder = %folder.display_name, since,
                changed = changed.len(), "flags changed since the last pass (CONDSTORE)");
            (present, changed)
        }
        _ => {
            let all = fetch_flags(source, &format!("1:{covered}"), "(UID FLAGS)").await?;
            (all.keys().copied().collect(), all)
        }
    };
    source.run("CLOSE", |s| s.close()).await?;
    source.discard_unsolicited();
    let source_flags = source_flags
        .into_iter()
        .filter(|(uid, _)| *uid <= covered)
        .collect();
    let vanished = map
        .entries()
        .into_iter()
        .filter(|e| !present.contains(&e.source_uid))
        .collect();
    Ok(Some(MappedFolderState {
        folder,
        key,
        map,
        highest_modseq: highest_modseq.unwrap_or(0),
        source_flags,
        vanished,
        marks,
    }))
}

/// Whether nothing happened in the folder since the map was last mirrored, as its STATUS says:
/// same UIDVALIDITY and HIGHESTMODSEQ. Trusted only where the source offers QRESYNC (RFC 7162
/// §3.2), which makes every expunge raise HIGHESTMODSEQ as a flag change or a new message does;
/// then the folder needs no EXAMINE, SEARCH or FETCH (a pass where nothing changed costs one
/// STATUS a folder).
fn unchanged_since(
    source: &ImapConnection,
    map: &UidMap,
    uid_validity: Option<u32>,
    highest_modseq: Option<u64>,
) -> bool {
    source.has_capability("QRESYNC")
        && map.highest_modseq > 0
        && uid_validity == Some(map.source_uidvalidity)
        && highest_modseq == Some(map.highest_modseq)
}

/// Fingerprints of the vanished messages' target copies (a copy the user deleted on the target
/// has none: nothing is left to do for it).
async fn identify_vanished(
    target: &mut ImapConnection,
    state: &MappedFolderState<'_>,
) -> Result<Vec<Departure>, WorkerError> {
    if state.vanished.is_empty() {
        return Ok(Vec::new());
    }
    let target_box = target
        .run("EXAMINE", |s| s.examine(&state.folder.target_name))
        .await?;
    let mut identities: HashMap<u32, Identified> = HashMap::new();
    if target_box.uid_validity == Some(state.map.target_uidvalidity) {
        let uids: Vec<u32> = sorted(state.vanished.iter().map(|e| e.target_uid));
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        identities = identify(target, uid_set(&uids), move |uid| wanted.contains(&uid))
            .await?
            .into_iter()
            .map(|m| (m.uid, m))
            .collect();
    }
    target.run("CLOSE", |s| s.close()).await?;
    target.discard_unsolicited();
    Ok(state
        .vanished
        .iter()
        .map(|entry| Departure {
            identity: identities.remove(&entry.target_uid),
            entry: entry.clone(),
            moved_to: None,
        })
        .collect())
}

/// Each folder's source messages that arrived since the last mirror (above the mark its map
/// recorded; all of them without one): where a moved message shows up.
async fn appeared_by_folder(
    job: &Job,
    user: &MailboxUser,
    source: &mut ImapConnection,
    folders: &[MappedFolder],
) -> Result<Vec<Vec<Identified>>, WorkerError> {
    let mut appeared = Vec::new();
    for folder in folders {
        let key = job.checkpoint_key(user, &folder.source_name);
        let map = job.checkpoints.load_uid_map(&key).await?;
        let source_box = source
            .run("EXAMINE", |s| s.examine(&folder.source_name))
            .await?;
        let after = map
            .filter(|map| Some(map.source_uidvalidity) == source_box.uid_validity)
            .map_or(0, |map| map.mirrored_source_uid);
        let found = if source_box.exists > 0 {
            identify(source, format!("{}:*", after + 1), move |uid| uid > after).await?
        } else {
            Vec::new()
        };
        source.run("CLOSE", |s| s.close()).await?;
        source.discard_unsolicited();
        appeared.push(found);
    }
    Ok(appeared)
}

/// Pairs vanished copies with messages of the same fingerprint that appeared in another folder
/// (one appeared message per vanished copy).
fn plan_moves(
    states: &[MappedFolderState<'_>],
    departures: &mut [Vec<Departure>],
    folders: &[MappedFolder],
    appeared: &[Vec<Identified>],
) {
    let mut arrivals: HashMap<Fingerprint, Vec<usize>> = HashMap::new();
    for (index, found) in appeared.iter().enumerate() {
        for message in found {
            arrivals.entry(message.fingerprint).or_default().push(index);
        }
    }
    for (state, departed) in states.iter().zip(departures.iter_mut()) {
        let from = folders
            .iter()
            .position(|f| f.source_name == state.folder.source_name);
        for departure in departed.iter_mut() {
            let Some(identity) = &departure.identity else {
                continue;
            };
            let Some(candidates) = arrivals.get_mut(&identity.fingerprint) else {
                continue;
            };
            if let Some(slot) = candidates.iter().position(|&to| Some(to) != from) {
                departure.moved_to = Some(candidates.remove(slot));
            }
        }
    }
}

/// Moves the copies of moved messages, destination by destination under its lease; where the
/// destination already holds a copy (a move done before a crash, or a copy of a move the last
/// pass saw only half of) the old copy is expunged instead. See the module doc for why this is
/// exact.
#[allow(clippy::too_many_arguments)]
async fn move_copies(
    job: &Job,
    user: &MailboxUser,
    target: &mut ImapConnection,
    states: &[MappedFolderState<'_>],
    departures: &mut [Vec<Departure>],
    folders: &[MappedFolder],
    appeared: &[Vec<Identified>],
    outcome: &mut FolderOutcome,
) -> Result<(), WorkerError> {
    let destinations: BTreeSet<usize> = departures
        .iter()
        .flatten()
        .filter_map(|d| d.moved_to)
        .collect();
    for to in destinations {
        let destination = &folders[to];
        let lease = FolderLease::acquire(
            job.checkpoints.clone(),
            job.checkpoint_key(user, &destination.source_name),
        )
        .await?;
        let mut lacking = lacking_copies(job, user, target, destination, &appeared[to]).await?;
        for (state, departed) in states.iter().zip(departures.iter_mut()) {
            let (mut to_move, mut already_there) = (Vec::new(), Vec::new());
            for departure in departed.iter_mut().filter(|d| d.moved_to == Some(to)) {
                let Some(identity) = &departure.identity else {
                    continue;
                };
                match lacking.get_mut(&identity.fingerprint) {
                    Some(count) if *count > 0 => {
                        *count -= 1;
                        to_move.push(departure.entry.target_uid);
                    }
                    _ => already_there.push(departure.entry.target_uid),
                }
            }
            let from = &state.folder.target_name;
            lease.check()?;
            let mut not_moved = Vec::new();
            if !to_move.is_empty() {
                to_move.sort_unstable();
                if move_messages(target, from, &to_move, &destination.target_name).await? {
                    outcome.moved += to_move.len() as u64;
                } else {
                    // Neither MOVE nor UIDPLUS: the destination's copy appends it instead.
                    not_moved = to_move;
                }
            }
            if !already_there.is_empty() {
                already_there.sort_unstable();
                if expunge_from(target, from, &already_there).await? {
                    outcome.moved += already_there.len() as u64;
                } else {
                    // No UIDPLUS: the old copy cannot go alone; it stays, reported as kept.
                    not_moved.extend(already_there);
                }
            }
            for departure in departed
                .iter_mut()
                .filter(|d| d.moved_to == Some(to) && not_moved.contains(&d.entry.target_uid))
            {
                departure.moved_to = None;
            }
        }
        lease.release().await;
    }
    Ok(())
}

/// For each fingerprint, how many of the destination's source messages that arrived since the
/// last mirror have no copy on the target that arrived since either (above the target mark the
/// map recorded).
async fn lacking_copies(
    job: &Job,
    user: &MailboxUser,
    target: &mut ImapConnection,
    destination: &MappedFolder,
    appeared: &[Identified],
) -> Result<HashMap<Fingerprint, u32>, WorkerError> {
    let mut lacking: HashMap<Fingerprint, u32> = HashMap::new();
    for message in appeared {
        *lacking.entry(message.fingerprint).or_default() += 1;
    }
    let key = job.checkpoint_key(user, &destination.source_name);
    let map = job.checkpoints.load_uid_map(&key).await?;
    let target_box = target
        .run("EXAMINE", |s| s.examine(&destination.target_name))
        .await?;
    let after = map
        .filter(|map| Some(map.target_uidvalidity) == target_box.uid_validity)
        .map_or(0, |map| map.mirrored_target_uid);
    if target_box.exists > 0 {
        for present in identify(target, format!("{}:*", after + 1), move |uid| uid > after).await? {
            if let Some(count) = lacking.get_mut(&present.fingerprint) {
                *count = count.saturating_sub(1);
            }
        }
    }
    target.run("CLOSE", |s| s.close()).await?;
    target.discard_unsolicited();
    Ok(lacking)
}

/// `UID MOVE`, or `UID COPY` + `\Deleted` + `UID EXPUNGE` where MOVE is missing. `false` when
/// the target can do neither safely (no MOVE, no UIDPLUS).
async fn move_messages(
    target: &mut ImapConnection,
    from: &str,
    uids: &[u32],
    to: &str,
) -> Result<bool, WorkerError> {
    let has_move = target.has_capability("MOVE");
    if !has_move && !target.has_capability("UIDPLUS") {
        return Ok(false);
    }
    target.run("SELECT", |s| s.select(from)).await?;
    let set = uid_set(uids);
    if has_move {
        target.run("UID MOVE", |s| s.uid_mv(&set, to)).await?;
    } else {
        tracing::debug!(
            from,
            to,
            "no MOVE on the target: UID COPY, then UID EXPUNGE"
        );
        target.run("UID COPY", |s| s.uid_copy(&set, to)).await?;
        expunge(target, &set).await?;
    }
    leave_selected(target, from).await?;
    Ok(true)
}

/// Removes exactly `uids` from folder `from`; `false` when the target cannot (no UIDPLUS).
async fn expunge_from(
    target: &mut ImapConnection,
    from: &str,
    uids: &[u32],
) -> Result<bool, WorkerError> {
    if !target.has_capability("UIDPLUS") {
        return Ok(false);
    }
    target.run("SELECT", |s| s.select(from)).await?;
    expunge(target, &uid_set(uids)).await?;
    leave_selected(target, from).await?;
    Ok(true)
}

/// Removes exactly `set` from the selected folder (UIDPLUS's UID EXPUNGE: nothing else the user
/// marked `\Deleted` goes).
async fn expunge(target: &mut ImapConnection, set: &str) -> Result<(), WorkerError> {
    target
        .run("UID STORE", |s| async move {
            s.uid_store(set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    target
        .run("UID EXPUNGE", |s| async move {
            s.uid_expunge(set).await?.try_collect::<Vec<_>>().await
        })
        .await?;
    target.discard_unsolicited();
    Ok(())
}

/// In one folder (its moved copies gone already): deletions (or kept), flag changes, then the
/// folder's map written with this mirror's marks.
async fn apply_in_folder(
    job: &Job,
    target: &mut ImapConnection,
    state: MappedFolderState<'_>,
    departed: Vec<Departure>,
    outcome: &mut FolderOutcome,
) -> Result<(), WorkerError> {
    let MappedFolderState {
        folder,
        key,
        mut map,
        highest_modseq,
        source_flags,
        marks,
        ..
    } = state;
    let marked = (map.mirrored_source_uid, map.mirrored_target_uid) == marks;
    (map.mirrored_source_uid, map.mirrored_target_uid) = marks;
    let maybe_changed = map.entries().iter().any(|e| {
        source_flags
            .get(&e.source_uid)
            .is_some_and(|now| normalised(now) != normalised(&e.flags))
    });
    if departed.is_empty() && !maybe_changed {
        // Nothing to do on the target: spare it the SELECT.
        if map.highest_modseq != highest_modseq || !marked {
            map.highest_modseq = highest_modseq;
            job.checkpoints.store_uid_map(&key, &map).await?;
        }
        return Ok(());
    }
    let target_box = target
        .run("SELECT", |s| s.select(&folder.target_name))
        .await?;
    if target_box.uid_validity != Some(map.target_uidvalidity) {
        return leave_selected(target, &folder.target_name).await;
    }
    let permanent = PermanentFlags::from_mailbox(&target_box.permanent_flags)
        .withholding(job.target_profile.rules());
    let uidplus = target.has_capability("UIDPLUS");

    let mut dropped: HashSet<u32> = HashSet::new();
    let mut remove: Vec<u32> = Vec::new();
    for departure in departed {
        let uid = departure.entry.source_uid;
        match departure.identity {
            // Gone from the target as well (or moved): nothing left to mirror.
            None => {
                dropped.insert(uid);
            }
            // Moved, or expunged as its destination holds it already (`move_copies`).
            Some(_) if departure.moved_to.is_some() => {
                dropped.insert(uid);
            }
            Some(_) if job.mirror_deletions && uidplus => {
                remove.push(departure.entry.target_uid);
                dropped.insert(uid);
                outcome.deleted += 1;
            }
            Some(identity) => outcome.deleted_on_source_kept.push(SkippedItem {
                folder: folder.display_name.clone(),
                subject: identity.subject,
                date: identity.date,
                size: None,
                reason: "deleted on the source; kept on the target".into(),
            }),
        }
    }
    if !remove.is_empty() {
        remove.sort_unstable();
        expunge(target, &uid_set(&remove)).await?;
    }

    let mut entries = map.entries();
    let changed: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            source_flags
                .get(&e.source_uid)
                .is_some_and(|now| normalised(&storable(now, &permanent)) != normalised(&e.flags))
        })
        .map(|(index, _)| index)
        .collect();
    if !changed.is_empty() {
        let uids = sorted(changed.iter().map(|&i| entries[i].target_uid));
        let target_flags = fetch_flags(target, &uid_set(&uids), "(UID FLAGS)").await?;
        let mut wanted = BTreeMap::new();
        for &index in &changed {
            let entry = &mut entries[index];
            let now = storable(&source_flags[&entry.source_uid], &permanent);
            match target_flags.get(&entry.target_uid) {
                Some(on_target) => {
                    if let Some(merged) = merged_flags(&now, &entry.flags, on_target) {
                        wanted.insert(entry.target_uid, merged);
                    }
                }
                // The user deleted the copy on the target: forget it.
                None => {
                    dropped.insert(entry.source_uid);
                }
            }
            entry.flags = now;
        }
        outcome.flags_updated += store_flags(target, &permanent, &wanted).await?;
    }
    leave_selected(target, &folder.target_name).await?;
    entries.retain(|e| !dropped.contains(&e.source_uid));
    map.set_entries(entries);
    map.highest_modseq = highest_modseq;
    job.checkpoints.store_uid_map(&key, &map).await?;
    Ok(())
}

/// UID → flags of the selected folder's messages in `set`, fetched with `items`.
async fn fetch_flags(
    connection: &mut ImapConnection,
    set: &str,
    items: &str,
) -> Result<HashMap<u32, Vec<String>>, WorkerError> {
    let fetches: Vec<async_imap::types::Fetch> = connection
        .run("FETCH flags", |s| async move {
            s.uid_fetch(set, items).await?.try_collect().await
        })
        .await?;
    connection.confirm_complete("FETCH flags")?;
    Ok(fetches
        .iter()
        .filter_map(|f| Some((f.uid?, f.flags().map(|flag| flag_text(&flag)).collect())))
        .collect())
}

fn sorted(uids: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut uids: Vec<u32> = uids.collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}
