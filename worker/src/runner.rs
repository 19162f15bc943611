//! The worker's task loop: take a task, do it, publish what happened, then ack (ARCHITECTURE.md,
//! rule 3).
//!
//! A discovery task publishes the user's folder tasks before its own report, so once a
//! `Discovered` report exists every folder task it counts is already queued. It copies the
//! user's small folders itself (see `small_folders`) and reports them in the same report. A
//! task delivered more than `max_deliveries` times is a poison task: it becomes a reported
//! error instead of an endless loop. Likewise a big folder's part publishes the next part
//! before its own report.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tracing::Instrument;

use mailfleet_shared::checkpoint::StoreError;
use mailfleet_shared::messages::{FolderPlan, MailboxUser, Report, Task};
use mailfleet_shared::queue::{Delivery, TaskQueue};

use crate::discovery::discover;
use crate::folder_sync::sync_folder;
use crate::job::Job;
use crate::job_source::JobSource;
use crate::shutdown::Shutdown;
use crate::small_folders::{copy_small_folders, split_small};

pub struct Worker {
    jobs: Arc<dyn JobSource>,
    queue: Arc<dyn TaskQueue>,
    max_deliveries: u32,
}

impl Worker {
    pub fn new(jobs: Arc<dyn JobSource>, queue: Arc<dyn TaskQueue>) -> Self {
        Worker {
            jobs,
            queue,
            max_deliveries: 5,
        }
    }

    /// Runs `concurrency` task loops until the queue is drained and closed, or shutdown fires.
    ///
    /// After shutdown fires, each loop finishes the task it is on (its report published, the
    /// task acked) and takes no other. Tasks still running `grace` later are cancelled at their
    /// next await, unacked: the broker delivers them again, and ARCHITECTURE.md rule 1 makes
    /// the repeat harmless. Returns an error only when the queue itself failed.
    pub async fn run(
        self: Arc<Self>,
        concurrency: usize,
        shutdown: Shutdown,
        grace: Duration,
    ) -> Result<(), StoreError> {
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            loops.spawn(async move { worker.task_loop(shutdown).await });
        }
        let mut result = Ok(());
        let mut deadline = std::pin::pin!(grace_deadline(shutdown, grace));
        loop {
            let joined = tokio::select! {
                joined = loops.join_next() => joined,
                () = &mut deadline => {
                    tracing::warn!(running = loops.len(), "grace period over: cancelling running tasks");
                    loops.abort_all();
                    while loops.join_next().await.is_some() {}
                    return result;
                }
            };
            let Some(joined) = joined else { return result };
            let outcome = joined
                .map_err(|e| StoreError(format!("task loop crashed: {e}")))
                .and_then(|r| r);
            if let Err(e) = outcome {
                result = Err(e);
            }
        }
    }

    async fn task_loop(self: Arc<Self>, mut shutdown: Shutdown) -> Result<(), StoreError> {
        loop {
            let next = tokio::select! {
                next = self.queue.next_task() => next?,
                () = shutdown.triggered() => return Ok(()),
            };
            let Some(delivery) = next else { return Ok(()) };
            // A panic in one task must not leave it unacked forever (the run would wait for its
            // report): it goes back to the queue and, after enough deliveries, is reported. The
            // task runs inside this loop (not spawned), so cancelling the loop cancels it.
            match AssertUnwindSafe(self.process(&delivery))
                .catch_unwind()
                .await
            {
                Ok(result) => result?,
                Err(_) => {
                    tracing::error!(task = %delivery.task.task_id(), "task panicked; requeued");
                    self.queue.requeue(&delivery).await?;
                }
            }
        }
    }

    /// Handles one delivery end to end; returns an error only when the queue itself fails (the
    /// task is then left unacked and will be delivered again). Runs in a `task` span, the unit
    /// traces show (one per delivery, so a redelivered task appears once per attempt).
    pub async fn process(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let span = tracing::info_span!(
            "task",
            task = %delivery.task.task_id(),
            attempt = delivery.attempt
        );
        self.process_delivery(delivery).instrument(span).await
    }

    async fn process_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let Some(job) = self.jobs.job(delivery.task.batch()).await? else {
            // A shared broker may hold other batches' tasks; leave them to their own workers.
            tracing::debug!(task = %delivery.task.task_id(), "task of another batch handed back");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return self.queue.requeue(delivery).await;
        };
        let report = if delivery.attempt > self.max_deliveries {
            failed(
                &delivery.task,
                format!("gave up after {} deliveries", self.max_deliveries),
            )
        } else {
            match &delivery.task {
                Task::DiscoverUser { batch, user } => {
                    self.discover(&job, batch, user, &delivery.task).await?
                }
                Task::SyncFolder {
                    batch,
                    user,
                    folder,
                } => self.sync(&job, batch, user, folder, &delivery.task).await?,
            }
        };
        log_outcome(&report);
        self.queue.publish_report(&report).await?;
        self.queue.ack(delivery).await?;
        let kind = match delivery.task {
            Task::DiscoverUser { .. } => "discover",
            Task::SyncFolder { .. } => "folder",
        };
        let outcome = match report {
            Report::Failed { .. } => "failed",
            _ => "synced",
        };
        crate::metrics::engine().task_finished(kind, outcome);
        Ok(())
    }

    async fn discover(
        &self,
        job: &Job,
        batch: &str,
        user: &MailboxUser,
        task: &Task,
    ) -> Result<Report, StoreError> {
        let found = job
            .tuning
            .retry
            .run(&format!("{} discovery", user.email), || discover(job, user))
            .await;
        let discovery = match found {
            Ok(discovery) => discovery,
            Err(error) => return Ok(failed(task, error.to_string())),
        };
        job.progress
            .discovered(&user.email, discovery.total_messages);
        crate::metrics::engine()
            .messages_already_present
            .inc_by(discovery.already_synced);
        let (mut folder_tasks, small) = split_small(discovery.plans);
        self.publish_folder_tasks(batch, user, &folder_tasks)
            .await?;
        let mut copied = copy_small_folders(job, user, small).await;
        copied.outcome.add(discovery.mirrored);
        self.publish_folder_tasks(batch, user, &copied.left_for_tasks)
            .await?;
        folder_tasks.extend(copied.left_for_tasks);
        Ok(Report::Discovered {
            task_id: task.task_id(),
            batch: batch.to_owned(),
            user: user.email.clone(),
            folder_tasks: folder_tasks.len() as u32,
            already_synced: discovery.already_synced,
            copied: copied.outcome,
            folders: discovery.folders,
            skipped: discovery.skipped,
        })
    }

    async fn publish_folder_tasks(
        &self,
        batch: &str,
        user: &MailboxUser,
        folders: &[FolderPlan],
    ) -> Result<(), StoreError> {
        for folder in folders {
            let folder_task = Task::SyncFolder {
                batch: batch.to_owned(),
                user: user.clone(),
                folder: folder.clone(),
            };
            self.queue.publish_task(&folder_task).await?;
        }
        Ok(())
    }

    async fn sync(
        &self,
        job: &Job,
        batch: &str,
        user: &MailboxUser,
        folder: &FolderPlan,
        task: &Task,
    ) -> Result<Report, StoreError> {
        let synced = match sync_folder(job, user, folder).await {
            Ok(synced) => synced,
            Err(error) => {
                return Ok(failed(
                    task,
                    format!("folder {}: {error}", folder.display_name),
                ));
            }
        };
        let continued = synced.next_part.is_some();
        if let Some(part) = synced.next_part {
            let next = Task::SyncFolder {
                batch: batch.to_owned(),
                user: user.clone(),
                folder: FolderPlan {
                    part,
                    ..folder.clone()
                },
            };
            self.queue.publish_task(&next).await?;
        }
        Ok(Report::FolderSynced {
            task_id: task.task_id(),
            batch: batch.to_owned(),
            user: user.email.clone(),
            folder: folder.display_name.clone(),
            outcome: synced.outcome,
            continued,
        })
    }
}

/// A failure report whose text names the user (and the folder, when there is one), since it is
/// read in logs and reports far from the task that produced it.
/// One `info` line per task, so an operator following the logs sees the fleet progress.
fn log_outcome(report: &Report) {
    match report {
        Report::Discovered {
            folder_tasks,
            copied,
            ..
        } => {
            tracing::info!(
                folder_tasks,
                appended = copied.appended,
                already_present = copied.already_present,
                "discovered (small folders copied)"
            );
        }
        Report::FolderSynced {
            outcome, continued, ..
        } => tracing::info!(
            appended = outcome.appended,
            already_present = outcome.already_present,
            bytes = outcome.bytes,
            skipped = outcome.skipped.len(),
            continued,
            "folder synced"
        ),
        Report::Failed { error, .. } => tracing::warn!(%error, "task failed"),
    }
}

fn failed(task: &Task, error: String) -> Report {
    let folder = match task {
        Task::SyncFolder { folder, .. } => Some(folder.display_name.clone()),
        Task::DiscoverUser { .. } => None,
    };
    let error = format!("{}: {error}", task.user().email);
    tracing::error!(task = %task.task_id(), "{error}");
    Report::Failed {
        task_id: task.task_id(),
        batch: task.batch().to_owned(),
        user: task.user().email.clone(),
        folder,
        error,
    }
}

/// Completes `grace` after `shutdown` fires; never when it does not.
async fn grace_deadline(mut shutdown: Shutdown, grace: Duration) {
    shutdown.triggered().await;
    tokio::time::sleep(grace).await;
}
