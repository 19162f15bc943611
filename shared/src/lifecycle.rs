//! Batches and their lifecycle (ARCHITECTURE.md, "What a user does"): the names users know from
//! Microsoft's service, which command is allowed in which state, and what the scheduler does next.
//!
//! Everything here is pure — the time is always passed in — so every transition is tested
//! without a clock, and the service (`mailfleet run`) is only a loop that loads a batch, asks
//! [`BatchRecord::due`], runs that sync pass and hands the outcome to
//! [`BatchRecord::pass_finished`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::messages::{MailboxUser, SkippedItem};

/// A batch's status, by Microsoft's names. `Failed`: its initial sync failed for every user,
/// so nothing was migrated and incremental syncs would fail alike; `start` retries it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchState {
    #[default]
    Created,
    Starting,
    Syncing,
    Synced,
    SyncedWithErrors,
    IncrementalSyncing,
    Stopping,
    Stopped,
    Completing,
    Completed,
    CompletedWithErrors,
    Failed,
    Removing,
}

/// A user's status, by Microsoft's names. Microsoft's `Provisioning` (creating the target
/// mailbox), `Validating` and `Removing` have no counterpart: an IMAP migration's target
/// mailboxes exist beforehand, logging in and listing folders is part of the sync, and removing
/// a batch removes its users at once. `Stopped`: a pass was working on the user when its batch
/// stopped and the pass could not finish (see [`UserState::after_interrupted_pass`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserState {
    Queued,
    Syncing,
    Synced,
    IncrementalSyncing,
    IncrementalSynced,
    Completing,
    Completed,
    CompletedWithWarnings,
    Failed,
    IncrementalFailed,
    Stopped,
}

impl BatchState {
    /// Whether a pass of the batch may be running: the scheduler changes its users without the
    /// batch's state changing, and what the batch stands on (its tenant, its endpoints) must
    /// not be taken away.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            BatchState::Starting
                | BatchState::Syncing
                | BatchState::IncrementalSyncing
                | BatchState::Stopping
                | BatchState::Completing
        )
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl UserState {
    /// Every state, in declaration order.
    pub const ALL: [UserState; 11] = [
        UserState::Queued,
        UserState::Syncing,
        UserState::Synced,
        UserState::IncrementalSyncing,
        UserState::IncrementalSynced,
        UserState::Completing,
        UserState::Completed,
        UserState::CompletedWithWarnings,
        UserState::Failed,
        UserState::IncrementalFailed,
        UserState::Stopped,
    ];

    /// The state whose name (as displayed and stored) is `name`, ASCII letters in any case.
    pub fn named(name: &str) -> Option<UserState> {
        UserState::ALL
            .into_iter()
            .find(|state| state.to_string().eq_ignore_ascii_case(name))
    }

    /// Whether a pass is working on the user (the states of [`PassKind::user_running_state`]).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            UserState::Syncing | UserState::IncrementalSyncing | UserState::Completing
        )
    }

    /// The state of a user that a pass left running when the service was killed, once its
    /// batch is recovered ([`BatchRecord::recover_after_restart`]) as `batch`: `Stopped` in a
    /// stopped batch; `Queued` when its initial sync runs again; otherwise unchanged, since the
    /// pass that runs again sets it anew.
    pub fn after_interrupted_pass(self, batch: BatchState) -> UserState {
        match (self, batch) {
            (state, _) if !state.is_running() => state,
            (_, BatchState::Stopped) => UserState::Stopped,
            (UserState::Syncing, _) => UserState::Queued,
            (state, _) => state,
        }
    }
}

impl fmt::Display for UserState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A sync pass over every user of a batch. All three copy only what the target lacks
/// (checkpoints and the fingerprint guard); they differ in the states they lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PassKind {
    Initial,
    Incremental,
    Final,
}

impl PassKind {
    /// The batch's state while the pass runs.
    pub fn running_state(self) -> BatchState {
        match self {
            PassKind::Initial => BatchState::Syncing,
            PassKind::Incremental => BatchState::IncrementalSyncing,
            PassKind::Final => BatchState::Completing,
        }
    }

    /// A user's state while the pass works on it.
    pub fn user_running_state(self) -> UserState {
        match self {
            PassKind::Initial => UserState::Syncing,
            PassKind::Incremental => UserState::IncrementalSyncing,
            PassKind::Final => UserState::Completing,
        }
    }

    /// A user's state once the pass is done with it.
    pub fn user_outcome(self, failed: bool, skipped_items: bool) -> UserState {
        match (self, failed) {
            (PassKind::Initial, false) => UserState::Synced,
            (PassKind::Initial, true) => UserState::Failed,
            (PassKind::Incremental, false) => UserState::IncrementalSynced,
            (PassKind::Incremental, true) => UserState::IncrementalFailed,
            (PassKind::Final, true) => UserState::Failed,
            (PassKind::Final, false) if skipped_items => UserState::CompletedWithWarnings,
            (PassKind::Final, false) => UserState::Completed,
        }
    }
}

/// How a pass went for the batch's users together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// No user failed (a batch without users counts here).
    NoneFailed,
    SomeFailed,
    /// Every user failed: after the initial sync, the batch is [`BatchState::Failed`].
    AllFailed,
}

impl PassOutcome {
    pub fn of(users: usize, failed: usize) -> Self {
        match failed {
            0 => PassOutcome::NoneFailed,
            failed if failed >= users => PassOutcome::AllFailed,
            _ => PassOutcome::SomeFailed,
        }
    }

    pub fn any_failed(self) -> bool {
        self != PassOutcome::NoneFailed
    }
}

/// "Did any user fail?": what callers that do not count users know. `true` never makes a
/// batch `Failed`; [`PassOutcome::of`] does when every user failed.
impl From<bool> for PassOutcome {
    fn from(any_user_failed: bool) -> Self {
        if any_user_failed {
            PassOutcome::SomeFailed
        } else {
            PassOutcome::NoneFailed
        }
    }
}

/// How often and how long: 24 h between incremental syncs and a 72 h completion window in
/// production; seconds in tests. Each batch keeps its own, so a restarted service keeps every
/// deadline it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecyclePolicy {
    pub incremental_interval: Duration,
    pub completion_window: Duration,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        LifecyclePolicy {
            incremental_interval: Duration::from_secs(24 * 3600),
            completion_window: Duration::from_secs(72 * 3600),
        }
    }
}

/// A batch name: unique, at most 64 characters, letters, digits, `-` and `_` only.
pub fn validate_batch_name(name: &str) -> Result<(), LifecycleError> {
    let invalid = |why: &str| Err(LifecycleError(format!("batch name {name:?} {why}")));
    if name.is_empty() {
        return invalid("is empty");
    }
    if name.chars().count() > 64 {
        return invalid("is longer than 64 characters");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return invalid(&format!(
            "contains {bad:?}; use only letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LifecycleError(pub String);

/// What an administrator asks of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchCommand {
    Start,
    Stop,
    Resume,
    Complete,
    Remove,
    SyncNow,
}

impl fmt::Display for BatchCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            BatchCommand::Start => "start",
            BatchCommand::Stop => "stop",
            BatchCommand::Resume => "resume",
            BatchCommand::Complete => "complete",
            BatchCommand::Remove => "remove",
            BatchCommand::SyncNow => "sync-now",
        };
        f.write_str(name)
    }
}

/// A migration batch as the state store keeps it. The default is a batch just created: nothing
/// synced, nothing scheduled, never stored; `batch create` fills in its settings with struct
/// update syntax (`BatchRecord { name, …, ..BatchRecord::default() }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub name: String,
    /// Names of the source and target endpoints.
    pub source_endpoint: String,
    pub target_endpoint: String,
    pub include_folders: Vec<String>,
    pub exclude_folders: Vec<String>,
    /// Only messages received on or after this day are copied.
    pub received_after: Option<NaiveDate>,
    pub max_message_size: u64,
    /// Incremental passes remove copies of messages deleted on the source.
    #[serde(default)]
    pub mirror_deletions: bool,
    pub notify: Vec<String>,
    /// The target's mail exchanger: `batch complete` checks that the users' domains point at
    /// it (`--force` to complete anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_mx: Option<String>,
    pub policy: LifecyclePolicy,
    pub state: BatchState,
    pub created_at: DateTime<Utc>,
    /// When the initial sync may begin; `None` until `batch start` (or `--autostart`).
    pub start_after: Option<DateTime<Utc>>,
    /// When completion begins by itself (as if `batch complete` had been run then).
    pub complete_after: Option<DateTime<Utc>>,
    pub initial_sync_finished_at: Option<DateTime<Utc>>,
    pub last_sync_finished_at: Option<DateTime<Utc>>,
    /// When the next incremental sync is due (also set by `sync-now`).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Set by completion: syncing continues until then, then the final sync runs.
    pub completion_deadline: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The row version this copy was read at (0: never stored). The state store writes a
    /// changed copy only while the stored row is still at this version and then bumps it, so
    /// a writer that read before another's write gets a conflict instead of undoing it; see
    /// [`update_batch`](crate::state::update_batch).
    #[serde(default)]
    pub version: u64,
}

impl BatchRecord {
    /// Applies an administrator's command at `now`, or says why it is not allowed in this state.
    pub fn apply(
        &mut self,
        command: BatchCommand,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        use BatchState::*;
        let refused = |state: BatchState| {
            Err(LifecycleError(format!(
                "batch {}: cannot {command} a batch that is {state}",
                self.name
            )))
        };
        match (command, self.state) {
            (BatchCommand::Start, Created) => {
                self.state = Starting;
                self.start_after = Some(now);
            }
            (BatchCommand::Start | BatchCommand::Resume, Failed) => {
                // The initial sync again, for every user: checkpoints skip what was copied.
                self.state = Starting;
                self.start_after = Some(now);
            }
            (BatchCommand::Start | BatchCommand::Resume, Stopped) => {
                if self.initial_sync_finished_at.is_some() {
                    self.state = Synced;
                    self.next_sync_at = Some(now);
                } else {
                    self.state = Starting;
                    self.start_after = Some(now);
                }
            }
            (BatchCommand::Stop, Syncing | IncrementalSyncing) => self.state = Stopping,
            (BatchCommand::Stop, Created | Starting | Synced | SyncedWithErrors) => {
                self.state = Stopped;
            }
            (BatchCommand::Complete, Synced | SyncedWithErrors | IncrementalSyncing) => {
                self.begin_completion(now);
            }
            (BatchCommand::Complete, Created | Starting | Syncing) => {
                return Err(LifecycleError(format!(
                    "batch {}: cannot complete before the initial sync has finished (it is {})",
                    self.name, self.state
                )));
            }
            // Removing too: a removal cut short (the state stored, the rows not yet deleted)
            // is finished by asking again.
            (
                BatchCommand::Remove,
                Created | Stopped | Completed | CompletedWithErrors | Failed | Removing,
            ) => self.state = Removing,
            (BatchCommand::SyncNow, Synced | SyncedWithErrors | Completing) => {
                self.next_sync_at = Some(now);
            }
            (_, state) => return refused(state),
        }
        Ok(())
    }

    fn begin_completion(&mut self, now: DateTime<Utc>) {
        if self.completion_deadline.is_none() {
            self.completion_deadline = Some(now + self.policy.completion_window);
        }
        if self.state != BatchState::IncrementalSyncing {
            self.state = BatchState::Completing;
        }
    }

    /// The pass the scheduler should run now, if any. Also moves a batch whose `complete_after`
    /// has come into its completion window.
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<PassKind> {
        use BatchState::*;
        let reached = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at <= now);
        if matches!(self.state, Synced | SyncedWithErrors) && reached(self.complete_after) {
            self.begin_completion(now);
        }
        match self.state {
            Created | Starting if reached(self.start_after) => Some(PassKind::Initial),
            Synced | SyncedWithErrors if reached(self.next_sync_at) => Some(PassKind::Incremental),
            Completing if reached(self.completion_deadline) => Some(PassKind::Final),
            Completing if reached(self.next_sync_at) => Some(PassKind::Incremental),
            _ => None,
        }
    }

    /// Marks the start of a pass (the state shown while it runs).
    pub fn pass_started(&mut self, kind: PassKind) {
        // During the completion window the batch stays Completing, incremental passes included.
        if self.state != BatchState::Completing {
            self.state = kind.running_state();
        }
    }

    /// Records a finished pass. `self` must be freshly loaded: an administrator may have
    /// stopped or completed the batch while the pass ran. An initial sync that failed for
    /// every user leaves the batch `Failed`, not synced, with no incremental sync planned.
    pub fn pass_finished(
        &mut self,
        kind: PassKind,
        outcome: impl Into<PassOutcome>,
        now: DateTime<Utc>,
    ) {
        use BatchState::*;
        let outcome = outcome.into();
        let any_user_failed = outcome.any_failed();
        self.last_sync_finished_at = Some(now);
        if kind == PassKind::Initial
            && outcome == PassOutcome::AllFailed
            && matches!(self.state, Syncing)
        {
            self.next_sync_at = None;
            self.state = Failed;
            return;
        }
        self.next_sync_at = Some(now + self.policy.incremental_interval);
        if kind == PassKind::Initial {
            self.initial_sync_finished_at.get_or_insert(now);
        }
        self.state = match (kind, self.state) {
            (PassKind::Final, _) => {
                self.finished_at = Some(now);
                self.next_sync_at = None;
                if any_user_failed {
                    CompletedWithErrors
                } else {
                    Completed
                }
            }
            (_, Stopping) => Stopped,
            // `batch complete` while the pass ran: the window has begun.
            (_, Completing) => Completing,
            _ if self.completion_deadline.is_some() => Completing,
            _ if any_user_failed => SyncedWithErrors,
            _ => Synced,
        };
    }

    /// A service killed mid-pass left the batch in the pass's running state; put it back where
    /// the scheduler runs that pass again (checkpoints make the repeat a resume).
    pub fn recover_after_restart(&mut self) {
        use BatchState::*;
        self.state = match self.state {
            Syncing => Starting,
            IncrementalSyncing if self.completion_deadline.is_some() => Completing,
            IncrementalSyncing => Synced,
            Stopping => Stopped,
            other => other,
        };
    }

    /// Whether the batch will never sync again.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            BatchState::Completed | BatchState::CompletedWithErrors | BatchState::Removing
        )
    }
}

/// How complete a user's copy is, as Microsoft's report grades it, from skipped vs synced items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsistencyScore {
    /// Nothing skipped.
    Perfect,
    /// Under 0.1% of the items skipped (e.g. a few oversized messages in a large mailbox).
    Good,
    /// Under 1% skipped: look at the skipped items.
    Investigate,
    /// 1% or more skipped.
    Poor,
}

impl ConsistencyScore {
    pub fn of(synced: u64, skipped: u64) -> Self {
        if skipped == 0 {
            return ConsistencyScore::Perfect;
        }
        let ratio = skipped as f64 / (synced + skipped) as f64;
        if ratio < 0.001 {
            ConsistencyScore::Good
        } else if ratio < 0.01 {
            ConsistencyScore::Investigate
        } else {
            ConsistencyScore::Poor
        }
    }
}

/// One mailbox of a batch as the state store keeps it: its CSV row (no password) and the
/// outcome of its latest pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub email: String,
    pub user_name: String,
    pub user_root: Option<String>,
    pub state: UserState,
    pub items_synced: u64,
    pub items_skipped: u64,
    /// Copied by every pass so far together.
    pub items_copied_total: u64,
    pub bytes_copied_total: u64,
    pub skipped: Vec<SkippedItem>,
    /// What incremental passes mirrored from the source, over every pass so far: copies whose
    /// flags changed, copies moved, folders renamed, copies deleted (`--mirror-deletions`).
    #[serde(default)]
    pub flags_updated_total: u64,
    #[serde(default)]
    pub moved_total: u64,
    #[serde(default)]
    pub renamed_folders_total: u64,
    #[serde(default)]
    pub deleted_total: u64,
    /// As of the latest pass: deleted on the source, kept on the target.
    #[serde(default)]
    pub deleted_on_source_kept: Vec<SkippedItem>,
    /// As of the latest pass: migrated, but not exactly as on the source (a keyword the
    /// target cannot keep, a folder renamed by its rules).
    #[serde(default)]
    pub warnings: Vec<SkippedItem>,
    pub errors: Vec<String>,
    pub last_successful_sync: Option<DateTime<Utc>>,
    pub initial_sync_seconds: Option<f64>,
    pub last_incremental_sync_seconds: Option<f64>,
    /// The row version this copy was read at (0: a new user); as [`BatchRecord::version`].
    #[serde(default)]
    pub version: u64,
}

impl UserRecord {
    pub fn queued(email: &str, user_name: &str, user_root: Option<&str>) -> Self {
        UserRecord {
            email: email.to_owned(),
            user_name: user_name.to_owned(),
            user_root: user_root.map(str::to_owned),
            state: UserState::Queued,
            items_synced: 0,
            items_skipped: 0,
            items_copied_total: 0,
            bytes_copied_total: 0,
            skipped: Vec::new(),
            flags_updated_total: 0,
            moved_total: 0,
            renamed_folders_total: 0,
            deleted_total: 0,
            deleted_on_source_kept: Vec::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            last_successful_sync: None,
            initial_sync_seconds: None,
            last_incremental_sync_seconds: None,
            version: 0,
        }
    }

    /// The user as tasks carry it.
    pub fn mailbox_user(&self) -> MailboxUser {
        MailboxUser {
            email: self.email.clone(),
            user_name: self.user_name.clone(),
            user_root: self.user_root.clone(),
        }
    }

    pub fn consistency(&self) -> ConsistencyScore {
        ConsistencyScore::of(self.items_synced, self.items_skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    fn batch() -> BatchRecord {
        BatchRecord {
            name: "wave-1".into(),
            source_endpoint: "old".into(),
            target_endpoint: "new".into(),
            max_message_size: 1,
            policy: LifecyclePolicy {
                incremental_interval: Duration::from_secs(100),
                completion_window: Duration::from_secs(1000),
            },
            created_at: at(0),
            ..BatchRecord::default()
        }
    }

    #[test]
    fn a_batch_goes_from_created_through_the_window_to_completed() {
        let mut b = batch();
        assert_eq!(b.due(at(5)), None, "not started");
        b.apply(BatchCommand::Start, at(10)).unwrap();
        assert_eq!(b.due(at(10)), Some(PassKind::Initial));
        b.pass_started(PassKind::Initial);
        assert_eq!(b.state, BatchState::Syncing);
        b.pass_finished(PassKind::Initial, false, at(20));
        assert_eq!(b.state, BatchState::Synced);
        assert_eq!(b.due(at(119)), None);
        assert_eq!(b.due(at(120)), Some(PassKind::Incremental));
        b.pass_started(PassKind::Incremental);
        assert_eq!(b.state, BatchState::IncrementalSyncing);
        b.pass_finished(PassKind::Incremental, true, at(130));
        assert_eq!(b.state, BatchState::SyncedWithErrors);

        b.apply(BatchCommand::Complete, at(140)).unwrap();
        assert_eq!(b.state, BatchState::Completing);
        assert_eq!(b.completion_deadline, Some(at(1140)));
        assert_eq!(
            b.due(at(230)),
            Some(PassKind::Incremental),
            "window keeps syncing"
        );
        b.pass_started(PassKind::Incremental);
        assert_eq!(b.state, BatchState::Completing);
        b.pass_finished(PassKind::Incremental, false, at(240));
        assert_eq!(b.state, BatchState::Completing);
        assert_eq!(b.due(at(1140)), Some(PassKind::Final));
        b.pass_finished(PassKind::Final, false, at(1150));
        assert_eq!(b.state, BatchState::Completed);
        assert_eq!(
            b.due(at(99_999)),
            None,
            "a completed batch never syncs again"
        );
    }

    #[test]
    fn complete_after_and_autostart_need_no_command() {
        let mut b = batch();
        b.start_after = Some(at(50));
        b.complete_after = Some(at(60));
        assert_eq!(b.due(at(49)), None);
        assert_eq!(b.due(at(50)), Some(PassKind::Initial));
        b.pass_finished(PassKind::Initial, false, at(55));
        assert_eq!(b.due(at(60)), None, "window begun, next sync not yet due");
        assert_eq!(b.state, BatchState::Completing);
        assert_eq!(b.completion_deadline, Some(at(1060)));
    }

    #[test]
    fn stop_during_a_pass_takes_effect_when_it_ends_and_resume_continues() {
        let mut b = batch();
        b.apply(BatchCommand::Start, at(0)).unwrap();
        b.pass_started(PassKind::Initial);
        b.apply(BatchCommand::Stop, at(1)).unwrap();
        assert_eq!(b.state, BatchState::Stopping);
        b.pass_finished(PassKind::Initial, false, at(2));
        assert_eq!(b.state, BatchState::Stopped);
        assert_eq!(b.due(at(500)), None, "a stopped batch does not sync");
        b.apply(BatchCommand::Resume, at(600)).unwrap();
        assert_eq!(b.due(at(600)), Some(PassKind::Incremental));
    }

    #[test]
    fn invalid_transitions_name_the_batch_the_command_and_the_state() {
        let mut b = batch();
        let error = b.apply(BatchCommand::Complete, at(0)).unwrap_err();
        assert!(error.0.contains("before the initial sync"), "{error}");
        let error = b.apply(BatchCommand::SyncNow, at(0)).unwrap_err();
        assert_eq!(
            error.0,
            "batch wave-1: cannot sync-now a batch that is Created"
        );
        b.state = BatchState::Syncing;
        let error = b.apply(BatchCommand::Remove, at(0)).unwrap_err();
        assert_eq!(
            error.0,
            "batch wave-1: cannot remove a batch that is Syncing"
        );
        b.state = BatchState::Completed;
        for command in [
            BatchCommand::Start,
            BatchCommand::Stop,
            BatchCommand::Complete,
        ] {
            assert!(b.apply(command, at(0)).is_err(), "{command}");
        }
        b.apply(BatchCommand::Remove, at(0)).unwrap();
        b.apply(BatchCommand::Remove, at(1)).unwrap();
        assert_eq!(
            b.state,
            BatchState::Removing,
            "a removal cut short can be finished"
        );
    }

    #[test]
    fn a_pass_cut_short_by_a_restart_runs_again() {
        let mut b = batch();
        b.apply(BatchCommand::Start, at(0)).unwrap();
        b.pass_started(PassKind::Initial);
        b.recover_after_restart();
        assert_eq!(b.due(at(1)), Some(PassKind::Initial));
        b.pass_finished(PassKind::Initial, false, at(2));
        b.apply(BatchCommand::Complete, at(3)).unwrap();
        let deadline = b.completion_deadline;
        b.recover_after_restart();
        assert_eq!(
            (b.state, b.completion_deadline),
            (BatchState::Completing, deadline)
        );
    }

    #[test]
    fn an_initial_sync_that_failed_for_every_user_fails_the_batch_until_started_again() {
        assert_eq!(PassOutcome::of(3, 0), PassOutcome::NoneFailed);
        assert_eq!(PassOutcome::of(3, 1), PassOutcome::SomeFailed);
        assert_eq!(PassOutcome::of(3, 3), PassOutcome::AllFailed);
        assert_eq!(PassOutcome::of(0, 0), PassOutcome::NoneFailed);

        let mut b = batch();
        b.apply(BatchCommand::Start, at(0)).unwrap();
        b.pass_started(PassKind::Initial);
        b.pass_finished(PassKind::Initial, PassOutcome::AllFailed, at(10));
        assert_eq!(b.state, BatchState::Failed);
        assert_eq!((b.initial_sync_finished_at, b.next_sync_at), (None, None));
        assert_eq!(
            b.due(at(99_999)),
            None,
            "a failed batch does not sync by itself"
        );
        b.recover_after_restart();
        assert_eq!(b.state, BatchState::Failed);
        let error = b.apply(BatchCommand::SyncNow, at(20)).unwrap_err();
        assert_eq!(
            error.0,
            "batch wave-1: cannot sync-now a batch that is Failed"
        );

        b.apply(BatchCommand::Start, at(30)).unwrap();
        assert_eq!(b.due(at(30)), Some(PassKind::Initial));
        b.pass_started(PassKind::Initial);
        b.pass_finished(PassKind::Initial, PassOutcome::SomeFailed, at(40));
        assert_eq!(b.state, BatchState::SyncedWithErrors);
        assert_eq!(b.initial_sync_finished_at, Some(at(40)));

        // Later passes never fail the batch: what the initial sync copied is on the target.
        b.pass_started(PassKind::Incremental);
        b.pass_finished(PassKind::Incremental, PassOutcome::AllFailed, at(50));
        assert_eq!(b.state, BatchState::SyncedWithErrors);
    }

    #[test]
    fn a_stop_during_an_initial_sync_that_failed_for_everyone_still_stops() {
        let mut b = batch();
        b.apply(BatchCommand::Start, at(0)).unwrap();
        b.pass_started(PassKind::Initial);
        b.apply(BatchCommand::Stop, at(1)).unwrap();
        b.pass_finished(PassKind::Initial, PassOutcome::AllFailed, at(2));
        assert_eq!(b.state, BatchState::Stopped);
        let mut failed = batch();
        failed.state = BatchState::Failed;
        failed.apply(BatchCommand::Remove, at(3)).unwrap();
        assert_eq!(failed.state, BatchState::Removing);
    }

    #[test]
    fn users_a_killed_pass_left_running_are_stopped_with_their_batch_or_queued_again() {
        use UserState::*;
        let running = [Syncing, IncrementalSyncing, Completing];
        for user in running {
            assert_eq!(user.after_interrupted_pass(BatchState::Stopped), Stopped);
        }
        assert_eq!(Syncing.after_interrupted_pass(BatchState::Starting), Queued);
        assert_eq!(Syncing.after_interrupted_pass(BatchState::Synced), Queued);
        assert_eq!(
            IncrementalSyncing.after_interrupted_pass(BatchState::Synced),
            IncrementalSyncing,
            "the pass due at once sets it anew"
        );
        for finished in [
            Queued,
            Synced,
            IncrementalSynced,
            Failed,
            IncrementalFailed,
            Completed,
        ] {
            assert!(!finished.is_running());
            assert_eq!(
                finished.after_interrupted_pass(BatchState::Stopped),
                finished
            );
        }
    }

    #[test]
    fn stored_state_names_are_unchanged() {
        for (state, name) in [
            (UserState::Queued, "Queued"),
            (UserState::IncrementalFailed, "IncrementalFailed"),
            (UserState::Stopped, "Stopped"),
            (UserState::CompletedWithWarnings, "CompletedWithWarnings"),
        ] {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&state).unwrap(), json);
            assert_eq!(serde_json::from_str::<UserState>(&json).unwrap(), state);
        }
        let failed: BatchState = serde_json::from_str("\"Failed\"").unwrap();
        assert_eq!(failed, BatchState::Failed);
    }

    #[test]
    fn batch_names_follow_the_rules() {
        validate_batch_name("Wave_2-final").unwrap();
        for bad in ["", "has space", "ümlaut", "dot.name", &"x".repeat(65)] {
            assert!(validate_batch_name(bad).is_err(), "{bad:?}");
        }
        validate_batch_name(&"x".repeat(64)).unwrap();
    }

    #[test]
    fn consistency_grades_skipped_against_synced() {
        assert_eq!(ConsistencyScore::of(100, 0), ConsistencyScore::Perfect);
        assert_eq!(ConsistencyScore::of(10_000, 1), ConsistencyScore::Good);
        assert_eq!(
            ConsistencyScore::of(1_000, 5),
            ConsistencyScore::Investigate
        );
        assert_eq!(ConsistencyScore::of(10, 1), ConsistencyScore::Poor);
    }
}
