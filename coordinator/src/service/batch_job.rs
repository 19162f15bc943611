//! The job of a batch: what its passes (and `verify`) copy, from where to where — built from
//! the batch's record and its two endpoints.

use std::sync::Arc;

use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::job_spec::{DEFAULT_FOLDER_PART_MESSAGES, JobSpec};
use mailfleet_shared::lifecycle::BatchRecord;
use mailfleet_shared::state::{EndpointRecord, StateStore, batch_scope};
use mailfleet_shared::tenancy::tenant_scope;
use mailfleet_worker::{Job, NoProgress, Tuning};

use crate::error::CliError;
use crate::records;

/// The job of a batch's passes (and of `verify`), with the spec it was built from (distributed
/// workers load that) and the source endpoint (its concurrency limits).
pub struct BatchJob {
    pub job: Job,
    pub spec: JobSpec,
    pub source: EndpointRecord,
}

/// Endpoints, rules and limits of `batch` of `tenant`; checkpoints and passwords under the
/// batch's scope (the tenant's: `tenant_scope`). Passwords stay until the batch is removed, so
/// a completed batch can still be verified.
pub async fn batch_job(
    tenant: &str,
    batch: &BatchRecord,
    state: &dyn StateStore,
    checkpoints: Arc<dyn CheckpointStore>,
    credentials: Arc<dyn CredentialStore>,
    tuning: Tuning,
) -> Result<BatchJob, CliError> {
    let source = records::endpoint(state, &batch.source_endpoint).await?;
    let target = records::endpoint(state, &batch.target_endpoint).await?;
    let spec = JobSpec {
        batch: tenant_scope(tenant, &batch_scope(&batch.name)),
        source: source.endpoint.clone(),
        target_profile: target.target_profile(),
        target: target.endpoint,
        include_folders: batch.include_folders.clone(),
        exclude_folders: batch.exclude_folders.clone(),
        max_message_size: batch.max_message_size,
        folder_part_messages: DEFAULT_FOLDER_PART_MESSAGES,
        received_after: batch.received_after,
        mirror_deletions: batch.mirror_deletions,
    };
    let job = Job::from_spec(
        spec.clone(),
        checkpoints,
        credentials,
        tuning,
        Arc::new(NoProgress),
    )
    .map_err(|e| CliError::Invalid(format!("batch {}: {e}", batch.name)))?;
    Ok(BatchJob { job, spec, source })
}
