//! Where a worker finds the [`Job`] of a task's batch.
//!
//! Embedded runs serve exactly one job ([`SingleJob`]); distributed workers load the batch's
//! [`JobSpec`] from the shared store the first time they see the batch
//! ([`StoredJobs`](crate::stored_jobs::StoredJobs)). A task of a batch this worker does not serve
//! goes back to the queue.

use std::sync::Arc;

use async_trait::async_trait;
use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::folder_filter::FilterError;
use mailfleet_shared::job_spec::JobSpec;
use mailfleet_shared::store_error::StoreError;

use crate::connection_pool::ConnectionPool;
use crate::job::{Job, Progress, Tuning};
use crate::oauth2::BearerTokens;

#[async_trait]
pub trait JobSource: Send + Sync {
    /// The job of `batch`, or `None` when this worker does not serve it.
    async fn job(&self, batch: &str) -> Result<Option<Arc<Job>>, StoreError>;
}

/// One job, for a process that runs one batch.
pub struct SingleJob(pub Arc<Job>);

#[async_trait]
impl JobSource for SingleJob {
    async fn job(&self, batch: &str) -> Result<Option<Arc<Job>>, StoreError> {
        Ok((self.0.batch == batch).then(|| self.0.clone()))
    }
}

impl Job {
    /// A job from its stored description and this process's stores and knobs.
    pub fn from_spec(
        spec: JobSpec,
        checkpoints: Arc<dyn CheckpointStore>,
        credentials: Arc<dyn CredentialStore>,
        tuning: Tuning,
        progress: Arc<dyn Progress>,
    ) -> Result<Job, FilterError> {
        Ok(Job {
            filter: spec.filter()?,
            batch: spec.batch,
            source: spec.source,
            target: spec.target,
            max_message_size: spec.max_message_size,
            folder_part_messages: spec.folder_part_messages,
            received_after: spec.received_after,
            mirror_deletions: spec.mirror_deletions,
            target_profile: spec.target_profile,
            checkpoints,
            credentials,
            tuning,
            progress,
            connections: ConnectionPool::default(),
            tokens: BearerTokens::default(),
        })
    }
}
