//! One sync pass over a list of users: admit them (at most N in flight), let the workers copy
//! (in this process, or `mailfleet worker` processes elsewhere), collect the reports until
//! every user is finished. `mailfleet migrate`/`coordinator` run one pass; the service
//! (`mailfleet run`) runs a batch's initial, incremental and final passes with it.

use std::sync::Arc;

use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::queue::TaskQueue;
use mailfleet_worker::{Job, SingleJob, Worker};
use tokio::sync::mpsc;

use super::admission::Admission;
use super::collector::{Collector, UserResult};
use super::progress::TerminalProgress;
use crate::error::CliError;
use crate::run::status_board::StatusBoard;
use crate::shutdown::{StopSignal, shutdown_pair};

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
    let Observers {
        progress,
        board,
        finished_users,
    } = observers;
    let pass = pass_id();
    let mut collector = Collector::new(&pass, users.iter().map(|u| u.email.as_str()));
    let mut admission = Admission::new(&job.batch, &pass, users);
    let admitted = admission
        .admit(queue.as_ref(), concurrency.max_concurrent_users.max(1))
        .await?;
    collector.admitted(admitted.iter().map(|u| u.email.as_str()));
    let (trigger, shutdown) = shutdown_pair();
    let mut worker_run = if concurrency.workers > 0 {
        let worker = Arc::new(Worker::new(Arc::new(SingleJob(job)), queue.clone()));
        tokio::spawn(worker.run(concurrency.workers, shutdown, stop.grace))
    } else {
        // Coordinator only: `mailfleet worker` processes elsewhere take the tasks.
        tokio::spawn(std::future::pending())
    };

    board.update(collector.results());
    while !collector.all_finished() {
        let report = tokio::select! {
            report = queue.next_report() => report?,
            stopped = &mut worker_run => {
                // The worker only stops early when the queue failed; never wait forever.
                return Err(match stopped {
                    Ok(Err(e)) => CliError::from(e),
                    Ok(Ok(())) => CliError::failed("the worker", "stopped before every user finished"),
                    Err(crash) => CliError::failed("the worker", crash),
                });
            }
            () = stop.requested() => {
                // Running tasks finish and checkpoint; the rest resume on the next run.
                trigger.trigger();
                queue.close();
                if concurrency.workers == 0 {
                    worker_run.abort();
                }
                // Whatever the worker says now, the pass did not finish.
                let _ = worker_run.await;
                return Err(CliError::Interrupted);
            }
        };
        let Some(report) = report else { break };
        let finished = collector.apply(report);
        board.refresh(|| collector.results());
        if let Some(finished) = finished {
            progress.finish(&finished);
            if let (Some(sink), Some(result)) = (&finished_users, collector.result(&finished)) {
                // The receiver only goes away with the service; nothing to do then.
                let _ = sink.send(result.clone());
            }
            let admitted = admission.admit(queue.as_ref(), 1).await?;
            collector.admitted(admitted.iter().map(|u| u.email.as_str()));
        }
    }
    board.update(collector.results());
    trigger.trigger();
    if concurrency.workers == 0 {
        worker_run.abort();
    } else {
        worker_run
            .await
            .map_err(|crash| CliError::failed("the worker", crash))??;
    }
    Ok(collector.results())
}

/// An id no other pass has: this process's id and the time it started the pass. It only needs
/// to tell this pass's reports from those of passes before it.
fn pass_id() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{:x}", std::process::id(), since_epoch.as_nanos())
}
