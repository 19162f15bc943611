//! Sync passes over lists of users: admit them (as the shared [`slots`](super::slots) allow),
//! let the workers copy (in this process, or `mailfleet worker` processes elsewhere), collect
//! the reports until every user is finished. `mailfleet migrate`/`coordinator` run one pass
//! ([`run_pass`]); the service (`mailfleet run`) runs passes of several batches at once on one
//! [`PassRuntime`]: one queue, one set of task loops, reports routed back to their pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::queue::TaskQueue;
use mailfleet_worker::{Job, Worker};
use tokio::sync::{mpsc, watch};

use super::admission::Admission;
use super::collector::{Collector, UserResult};
use super::jobs::PassJobs;
use super::progress::TerminalProgress;
use super::reports::ReportRouter;
use super::slots::{Claim, SharedSlots};
use crate::error::CliError;
use crate::run::status_board::StatusBoard;
use crate::shutdown::{ShutdownTrigger, StopSignal, shutdown_pair};

/// Task loops in this process, and users in flight at once.
#[derive(Debug, Clone, Copy)]
pub struct Concurrency {
    /// 0: a coordinator only; `mailfleet worker` processes take the tasks.
    pub workers: usize,
    pub max_concurrent_users: usize,
}

/// Who watches a pass: the terminal, `/status`, and (for the service) each user's result the
/// moment that user is finished, so the state store follows the pass as it goes.
pub struct Observers<'a> {
    pub progress: &'a TerminalProgress,
    pub board: &'a StatusBoard,
    pub finished_users: Option<mpsc::UnboundedSender<UserResult>>,
}

/// Runs one pass of `job` over `users` to the end; the results in email order. When `stop`
/// fires first, no more users are admitted, the running tasks get the grace period to finish,
/// and the pass ends [interrupted](CliError::Interrupted): a later pass resumes it from the
/// checkpoints.
pub async fn run_pass(
    job: Arc<Job>,
    queue: Arc<dyn TaskQueue>,
    users: &[MailboxUser],
    concurrency: Concurrency,
    observers: Observers<'_>,
    stop: &StopSignal,
) -> Result<Vec<UserResult>, CliError> {
    let runtime = PassRuntime::start(queue.clone(), concurrency.workers, stop.grace);
    let claim = Claim::alone(concurrency.max_concurrent_users);
    let results = runtime.run(job, users, &claim, observers, stop).await;
    if matches!(results, Err(CliError::Interrupted)) {
        // Running tasks finish and checkpoint; the rest resume on the next run.
        queue.close();
    }
    let stopped = runtime.shut_down().await;
    let results = results?;
    stopped?;
    Ok(results)
}

/// What passes running at once in one process share.
pub struct PassRuntime {
    queue: Arc<dyn TaskQueue>,
    jobs: Arc<PassJobs>,
    reports: ReportRouter,
    slots: Arc<SharedSlots>,
    trigger: ShutdownTrigger,
    /// `Some` once the task loops have stopped: why, if it was not asked for.
    worker_done: watch::Receiver<Option<Result<(), String>>>,
    local_workers: bool,
}

impl PassRuntime {
    /// `workers` task loops on `queue` (0: `mailfleet worker` processes take the tasks), and
    /// the reader that routes reports to passes.
    pub fn start(queue: Arc<dyn TaskQueue>, workers: usize, grace: Duration) -> Self {
        let jobs = Arc::new(PassJobs::default());
        let (trigger, shutdown) = shutdown_pair();
        let (done, worker_done) = watch::channel(None);
        if workers > 0 {
            let worker = Arc::new(Worker::new(jobs.clone(), queue.clone()));
            tokio::spawn(async move {
                let ended = match tokio::spawn(worker.run(workers, shutdown, grace)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(crash) => Err(crash.to_string()),
                };
                let _ = done.send(Some(ended));
            });
        }
        PassRuntime {
            reports: ReportRouter::start(queue.clone()),
            queue,
            jobs,
            slots: SharedSlots::new(),
            trigger,
            worker_done,
            local_workers: workers > 0,
        }
    }

    /// The limits' use so far, for `/status`.
    pub fn slots(&self) -> &Arc<SharedSlots> {
        &self.slots
    }

    /// Runs one pass of `job` over `users`, its users admitted under `claim` alongside the
    /// other passes running; as [`run_pass`] otherwise. The caller stops the task loops.
    pub async fn run(
        &self,
        job: Arc<Job>,
        users: &[MailboxUser],
        claim: &Claim,
        observers: Observers<'_>,
        stop: &StopSignal,
    ) -> Result<Vec<UserResult>, CliError> {
        let Observers {
            progress,
            board,
            finished_users,
        } = observers;
        let pass = pass_id();
        let batch = job.batch.clone();
        let mut reports = self.reports.route(&pass);
        let _served = self.jobs.serve(job);
        let mut collector = Collector::new(&pass, users.iter().map(|u| u.email.as_str()));
        let mut admission = Admission::new(&batch, &pass, users);
        let mut slots = self.slots.join(claim, users.len());
        let mut worker_done = self.worker_done.clone();

        board.update(&batch, collector.results());
        while !collector.all_finished() {
            let report = tokio::select! {
                granted = slots.granted() => {
                    let admitted = admission.admit(self.queue.as_ref(), granted).await?;
                    collector.admitted(admitted.iter().map(|u| u.email.as_str()));
                    board.set_admission(self.slots.usage());
                    continue;
                }
                report = reports.next() => report?,
                stopped = loops_ended(&mut worker_done), if self.local_workers => {
                    // The loops only stop early when the queue failed; never wait forever.
                    return Err(match stopped {
                        Some(Err(error)) => CliError::failed("the worker", error),
                        _ => CliError::failed("the worker", "stopped before every user finished"),
                    });
                }
                () = stop.requested() => return Err(CliError::Interrupted),
            };
            let Some(report) = report else { break };
            let finished = collector.apply(report);
            board.refresh(&batch, || collector.results());
            if let Some(finished) = finished {
                slots.release();
                board.set_admission(self.slots.usage());
                progress.finish(&finished);
                if let (Some(sink), Some(result)) = (&finished_users, collector.result(&finished)) {
                    // The receiver only goes away with the service; nothing to do then.
                    let _ = sink.send(result.clone());
                }
            }
        }
        drop(slots);
        board.set_admission(self.slots.usage());
        board.update(&batch, collector.results());
        Ok(collector.results())
    }

    /// Stops the task loops: running tasks get the grace period, then the loops are awaited.
    pub async fn shut_down(&self) -> Result<(), CliError> {
        self.trigger.trigger();
        if !self.local_workers {
            return Ok(());
        }
        match loops_ended(&mut self.worker_done.clone()).await {
            Some(Err(error)) => Err(CliError::failed("the worker", error)),
            _ => Ok(()),
        }
    }
}

/// Waits until the task loops have ended; how they ended (`None`: nobody will say).
async fn loops_ended(
    done: &mut watch::Receiver<Option<Result<(), String>>>,
) -> Option<Result<(), String>> {
    let ended = done.wait_for(Option::is_some).await.ok()?;
    ended.clone()
}

/// An id no other pass has: this process's id, the time it started the pass and a counter
/// (passes start side by side). It only needs to tell this pass's reports from others'.
fn pass_id() -> String {
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{:x}-{}",
        std::process::id(),
        since_epoch.as_nanos(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    )
}
