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

use mailfleet_shared::messages::{FolderOutcome, FolderPlan, MailboxUser, Report, Task};
use mailfleet_shared::queue::{Delivery, TaskQueue};
use mailfleet_shared::store_error::StoreError;

use crate::discovery::discover;
use crate::folder_sync::{FolderFailed, sync_folder};
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
                .map_err(|e| StoreError::other("task loop crashed").with_source(e))
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
        let batch = delivery.task.batch();
        let job = match self.jobs.job(batch).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                // A shared broker may hold other batches' tasks; leave them to their own workers.
                tracing::debug!(task = %delivery.task.task_id(), "task of another batch handed back");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                return self.queue.requeue(delivery).await;
            }
            // A spec that cannot be read or turned into a job fails every delivery alike: the
            // user learns why, and this worker goes on with other batches' tasks.
            Err(error) if !error.is_retryable() => {
                let report = failed(&delivery.task, error.to_string());
                return self.report_and_ack(delivery, report).await;
            }
            Err(error) => return Err(error),
        };
        let report = if is_poison(delivery.attempt, self.max_deliveries) {
            failed(
                &delivery.task,
                format!("gave up after {} deliveries", self.max_deliveries),
            )
        } else {
            match &delivery.task {
                Task::DiscoverUser { user, .. } => {
                    self.discover(&job, user, &delivery.task).await?
                }
                Task::SyncFolder { user, folder, .. } => {
                    self.sync(&job, user, folder, &delivery.task).await?
                }
            }
        };
        log_outcome(&report);
        self.report_and_ack(delivery, report).await
    }

    /// Publishes the task's report, then acks it (correctness rule 3).
    async fn report_and_ack(&self, delivery: &Delivery, report: Report) -> Result<(), StoreError> {
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
        self.publish_folder_tasks(task, &folder_tasks).await?;
        let mut copied = copy_small_folders(job, user, small).await;
        copied.outcome.add(discovery.mirrored);
        self.publish_folder_tasks(task, &copied.left_for_tasks)
            .await?;
        folder_tasks.extend(copied.left_for_tasks);
        Ok(Report::Discovered {
            task_id: task.task_id(),
            batch: task.batch().to_owned(),
            pass: task.pass().to_owned(),
            user: user.email.clone(),
            folder_tasks: folder_tasks.len() as u32,
            already_synced: discovery.already_synced,
            copied: copied.outcome,
            folders: discovery.folders,
            skipped: discovery.skipped,
        })
    }

    /// The folder tasks `discovery` plans, in its batch and pass.
    async fn publish_folder_tasks(
        &self,
        discovery: &Task,
        folders: &[FolderPlan],
    ) -> Result<(), StoreError> {
        for folder in folders {
            self.queue
                .publish_task(&folder_task(discovery, folder.clone()))
                .await?;
        }
        Ok(())
    }

    async fn sync(
        &self,
        job: &Job,
        user: &MailboxUser,
        folder: &FolderPlan,
        task: &Task,
    ) -> Result<Report, StoreError> {
        let synced = match sync_folder(job, user, folder).await {
            Ok(synced) => synced,
            Err(FolderFailed { error, outcome }) => {
                let error = format!("folder {}: {error}", folder.display_name);
                return Ok(failed_after(task, error, outcome));
            }
        };
        let continued = synced.next_part.is_some();
        if let Some(part) = synced.next_part {
            let next = FolderPlan {
                part,
                ..folder.clone()
            };
            self.queue.publish_task(&folder_task(task, next)).await?;
        }
        Ok(Report::FolderSynced {
            task_id: task.task_id(),
            batch: task.batch().to_owned(),
            pass: task.pass().to_owned(),
            user: user.email.clone(),
            folder: folder.display_name.clone(),
            outcome: synced.outcome,
            continued,
        })
    }
}

/// Whether a task delivered `attempt` times is a poison task: it is reported as failed rather
/// than tried again, so one bad task cannot loop forever.
fn is_poison(attempt: u32, max_deliveries: u32) -> bool {
    attempt > max_deliveries
}

/// A folder task published by `parent` (a discovery, or a big folder's previous part): the
/// same batch, pass and user.
fn folder_task(parent: &Task, folder: FolderPlan) -> Task {
    Task::SyncFolder {
        batch: parent.batch().to_owned(),
        pass: parent.pass().to_owned(),
        user: parent.user().clone(),
        folder,
    }
}

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

/// A failure report whose text names the user (and the folder, when there is one), since it is
/// read in logs and reports far from the task that produced it.
fn failed(task: &Task, error: String) -> Report {
    failed_after(task, error, FolderOutcome::default())
}

/// [`failed`], for a task that did `outcome` before it failed.
fn failed_after(task: &Task, error: String, outcome: FolderOutcome) -> Report {
    let folder = match task {
        Task::SyncFolder { folder, .. } => Some(folder.display_name.clone()),
        Task::DiscoverUser { .. } => None,
    };
    let error = format!("{}: {error}", task.user().email);
    tracing::error!(task = %task.task_id(), "{error}");
    Report::Failed {
        task_id: task.task_id(),
        batch: task.batch().to_owned(),
        pass: task.pass().to_owned(),
        user: task.user().email.clone(),
        folder,
        error,
        outcome,
    }
}

/// Completes `grace` after `shutdown` fires; never when it does not.
async fn grace_deadline(mut shutdown: Shutdown, grace: Duration) {
    shutdown.triggered().await;
    tokio::time::sleep(grace).await;
}

#[cfg(test)]
mod tests {
    use mailfleet_shared::messages::MailboxUser;
    use mailfleet_shared::queue::TaskQueue;
    use mailfleet_shared::store_error::StoreErrorKind;
    use mailfleet_stores::memory_queue::InProcessQueue;

    use mailfleet_shared::messages::FolderPart;

    use super::*;

    /// A job source whose store fails with `kind`.
    struct Failing(StoreErrorKind);

    #[async_trait::async_trait]
    impl JobSource for Failing {
        async fn job(&self, batch: &str) -> Result<Option<Arc<Job>>, StoreError> {
            Err(StoreError::new(self.0, format!("job spec of {batch}")))
        }
    }

    fn discover(batch: &str) -> Task {
        Task::DiscoverUser {
            batch: batch.to_owned(),
            pass: String::new(),
            user: MailboxUser {
                email: "erin@example.com".to_owned(),
                user_name: "erin".to_owned(),
                user_root: None,
            },
        }
    }

    #[tokio::test]
    async fn an_unreadable_job_spec_fails_the_task_and_an_unreachable_store_stops_the_loop() {
        let queue = Arc::new(InProcessQueue::new());
        let worker = Worker::new(Arc::new(Failing(StoreErrorKind::Corrupt)), queue.clone());
        queue.publish_task(&discover("w1")).await.unwrap();
        let delivery = queue.next_task().await.unwrap().unwrap();
        worker.process(&delivery).await.unwrap();
        match queue.next_report().await.unwrap().unwrap() {
            Report::Failed { user, error, .. } => {
                assert_eq!(user, "erin@example.com");
                assert_eq!(error, "erin@example.com: job spec of w1");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(queue.is_idle(), "the failed task was acked");

        let worker = Worker::new(
            Arc::new(Failing(StoreErrorKind::Unavailable)),
            queue.clone(),
        );
        queue.publish_task(&discover("w2")).await.unwrap();
        let delivery = queue.next_task().await.unwrap().unwrap();
        let error = worker.process(&delivery).await.unwrap_err();
        assert!(error.is_retryable());
        assert!(
            !queue.is_idle(),
            "left unacked, so the broker delivers it again"
        );
    }

    fn user() -> MailboxUser {
        MailboxUser {
            email: "ann@example.com".into(),
            user_name: "ann".into(),
            user_root: None,
        }
    }

    fn plan(part: FolderPart) -> FolderPlan {
        FolderPlan {
            source_name: "Big".into(),
            target_name: "Big".into(),
            display_name: "Big".into(),
            selectable: true,
            messages: 4,
            uid_validity: 9,
            part,
        }
    }

    #[test]
    fn a_task_is_poison_only_after_its_last_allowed_delivery() {
        assert!(!is_poison(1, 5));
        assert!(!is_poison(5, 5));
        assert!(is_poison(6, 5));
    }

    #[test]
    fn a_folder_task_keeps_its_parents_batch_pass_and_user() {
        let first = FolderPart::first_of(&[1, 2, 3, 4], 2);
        let parent = Task::SyncFolder {
            batch: "b1".into(),
            pass: "p7".into(),
            user: user(),
            folder: plan(first.clone()),
        };
        let next = FolderPlan {
            part: first.next().unwrap(),
            ..plan(FolderPart::default())
        };
        let child = folder_task(&parent, next.clone());
        assert_eq!(
            child,
            Task::SyncFolder {
                batch: "b1".into(),
                pass: "p7".into(),
                user: user(),
                folder: next,
            }
        );
    }

    #[test]
    fn a_failure_names_the_user_and_the_folder() {
        let task = Task::SyncFolder {
            batch: "b1".into(),
            pass: "p7".into(),
            user: user(),
            folder: plan(FolderPart::default()),
        };
        let Report::Failed {
            folder,
            error,
            pass,
            ..
        } = failed(&task, "refused".into())
        else {
            panic!("a failure report");
        };
        assert_eq!(folder.as_deref(), Some("Big"));
        assert_eq!(error, "ann@example.com: refused");
        assert_eq!(
            pass, "p7",
            "the report goes to the pass that published the task"
        );
        let discover = Task::DiscoverUser {
            batch: "b1".into(),
            pass: "p7".into(),
            user: user(),
        };
        let Report::Failed { folder, .. } = failed(&discover, "login rejected".into()) else {
            panic!("a failure report");
        };
        assert_eq!(folder, None);
    }
}
