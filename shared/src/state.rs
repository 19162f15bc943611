//! The state store (ARCHITECTURE.md, "Seams"): endpoints, batches and their users, as the service
//! and the
//! `endpoint`/`batch`/`report` commands see them. Passwords are not here — they live sealed in
//! the credential store, under the endpoint's or the batch's scope.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::lifecycle::{BatchRecord, UserRecord};
use crate::server_profile::ServerProfile;
use crate::store_error::{StoreError, StoreErrorKind};
use crate::user_query::{self, StateTally, UserPage, UserQuery};

/// A named migration endpoint: a server, how to log in to it, and how hard it may be pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub name: String,
    pub endpoint: Endpoint,
    /// Users in their initial sync at once (Microsoft's default: 20).
    pub max_concurrent_migrations: usize,
    /// Users in an incremental sync at once (Microsoft's default: 10).
    pub max_concurrent_incremental_syncs: usize,
    /// The server's profile when a batch migrates into it (`endpoint create --profile`);
    /// `None`: detected from the endpoint (`auto`). Records written before profiles load so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ServerProfile>,
}

impl EndpointRecord {
    /// The profile a batch migrating into this endpoint uses.
    pub fn target_profile(&self) -> ServerProfile {
        self.profile
            .unwrap_or_else(|| ServerProfile::detect(&self.endpoint))
    }
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

/// Endpoints, batches and users. Batches and users are versioned (their `version` field):
/// every write names the version it read, so of two writers that read the same version only
/// the first succeeds and the second gets a [`Conflict`](StoreErrorKind::Conflict) to re-read
/// and re-apply —
/// [`update_batch`] does that. Endpoints are written only by `endpoint` commands and are
/// simply replaced.
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError>;
    async fn endpoint(&self, name: &str) -> Result<Option<EndpointRecord>, StoreError>;
    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError>;
    async fn remove_endpoint(&self, name: &str) -> Result<(), StoreError>;

    /// Stores a new batch with its users, all at version 1, whatever versions they carry; an
    /// error if the name is taken.
    async fn create_batch(
        &self,
        batch: &BatchRecord,
        users: &[UserRecord],
    ) -> Result<(), StoreError>;
    /// Replaces the stored batch if it is still at `batch.version`, and moves `batch.version`
    /// to the new one. A batch changed or removed since it was read is a conflict, and nothing
    /// is written.
    async fn put_batch(&self, batch: &mut BatchRecord) -> Result<(), StoreError>;
    async fn batch(&self, name: &str) -> Result<Option<BatchRecord>, StoreError>;
    /// Every batch, by name.
    async fn batches(&self) -> Result<Vec<BatchRecord>, StoreError>;
    /// Removes the batch and its users.
    async fn remove_batch(&self, name: &str) -> Result<(), StoreError>;

    /// Writes these users of `batch` in one transaction, each as [`put_batch`] writes a batch:
    /// a user at version 0 is new and goes after the batch's other users (a conflict if the
    /// batch has that address already); any other replaces the stored user if that is still at
    /// its version. On success every user's `version` is the stored one; on a conflict nothing
    /// is written. An error if there is no such batch.
    ///
    /// [`put_batch`]: StateStore::put_batch
    async fn put_users(&self, batch: &str, users: &mut [UserRecord]) -> Result<(), StoreError>;
    /// The batch's users in CSV order (users added later after them).
    async fn users(&self, batch: &str) -> Result<Vec<UserRecord>, StoreError>;

    /// The batch's user with this address (ASCII letters in any case), if any. The API's
    /// user page: the stores look it up by key instead of reading every user.
    async fn user(&self, batch: &str, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .users(batch)
            .await?
            .into_iter()
            .find(|user| user.email.eq_ignore_ascii_case(email)))
    }

    /// The page of the batch's users `query` selects, as [`user_query::select`] defines it.
    /// The API's users list: the stores answer from their indexes.
    async fn user_page(&self, batch: &str, query: &UserQuery) -> Result<UserPage, StoreError> {
        Ok(user_query::select(self.users(batch).await?, query))
    }

    /// How many of the batch's users are in each state, as [`user_query::tally`] counts them:
    /// a batch's counts without reading its users.
    async fn user_tally(&self, batch: &str) -> Result<Vec<StateTally>, StoreError> {
        Ok(user_query::tally(&self.users(batch).await?))
    }

    /// The newest change among the batch's users (0 when none was written since changes were
    /// numbered): a reader starting now passes it to [`users_changed_after`] and sees only
    /// what is written from then on.
    ///
    /// Every write of a user gives it a change number larger than any the store gave before
    /// (across batches and removals), and one batch's writers take turns, so within a batch
    /// the numbers grow in commit order: a reader that saw change N has seen every earlier
    /// write of that batch. This is how the API's event stream finds what changed without
    /// reading every user of a batch each second.
    ///
    /// [`users_changed_after`]: StateStore::users_changed_after
    async fn user_change_mark(&self, batch: &str) -> Result<u64, StoreError>;

    /// Up to `limit` of the batch's users written after change `after`, oldest change first,
    /// each with the change it was written at (the next call's `after` is the last one's).
    async fn users_changed_after(
        &self,
        batch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChangedUser>, StoreError>;
}

/// A user as [`StateStore::users_changed_after`] finds it: the record and the change number
/// of its last write.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedUser {
    pub change: u64,
    pub user: UserRecord,
}

/// Conflicts in a row after which [`update_batch`] gives up. Every conflict means another
/// writer succeeded, so reaching this needs a hundred writers' updates to one batch within a
/// single read-and-write of ours: a runaway, not contention.
const UPDATE_ATTEMPTS: usize = 100;

/// Reads batch `name`, lets `change` change it and writes it back; when another writer got
/// there first, again from a fresh read, so neither change is lost. The lifecycle transitions
/// are pure functions of the record, so applying one again costs nothing. `change` may refuse
/// (its error is returned, nothing written); a batch it leaves as it was is not written.
/// Returns the batch as stored and what `change` returned, or `None` if there is no such batch
/// (or it was removed meanwhile).
pub async fn update_batch<T, E>(
    store: &dyn StateStore,
    name: &str,
    mut change: impl FnMut(&mut BatchRecord) -> Result<T, E> + Send,
) -> Result<Option<(BatchRecord, T)>, E>
where
    E: From<StoreError>,
{
    for _ in 0..UPDATE_ATTEMPTS {
        let Some(mut batch) = store.batch(name).await? else {
            return Ok(None);
        };
        let before = batch.clone();
        let outcome = change(&mut batch)?;
        if batch == before {
            return Ok(Some((batch, outcome)));
        }
        match store.put_batch(&mut batch).await {
            Ok(()) => return Ok(Some((batch, outcome))),
            Err(error) if error.kind() == StoreErrorKind::Conflict => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(StoreError::conflict(format!(
        "batch {name} changed under each of {UPDATE_ATTEMPTS} attempts to update it"
    ))
    .into())
}
