//! Per-folder progress markers (ARCHITECTURE.md, rule 2).
//!
//! A checkpoint says "every source message up to `last_source_uid` of this folder, under this
//! UIDVALIDITY, is confirmed on the target". It is a shortcut, never the guard: the guard is the
//! fingerprint match (rule 1), so losing a checkpoint costs time, never correctness.
//!
//! `target_uid_mark` records the target folder's highest UID right after those appends were
//! confirmed. On resume, only target messages above the mark can be copies the checkpoint does not
//! know about yet, so only they need to be fingerprinted and matched against the source messages
//! above `last_source_uid`: matching stays exact even when a folder holds identical messages.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store_error::StoreError;

/// Which folder a checkpoint belongs to. `scope` isolates batches/tenants sharing one store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CheckpointKey {
    /// Batch or tenant namespace, e.g. `default` in embedded mode.
    pub scope: String,
    /// Target mailbox address (the CSV's EmailAddress).
    pub user: String,
    /// Source folder name as the source server spells it (raw, modified UTF-7).
    pub folder: String,
}

/// Progress of one folder; see the module docs for what each field promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderCheckpoint {
    pub source_uidvalidity: u32,
    pub last_source_uid: u32,
    pub target_uidvalidity: u32,
    pub target_uid_mark: u32,
}

impl FolderCheckpoint {
    /// Whether `self` may replace `stored`: checkpoints only move forward under one UIDVALIDITY;
    /// a different source UIDVALIDITY means the folder restarted and the new marker wins.
    pub fn supersedes(&self, stored: &FolderCheckpoint) -> bool {
        self.source_uidvalidity != stored.source_uidvalidity
            || self.last_source_uid > stored.last_source_uid
    }
}

/// Durable checkpoint storage. Implementations must make [`CheckpointStore::advance`] atomic:
/// two workers racing on one folder must never move a checkpoint backwards.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    async fn load(&self, key: &CheckpointKey) -> Result<Option<FolderCheckpoint>, StoreError>;
    /// Stores `checkpoint` if it [supersedes](FolderCheckpoint::supersedes) the stored one (or
    /// none is stored). Returns whether it was written.
    async fn advance(
        &self,
        key: &CheckpointKey,
        checkpoint: FolderCheckpoint,
    ) -> Result<bool, StoreError>;
    /// Forgets every checkpoint of `user` in `scope` (a user restarted from scratch).
    async fn clear_user(&self, scope: &str, user: &str) -> Result<(), StoreError>;

    /// Takes (or, for the same `owner`, extends) the exclusive right to sync this folder for
    /// `ttl`. At-least-once delivery can hand one folder task to two workers at once (a broker
    /// connection dropped while the first still works); two appenders on one folder could both
    /// miss each other's copies, so only the lease holder copies. Returns whether `owner` holds
    /// it now. An expired lease (its holder died) can be taken.
    async fn acquire_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up if `owner` holds it.
    async fn release_lease(&self, key: &CheckpointKey, owner: &str) -> Result<(), StoreError>;
}
