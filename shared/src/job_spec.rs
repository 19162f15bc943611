//! What every worker must know about a batch besides the task itself: the endpoints, the folder
//! rules and the size limit — no secrets (passwords stay in the credential store).
//!
//! In distributed mode the coordinator stores it once per batch; stateless workers load it by
//! the batch name a task carries, so tasks stay small and workers need no configuration beyond
//! where the broker and the store are.

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::folder_filter::{FilterError, FolderFilter};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub batch: String,
    pub source: Endpoint,
    pub target: Endpoint,
    pub include_folders: Vec<String>,
    pub exclude_folders: Vec<String>,
    pub max_message_size: u64,
}

impl JobSpec {
    pub fn filter(&self) -> Result<FolderFilter, FilterError> {
        FolderFilter::new(&self.include_folders, &self.exclude_folders)
    }
}
