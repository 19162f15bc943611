//! What every worker must know about a batch besides the task itself: the endpoints, the folder
//! rules and the size limit — no secrets (passwords stay in the credential store).
//!
//! In distributed mode the coordinator stores it once per batch in a [`JobSpecStore`];
//! stateless workers load it by the batch name a task carries, so tasks stay small and workers
//! need no configuration beyond where the broker and the store are.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::folder_filter::{FilterError, FolderFilter};
use crate::server_profile::ServerProfile;
use crate::store_error::StoreError;

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
    /// The target's personality: which rules of `ServerRules` the engine applies. Specs stored
    /// before profiles existed load as `generic`.
    #[serde(default)]
    pub target_profile: ServerProfile,
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

/// Where the coordinator publishes each batch's [`JobSpec`] and workers read it back
/// (ARCHITECTURE.md, "Seams"). A spec holds no secret, so backends store it as it is.
#[async_trait]
pub trait JobSpecStore: Send + Sync {
    /// Stores `spec` under its batch name, replacing what was stored (a pass after `batch`
    /// changes publishes the new rules).
    async fn put_job_spec(&self, spec: &JobSpec) -> Result<(), StoreError>;
    /// `Ok(None)` when no spec is stored for `batch`.
    async fn job_spec(&self, batch: &str) -> Result<Option<JobSpec>, StoreError>;
    /// Forgets the spec of `batch`; nothing happens when none is stored.
    async fn remove_job_spec(&self, batch: &str) -> Result<(), StoreError>;
}
