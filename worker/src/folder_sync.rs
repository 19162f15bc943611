//! Copying one folder: the heart of the engine.
//!
//! ```text
//! EXAMINE source ─ load checkpoint ─ EXAMINE target ─ fingerprint target UIDs above the mark
//!   └─ for each bounded batch of source UIDs above the checkpoint:
//!        FETCH metadata ─ FETCH bodies ─ claim or APPEND each ─ STATUS target ─ advance checkpoint
//! ```
//! Why it never duplicates: a message is appended only when no unclaimed target copy with its
//! fingerprint exists (rule 1), and every copy appended after the last checkpoint lies above the
//! checkpoint's target mark, where the next attempt looks. Why it never loses: the checkpoint
//! moves only past messages whose APPEND the target confirmed (rule 2). Why memory stays flat:
//! bodies are fetched in batches bounded by count and bytes, never a whole folder at once.

use std::collections::{HashMap, HashSet};

use async_imap::types::Fetch;
use chrono::{DateTime, FixedOffset, NaiveDate};
use mailfleet_shared::checkpoint::FolderCheckpoint;
use mailfleet_shared::fingerprint::{Fingerprint, header_value};
use mailfleet_shared::messages::{FolderOutcome, FolderPart, FolderPlan, MailboxUser, SkippedItem};

use crate::copy_map::record_copies;
use crate::discovery::create_folder;
use crate::error::{WorkerError, batch_failure, from_imap};
use crate::flagged_repair::set_flagged_again;
use crate::imap::ImapConnection;
use crate::imap::append::Appendable;
use crate::imap::date::append_date;
use crate::imap::flags::{AppendFlags, PermanentFlags, flag_text};
use crate::imap::quote::quotable;
use crate::imap::refusal::RefusalCode;
use crate::imap::responses::{at_most, fetch_bound};
use crate::job::{Job, Side, Tuning};
use crate::lease::FolderLease;
use crate::metrics;
use crate::target_index::{FingerprintCounts, TargetIndex};
use crate::uid_set::uid_set;

/// What one folder task did, and the part of the folder still to copy (a big folder's next
/// part), if any.
#[derive(Debug)]
pub struct FolderSynced {
    pub outcome: FolderOutcome,
    pub next_part: Option<FolderPart>,
}

/// A folder task that failed for good, with what it did before: the messages it appended are
/// on the target, and the user's report counts them.
#[derive(Debug)]
pub struct FolderFailed {
    pub error: WorkerError,
    pub outcome: FolderOutcome,
}

impl From<WorkerError> for FolderFailed {
    fn from(error: WorkerError) -> Self {
        FolderFailed {
            error,
            outcome: FolderOutcome::default(),
        }
    }
}

/// Copies every message of `plan` (of its part, for a big folder) that the target lacks,
/// retrying transient failures.
pub async fn sync_folder(
    job: &Job,
    user: &MailboxUser,
    plan: &FolderPlan,
) -> Result<FolderSynced, FolderFailed> {
    let what = format!("{} folder {}", user.email, plan.display_name);
    // The lease is the task's first store write: a store that is reconnecting (a Redis
    // restarted mid-batch) is retried like the copy itself, not reported as the user's failure.
    let lease = job
        .tuning
        .retry
        .run(&what, || {
            FolderLease::acquire(
                job.checkpoints.clone(),
                job.checkpoint_key(user, &plan.source_name),
            )
        })
        .await?;
    let mut result = copy_with_retries(job, user, plan, &lease, &what).await;
    if let Ok(synced) = &mut result {
        // Which target message is which copy, for the next passes (`copy_map`).
        // The copy is done either way; a map left behind is caught up by the next discovery.
        match record_copies(job, user, plan).await {
            Ok(updated) => synced.outcome.flags_updated += updated,
            Err(error) => tracing::warn!(user = %user.email, folder = %plan.display_name,
                %error, "map of copies not recorded; the next pass catches up"),
        }
    }
    lease.release().await;
    result
}

async fn copy_with_retries(
    job: &Job,
    user: &MailboxUser,
    plan: &FolderPlan,
    lease: &FolderLease,
    what: &str,
) -> Result<FolderSynced, FolderFailed> {
    let mut run = FolderRun::default();
    let mut attempt_number = 1;
    let mut checkpoints_before = 0;
    loop {
        let error = match attempt(job, user, plan, lease, &mut run).await {
            Ok(part) => {
                return Ok(FolderSynced {
                    outcome: run.outcome,
                    next_part: part.next(),
                });
            }
            Err(error) => error,
        };
        // An attempt that moved the checkpoint on starts the count again: a long folder that
        // the server throttles now and then (Exchange Online does) is carried through, and
        // only a folder that stops moving runs out of attempts (ARCHITECTURE.md, rule 5).
        if run.checkpoints_advanced > checkpoints_before {
            checkpoints_before = run.checkpoints_advanced;
            attempt_number = 1;
        }
        if !job.tuning.retry.backoff(what, attempt_number, &error).await {
            return Err(FolderFailed {
                error,
                outcome: run.outcome,
            });
        }
        attempt_number += 1;
    }
}

/// What one folder task has done so far, kept across retry attempts so that counts stay exact.
#[derive(Default)]
struct FolderRun {
    outcome: FolderOutcome,
    /// Appended since the last checkpoint: a retry will find these on the target and must not
    /// count them again as "already present".
    uncheckpointed_appends: FingerprintCounts,
    skipped_uids: HashSet<u32>,
    /// Messages at or below the starting checkpoint, counted once as present.
    counted_checkpointed: bool,
    /// Batches whose checkpoint was saved (after `check_kept`): the folder's progress, which
    /// a retry counts its attempts from.
    checkpoints_advanced: u64,
}

/// One source message's metadata, fetched before its body so size limits apply without
/// downloading the message.
struct MessageMeta {
    uid: u32,
    size: u64,
    flags: Vec<String>,
    internal_date: Option<DateTime<FixedOffset>>,
}

async fn attempt(
    job: &Job,
    user: &MailboxUser,
    plan: &FolderPlan,
    lease: &FolderLease,
    run: &mut FolderRun,
) -> Result<FolderPart, WorkerError> {
    let key = job.checkpoint_key(user, &plan.source_name);
    let mut source = job.open(Side::Source, user).await?;
    let mut target = job.open(Side::Target, user).await?;

    let source_name = quotable(&plan.source_name)?;
    let source_box = source.run("EXAMINE", |s| s.examine(source_name)).await?;
    let source_validity = source_box.uid_validity.unwrap_or(0);
    ensure_target_folder(&mut target, &plan.target_name).await?;
    let target_name = quotable(&plan.target_name)?;
    let target_box = target.run("EXAMINE", |s| s.examine(target_name)).await?;
    let target_validity = target_box.uid_validity.unwrap_or(0);
    let permanent_flags = PermanentFlags::from_mailbox(&target_box.permanent_flags)
        .withholding(job.target_profile.rules());

    let (from_uid, target_from_uid) = resume_points(
        job.checkpoints.load(&key).await?,
        source_validity,
        target_validity,
    );
    let mut index = if target_box.exists > 0 {
        TargetIndex::load(&mut target, target_from_uid).await?
    } else {
        TargetIndex::default()
    };
    // APPENDs and STATUS follow; an EXAMINEd folder is closed without expunging anything.
    target.run("CLOSE", |s| s.close()).await?;
    target.discard_unsolicited();
    // Where the target's UIDs stand before our appends: each batch's must move it on by as
    // many as the target confirmed (`check_kept`).
    let mut mark = match target_box.uid_next {
        Some(next) => next.saturating_sub(1),
        None => target_uid_mark(&mut target, &plan.target_name).await?,
    };

    let part = part_to_copy(plan, source_validity);
    let (uids, checkpointed) = pending_uids(
        &mut source,
        &part,
        from_uid,
        source_box.exists,
        job.received_after,
    )
    .await?;
    if !run.counted_checkpointed {
        run.outcome.already_present += checkpointed;
        metrics::engine()
            .messages_already_present
            .inc_by(checkpointed);
        job.progress.advanced(&user.email, checkpointed);
        run.counted_checkpointed = true;
    }

    let mut copier = Copier {
        job,
        user,
        plan,
        permanent_flags,
        source: &mut source,
        target: &mut target,
        index: &mut index,
        run,
    };
    for chunk in uids.chunks(job.tuning.fetch_batch_messages.max(1) * 4) {
        let metas = copier.fetch_metadata(chunk).await?;
        for batch in body_batches(&metas, job.max_message_size, &job.tuning) {
            lease.check()?;
            let confirmed = copier.copy_batch(&batch).await?;
            let last_uid = batch.last().map_or(0, |m| m.uid);
            let before = mark;
            mark = target_uid_mark(copier.target, &plan.target_name).await?;
            check_kept(
                &copier.target.server,
                &plan.target_name,
                before,
                mark,
                confirmed,
            )?;
            let checkpoint = FolderCheckpoint {
                source_uidvalidity: source_validity,
                last_source_uid: last_uid,
                target_uidvalidity: target_validity,
                target_uid_mark: mark,
            };
            job.checkpoints.advance(&key, checkpoint).await?;
            copier.run.uncheckpointed_appends.clear();
            copier.run.checkpoints_advanced += 1;
        }
    }
    if let Some(upper) = part.upper_uid() {
        // Source UIDs up to the bound that no longer exist were expunged: the part is done and
        // the next one starts above it.
        let checkpoint = FolderCheckpoint {
            source_uidvalidity: source_validity,
            last_source_uid: upper,
            target_uidvalidity: target_validity,
            target_uid_mark: target_uid_mark(&mut target, &plan.target_name).await?,
        };
        job.checkpoints.advance(&key, checkpoint).await?;
    }
    // EXAMINE leaves the source folder selected; CLOSE on a read-only folder expunges nothing.
    source.run("CLOSE", |s| s.close()).await?;
    source.discard_unsolicited();
    job.release(Side::Source, user, source);
    job.release(Side::Target, user, target);
    Ok(part)
}

/// Copies a batch of messages; holds the connections and the guard for one attempt.
struct Copier<'a> {
    job: &'a Job,
    user: &'a MailboxUser,
    plan: &'a FolderPlan,
    permanent_flags: PermanentFlags,
    source: &'a mut ImapConnection,
    target: &'a mut ImapConnection,
    index: &'a mut TargetIndex,
    run: &'a mut FolderRun,
}

impl Copier<'_> {
    async fn fetch_metadata(&mut self, uids: &[u32]) -> Result<Vec<MessageMeta>, WorkerError> {
        let set = uid_set(uids);
        let max = fetch_bound(uids.len());
        let fetches: Vec<Fetch> = self
            .source
            .run("FETCH metadata", |s| async move {
                let answers = s
                    .uid_fetch(set, "(UID RFC822.SIZE FLAGS INTERNALDATE)")
                    .await?;
                at_most(answers, max, |f| f).await
            })
            .await?
            .ok_or_else(|| {
                self.source
                    .answered_too_many("FETCH metadata", max, "responses")
            })?;
        let mut metas: Vec<MessageMeta> = fetches
            .iter()
            .filter_map(|f| {
                Some(MessageMeta {
                    uid: f.uid?,
                    size: u64::from(f.size.unwrap_or(0)),
                    flags: f.flags().map(|flag| flag_text(&flag)).collect(),
                    internal_date: f.internal_date(),
                })
            })
            .filter(|m| uids.binary_search(&m.uid).is_ok())
            .collect();
        self.source.confirm_complete("FETCH metadata")?;
        metas.sort_by_key(|m| m.uid);
        let found: Vec<u32> = metas.iter().map(|m| m.uid).collect();
        self.ensure_gone(uids, &found, "metadata").await?;
        Ok(metas)
    }

    /// Copies `batch`; returns how many messages the target confirmed appended.
    async fn copy_batch(&mut self, batch: &[&MessageMeta]) -> Result<u32, WorkerError> {
        // A message the target refused earlier in this task is not offered again on a retry:
        // it would be refused again, and Exchange Online ends a session at its tenth error
        // (FAULTS.md, "Exchange Online as the target"), so a batch holding ten such messages
        // would end every attempt at the same place. It is already reported as skipped.
        let (oversized, wanted): (Vec<&MessageMeta>, Vec<&MessageMeta>) = batch
            .iter()
            .filter(|m| !self.run.skipped_uids.contains(&m.uid))
            .partition(|m| m.size > self.job.max_message_size);
        for meta in oversized {
            let header = self.fetch_header(meta.uid).await?;
            let reason = format!(
                "message is {}, larger than the {} limit",
                human_size(meta.size),
                human_size(self.job.max_message_size)
            );
            self.skip(meta, &header, reason);
        }
        let fetched = self.fetch_bodies(&wanted).await?;
        let mut to_append = Vec::new();
        for meta in wanted {
            // A message expunged on the source since the metadata fetch simply has no body.
            let Some(body) = fetched.get(&meta.uid).and_then(Fetch::body) else {
                continue;
            };
            let fingerprint = Fingerprint::from_header(body, body.len() as u64);
            if self.index.claim(&fingerprint) {
                if !self.run.uncheckpointed_appends.take_one(&fingerprint) {
                    self.run.outcome.already_present += 1;
                    metrics::engine().messages_already_present.inc();
                }
                continue;
            }
            if self.run.uncheckpointed_appends.take_one(&fingerprint) {
                self.not_kept(meta, body);
            }
            to_append.push((meta, body, fingerprint));
        }
        let confirmed = self.append(&to_append).await?;
        self.job
            .progress
            .advanced(&self.user.email, batch.len() as u64);
        Ok(confirmed)
    }

    /// An earlier attempt of this task had the target confirm this message's APPEND, yet the
    /// target does not hold it (`WorkerError::NotStored` sent us here): it is appended again,
    /// counted once, and the user's report says so, since a target that drops what it accepted
    /// may drop more than a count can show.
    fn not_kept(&mut self, meta: &MessageMeta, body: &[u8]) {
        self.run.outcome.appended = self.run.outcome.appended.saturating_sub(1);
        self.run.outcome.bytes = self.run.outcome.bytes.saturating_sub(body.len() as u64);
        let reason =
            "the target answered OK to its APPEND but did not store it; appended again".to_owned();
        tracing::warn!(user = %self.user.email, folder = %self.plan.display_name, uid = meta.uid, %reason, "message not kept by the target");
        let item = self.report_item(meta, body, reason);
        self.run.outcome.warnings.push(item);
    }

    /// Appends the messages the target lacks, records each one the target confirmed, and skips
    /// (reports) each one it refused; returns how many it confirmed. A failure of the
    /// connection stops the batch after the confirmed ones are recorded, so a retry counts them
    /// as appended, not as found.
    async fn append(
        &mut self,
        messages: &[(&MessageMeta, &[u8], Fingerprint)],
    ) -> Result<u32, WorkerError> {
        let mut appendables: Vec<Appendable> = Vec::with_capacity(messages.len());
        let mut not_kept: Vec<(usize, Vec<String>)> = Vec::new();
        let mut flagged: Vec<bool> = Vec::with_capacity(messages.len());
        for (index, (meta, body, _)) in messages.iter().enumerate() {
            let flags = AppendFlags::select(&meta.flags, &self.permanent_flags);
            if !flags.dropped.is_empty() {
                not_kept.push((index, flags.dropped.clone()));
            }
            flagged.push(flags.kept.iter().any(|f| f == "\\Flagged"));
            appendables.push(Appendable {
                body,
                flags: flags.to_imap_list(),
                date: meta.internal_date.as_ref().map(append_date),
            });
        }
        // Setting \Flagged again needs each copy's UID (`flagged_repair.rs`).
        let store_flagged =
            self.job.target_profile.rules().store_flagged_after_append && flagged.contains(&true);
        let outcome = self
            .target
            .append_batch(&self.plan.target_name, &appendables, store_flagged)
            .await;
        let mut failure = outcome.stopped;
        let mut confirmed = 0;
        let mut to_flag: Vec<(usize, Option<u32>)> = Vec::new();
        for (index, ((meta, body, fingerprint), answer)) in
            messages.iter().zip(outcome.answers).enumerate()
        {
            match answer.map(|a| a.map_err(|e| from_imap(&self.target.server, "APPEND", e))) {
                Some(Ok(())) => {
                    confirmed += 1;
                    self.record_appended(*fingerprint, body.len() as u64);
                    if let Some((_, keywords)) = not_kept.iter().find(|(i, _)| *i == index) {
                        self.warn_keywords(meta, body, keywords);
                    }
                    if flagged[index] {
                        to_flag.push((index, outcome.uids[index]));
                    }
                }
                // The target refuses this one message (size, content): report it, go on.
                Some(Err(WorkerError::Refused { reason, .. }))
                    if RefusalCode::of(&reason) != Some(RefusalCode::TryCreate) =>
                {
                    self.skip(meta, body, format!("target refused the message: {reason}"));
                }
                Some(Err(other)) => failure = Some(batch_failure(failure, other)),
                None => {}
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        if store_flagged {
            self.set_flagged_again(messages, &to_flag).await?;
        }
        Ok(confirmed)
    }

    /// Where the target's profile says APPEND does not keep `\Flagged` reliably: sets it again
    /// on the copies APPENDUID named, and reports each copy that still lacks it (or whose UID
    /// the target did not say, so it could not be set).
    async fn set_flagged_again(
        &mut self,
        messages: &[(&MessageMeta, &[u8], Fingerprint)],
        appended: &[(usize, Option<u32>)],
    ) -> Result<(), WorkerError> {
        let uids: Vec<u32> = appended.iter().filter_map(|(_, uid)| *uid).collect();
        let missing = set_flagged_again(self.target, &self.plan.target_name, &uids).await?;
        for (index, uid) in appended {
            let reason = match uid {
                None => "\\Flagged may be missing: the target gave no APPENDUID to set it again",
                Some(uid) if missing.contains(uid) => {
                    "\\Flagged not kept: the target dropped it even when set again with STORE"
                }
                Some(_) => continue,
            };
            let (meta, body, _) = &messages[*index];
            let item = self.report_item(meta, body, reason.to_owned());
            self.run.outcome.warnings.push(item);
        }
        Ok(())
    }

    fn record_appended(&mut self, fingerprint: Fingerprint, bytes: u64) {
        self.run.uncheckpointed_appends.add(fingerprint);
        self.run.outcome.appended += 1;
        self.run.outcome.bytes += bytes;
        metrics::engine().messages_copied.inc();
        metrics::engine().bytes_copied.inc_by(bytes);
    }

    async fn fetch_bodies(
        &mut self,
        metas: &[&MessageMeta],
    ) -> Result<HashMap<u32, Fetch>, WorkerError> {
        if metas.is_empty() {
            return Ok(HashMap::new());
        }
        let set = uid_set(&metas.iter().map(|m| m.uid).collect::<Vec<_>>());
        let max = fetch_bound(metas.len());
        let fetches: Vec<Fetch> = self
            .source
            .run("FETCH bodies", |s| async move {
                let answers = s.uid_fetch(set, "(UID BODY.PEEK[])").await?;
                at_most(answers, max, |f| f).await
            })
            .await?
            .ok_or_else(|| {
                self.source
                    .answered_too_many("FETCH bodies", max, "responses")
            })?;
        self.source.confirm_complete("FETCH bodies")?;
        // Bodies stay in the buffers async-imap read them into: no copy of the message.
        let bodies: HashMap<u32, Fetch> = fetches
            .into_iter()
            .filter_map(|f| Some((f.uid?, f)))
            .filter(|(_, f)| f.body().is_some())
            .collect();
        let wanted: Vec<u32> = metas.iter().map(|m| m.uid).collect();
        let mut found: Vec<u32> = bodies.keys().copied().collect();
        found.sort_unstable();
        self.ensure_gone(&wanted, &found, "body").await?;
        Ok(bodies)
    }

    /// Requested messages the server did not return must have been expunged meanwhile; if they
    /// still exist, the answer was incomplete and the batch is retried, never skipped.
    async fn ensure_gone(
        &mut self,
        wanted: &[u32],
        found: &[u32],
        what: &str,
    ) -> Result<(), WorkerError> {
        let missing: Vec<u32> = wanted
            .iter()
            .copied()
            .filter(|uid| found.binary_search(uid).is_err())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let set = uid_set(&missing);
        let still_there = self
            .source
            .run("UID SEARCH", |s| s.uid_search(format!("UID {set}")))
            .await?;
        self.source.confirm_complete("UID SEARCH")?;
        // Only the UIDs asked about count: a server may name others.
        let mut uids: Vec<u32> = still_there
            .into_iter()
            .filter(|uid| missing.binary_search(uid).is_ok())
            .collect();
        if uids.is_empty() {
            return Ok(());
        }
        uids.sort_unstable();
        Err(WorkerError::Incomplete {
            server: self.source.server.clone(),
            reason: format!(
                "FETCH returned no {what} for UIDs {} of folder {}, which UID SEARCH still finds \
                 (retried, never skipped: ARCHITECTURE.md, rule 5)",
                uid_set(&uids),
                self.plan.display_name
            ),
        })
    }

    async fn fetch_header(&mut self, uid: u32) -> Result<Vec<u8>, WorkerError> {
        let max = fetch_bound(1);
        let fetches: Vec<Fetch> = self
            .source
            .run("FETCH header", |s| async move {
                let answers = s
                    .uid_fetch(
                        uid.to_string(),
                        "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)])",
                    )
                    .await?;
                at_most(answers, max, |f| f).await
            })
            .await?
            .ok_or_else(|| {
                self.source
                    .answered_too_many("FETCH header", max, "responses")
            })?;
        Ok(fetches
            .iter()
            .find_map(|f| f.header().map(<[u8]>::to_vec))
            .unwrap_or_default())
    }

    /// Records a message that is deliberately not copied, once per task even across retries.
    fn skip(&mut self, meta: &MessageMeta, header: &[u8], reason: String) {
        if !self.run.skipped_uids.insert(meta.uid) {
            return;
        }
        tracing::warn!(user = %self.user.email, folder = %self.plan.display_name, uid = meta.uid, %reason, "message skipped");
        metrics::engine().messages_skipped.inc();
        let item = self.report_item(meta, header, reason);
        self.run.outcome.skipped.push(item);
    }

    /// The message went in, without the keywords the target cannot keep: one warning each, so
    /// a person sees which message lost which keyword (ARCHITECTURE.md, rule 4).
    fn warn_keywords(&mut self, meta: &MessageMeta, header: &[u8], keywords: &[String]) {
        for keyword in keywords {
            let reason = self.permanent_flags.refusal_reason(keyword);
            tracing::warn!(user = %self.user.email, folder = %self.plan.display_name, uid = meta.uid, %reason, "keyword not carried");
            let item = self.report_item(meta, header, reason);
            self.run.outcome.warnings.push(item);
        }
    }

    /// A report line naming the message by folder, subject, date and size.
    fn report_item(&self, meta: &MessageMeta, header: &[u8], reason: String) -> SkippedItem {
        let text = |name| {
            header_value(header, name).map(|v| String::from_utf8_lossy(&v).trim().to_owned())
        };
        SkippedItem {
            folder: self.plan.display_name.clone(),
            subject: text("Subject"),
            date: text("Date").or_else(|| meta.internal_date.map(|d| d.to_rfc2822())),
            size: Some(meta.size),
            reason,
        }
    }
}

/// Creates the target folder if it is missing (discovery normally did; a redelivered task may
/// find it deleted meanwhile).
async fn ensure_target_folder(target: &mut ImapConnection, name: &str) -> Result<(), WorkerError> {
    if target.status(name, "(MESSAGES)").await.is_ok() {
        return Ok(());
    }
    create_folder(target, name)
        .await?
        .map_err(|reason| WorkerError::Refused {
            server: target.server.clone(),
            context: format!("CREATE {name}"),
            reason,
        })
}

/// The source UIDs of `part` still to copy (those ≥ `from_uid`, ascending), and how many of the
/// part's messages lie below `from_uid` (already copied, per the checkpoint). UID SEARCH keeps
/// this to 4 bytes a message, whatever the folder's size. With `since`, messages received
/// before that day are out of scope: neither copied nor counted.
async fn pending_uids(
    source: &mut ImapConnection,
    part: &FolderPart,
    from_uid: u32,
    folder_messages: u32,
    since: Option<NaiveDate>,
) -> Result<(Vec<u32>, u64), WorkerError> {
    if part.is_whole() && since.is_none() {
        let pending = uid_search(source, from_uid, None, None).await?;
        let checkpointed = u64::from(folder_messages).saturating_sub(pending.len() as u64);
        return Ok((pending, checkpointed));
    }
    let in_part = uid_search(source, part.after_uid + 1, part.upper_uid(), since).await?;
    Ok(split_at_checkpoint(in_part, from_uid))
}

/// Where copying resumes, source and target side: above the checkpoint's marks when it holds
/// for both folders' current UIDVALIDITY, else from the first UID (the guard, rule 1, keeps
/// what is already on the target from being copied again).
fn resume_points(
    checkpoint: Option<FolderCheckpoint>,
    source_validity: u32,
    target_validity: u32,
) -> (u32, u32) {
    checkpoint
        .filter(|cp| {
            cp.source_uidvalidity == source_validity && cp.target_uidvalidity == target_validity
        })
        .map_or((1, 1), |cp| {
            (cp.last_source_uid + 1, cp.target_uid_mark + 1)
        })
}

/// The part of the folder this task copies. Part bounds are UIDs under the UIDVALIDITY
/// discovery saw; under a new one the task copies the whole folder (the guard keeps what
/// earlier parts copied from doubling).
fn part_to_copy(plan: &FolderPlan, source_validity: u32) -> FolderPart {
    if source_validity == plan.uid_validity {
        plan.part.clone()
    } else {
        FolderPart::default()
    }
}

/// A part's UIDs (ascending) split at the checkpoint: those still to copy, and how many lie
/// below `from_uid` (copied by an earlier attempt).
fn split_at_checkpoint(in_part: Vec<u32>, from_uid: u32) -> (Vec<u32>, u64) {
    let (done, pending): (Vec<u32>, Vec<u32>) =
        in_part.into_iter().partition(|&uid| uid < from_uid);
    (pending, done.len() as u64)
}

/// Source UIDs from `first` up to `last` (the highest UID when `None`), received on or after
/// `since` if given, ascending.
async fn uid_search(
    source: &mut ImapConnection,
    first: u32,
    last: Option<u32>,
    since: Option<NaiveDate>,
) -> Result<Vec<u32>, WorkerError> {
    let last_text = last.map_or_else(|| "*".to_owned(), |uid| uid.to_string());
    // RFC 3501 date: 1-Feb-2024 (English month names whatever the locale).
    let since_text = since.map_or_else(String::new, |day| {
        format!(" SINCE {}", day.format("%-d-%b-%Y"))
    });
    let found = source
        .run("UID SEARCH", |s| {
            s.uid_search(format!("UID {first}:{last_text}{since_text}"))
        })
        .await?;
    source.confirm_complete("UID SEARCH")?;
    Ok(sorted_within(found, first, last))
}

/// The UIDs from `first` to `last` (no bound when `None`), ascending. `n:*` always matches the
/// highest UID, even one below n, so a search's answer is filtered, not trusted.
fn sorted_within(found: impl IntoIterator<Item = u32>, first: u32, last: Option<u32>) -> Vec<u32> {
    let last = last.unwrap_or(u32::MAX);
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|uid| (first..=last).contains(uid))
        .collect();
    uids.sort_unstable();
    uids
}

/// The target folder's highest UID now, after our confirmed appends. Copies appended later are
/// above it; see the `checkpoint` module.
async fn target_uid_mark(target: &mut ImapConnection, name: &str) -> Result<u32, WorkerError> {
    let status = target.status(name, "(UIDNEXT)").await?;
    Ok(status.uid_next.map_or(0, |next| next.saturating_sub(1)))
}

/// The target's UIDs must have moved on by at least the messages it confirmed appended, from
/// `before` to `after` (its highest UID around the batch): UIDs only grow, so a smaller step means
/// it answered OK to APPENDs it did not store. Costs nothing: the STATUS after each batch is
/// there for the checkpoint's mark anyway (ARCHITECTURE.md, rules 1 and 2: nothing lost).
fn check_kept(
    server: &str,
    folder: &str,
    before: u32,
    after: u32,
    confirmed: u32,
) -> Result<(), WorkerError> {
    let stored = after.saturating_sub(before);
    if stored >= confirmed {
        return Ok(());
    }
    Err(WorkerError::NotStored {
        server: server.to_owned(),
        folder: folder.to_owned(),
        confirmed,
        stored,
        uid_next_before: before.saturating_add(1),
        uid_next_after: after.saturating_add(1),
    })
}

/// Splits metadata into batches whose bodies fit the memory budget (`tuning`'s messages and
/// bytes). A message over `max_message_size` costs nothing: only its header is fetched.
fn body_batches<'m>(
    metas: &'m [MessageMeta],
    max_message_size: u64,
    tuning: &Tuning,
) -> Vec<Vec<&'m MessageMeta>> {
    let mut batches = Vec::new();
    let mut current: Vec<&MessageMeta> = Vec::new();
    let mut bytes = 0;
    for meta in metas {
        let counted = if meta.size > max_message_size {
            0
        } else {
            meta.size
        };
        if !current.is_empty()
            && (current.len() >= tuning.fetch_batch_messages
                || bytes + counted > tuning.fetch_batch_bytes)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += counted;
        current.push(meta);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

fn human_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / MB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: u32, size: u64) -> MessageMeta {
        MessageMeta {
            uid,
            size,
            flags: Vec::new(),
            internal_date: None,
        }
    }

    fn uids(batches: &[Vec<&MessageMeta>]) -> Vec<Vec<u32>> {
        batches
            .iter()
            .map(|b| b.iter().map(|m| m.uid).collect())
            .collect()
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes_and_oversized_messages_cost_nothing() {
        let tuning = Tuning {
            fetch_batch_messages: 3,
            fetch_batch_bytes: 100,
            ..Tuning::default()
        };
        let metas = [
            meta(1, 40),
            meta(2, 40),
            meta(3, 40),   // 120 bytes with the first two: a new batch
            meta(4, 5000), // over the size limit: only its header is fetched
            meta(5, 10),
            meta(6, 10),  // the fourth message: a new batch
            meta(7, 500), // larger than the byte budget: alone
            meta(8, 1),
        ];
        let batches = body_batches(&metas, 1000, &tuning);
        assert_eq!(
            uids(&batches),
            [vec![1, 2], vec![3, 4, 5], vec![6], vec![7], vec![8]]
        );
        assert!(body_batches(&[], 1000, &tuning).is_empty());
    }

    #[test]
    fn a_checkpoint_is_resumed_only_under_both_uidvalidities() {
        let checkpoint = FolderCheckpoint {
            source_uidvalidity: 7,
            last_source_uid: 41,
            target_uidvalidity: 9,
            target_uid_mark: 99,
        };
        assert_eq!(resume_points(Some(checkpoint), 7, 9), (42, 100));
        assert_eq!(resume_points(Some(checkpoint), 8, 9), (1, 1));
        assert_eq!(resume_points(Some(checkpoint), 7, 10), (1, 1));
        assert_eq!(resume_points(None, 7, 9), (1, 1));
    }

    #[test]
    fn a_part_is_kept_only_under_the_uidvalidity_discovery_saw() {
        let part = FolderPart::first_of(&[1, 2, 3, 4], 2);
        let plan = FolderPlan {
            source_name: "Big".into(),
            target_name: "Big".into(),
            display_name: "Big".into(),
            selectable: true,
            messages: 4,
            uid_validity: 5,
            part: part.clone(),
        };
        assert_eq!(part_to_copy(&plan, 5), part);
        assert!(part_to_copy(&plan, 6).is_whole());
    }

    #[test]
    fn uids_below_the_checkpoint_are_counted_not_copied() {
        assert_eq!(split_at_checkpoint(vec![3, 5, 8, 13], 6), (vec![8, 13], 2));
        assert_eq!(split_at_checkpoint(vec![3, 5], 1), (vec![3, 5], 0));
    }

    #[test]
    fn a_search_answer_is_kept_to_the_asked_range() {
        // `20:*` on a folder whose highest UID is 12 answers 12.
        assert_eq!(sorted_within([12], 20, None), Vec::<u32>::new());
        assert_eq!(sorted_within([9, 3, 7, 30], 3, Some(9)), [3, 7, 9]);
    }

    #[test]
    fn a_target_whose_uids_moved_on_less_than_it_confirmed_did_not_keep_them() {
        let server = "target imap://127.0.0.1:143";
        assert!(check_kept(server, "INBOX", 10, 14, 4).is_ok());
        // Other clients' mail arriving meanwhile moves the UIDs on further: still fine.
        assert!(check_kept(server, "INBOX", 10, 20, 4).is_ok());
        assert!(check_kept(server, "INBOX", 10, 10, 0).is_ok());
        let error = check_kept(server, "Archive", 10, 11, 4).unwrap_err();
        assert!(
            error.is_transient(),
            "retried: the next attempt appends them again"
        );
        assert_eq!(
            error.to_string(),
            "target imap://127.0.0.1:143 confirmed 4 message(s) appended to Archive but holds at \
             most 1 of them (its UIDNEXT went from 11 to 12): the target did not keep what it \
             accepted"
        );
        // A folder re-created meanwhile (UIDNEXT back to 1) holds none of them either.
        assert!(check_kept(server, "INBOX", 10, 0, 1).is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(35 * 1024 * 1024), "35.0 MB");
    }
}
