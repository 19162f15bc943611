//! `mailfleet worker`: a stateless worker process for distributed mode.
//!
//! It takes tasks from RabbitMQ, loads each batch's job spec from Redis the first time it sees
//! the batch, reads passwords from the sealed credential store, and writes checkpoints to Redis.
//! Any number run on any number of machines; `kill -9` of one loses nothing (its unacked tasks
//! are redelivered and the fingerprint guard makes the repeat harmless). SIGTERM or Ctrl-C stops
//! it gracefully (ARCHITECTURE.md, "Shutdown"): running tasks finish and are acked within the
//! grace period, no new ones are taken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailfleet_shared::checkpoint::StoreError;
use mailfleet_stores::redis_store::RedisStore;
use mailfleet_worker::{Job, JobSource, NoProgress, Tuning, Worker};

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
    let redis = backends
        .redis
        .clone()
        .expect("--checkpoints always opens Redis");
    let jobs = Arc::new(StoredJobs {
        redis,
        tuning: settings.tuning(),
        loaded: Mutex::default(),
    });
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

/// Jobs described in Redis by the coordinator, built once per batch and kept.
struct StoredJobs {
    redis: Arc<RedisStore>,
    tuning: Tuning,
    loaded: Mutex<HashMap<String, Arc<Job>>>,
}

#[async_trait]
impl JobSource for StoredJobs {
    async fn job(&self, batch: &str) -> Result<Option<Arc<Job>>, StoreError> {
        if let Some(job) = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(batch)
        {
            return Ok(Some(job.clone()));
        }
        let Some(spec) = self.redis.job_spec(batch).await? else {
            return Ok(None);
        };
        let job = Job::from_spec(
            spec,
            self.redis.clone(),
            self.redis.clone(),
            self.tuning.clone(),
            Arc::new(NoProgress),
        )
        .map_err(|e| StoreError(format!("job spec of {batch}: {e}")))?;
        let job = Arc::new(job);
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(batch.to_owned(), job.clone());
        Ok(Some(job))
    }
}
