//! `mailfleet run`: the migration service. It owns a state dir, finds the batch whose next
//! pass is due (initial sync at StartAfter, incremental syncs at the batch's interval, the
//! final sync when the completion window ends), runs that pass over every user of the batch
//! and records the outcome: users' states and counts, the batch's next step.
//!
//! Passes run one at a time per service process: a pass already spreads over the worker's
//! task loops (or over `mailfleet worker` processes), bounded by the endpoint's
//! max_concurrent_migrations (initial) or max_concurrent_incremental_syncs (later passes).
//! Everything the scheduler knows is in the state store, so a restarted service carries on
//! with the same deadlines; a pass cut short by the restart runs again (checkpoints and the
//! fingerprint guard make that a resume).

pub mod batch_job;
pub mod mx_check;
pub mod notify;
mod outcome;

use std::sync::Arc;

use chrono::Utc;
use mailfleet_shared::lifecycle::{BatchRecord, PassKind, PassOutcome, UserRecord};
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::state::{self, StateStore};
use mailfleet_shared::store_error::StoreErrorKind;
use mailfleet_shared::tenancy::DEFAULT_TENANT;
use mailfleet_worker::Tuning;
use tokio::sync::mpsc;

use crate::backends::{self, Backends};
use crate::cli::run::ServiceArgs;
use crate::error::CliError;
use crate::observe;
use crate::run::progress::TerminalProgress;
use crate::run::status_board::StatusBoard;
use crate::run::{Concurrency, Observers, UserResult, UserStatus, dead_letters, run_pass};
use crate::settings::Settings;
use crate::shutdown::StopSignal;
use batch_job::{BatchJob, batch_job};
use notify::{Event, EventKind, Notifier};
use outcome::{record_outcome, user_pass_kind};

struct Service {
    state: Arc<dyn StateStore>,
    backends: Backends,
    workers: usize,
    board: Arc<StatusBoard>,
    notifier: Notifier,
    tuning: Tuning,
}

/// Runs the scheduler until `stop` fires; a pass running then stops gracefully (see
/// [`run_pass`]) and the next start runs it again from its checkpoints.
pub async fn run(
    args: &ServiceArgs,
    settings: &Settings,
    stop: &StopSignal,
) -> Result<(), CliError> {
    let state_dir = &args.state.state_dir;
    if args.workers == 0 {
        settings.require_fleet("a service without local workers")?;
    }
    let backends = backends::open(settings, state_dir, args.workers.max(1)).await?;
    // One scheduler per state dir, in distributed mode too (embedded `open` already locked it).
    let _lock = match backends.state_dir_lock {
        Some(_) => None,
        None => Some(backends::lock_state_dir(state_dir)?),
    };
    let _scheduler = backends::lock_scheduler(settings, state_dir).await?;
    let board = observe::status_board(settings, backends.dead_letters.as_ref()).await?;
    if let Some(broker) = &backends.dead_letters {
        dead_letters::report_as_failures(broker.clone());
    }
    let service = Service {
        state: backends::open_state(settings, state_dir).await?,
        backends,
        workers: args.workers,
        board,
        notifier: Notifier::from_settings(settings)?,
        tuning: settings.tuning(),
    };
    service.recover().await?;
    tracing::info!(state_dir = %state_dir.display(), "service started");
    let stopped = loop {
        if stop.is_requested() {
            break Ok(());
        }
        match service.next_due().await? {
            Some((batch, kind)) => {
                if let Err(error) = service.run_pass(batch, kind, stop).await {
                    break Err(error);
                }
            }
            None => tokio::select! {
                () = tokio::time::sleep(args.poll_interval) => {}
                () = stop.requested() => {}
            },
        }
    };
    tracing::info!("service stopping");
    service.backends.queue.close();
    stopped.and(Err(CliError::Interrupted))
}

impl Service {
    /// Batches a killed service left mid-pass go back to where that pass starts again.
    async fn recover(&self) -> Result<(), CliError> {
        for listed in self.state.batches().await? {
            let recovered = state::update_batch(self.state.as_ref(), &listed.name, |batch| {
                batch.recover_after_restart();
                Ok::<_, CliError>(())
            })
            .await?;
            // Removed by a `batch remove` since the listing: nothing to recover.
            let Some((recovered, ())) = recovered else {
                continue;
            };
            if recovered.state != listed.state {
                tracing::info!(batch = %listed.name, from = %listed.state, to = %recovered.state, "recovered after restart");
            }
            let mut users = self.state.users(&recovered.name).await?;
            let mut changed = Vec::new();
            for user in &mut users {
                let state = user.state.after_interrupted_pass(recovered.state);
                if state != user.state {
                    user.state = state;
                    changed.push(user.clone());
                }
            }
            if !changed.is_empty() {
                self.state.put_users(&recovered.name, &mut changed).await?;
            }
        }
        Ok(())
    }

    /// The first batch (by name) with a pass due now; time-driven changes (CompleteAfter
    /// reached) are stored on the way.
    async fn next_due(&self) -> Result<Option<(BatchRecord, PassKind)>, CliError> {
        let now = Utc::now();
        for listed in self.state.batches().await? {
            let due = state::update_batch(self.state.as_ref(), &listed.name, |batch| {
                Ok::<_, CliError>(batch.due(now))
            })
            .await?;
            if let Some((batch, Some(kind))) = due {
                return Ok(Some((batch, kind)));
            }
        }
        Ok(None)
    }

    async fn run_pass(
        &self,
        mut batch: BatchRecord,
        kind: PassKind,
        stop: &StopSignal,
    ) -> Result<(), CliError> {
        let BatchJob { job, spec, source } = batch_job(
            DEFAULT_TENANT,
            &batch,
            self.state.as_ref(),
            self.backends.checkpoints.clone(),
            self.backends.credentials.clone(),
            self.tuning.clone(),
        )
        .await?;
        if let Some(job_specs) = &self.backends.job_specs {
            job_specs.put_job_spec(&spec).await?;
        }
        // The pass is ours only if the batch is still as we found it due: a `batch stop` since
        // then (or another service that started the pass first) wins, and the loop looks again.
        batch.pass_started(kind);
        match self.state.put_batch(&mut batch).await {
            Ok(()) => {}
            Err(error) if error.kind() == StoreErrorKind::Conflict => {
                tracing::info!(batch = %batch.name, "changed since it was found due; looking again");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        let mut users = self.state.users(&batch.name).await?;
        for user in &mut users {
            user.state = user_pass_kind(user, kind).user_running_state();
        }
        self.state.put_users(&batch.name, &mut users).await?;
        tracing::info!(batch = %batch.name, ?kind, users = users.len(), "pass started");

        let mailboxes: Vec<MailboxUser> = users.iter().map(UserRecord::mailbox_user).collect();
        let max_concurrent_users = match kind {
            PassKind::Initial => source.max_concurrent_migrations,
            PassKind::Incremental | PassKind::Final => source.max_concurrent_incremental_syncs,
        };
        let (finished_users, recorder) = self.record_users_as_they_finish(&batch.name, users, kind);
        let results = run_pass(
            Arc::new(job),
            self.backends.queue.clone(),
            &mailboxes,
            Concurrency {
                workers: self.workers,
                max_concurrent_users,
            },
            Observers {
                progress: &TerminalProgress::new(false),
                board: &self.board,
                finished_users: Some(finished_users),
            },
            stop,
        )
        .await?;
        // Every user is finished and the sender is gone with the pass. The records are written
        // once more in one transaction: a write during the pass that failed was only logged.
        let mut users = recorder
            .await
            .map_err(|crash| CliError::failed("recording users' results", crash))?;
        self.state.put_users(&batch.name, &mut users).await?;
        let now = Utc::now();
        let failed = results
            .iter()
            .filter(|r| r.status == UserStatus::Failed)
            .count();
        let outcome = PassOutcome::of(results.len(), failed);
        // On a fresh read, again after a conflict: the batch may have been stopped or completed
        // while the pass ran, or just now, and that command must not be undone.
        let finished = state::update_batch(self.state.as_ref(), &batch.name, |batch| {
            batch.pass_finished(kind, outcome, now);
            Ok::<_, CliError>(())
        })
        .await?;
        let Some((batch, ())) = finished else {
            return Ok(());
        };
        self.notify(&batch, &users, kind, outcome.any_failed())
            .await;
        tracing::info!(batch = %batch.name, ?kind, state = %batch.state, "pass finished");
        Ok(())
    }
}

impl Service {
    /// Tells the batch's recipients what this pass means: the initial sync is done, users
    /// failed, the batch is completed.
    async fn notify(
        &self,
        batch: &BatchRecord,
        users: &[UserRecord],
        kind: PassKind,
        failed: bool,
    ) {
        let mut events = Vec::new();
        if kind == PassKind::Initial {
            events.push(EventKind::InitialSyncFinished);
        }
        if failed {
            events.push(EventKind::UsersFailed);
        }
        if kind == PassKind::Final {
            events.push(EventKind::BatchCompleted);
        }
        for kind in events {
            self.notifier
                .send(batch, &Event::new(kind, batch, users))
                .await;
        }
    }

    /// A task that writes each user's record the moment the pass is done with that user, so
    /// `batch status` and the report follow a long pass; it returns the records at the end.
    fn record_users_as_they_finish(
        &self,
        batch: &str,
        users: Vec<UserRecord>,
        kind: PassKind,
    ) -> (
        mpsc::UnboundedSender<UserResult>,
        tokio::task::JoinHandle<Vec<UserRecord>>,
    ) {
        let (sender, mut finished) = mpsc::unbounded_channel::<UserResult>();
        let state = self.state.clone();
        let batch = batch.to_owned();
        let recorder = tokio::spawn(async move {
            let mut users = users;
            while let Some(result) = finished.recv().await {
                let Some(user) = users.iter_mut().find(|u| u.email == result.email) else {
                    continue;
                };
                record_outcome(user, &result, user_pass_kind(user, kind), Utc::now());
                if let Err(error) = state.put_users(&batch, std::slice::from_mut(user)).await {
                    tracing::warn!(%error, user = %user.email, "cannot record the user's result yet");
                }
            }
            users
        });
        (sender, recorder)
    }
}
