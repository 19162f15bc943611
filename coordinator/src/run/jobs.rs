//! The jobs of the passes running in this process, for its task loops: passes of several
//! batches share the loops, and a task is run with the job of its own batch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailfleet_shared::store_error::StoreError;
use mailfleet_worker::{Job, JobSource};

#[derive(Default)]
pub struct PassJobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl PassJobs {
    /// Serves `job` to the task loops until the returned guard is dropped.
    pub fn serve(self: &Arc<Self>, job: Arc<Job>) -> ServedJob {
        let batch = job.batch.clone();
        self.lock().insert(batch.clone(), job);
        ServedJob {
            jobs: self.clone(),
            batch,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl JobSource for PassJobs {
    async fn job(&self, batch: &str) -> Result<Option<Arc<Job>>, StoreError> {
        Ok(self.lock().get(batch).cloned())
    }
}

pub struct ServedJob {
    jobs: Arc<PassJobs>,
    batch: String,
}

impl Drop for ServedJob {
    fn drop(&mut self) {
        self.jobs.lock().remove(&self.batch);
    }
}
