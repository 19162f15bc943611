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
    /// Folders with more messages are split into parts of this many messages, one short task
    /// each (see `FolderPart`).
    #[serde(default = "default_folder_part_messages")]
    pub folder_part_messages: usize,
    /// Only messages received (INTERNALDATE) on or after this day are copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_after: Option<chrono::NaiveDate>,
    /// Incremental passes remove mailfleet's copies of messages deleted on the source
    /// (`--mirror-deletions`); without it they are kept and reported (ARCHITECTURE.md, rule 6).
    #[serde(default)]
    pub mirror_deletions: bool,
}

/// Small enough that a part takes a few minutes at worst, far inside RabbitMQ's 30-minute
/// consumer timeout; large enough that per-task overhead (logins, EXAMINE, STATUS) is noise.
pub const DEFAULT_FOLDER_PART_MESSAGES: usize = 5_000;

fn default_folder_part_messages() -> usize {
    DEFAULT_FOLDER_PART_MESSAGES
}

impl JobSpec {
    pub fn filter(&self) -> Result<FolderFilter, FilterError> {
        FolderFilter::new(&self.include_folders, &self.exclude_folders)
    }
}
