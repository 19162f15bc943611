//! Jobs a stateless worker loads from a [`JobSpecStore`]: the coordinator publishes each batch's
//! [`JobSpec`](mailfleet_shared::job_spec::JobSpec) there, and the first task of a batch this
//! worker sees builds the [`Job`] from it, kept for every later task of the batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::job_spec::JobSpecStore;
use mailfleet_shared::store_error::StoreError;

use crate::job::{Job, NoProgress, Tuning};
use crate::job_source::JobSource;

/// Jobs described in a [`JobSpecStore`], built once per batch with this process's stores.
pub struct StoredJobs {
    specs: Arc<dyn JobSpecStore>,
    checkpoints: Arc<dyn CheckpointStore>,
    credentials: Arc<dyn CredentialStore>,
    tuning: Tuning,
    loaded: Mutex<HashMap<String, Arc<Job>>>,
}

impl StoredJobs {
    pub fn new(
        specs: Arc<dyn JobSpecStore>,
        checkpoints: Arc<dyn CheckpointStore>,
        credentials: Arc<dyn CredentialStore>,
        tuning: Tuning,
    ) -> Self {
        StoredJobs {
            specs,
            checkpoints,
            credentials,
            tuning,
            loaded: Mutex::default(),
        }
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl JobSource for StoredJobs {
    /// `None` while no spec is stored for `batch` (a task of a batch that is not this fleet's).
    /// A stored spec whose folder rules do not parse is an `Invalid` error naming the batch.
    async fn job(&self, batch: &str) -> Result<Option<Arc<Job>>, StoreError> {
        if let Some(job) = self.loaded().get(batch) {
            return Ok(Some(job.clone()));
        }
        let Some(spec) = self.specs.job_spec(batch).await? else {
            return Ok(None);
        };
        let job = Job::from_spec(
            spec,
            self.checkpoints.clone(),
            self.credentials.clone(),
            self.tuning.clone(),
            Arc::new(NoProgress),
        )
        .map_err(|error| StoreError::invalid(format!("job spec of {batch}")).with_source(error))?;
        let job = Arc::new(job);
        self.loaded().insert(batch.to_owned(), job.clone());
        Ok(Some(job))
    }
}

#[cfg(test)]
mod tests {
    use mailfleet_shared::endpoint::Endpoint;
    use mailfleet_shared::job_spec::{DEFAULT_FOLDER_PART_MESSAGES, JobSpec};
    use mailfleet_shared::store_error::StoreErrorKind;
    use mailfleet_stores::crypto::SecretBox;
    use mailfleet_stores::sqlite::SqliteStore;

    use super::*;

    fn spec(batch: &str, include: &str) -> JobSpec {
        JobSpec {
            batch: batch.to_owned(),
            source: Endpoint::from_url("imap://imap.example.com:143").unwrap(),
            target: Endpoint::from_url("imaps://outlook.office365.com:993").unwrap(),
            include_folders: vec![include.to_owned()],
            exclude_folders: vec![],
            max_message_size: 1024,
            folder_part_messages: DEFAULT_FOLDER_PART_MESSAGES,
            received_after: None,
            mirror_deletions: false,
            target_profile: Default::default(),
        }
    }

    /// A store in a fresh directory, removed when the returned guard drops.
    fn sqlite_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretBox::from_key_bytes(&[5u8; 32]).unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), key).unwrap());
        (dir, store)
    }

    fn jobs(store: &Arc<SqliteStore>) -> StoredJobs {
        StoredJobs::new(
            store.clone(),
            store.clone(),
            store.clone(),
            Tuning::default(),
        )
    }

    #[tokio::test]
    async fn a_stored_spec_becomes_a_job_once_and_other_batches_are_not_served() {
        let (_dir, store) = sqlite_store();
        store.put_job_spec(&spec("w1", "INBOX")).await.unwrap();
        let jobs = jobs(&store);

        let job = jobs.job("w1").await.unwrap().expect("w1 is stored");
        assert_eq!(
            (job.batch.as_str(), job.target.host.as_str()),
            ("w1", "outlook.office365.com")
        );
        assert!(jobs.job("w2").await.unwrap().is_none());
        // Built once: a later change of the stored spec does not swap the job under running
        // tasks.
        store.put_job_spec(&spec("w1", "Sent")).await.unwrap();
        let again = jobs.job("w1").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&job, &again));
    }

    #[tokio::test]
    async fn a_spec_with_rules_that_do_not_parse_is_invalid_and_names_the_batch() {
        let (_dir, store) = sqlite_store();
        store.put_job_spec(&spec("w3", "#Nonsense#")).await.unwrap();
        let Err(error) = jobs(&store).job("w3").await else {
            panic!("an unknown well-known folder was accepted");
        };
        assert_eq!(error.kind(), StoreErrorKind::Invalid);
        assert!(error.to_string().contains("job spec of w3"), "{error}");
        assert!(error.to_string().contains("#Nonsense#"), "{error}");
    }
}
