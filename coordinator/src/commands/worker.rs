//! `mailfleet worker`: a stateless worker process for distributed mode.
//!
//! It takes tasks from RabbitMQ, loads each batch's job spec from Redis the first time it sees
//! the batch, reads passwords from the sealed credential store, and writes checkpoints to Redis.
//! Any number run on any number of machines; `kill -9` of one loses nothing (its unacked tasks
//! are redelivered and the fingerprint guard makes the repeat harmless). SIGTERM or Ctrl-C stops
//! it gracefully (ARCHITECTURE.md, "Shutdown"): running tasks finish and are acked within the
//! grace period, no new ones are taken.

use std::sync::Arc;

use mailfleet_worker::{StoredJobs, Worker};

use crate::backends;
use crate::error::CliError;
use crate::observe::{http, telemetry};
use crate::settings::Settings;
use crate::shutdown::StopSignal;

/// Tasks worked on at once when the settings do not say.
const DEFAULT_CONCURRENCY: usize = 8;

/// Works until `stop` fires (then exits interrupted, its running tasks finished or handed
/// back), or until the broker is gone for good.
pub async fn run(settings: &Settings, stop: &StopSignal) -> Result<(), CliError> {
    settings.require_fleet("a worker")?;
    let concurrency = settings.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1);
    let backends = backends::open(settings, std::path::Path::new("."), concurrency).await?;
    if let Some(listen) = settings.metrics_listen {
        http::serve(listen, telemetry::engine_registry(), None).await?;
    }
    let job_specs = backends
        .job_specs
        .clone()
        .expect("--checkpoints always opens Redis");
    let jobs = Arc::new(StoredJobs::new(
        job_specs,
        backends.checkpoints.clone(),
        backends.credentials.clone(),
        settings.tuning(),
    ));
    let worker = Arc::new(Worker::new(jobs, backends.queue.clone()));
    tracing::info!(concurrency, "worker started");
    let result = worker
        .run(concurrency, stop.token.clone(), stop.grace)
        .await;
    backends.queue.close();
    result?;
    if stop.is_requested() {
        return Err(CliError::Interrupted);
    }
    Ok(())
}
