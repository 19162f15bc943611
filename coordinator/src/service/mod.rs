//! `mailfleet run`: the migration service. It owns a state dir, finds the batches whose next
//! pass is due (initial sync at StartAfter, incremental syncs at the batch's interval, the
//! final sync when the completion window ends), runs those passes over their users and records
//! the outcome: users' states and counts, the batch's next step.
//!
//! Passes of different batches run at once, one per batch at a time, on one
//! [`PassRuntime`]: the task loops (or `mailfleet worker` processes) are shared, and so are the
//! admission [`slots`](crate::run::slots): every batch using an endpoint counts against its
//! max_concurrent_migrations (and, after the initial pass, max_concurrent_incremental_syncs),
//! every batch of a tenant against its quota, and free slots go round the tenants fairly.
//! Only the [leader](leadership) schedules; other services on the same PostgreSQL stand by.
//! Everything the scheduler knows is in the state store, so a restarted service (or a standby
//! taking over) carries on with the same deadlines; a pass cut short runs again (checkpoints
//! and the fingerprint guard make that a resume).

pub mod batch_job;
pub mod leadership;
pub mod mx_check;
pub mod notify;
mod outcome;
mod tenants;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use mailfleet_shared::lifecycle::{BatchRecord, PassKind, PassOutcome, UserRecord};
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::state::{self, StateStore};
use mailfleet_shared::store_error::StoreErrorKind;
use mailfleet_shared::tenancy::{ControlStore, DEFAULT_TENANT};
use mailfleet_worker::Tuning;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::backends::{self, Backends};
use crate::cli::run::ServiceArgs;
use crate::error::CliError;
use crate::observe;
use crate::run::progress::TerminalProgress;
use crate::run::status_board::StatusBoard;
use crate::run::{Observers, PassRuntime, UserResult, UserStatus, dead_letters};
use crate::settings::Settings;
use crate::shutdown::{StopSignal, shutdown_pair};
use batch_job::{BatchJob, batch_job};
use leadership::{LEASE_CHECK, Leadership};
use notify::{Event, EventKind, Notifier};
use outcome::{record_outcome, user_pass_kind};
use tenants::Tenant;

struct Service {
    /// Tenants, and each tenant's view of the state store.
    control: Arc<dyn ControlStore>,
    backends: Backends,
    runtime: PassRuntime,
    board: Arc<StatusBoard>,
    notifier: Notifier,
    tuning: Tuning,
}

/// A batch of a tenant: what runs one pass at a time.
type BatchKey = (String, String);

/// Runs the scheduler until `stop` fires; the passes running then stop gracefully (see
/// [`PassRuntime`]) and the next start runs them again from their checkpoints.
pub async fn run(
    args: &ServiceArgs,
    settings: &Settings,
    stop: &StopSignal,
) -> Result<(), CliError> {
    run_with_board(args, settings, stop, StatusBoard::new()).await
}

/// [`run`], keeping users' states and admission on `board` (`serve` shows its gauges).
pub async fn run_with_board(
    args: &ServiceArgs,
    settings: &Settings,
    stop: &StopSignal,
    board: Arc<StatusBoard>,
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
    let board =
        observe::shown_status_board(board, settings, backends.dead_letters.as_ref()).await?;
    if let Some(broker) = &backends.dead_letters {
        dead_letters::report_as_failures(broker.clone());
    }
    let service = Arc::new(Service {
        control: backends::open_control(settings, state_dir).await?,
        runtime: PassRuntime::start(backends.queue.clone(), args.workers, stop.grace),
        backends,
        board,
        notifier: Notifier::from_settings(settings)?,
        tuning: settings.tuning(),
    });
    tracing::info!(state_dir = %state_dir.display(), "service started");
    // A leader that loses the lock (its database session cut, e.g. PostgreSQL restarted) has
    // stopped its passes by then, and stands by again like any other service.
    let scheduled = loop {
        let leadership = match Leadership::acquire(settings, state_dir, stop).await {
            Ok(Some(leadership)) => leadership,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        let mut leadership = leadership;
        if let Err(error) = service.recover().await {
            break Err(error);
        }
        match service
            .schedule(&mut leadership, args.poll_interval, stop)
            .await
        {
            Ok(Scheduled::LostLeadership) => continue,
            Ok(Scheduled::Stopped) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    tracing::info!("service stopping");
    service.backends.queue.close();
    let stopped = service.runtime.shut_down().await;
    scheduled?;
    stopped?;
    Err(CliError::Interrupted)
}

/// Whether `error` is the state store being out of reach (a restart, a dropped connection):
/// the service stands by and carries on when it is back, rather than exiting.
fn store_unreachable(error: &CliError) -> bool {
    matches!(error, CliError::Store(store) if store.kind() == StoreErrorKind::Unavailable)
}

/// Why [`Service::schedule`] returned without an error.
enum Scheduled {
    /// `stop` fired.
    Stopped,
    /// The scheduler lock is gone: another service may be scheduling now.
    LostLeadership,
}

impl Service {
    /// Starts every due pass of a batch not running one, until `stop` fires, a pass fails, or
    /// leadership is lost; then stops the passes still running and waits for them.
    async fn schedule(
        self: &Arc<Self>,
        leadership: &mut Leadership,
        poll_interval: std::time::Duration,
        stop: &StopSignal,
    ) -> Result<Scheduled, CliError> {
        let (stop_passes, token) = shutdown_pair();
        let passes_stop = StopSignal {
            token,
            grace: stop.grace,
        };
        let mut running: JoinSet<(BatchKey, Result<(), CliError>)> = JoinSet::new();
        let mut busy: HashSet<BatchKey> = HashSet::new();
        let scheduled = loop {
            if stop.is_requested() {
                break Ok(Scheduled::Stopped);
            }
            // Fencing: a leader cut off from the database must not start (or go on with) passes
            // a standby is about to take over.
            if !leadership.is_held().await {
                tracing::error!(
                    "lost the scheduler lock of the state database: stopping this service's passes and standing by"
                );
                break Ok(Scheduled::LostLeadership);
            }
            let due = match self.due(&busy).await {
                Ok(due) => due,
                // The database went away between the lock check and this read: as a lost lock.
                Err(error) if store_unreachable(&error) => {
                    tracing::error!(%error, "the state database is unreachable: standing by");
                    break Ok(Scheduled::LostLeadership);
                }
                Err(error) => break Err(error),
            };
            for (tenant, batch, kind) in due {
                let key = (tenant.name.clone(), batch.name.clone());
                busy.insert(key.clone());
                let (service, stop) = (self.clone(), passes_stop.clone());
                running.spawn(async move {
                    let result = service.run_pass(&tenant, batch, kind, &stop).await;
                    (key, result)
                });
            }
            let wait = poll_interval.min(LEASE_CHECK);
            tokio::select! {
                Some(joined) = running.join_next() => match joined {
                    Ok((key, Ok(()))) => { busy.remove(&key); }
                    // A pass cut off from the database runs again from its checkpoints once
                    // this service (or a standby) holds the lock again.
                    Ok((_, Err(error))) if store_unreachable(&error) => {
                        tracing::error!(%error, "the state database is unreachable: standing by");
                        break Ok(Scheduled::LostLeadership);
                    }
                    Ok((_, Err(error))) => break Err(error),
                    Err(crash) => break Err(CliError::failed("a pass", crash)),
                },
                () = tokio::time::sleep(wait) => {}
                () = stop.requested() => {}
            }
        };
        stop_passes.trigger();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((_, Ok(()) | Err(CliError::Interrupted))) => {}
                Ok(((tenant, batch), Err(error))) => {
                    tracing::warn!(%tenant, %batch, %error, "pass ended with an error");
                }
                Err(crash) => tracing::warn!(%crash, "a pass crashed"),
            }
        }
        scheduled
    }

    /// Batches a killed service (or a leader that died) left mid-pass go back to where that
    /// pass starts again.
    async fn recover(&self) -> Result<(), CliError> {
        for tenant in self.tenants().await? {
            recover_tenant(tenant.state.as_ref()).await?;
        }
        Ok(())
    }

    /// Every batch with a pass due now that is not running one, of every tenant; time-driven
    /// changes (CompleteAfter reached) are stored on the way.
    async fn due(
        &self,
        busy: &HashSet<BatchKey>,
    ) -> Result<Vec<(Arc<Tenant>, BatchRecord, PassKind)>, CliError> {
        let now = Utc::now();
        let mut due = Vec::new();
        for tenant in self.tenants().await? {
            let tenant = Arc::new(tenant);
            for listed in tenant.state.batches().await? {
                if busy.contains(&(tenant.name.clone(), listed.name.clone())) {
                    continue;
                }
                let found = state::update_batch(tenant.state.as_ref(), &listed.name, |batch| {
                    Ok::<_, CliError>(batch.due(now))
                })
                .await?;
                if let Some((batch, Some(kind))) = found {
                    due.push((tenant.clone(), batch, kind));
                }
            }
        }
        Ok(due)
    }

    async fn run_pass(
        &self,
        tenant: &Tenant,
        mut batch: BatchRecord,
        kind: PassKind,
        stop: &StopSignal,
    ) -> Result<(), CliError> {
        let state = tenant.state.clone();
        let BatchJob {
            job,
            spec,
            source,
            target,
        } = batch_job(
            &tenant.name,
            &batch,
            state.as_ref(),
            self.backends.checkpoints.clone(),
            self.backends.credentials.clone(),
            self.tuning.clone(),
        )
        .await?;
        let claim = tenant.claim(&[&source, &target], kind);
        if let Some(job_specs) = &self.backends.job_specs {
            job_specs.put_job_spec(&spec).await?;
        }
        // The pass is ours only if the batch is still as we found it due: a `batch stop` since
        // then (or another service that started the pass first) wins, and the loop looks again.
        batch.pass_started(kind);
        match state.put_batch(&mut batch).await {
            Ok(()) => {}
            Err(error) if error.kind() == StoreErrorKind::Conflict => {
                tracing::info!(batch = %batch.name, "changed since it was found due; looking again");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        let mut users = state.users(&batch.name).await?;
        for user in &mut users {
            user.state = user_pass_kind(user, kind).user_running_state();
        }
        state.put_users(&batch.name, &mut users).await?;
        tracing::info!(tenant = %tenant.name, batch = %batch.name, ?kind, users = users.len(), "pass started");

        let mailboxes: Vec<MailboxUser> = users.iter().map(UserRecord::mailbox_user).collect();
        let (finished_users, recorder) =
            record_users_as_they_finish(state.clone(), &batch.name, users, kind);
        let results = self
            .runtime
            .run(
                Arc::new(job),
                &mailboxes,
                &claim,
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
        state.put_users(&batch.name, &mut users).await?;
        let now = Utc::now();
        let failed = results
            .iter()
            .filter(|r| r.status == UserStatus::Failed)
            .count();
        let outcome = PassOutcome::of(results.len(), failed);
        // On a fresh read, again after a conflict: the batch may have been stopped or completed
        // while the pass ran, or just now, and that command must not be undone.
        let finished = state::update_batch(state.as_ref(), &batch.name, |batch| {
            batch.pass_finished(kind, outcome, now);
            Ok::<_, CliError>(())
        })
        .await?;
        let Some((batch, ())) = finished else {
            return Ok(());
        };
        self.notify(&batch, &users, kind, outcome.any_failed())
            .await;
        tracing::info!(tenant = %tenant.name, batch = %batch.name, ?kind, state = %batch.state, "pass finished");
        Ok(())
    }
}

/// A tenant's batches left mid-pass, and their users, back to where the pass starts again.
async fn recover_tenant(state: &dyn StateStore) -> Result<(), CliError> {
    for listed in state.batches().await? {
        let recovered = state::update_batch(state, &listed.name, |batch| {
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
        let mut users = state.users(&recovered.name).await?;
        let mut changed = Vec::new();
        for user in &mut users {
            let state = user.state.after_interrupted_pass(recovered.state);
            if state != user.state {
                user.state = state;
                changed.push(user.clone());
            }
        }
        if !changed.is_empty() {
            state.put_users(&recovered.name, &mut changed).await?;
        }
    }
    Ok(())
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
}

/// A task that writes each user's record the moment the pass is done with that user, so
/// `batch status` and the report follow a long pass; it returns the records at the end.
fn record_users_as_they_finish(
    state: Arc<dyn StateStore>,
    batch: &str,
    users: Vec<UserRecord>,
    kind: PassKind,
) -> (
    mpsc::UnboundedSender<UserResult>,
    tokio::task::JoinHandle<Vec<UserRecord>>,
) {
    let (sender, mut finished) = mpsc::unbounded_channel::<UserResult>();
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

impl Service {
    /// Every tenant whose batches this service schedules, each with its quota and its own
    /// view of the state store (the default tenant's even before any tenant was created).
    async fn tenants(&self) -> Result<Vec<Tenant>, CliError> {
        let mut tenants: Vec<Tenant> = self
            .control
            .tenants()
            .await?
            .iter()
            .map(|record| Tenant::of(record, self.control.tenant_state(&record.name)))
            .collect();
        if !tenants.iter().any(|t| t.name == DEFAULT_TENANT) {
            let state = self.control.tenant_state(DEFAULT_TENANT);
            tenants.push(Tenant::default_of(state));
        }
        Ok(tenants)
    }
}
