//! The state store in SQLite: endpoints, batches and users in `state.db` beside the embedded
//! checkpoints. Records are JSON documents keyed by name — the domain types evolve without a
//! schema migration per field, and nothing queries inside them.
//!
//! Several processes share the file (the service, `batch` commands, `report`): WAL mode and a
//! busy timeout make their writes wait for each other instead of failing.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailfleet_shared::lifecycle::{BatchRecord, UserRecord};
use mailfleet_shared::state::{EndpointRecord, StateStore};
use mailfleet_shared::store_error::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoresError, decode_json, encode_json, sqlite_error as sql};
use crate::sqlite::open_connection;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_users (
    batch TEXT NOT NULL,
    position INTEGER NOT NULL,
    email TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (batch, email)
);
";

#[derive(Clone)]
pub struct SqliteStateStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStateStore {
    /// Opens (creating if needed) the state tables in `state_dir/state.db`.
    pub fn open(state_dir: &Path) -> Result<Self, StoresError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoresError::Io {
            path: state_dir.display().to_string(),
            source,
        })?;
        let connection = open_connection(&state_dir.join("state.db"))?;
        connection.execute_batch(SCHEMA)?;
        Ok(SqliteStateStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(|e| StoreError::from(StoresError::from(e)))?
    }
}

/// The tables that hold one JSON record per name.
#[derive(Clone, Copy)]
enum Table {
    Endpoints,
    Batches,
}

impl Table {
    fn upsert_sql(self) -> &'static str {
        match self {
            Table::Endpoints => "INSERT OR REPLACE INTO endpoints (name, record) VALUES (?1, ?2)",
            Table::Batches => "INSERT OR REPLACE INTO batches (name, record) VALUES (?1, ?2)",
        }
    }

    fn get_sql(self) -> &'static str {
        match self {
            Table::Endpoints => "SELECT record FROM endpoints WHERE name = ?1",
            Table::Batches => "SELECT record FROM batches WHERE name = ?1",
        }
    }

    fn list_sql(self) -> &'static str {
        match self {
            Table::Endpoints => "SELECT record FROM endpoints ORDER BY name",
            Table::Batches => "SELECT record FROM batches ORDER BY name",
        }
    }
}

impl SqliteStateStore {
    /// Inserts or replaces the record stored under `name`.
    async fn upsert(
        &self,
        table: Table,
        name: &str,
        record: &impl Serialize,
    ) -> Result<(), StoreError> {
        let (name, record) = (name.to_owned(), to_json(record)?);
        self.with(move |db| {
            db.execute(table.upsert_sql(), params![name, record])
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    /// The record stored under `name`, if any.
    async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let name = name.to_owned();
        self.with(move |db| one(db, table.get_sql(), &name)).await
    }

    /// Every record of the table, by name.
    async fn list<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
    ) -> Result<Vec<T>, StoreError> {
        self.with(move |db| all(db, table.list_sql(), &[])).await
    }
}

fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    encode_json(value, "state record")
}

/// A stored record; one that does not decode is `Corrupt`, named by `name` when known.
fn from_json<T: DeserializeOwned>(text: &str, name: Option<&str>) -> Result<T, StoreError> {
    match name {
        Some(name) => decode_json(text, &format!("state record {name}")),
        None => decode_json(text, "state record"),
    }
}

fn one<T: DeserializeOwned>(
    db: &Connection,
    query: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    db.query_row(query, [key], |row| row.get::<_, String>(0))
        .optional()
        .map_err(sql)?
        .map(|text| from_json(&text, Some(key)))
        .transpose()
}

fn all<T: DeserializeOwned>(
    db: &Connection,
    query: &str,
    key: &[&str],
) -> Result<Vec<T>, StoreError> {
    let mut statement = db.prepare(query).map_err(sql)?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(key), |row| {
            row.get::<_, String>(0)
        })
        .map_err(sql)?;
    rows.map(|row| from_json(&row.map_err(sql)?, None))
        .collect()
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        self.upsert(Table::Endpoints, &endpoint.name, endpoint)
            .await
    }

    async fn endpoint(&self, name: &str) -> Result<Option<EndpointRecord>, StoreError> {
        self.get(Table::Endpoints, name).await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.list(Table::Endpoints).await
    }

    async fn remove_endpoint(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with(move |db| {
            db.execute("DELETE FROM endpoints WHERE name = ?1", [name])
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn create_batch(
        &self,
        batch: &BatchRecord,
        users: &[UserRecord],
    ) -> Result<(), StoreError> {
        let name = batch.name.clone();
        let record = to_json(batch)?;
        let users = users
            .iter()
            .map(|u| Ok((u.email.clone(), to_json(u)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.with(move |db| {
            let transaction = write_transaction(db)?;
            let inserted = transaction
                .execute(
                    "INSERT OR IGNORE INTO batches (name, record) VALUES (?1, ?2)",
                    params![name, record],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::conflict(format!(
                    "a batch named {name} exists already"
                )));
            }
            insert_users(&transaction, &name, 0, &users)?;
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn put_batch(&self, batch: &BatchRecord) -> Result<(), StoreError> {
        self.upsert(Table::Batches, &batch.name, batch).await
    }

    async fn batch(&self, name: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.get(Table::Batches, name).await
    }

    async fn batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        self.list(Table::Batches).await
    }

    async fn remove_batch(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with(move |db| {
            let transaction = write_transaction(db)?;
            transaction
                .execute("DELETE FROM batch_users WHERE batch = ?1", [&name])
                .map_err(sql)?;
            transaction
                .execute("DELETE FROM batches WHERE name = ?1", [&name])
                .map_err(sql)?;
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn put_users(&self, batch: &str, users: &[UserRecord]) -> Result<(), StoreError> {
        let batch = batch.to_owned();
        let users = users
            .iter()
            .map(|u| Ok((u.email.clone(), to_json(u)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.with(move |db| {
            let transaction = write_transaction(db)?;
            let next: i64 = transaction
                .query_row(
                    "SELECT COALESCE(MAX(position) + 1, 0) FROM batch_users WHERE batch = ?1",
                    [&batch],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            insert_users(&transaction, &batch, next, &users)?;
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn users(&self, batch: &str) -> Result<Vec<UserRecord>, StoreError> {
        let batch = batch.to_owned();
        self.with(move |db| {
            all(
                db,
                "SELECT record FROM batch_users WHERE batch = ?1 ORDER BY position",
                &[&batch],
            )
        })
        .await
    }
}

/// Inserts new users at positions from `first`; a user already there keeps its position.
fn insert_users(
    db: &Connection,
    batch: &str,
    first: i64,
    users: &[(String, String)],
) -> Result<(), StoreError> {
    let mut statement = db
        .prepare(
            "INSERT INTO batch_users (batch, position, email, record) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (batch, email) DO UPDATE SET record = excluded.record",
        )
        .map_err(sql)?;
    for (offset, (email, record)) in users.iter().enumerate() {
        statement
            .execute(params![batch, first + offset as i64, email, record])
            .map_err(sql)?;
    }
    Ok(())
}

/// A transaction that takes the write lock at its start (BEGIN IMMEDIATE), waiting for it under
/// the busy timeout. A default (deferred) transaction that reads first and then writes cannot
/// wait: if another process (a `mailfleet batch` or `status` command beside the service)
/// wrote in between, SQLite fails the write at once with "database is locked". The lifecycle
/// test met exactly that once passes got short enough to overlap its status polling.
fn write_transaction(db: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use mailfleet_shared::endpoint::Endpoint;
    use mailfleet_shared::lifecycle::{BatchState, UserState};
    use mailfleet_shared::store_error::StoreErrorKind;

    fn batch(name: &str) -> BatchRecord {
        BatchRecord {
            name: name.into(),
            source_endpoint: "old".into(),
            target_endpoint: "new".into(),
            include_folders: vec![],
            exclude_folders: vec![],
            received_after: None,
            mirror_deletions: false,
            max_message_size: 10,
            notify: vec![],
            target_mx: None,
            policy: Default::default(),
            state: BatchState::Created,
            created_at: Utc::now(),
            start_after: None,
            complete_after: None,
            initial_sync_finished_at: None,
            last_sync_finished_at: None,
            next_sync_at: None,
            completion_deadline: None,
            finished_at: None,
        }
    }

    #[tokio::test]
    async fn batches_users_and_endpoints_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStateStore::open(dir.path()).unwrap();
        let endpoint = EndpointRecord {
            name: "old".into(),
            endpoint: Endpoint::from_url("imaps://imap.example.com:993").unwrap(),
            max_concurrent_migrations: 20,
            max_concurrent_incremental_syncs: 10,
        };
        store.put_endpoint(&endpoint).await.unwrap();
        assert_eq!(store.endpoint("old").await.unwrap(), Some(endpoint));

        let users = [
            UserRecord::queued("b@x.org", "b", None),
            UserRecord::queued("a@x.org", "a", None),
        ];
        store.create_batch(&batch("w1"), &users).await.unwrap();
        let error = store.create_batch(&batch("w1"), &[]).await.unwrap_err();
        assert_eq!(error.to_string(), "a batch named w1 exists already");
        assert_eq!(error.kind(), StoreErrorKind::Conflict);

        let mut updated = users[0].clone();
        updated.state = UserState::Synced;
        let added = UserRecord::queued("c@x.org", "c", None);
        store.put_users("w1", &[updated, added]).await.unwrap();
        let stored = store.users("w1").await.unwrap();
        let order: Vec<(&str, UserState)> =
            stored.iter().map(|u| (u.email.as_str(), u.state)).collect();
        assert_eq!(
            order,
            [
                ("b@x.org", UserState::Synced),
                ("a@x.org", UserState::Queued),
                ("c@x.org", UserState::Queued)
            ],
            "CSV order kept, updates in place, additions at the end"
        );

        store.remove_batch("w1").await.unwrap();
        assert!(store.batch("w1").await.unwrap().is_none());
        assert!(store.users("w1").await.unwrap().is_empty());
    }
}
