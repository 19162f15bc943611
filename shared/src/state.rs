//! The state store (ARCHITECTURE.md, "Seams"): endpoints, batches and their users, as the service
//! and the
//! `endpoint`/`batch`/`report` commands see them. Passwords are not here — they live sealed in
//! the credential store, under the endpoint's or the batch's scope.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::lifecycle::{BatchRecord, UserRecord};
use crate::store_error::StoreError;

/// A named migration endpoint: a server, how to log in to it, and how hard it may be pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub name: String,
    pub endpoint: Endpoint,
    /// Users in their initial sync at once (Microsoft's default: 20).
    pub max_concurrent_migrations: usize,
    /// Users in an incremental sync at once (Microsoft's default: 10).
    pub max_concurrent_incremental_syncs: usize,
}

/// The credential scope of an endpoint's admin password.
pub fn endpoint_scope(name: &str) -> String {
    format!("endpoint:{name}")
}

/// The credential and checkpoint scope of a batch: its passwords, and checkpoints that carry
/// from one sync pass to the next so incremental syncs copy only new mail.
pub fn batch_scope(name: &str) -> String {
    format!("batch:{name}")
}

#[async_trait]
pub trait StateStore: Send + Sync {
    async fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError>;
    async fn endpoint(&self, name: &str) -> Result<Option<EndpointRecord>, StoreError>;
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError>;
    async fn remove_endpoint(&self, name: &str) -> Result<(), StoreError>;

    /// Stores a new batch with its users; an error if the name is taken.
    async fn create_batch(
        &self,
        batch: &BatchRecord,
        users: &[UserRecord],
    ) -> Result<(), StoreError>;
    async fn put_batch(&self, batch: &BatchRecord) -> Result<(), StoreError>;
    async fn batch(&self, name: &str) -> Result<Option<BatchRecord>, StoreError>;
    async fn batches(&self) -> Result<Vec<BatchRecord>, StoreError>;
    /// Removes the batch and its users.
    async fn remove_batch(&self, name: &str) -> Result<(), StoreError>;

    /// Inserts or replaces these users of `batch`.
    async fn put_users(&self, batch: &str, users: &[UserRecord]) -> Result<(), StoreError>;
    /// The batch's users in CSV order.
    async fn users(&self, batch: &str) -> Result<Vec<UserRecord>, StoreError>;
}
