//! Embedded mode's durable state: checkpoints, sealed credentials and batches' job specs in one
//! SQLite file (`state.db`, WAL) in the state dir.
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool behind one mutex; the
//! write volume (one checkpoint per fetched batch) is far below what that serialises.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailfleet_shared::checkpoint::{CheckpointKey, CheckpointStore, FolderCheckpoint};
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::job_spec::{JobSpec, JobSpecStore};
use mailfleet_shared::store_error::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::SecretString;

use crate::crypto::SecretBox;
use crate::error::{StoresError, decode_json, encode_json};

/// Bumped whenever the schema below changes; later versions migrate from it. Version 2 added
/// `job_specs`; its `CREATE TABLE IF NOT EXISTS` is the whole migration from version 1.
const SCHEMA_VERSION: i32 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checkpoints (
    scope TEXT NOT NULL,
    user TEXT NOT NULL,
    folder TEXT NOT NULL,
    source_uidvalidity INTEGER NOT NULL,
    last_source_uid INTEGER NOT NULL,
    target_uidvalidity INTEGER NOT NULL,
    target_uid_mark INTEGER NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (scope, user, folder)
);
CREATE TABLE IF NOT EXISTS leases (
    scope TEXT NOT NULL,
    user TEXT NOT NULL,
    folder TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, user, folder)
);
CREATE TABLE IF NOT EXISTS credentials (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS job_specs (
    batch TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
";

#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    secrets: SecretBox,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) `state_dir/state.db`.
    pub fn open(state_dir: &Path, secrets: SecretBox) -> Result<Self, StoresError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoresError::Io {
            path: state_dir.display().to_string(),
            source,
        })?;
        let path = state_dir.join("state.db");
        let connection = open_connection(&path)?;
        connection.execute_batch(SCHEMA)?;
        connection.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            secrets,
            path,
        })
    }

    /// Drops every folder lease. Only for a process that owns the state dir exclusively (see
    /// `mailfleet migrate`'s lock): leases left by a killed run would otherwise make the next
    /// run wait for them to expire.
    pub async fn clear_leases(&self) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute("DELETE FROM leases", [])?;
            Ok(())
        })
        .await
    }

    /// The database file, for modules that keep their own tables in it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoresError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        let result = tokio::task::spawn_blocking(move || {
            let guard = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&guard)
        })
        .await
        .map_err(StoresError::from)?;
        Ok(result?)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A connection in WAL mode that waits for, rather than fails on, a concurrent writer.
pub fn open_connection(path: &Path) -> Result<Connection, StoresError> {
    let connection = Connection::open(path)?;
    // First, so that the pragmas below wait for a concurrent writer too.
    connection.busy_timeout(std::time::Duration::from_secs(30))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn load(&self, key: &CheckpointKey) -> Result<Option<FolderCheckpoint>, StoreError> {
        let key = key.clone();
        self.with(move |db| {
            Ok(db
                .query_row(
                    "SELECT source_uidvalidity, last_source_uid, target_uidvalidity, target_uid_mark
                     FROM checkpoints WHERE scope = ?1 AND user = ?2 AND folder = ?3",
                    params![key.scope, key.user, key.folder],
                    |row| {
                        Ok(FolderCheckpoint {
                            source_uidvalidity: row.get(0)?,
                            last_source_uid: row.get(1)?,
                            target_uidvalidity: row.get(2)?,
                            target_uid_mark: row.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn advance(&self, key: &CheckpointKey, cp: FolderCheckpoint) -> Result<bool, StoreError> {
        let key = key.clone();
        self.with(move |db| {
            // One statement, so the forward-only rule holds even with concurrent writers.
            let changed = db.execute(
                "INSERT INTO checkpoints (scope, user, folder, source_uidvalidity, last_source_uid,
                                          target_uidvalidity, target_uid_mark)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (scope, user, folder) DO UPDATE SET
                     source_uidvalidity = excluded.source_uidvalidity,
                     last_source_uid = excluded.last_source_uid,
                     target_uidvalidity = excluded.target_uidvalidity,
                     target_uid_mark = excluded.target_uid_mark,
                     updated_at = datetime('now')
                 WHERE excluded.source_uidvalidity != checkpoints.source_uidvalidity
                    OR excluded.last_source_uid > checkpoints.last_source_uid",
                params![
                    key.scope,
                    key.user,
                    key.folder,
                    cp.source_uidvalidity,
                    cp.last_source_uid,
                    cp.target_uidvalidity,
                    cp.target_uid_mark
                ],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn acquire_lease(
        &self,
        key: &CheckpointKey,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let (key, owner) = (key.clone(), owner.to_owned());
        self.with(move |db| {
            let now = now_ms();
            let changed = db.execute(
                "INSERT INTO leases (scope, user, folder, owner, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (scope, user, folder) DO UPDATE SET
                     owner = excluded.owner, expires_at_ms = excluded.expires_at_ms
                 WHERE leases.owner = excluded.owner OR leases.expires_at_ms < ?6",
                params![key.scope, key.user, key.folder, owner, now + ttl.as_millis() as i64, now],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn release_lease(&self, key: &CheckpointKey, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.clone(), owner.to_owned());
        self.with(move |db| {
            db.execute(
                "DELETE FROM leases WHERE scope = ?1 AND user = ?2 AND folder = ?3 AND owner = ?4",
                params![key.scope, key.user, key.folder, owner],
            )?;
            Ok(())
        })
        .await
    }

    async fn clear_user(&self, scope: &str, user: &str) -> Result<(), StoreError> {
        let (scope, user) = (scope.to_owned(), user.to_owned());
        self.with(move |db| {
            db.execute(
                "DELETE FROM checkpoints WHERE scope = ?1 AND user = ?2",
                params![scope, user],
            )?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn put(&self, id: &CredentialId, secret: &SecretString) -> Result<(), StoreError> {
        let sealed = self.secrets.seal(secret);
        let id = id.clone();
        self.with(move |db| {
            db.execute(
                "INSERT INTO credentials (scope, name, sealed) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scope, name) DO UPDATE SET sealed = excluded.sealed",
                params![id.scope, id.name, sealed],
            )?;
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &CredentialId) -> Result<Option<SecretString>, StoreError> {
        let key = id.clone();
        let sealed: Option<String> = self
            .with(move |db| {
                Ok(db
                    .query_row(
                        "SELECT sealed FROM credentials WHERE scope = ?1 AND name = ?2",
                        params![key.scope, key.name],
                        |row| row.get(0),
                    )
                    .optional()?)
            })
            .await?;
        sealed
            .map(|sealed| self.secrets.open_credential(id, &sealed))
            .transpose()
    }

    async fn remove_scope(&self, scope: &str) -> Result<(), StoreError> {
        let scope = scope.to_owned();
        self.with(move |db| {
            db.execute("DELETE FROM credentials WHERE scope = ?1", params![scope])?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl JobSpecStore for SqliteStore {
    async fn put_job_spec(&self, spec: &JobSpec) -> Result<(), StoreError> {
        let (batch, json) = (spec.batch.clone(), encode_json(spec, "job spec")?);
        self.with(move |db| {
            db.execute(
                "INSERT INTO job_specs (batch, spec) VALUES (?1, ?2)
                 ON CONFLICT (batch) DO UPDATE SET spec = excluded.spec",
                params![batch, json],
            )?;
            Ok(())
        })
        .await
    }

    async fn job_spec(&self, batch: &str) -> Result<Option<JobSpec>, StoreError> {
        let batch = batch.to_owned();
        let key = batch.clone();
        let json: Option<String> = self
            .with(move |db| {
                Ok(db
                    .query_row(
                        "SELECT spec FROM job_specs WHERE batch = ?1",
                        params![key],
                        |row| row.get(0),
                    )
                    .optional()?)
            })
            .await?;
        json.map(|json| decode_json(&json, &format!("job spec of {batch}")))
            .transpose()
    }

    async fn remove_job_spec(&self, batch: &str) -> Result<(), StoreError> {
        let batch = batch.to_owned();
        self.with(move |db| {
            db.execute("DELETE FROM job_specs WHERE batch = ?1", params![batch])?;
            Ok(())
        })
        .await
    }
}
