//! One sync pass over a list of users: admit them (at most N in flight), let the workers copy
//! (in this process, or `mailfleet worker` processes elsewhere), collect the reports until
//! every user is finished. `mailfleet migrate`/`coordinator` run one pass; the service
//! (`mailfleet run`) runs a batch's initial, incremental and final passes with it.

use std::sync::Arc;

use mailfleet_shared::checkpoint::StoreError;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::queue::TaskQueue;
use mailfleet_worker::shutdown::shutdown_pair;
use mailfleet_worker::{Job, SingleJob, Worker};
use tokio::sync::mpsc;

use crate::admission::Admission;
use crate::collector::{Collector, UserResult};
use crate::error::CliError;
use crate::progress::TerminalProgress;
use crate::status::StatusBoard;

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

/// Runs one pass of `job` over `users` to the end; the results in email order.
pub async fn run_pass(
    job: Arc<Job>,
    queue: Arc<dyn TaskQueue>,
    users: &[MailboxUser],
    concurrency: Concurrency,
    observers: Observers<'_>,
) -> Result<Vec<UserResult>, CliError> {
    let Observers {
        progress,
        board,
        finished_users,
    } = observers;
    let queue_error = |e: StoreError| CliError::State(e.to_string());
    let mut collector = Collector::new(users.iter().map(|u| u.email.as_str()));
    let mut admission = Admission::new(&job.batch, users);
    let admitted = admission
        .admit(queue.as_ref(), concurrency.max_concurrent_users.max(1))
        .await
        .map_err(queue_error)?;
    collector.admitted(admitted.iter().map(|u| u.email.as_str()));
    let (trigger, shutdown) = shutdown_pair();
    let mut worker_run = if concurrency.workers > 0 {
        let worker = Arc::new(Worker::new(Arc::new(SingleJob(job)), queue.clone()));
        tokio::spawn(worker.run(concurrency.workers, shutdown))
    } else {
        // Coordinator only: `mailfleet worker` processes elsewhere take the tasks.
        tokio::spawn(std::future::pending())
    };

    board.update(collector.results());
    while !collector.all_finished() {
        let report = tokio::select! {
            report = queue.next_report() => report.map_err(queue_error)?,
            stopped = &mut worker_run => {
                // The worker only stops early when the queue failed; never wait forever.
                let reason = match stopped {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(())) => "stopped before every user finished".to_owned(),
                    Err(e) => e.to_string(),
                };
                return Err(CliError::State(format!("worker: {reason}")));
            }
            _ = tokio::signal::ctrl_c() => {
                // Running tasks finish and checkpoint; the rest resume on the next run.
                trigger.trigger();
                queue.close();
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
            let admitted = admission
                .admit(queue.as_ref(), 1)
                .await
                .map_err(queue_error)?;
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
            .map_err(|e| CliError::State(format!("worker crashed: {e}")))?
            .map_err(queue_error)?;
    }
    Ok(collector.results())
}
