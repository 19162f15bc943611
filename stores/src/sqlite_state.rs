//! The state store in SQLite: endpoints, batches and users in `state.db` beside the embedded
//! checkpoints. Records are JSON documents keyed by name — the domain types evolve without a
//! schema migration per field. The only queries inside them are a user's state and items,
//! as generated columns with indexes, for a page of the API's users list and a batch's
//! counts. Batches and users carry a row version in a column of its own; reads put it into
//! the record, writes compare it (`UPDATE … WHERE version = ?`).
//!
//! Several processes share the file (the service, `batch` commands, `report`): WAL mode and a
//! busy timeout make their writes wait for each other instead of failing.
//!
//! Every row belongs to a tenant (ARCHITECTURE.md, "Tenants"): a store handle is scoped to one
//! ([`SqliteStateStore::open`] to the default tenant, `tenant_state` to any other) and every
//! query names it, so names are unique per tenant and no handle reaches another tenant's rows.
//! Tenants, tokens and the audit log live in `sqlite_control`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mailfleet_shared::lifecycle::{BatchRecord, UserRecord};
use mailfleet_shared::state::{ChangedUser, EndpointRecord, StateStore};
use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::tenancy::{DEFAULT_TENANT, TenantRecord};
use mailfleet_shared::user_query::{self, StateTally, UserPage, UserQuery};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoresError, decode_json, encode_json, sqlite_error as sql};
use crate::sqlite::open_connection;
use crate::tally_row::TallyRow;
use crate::user_page_sql::{Bind, Dialect, user_page_sql};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS endpoints (
    tenant TEXT NOT NULL DEFAULT 'default',
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS batches (
    tenant TEXT NOT NULL DEFAULT 'default',
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS batch_users (
    tenant TEXT NOT NULL DEFAULT 'default',
    batch TEXT NOT NULL,
    position INTEGER NOT NULL,
    email TEXT NOT NULL,
    record TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    changed INTEGER NOT NULL DEFAULT 0,
    state TEXT GENERATED ALWAYS AS (json_extract(record, '$.state')) VIRTUAL,
    items_synced INTEGER GENERATED ALWAYS AS (json_extract(record, '$.items_synced')) VIRTUAL,
    items_skipped INTEGER GENERATED ALWAYS AS (json_extract(record, '$.items_skipped')) VIRTUAL,
    PRIMARY KEY (tenant, batch, email)
);
CREATE TABLE IF NOT EXISTS user_change_counter (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    last INTEGER NOT NULL
);
INSERT OR IGNORE INTO user_change_counter (id, last) VALUES (0, 0);
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    tenant TEXT,
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit (tenant, id);
";

/// The users' columns the API's list filters and sorts on, generated from the record (so no
/// write names them): tables from before them get them added.
const GENERATED_USER_COLUMNS: [(&str, &str); 3] = [
    (
        "state",
        "TEXT GENERATED ALWAYS AS (json_extract(record, '$.state')) VIRTUAL",
    ),
    (
        "items_synced",
        "INTEGER GENERATED ALWAYS AS (json_extract(record, '$.items_synced')) VIRTUAL",
    ),
    (
        "items_skipped",
        "INTEGER GENERATED ALWAYS AS (json_extract(record, '$.items_skipped')) VIRTUAL",
    ),
];

/// The indexes behind a page of users and a batch's counts (`user_page_sql`): by state in
/// address order (the state filter); by state in CSV order with the items, which also
/// answers the counts without decoding a record; by items, with the state for the filter.
const USER_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS batch_users_by_state
    ON batch_users (tenant, batch, state, email);
CREATE INDEX IF NOT EXISTS batch_users_by_state_position
    ON batch_users (tenant, batch, state, position, items_synced, items_skipped);
CREATE INDEX IF NOT EXISTS batch_users_by_items_synced
    ON batch_users (tenant, batch, items_synced, position, state);
CREATE INDEX IF NOT EXISTS batch_users_by_items_skipped
    ON batch_users (tenant, batch, items_skipped, position, state);
CREATE INDEX IF NOT EXISTS batch_users_by_change
    ON batch_users (tenant, batch, changed);
";

/// Tables written before records were versioned lack the column; their rows start at 1.
const VERSIONED_TABLES: [&str; 2] = ["batches", "batch_users"];

/// The tables keyed by name alone before tenants existed, with the columns copied over when
/// they are rebuilt keyed by tenant and name.
const UNTENANTED_TABLES: [(&str, &str); 3] = [
    ("endpoints", "name, record"),
    ("batches", "name, record, version"),
    ("batch_users", "batch, position, email, record, version"),
];

#[derive(Clone)]
pub struct SqliteStateStore {
    pub(crate) connection: Arc<Mutex<Connection>>,
    /// Whose rows this handle reads and writes.
    pub(crate) tenant: Arc<str>,
}

impl SqliteStateStore {
    /// Opens (creating or migrating if needed) the state tables in `state_dir/state.db`; the
    /// handle sees the default tenant's records.
    pub fn open(state_dir: &Path) -> Result<Self, StoresError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoresError::Io {
            path: state_dir.display().to_string(),
            source,
        })?;
        let mut connection = open_connection(&state_dir.join("state.db"))?;
        migrate(&mut connection)?;
        Ok(SqliteStateStore {
            connection: Arc::new(Mutex::new(connection)),
            tenant: Arc::from(DEFAULT_TENANT),
        })
    }

    /// The same database, seeing only `tenant`'s records.
    pub fn scoped_to(&self, tenant: &str) -> SqliteStateStore {
        SqliteStateStore {
            connection: self.connection.clone(),
            tenant: Arc::from(tenant),
        }
    }

    /// Runs `work` on the blocking pool with the connection and this handle's tenant.
    pub(crate) async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        let tenant = self.tenant.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut guard, &tenant)
        })
        .await
        .map_err(|e| StoreError::from(StoresError::from(e)))?
    }
}

/// Brings any earlier schema up to date, in one write transaction so that processes opening
/// the file at once migrate it once.
fn migrate(db: &mut Connection) -> Result<(), StoresError> {
    let transaction = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction.execute_batch(SCHEMA)?;
    add_version_columns(&transaction)?;
    add_generated_user_columns(&transaction)?;
    if !has_column(&transaction, "batch_users", "changed")? {
        // Users written before changes were numbered count as change 0, seen by every reader.
        transaction.execute_batch(
            "ALTER TABLE batch_users ADD COLUMN changed INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    if !has_column(&transaction, "endpoints", "tenant")? {
        add_tenant_keys(&transaction)?;
    }
    transaction.execute_batch(USER_INDEXES)?;
    transaction.execute(
        "INSERT OR IGNORE INTO tenants (name, record) VALUES (?1, ?2)",
        params![DEFAULT_TENANT, default_tenant_record()],
    )?;
    transaction.commit()?;
    Ok(())
}

/// The default tenant always exists: every record from before tenants is its own.
fn default_tenant_record() -> String {
    let record = TenantRecord {
        name: DEFAULT_TENANT.to_owned(),
        max_concurrent_migrations: None,
        max_users: None,
        created_at: chrono::Utc::now(),
    };
    serde_json::to_string(&record).expect("a tenant record is plain data")
}

/// Generated columns included (`table_xinfo`; `table_info` leaves them out).
fn has_column(db: &Connection, table: &str, column: &str) -> Result<bool, StoresError> {
    Ok(db.query_row(
        &format!("SELECT COUNT(*) > 0 FROM pragma_table_xinfo('{table}') WHERE name = ?1"),
        [column],
        |row| row.get(0),
    )?)
}

fn add_version_columns(db: &Connection) -> Result<(), StoresError> {
    for table in VERSIONED_TABLES {
        if !has_column(db, table, "version")? {
            db.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN version INTEGER NOT NULL DEFAULT 1"
            ))?;
        }
    }
    Ok(())
}

fn add_generated_user_columns(db: &Connection) -> Result<(), StoresError> {
    for (column, definition) in GENERATED_USER_COLUMNS {
        if !has_column(db, "batch_users", column)? {
            db.execute_batch(&format!(
                "ALTER TABLE batch_users ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// Rebuilds the tables of a file written before tenants, keyed by tenant and name; their rows
/// become the default tenant's. (SQLite cannot change a primary key in place.)
fn add_tenant_keys(db: &Connection) -> Result<(), StoresError> {
    for (table, _) in UNTENANTED_TABLES {
        db.execute_batch(&format!("ALTER TABLE {table} RENAME TO untenanted_{table}"))?;
    }
    db.execute_batch(SCHEMA)?;
    for (table, columns) in UNTENANTED_TABLES {
        db.execute_batch(&format!(
            "INSERT INTO {table} (tenant, {columns})
                 SELECT '{DEFAULT_TENANT}', {columns} FROM untenanted_{table};
             DROP TABLE untenanted_{table};"
        ))?;
    }
    Ok(())
}

/// The record with its row version put in (the column is the truth, not the stored text).
const VERSIONED_RECORD: &str = "json_set(record, '$.version', version)";

/// The tables that hold one JSON record per name.
#[derive(Clone, Copy)]
enum Table {
    Endpoints,
    Batches,
}

impl Table {
    fn get_sql(self) -> String {
        match self {
            Table::Endpoints => {
                "SELECT record FROM endpoints WHERE tenant = ?1 AND name = ?2".to_owned()
            }
            Table::Batches => {
                format!("SELECT {VERSIONED_RECORD} FROM batches WHERE tenant = ?1 AND name = ?2")
            }
        }
    }

    fn list_sql(self) -> String {
        match self {
            Table::Endpoints => {
                "SELECT record FROM endpoints WHERE tenant = ?1 ORDER BY name".to_owned()
            }
            Table::Batches => {
                format!("SELECT {VERSIONED_RECORD} FROM batches WHERE tenant = ?1 ORDER BY name")
            }
        }
    }
}

impl SqliteStateStore {
    /// The record stored under `name`, if any.
    async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let name = name.to_owned();
        self.with(move |db, tenant| one(db, &table.get_sql(), &[tenant, &name]))
            .await
    }

    /// Every record of the table, by name.
    async fn list<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
    ) -> Result<Vec<T>, StoreError> {
        self.with(move |db, tenant| all(db, &table.list_sql(), &[tenant]))
            .await
    }
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    encode_json(value, "state record")
}

/// A stored record; one that does not decode is `Corrupt`, named by `name` when known.
pub(crate) fn from_json<T: DeserializeOwned>(
    text: &str,
    name: Option<&str>,
) -> Result<T, StoreError> {
    match name {
        Some(name) => decode_json(text, &format!("state record {name}")),
        None => decode_json(text, "state record"),
    }
}

/// The one record `query` finds by `key` (the tenant, then the name).
fn one<T: DeserializeOwned>(
    db: &Connection,
    query: &str,
    key: &[&str; 2],
) -> Result<Option<T>, StoreError> {
    db.query_row(query, key, |row| row.get::<_, String>(0))
        .optional()
        .map_err(sql)?
        .map(|text| from_json(&text, Some(key[1])))
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

/// A user as written: its address, the version it was read at, and its record as JSON.
struct UserRow {
    email: String,
    version: u64,
    record: String,
}

fn user_rows(users: &[UserRecord]) -> Result<Vec<UserRow>, StoreError> {
    users
        .iter()
        .map(|user| {
            Ok(UserRow {
                email: user.email.clone(),
                version: user.version,
                record: to_json(user)?,
            })
        })
        .collect()
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        let (name, record) = (endpoint.name.clone(), to_json(endpoint)?);
        self.with(move |db, tenant| {
            db.execute(
                "INSERT OR REPLACE INTO endpoints (tenant, name, record) VALUES (?1, ?2, ?3)",
                params![tenant, name, record],
            )
            .map_err(sql)?;
            Ok(())
        })
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
        self.with(move |db, tenant| {
            db.execute(
                "DELETE FROM endpoints WHERE tenant = ?1 AND name = ?2",
                [tenant, &name],
            )
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
        let users = user_rows(users)?;
        self.with(move |db, tenant| {
            let transaction = write_transaction(db)?;
            let inserted = transaction
                .execute(
                    "INSERT OR IGNORE INTO batches (tenant, name, record, version)
                     VALUES (?1, ?2, ?3, 1)",
                    params![tenant, name, record],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::conflict(format!(
                    "a batch named {name} exists already"
                )));
            }
            let first_change = take_changes(&transaction, users.len())?;
            for ((position, user), change) in users.iter().enumerate().zip(first_change..) {
                insert_user(&transaction, tenant, &name, position as i64, change, user)?;
            }
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn put_batch(&self, batch: &mut BatchRecord) -> Result<(), StoreError> {
        let (name, read_at, record) = (batch.name.clone(), batch.version, to_json(batch)?);
        let stored_at = self
            .with(move |db, tenant| {
                let updated = db
                    .execute(
                        "UPDATE batches SET record = ?2, version = version + 1
                         WHERE tenant = ?4 AND name = ?1 AND version = ?3",
                        params![name, record, read_at, tenant],
                    )
                    .map_err(sql)?;
                if updated == 0 {
                    return Err(StoreError::conflict(format!(
                        "batch {name} was changed or removed since it was read at version {read_at}"
                    )));
                }
                Ok(read_at + 1)
            })
            .await?;
        batch.version = stored_at;
        Ok(())
    }

    async fn batch(&self, name: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.get(Table::Batches, name).await
    }

    async fn batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        self.list(Table::Batches).await
    }

    async fn remove_batch(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with(move |db, tenant| {
            let transaction = write_transaction(db)?;
            transaction
                .execute(
                    "DELETE FROM batch_users WHERE tenant = ?1 AND batch = ?2",
                    [tenant, &name],
                )
                .map_err(sql)?;
            transaction
                .execute(
                    "DELETE FROM batches WHERE tenant = ?1 AND name = ?2",
                    [tenant, &name],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn put_users(&self, batch: &str, users: &mut [UserRecord]) -> Result<(), StoreError> {
        let batch = batch.to_owned();
        let rows = user_rows(users)?;
        let stored_at = self
            .with(move |db, tenant| {
                let transaction = write_transaction(db)?;
                let exists = transaction
                    .query_row(
                        "SELECT 1 FROM batches WHERE tenant = ?1 AND name = ?2",
                        [tenant, &batch],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(sql)?;
                if exists.is_none() {
                    return Err(StoreError::not_found(format!(
                        "there is no batch named {batch}"
                    )));
                }
                let mut next: i64 = transaction
                    .query_row(
                        "SELECT COALESCE(MAX(position) + 1, 0) FROM batch_users
                         WHERE tenant = ?1 AND batch = ?2",
                        [tenant, &batch],
                        |row| row.get(0),
                    )
                    .map_err(sql)?;
                let first_change = take_changes(&transaction, rows.len())?;
                for (user, change) in rows.iter().zip(first_change..) {
                    if user.version == 0 {
                        insert_user(&transaction, tenant, &batch, next, change, user)?;
                        next += 1;
                    } else {
                        update_user(&transaction, tenant, &batch, change, user)?;
                    }
                }
                transaction.commit().map_err(sql)?;
                Ok(rows.iter().map(|user| user.version + 1).collect::<Vec<_>>())
            })
            .await?;
        for (user, version) in users.iter_mut().zip(stored_at) {
            user.version = version;
        }
        Ok(())
    }

    async fn users(&self, batch: &str) -> Result<Vec<UserRecord>, StoreError> {
        let batch = batch.to_owned();
        self.with(move |db, tenant| {
            all(
                db,
                &format!(
                    "SELECT {VERSIONED_RECORD} FROM batch_users
                     WHERE tenant = ?1 AND batch = ?2 ORDER BY position"
                ),
                &[tenant, &batch],
            )
        })
        .await
    }

    async fn user(&self, batch: &str, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let (batch, email) = (batch.to_owned(), email.to_owned());
        self.with(move |db, tenant| {
            // By key; then in any ASCII case (NOCASE folds ASCII only), which the key's index
            // cannot serve — a batch never holds one address in two cases, so either finds
            // the one user.
            for comparison in ["email = ?3", "email = ?3 COLLATE NOCASE"] {
                let found = db
                    .query_row(
                        &format!(
                            "SELECT {VERSIONED_RECORD} FROM batch_users
                             WHERE tenant = ?1 AND batch = ?2 AND {comparison}
                             ORDER BY position LIMIT 1"
                        ),
                        [tenant, &batch, &email],
                        |row| row.get::<_, String>(0),
                    )
                    .optional()
                    .map_err(sql)?;
                if let Some(text) = found {
                    return from_json(&text, Some(&email)).map(Some);
                }
            }
            Ok(None)
        })
        .await
    }

    async fn user_page(&self, batch: &str, query: &UserQuery) -> Result<UserPage, StoreError> {
        let (text, binds) = user_page_sql(Dialect::Sqlite, VERSIONED_RECORD, query);
        let batch = batch.to_owned();
        let rows = self
            .with(move |db, tenant| {
                let mut values = vec![Value::from(tenant.to_owned()), Value::from(batch)];
                values.extend(binds.into_iter().map(|bind| match bind {
                    Bind::Text(text) => Value::from(text),
                    Bind::Integer(number) => Value::from(number),
                }));
                let mut statement = db.prepare(&text).map_err(sql)?;
                let rows = statement
                    .query_map(rusqlite::params_from_iter(values), |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                    })
                    .map_err(sql)?;
                rows.map(|row| {
                    let (position, record) = row.map_err(sql)?;
                    // Positions are never negative (counted from 0).
                    Ok((position.unsigned_abs(), from_json(&record, None)?))
                })
                .collect()
            })
            .await?;
        Ok(user_query::page_of(rows, query))
    }

    async fn user_tally(&self, batch: &str) -> Result<Vec<StateTally>, StoreError> {
        let batch = batch.to_owned();
        self.with(move |db, tenant| {
            let mut statement = db
                .prepare(
                    "SELECT state, COUNT(*), SUM(items_synced), SUM(items_skipped)
                     FROM batch_users WHERE tenant = ?1 AND batch = ?2 GROUP BY state",
                )
                .map_err(sql)?;
            let rows = statement
                .query_map([tenant, &batch], |row| {
                    Ok(TallyRow {
                        state: row.get(0)?,
                        users: row.get(1)?,
                        items_synced: row.get(2)?,
                        items_skipped: row.get(3)?,
                    })
                })
                .map_err(sql)?;
            let rows = rows.collect::<Result<Vec<_>, _>>().map_err(sql)?;
            TallyRow::into_tallies(rows)
        })
        .await
    }

    async fn user_change_mark(&self, batch: &str) -> Result<u64, StoreError> {
        let batch = batch.to_owned();
        self.with(move |db, tenant| {
            let mark: i64 = db
                .query_row(
                    "SELECT COALESCE(MAX(changed), 0) FROM batch_users
                     WHERE tenant = ?1 AND batch = ?2",
                    [tenant, &batch],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            Ok(mark as u64)
        })
        .await
    }

    async fn users_changed_after(
        &self,
        batch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChangedUser>, StoreError> {
        let batch = batch.to_owned();
        self.with(move |db, tenant| {
            let mut statement = db
                .prepare(&format!(
                    "SELECT changed, {VERSIONED_RECORD} FROM batch_users
                     WHERE tenant = ?1 AND batch = ?2 AND changed > ?3
                     ORDER BY changed LIMIT ?4"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![tenant, batch, after as i64, limit as i64], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(sql)?;
            rows.map(|row| {
                let (change, record) = row.map_err(sql)?;
                Ok(ChangedUser {
                    change: change as u64,
                    user: from_json(&record, None)?,
                })
            })
            .collect()
        })
        .await
    }
}

/// Numbers `count` writes of users, in the write transaction that makes them: returns the
/// first of `count` change numbers larger than any given before (the counter is one row, so
/// it outlives removed batches; SQLite's single writer makes them commit-ordered).
fn take_changes(db: &Connection, count: usize) -> Result<i64, StoreError> {
    let last: i64 = db
        .query_row(
            "UPDATE user_change_counter SET last = last + ?1 WHERE id = 0 RETURNING last",
            [count as i64],
            |row| row.get(0),
        )
        .map_err(sql)?;
    Ok(last - count as i64 + 1)
}

/// Adds a new user at `position` (version 1); a conflict if the batch has the address already.
fn insert_user(
    db: &Connection,
    tenant: &str,
    batch: &str,
    position: i64,
    change: i64,
    user: &UserRow,
) -> Result<(), StoreError> {
    let inserted = db
        .execute(
            "INSERT OR IGNORE INTO batch_users
                 (tenant, batch, position, email, record, version, changed)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
            params![tenant, batch, position, user.email, user.record, change],
        )
        .map_err(sql)?;
    if inserted == 0 {
        return Err(StoreError::conflict(format!(
            "user {} is in batch {batch} already",
            user.email
        )));
    }
    Ok(())
}

/// Replaces a user still at the version it was read at.
fn update_user(
    db: &Connection,
    tenant: &str,
    batch: &str,
    change: i64,
    user: &UserRow,
) -> Result<(), StoreError> {
    let updated = db
        .execute(
            "UPDATE batch_users SET record = ?3, version = version + 1, changed = ?6
             WHERE tenant = ?5 AND batch = ?1 AND email = ?2 AND version = ?4",
            params![batch, user.email, user.record, user.version, tenant, change],
        )
        .map_err(sql)?;
    if updated == 0 {
        return Err(StoreError::conflict(format!(
            "user {} of batch {batch} was changed or removed since it was read at version {}",
            user.email, user.version
        )));
    }
    Ok(())
}

/// A transaction that takes the write lock at its start (BEGIN IMMEDIATE), waiting for it under
/// the busy timeout. A default (deferred) transaction that reads first and then writes cannot
/// wait: if another process (a `mailfleet batch` or `status` command beside the service)
/// wrote in between, SQLite fails the write at once with "database is locked". The lifecycle
/// test met exactly that once passes got short enough to overlap its status polling.
pub(crate) fn write_transaction(
    db: &mut Connection,
) -> Result<rusqlite::Transaction<'_>, StoreError> {
    db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)
}

#[cfg(test)]
mod tests {
    use mailfleet_shared::tenancy::ControlStore;

    use super::*;

    /// A `state.db` from before tenants: its rows become the default tenant's, names stay
    /// unique per tenant only.
    #[tokio::test]
    async fn records_from_before_tenants_become_the_default_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let old = Connection::open(dir.path().join("state.db")).unwrap();
        old.execute_batch(
            "CREATE TABLE endpoints (name TEXT PRIMARY KEY, record TEXT NOT NULL);
             CREATE TABLE batches (name TEXT PRIMARY KEY, record TEXT NOT NULL,
                                   version INTEGER NOT NULL DEFAULT 1);
             CREATE TABLE batch_users (batch TEXT NOT NULL, position INTEGER NOT NULL,
                                       email TEXT NOT NULL, record TEXT NOT NULL,
                                       PRIMARY KEY (batch, email));",
        )
        .unwrap();
        let batch = crate::contract::state_store::new_batch("q3");
        let user = UserRecord::queued("a@example.com", "a", None);
        old.execute(
            "INSERT INTO batches (name, record, version) VALUES ('q3', ?1, 4)",
            [serde_json::to_string(&batch).unwrap()],
        )
        .unwrap();
        old.execute(
            "INSERT INTO batch_users (batch, position, email, record) VALUES ('q3', 0, ?1, ?2)",
            [&user.email, &serde_json::to_string(&user).unwrap()],
        )
        .unwrap();
        drop(old);

        let store = SqliteStateStore::open(dir.path()).unwrap();
        assert_eq!(store.batch("q3").await.unwrap().unwrap().version, 4);
        let users = store.users("q3").await.unwrap();
        assert_eq!(
            (users[0].email.as_str(), users[0].version),
            ("a@example.com", 1)
        );
        let other = store.tenant_state("acme");
        assert!(other.batch("q3").await.unwrap().is_none());
        other.create_batch(&batch, &[]).await.unwrap();
        let reopened = SqliteStateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.batches().await.unwrap().len(), 1);
    }
}
