//! The state store in PostgreSQL, for a fleet: several services and the `batch` commands of
//! several operators share one database instead of a state dir's SQLite file. The same shape
//! as [`SqliteStateStore`](crate::sqlite_state::SqliteStateStore) — each record a JSONB
//! document, so the domain types evolve without a migration per field — plus real columns for
//! what is looked up, ordered or compared (`migrations/postgres/`, applied at connect).
//!
//! Batches and users are versioned: a write is `UPDATE … WHERE version = $read`, so a writer
//! that read a record before another's write gets a conflict instead of undoing that write.
//! Records are read with their row version put in (`record || jsonb_build_object(…)`): the
//! column is the truth, not the document. Names are ordered by bytes (`COLLATE "C"`), as
//! SQLite orders them, whatever the database's collation.
//!
//! Every row belongs to a tenant (ARCHITECTURE.md, "Tenants"): a handle is scoped to one
//! ([`PostgresStateStore::connect`] to the default tenant, `tenant_state` to any other) and
//! every query names it. Tenants, tokens and the audit log live in `postgres_control`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mailfleet_shared::lifecycle::{BatchRecord, UserRecord};
use mailfleet_shared::state::{ChangedUser, EndpointRecord, StateStore};
use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::tenancy::DEFAULT_TENANT;
use mailfleet_shared::user_query::{self, StateTally, UserPage, UserQuery};
use serde::de::DeserializeOwned;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Connection};

use crate::error::StoresError;
use crate::tally_row::TallyRow;
use crate::user_page_sql::{Bind, Dialect, user_page_sql};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections one process keeps open: a service writes users as they finish while `batch`
/// commands and status reads come and go; more would only crowd a shared server.
const MAX_CONNECTIONS: u32 = 8;

/// How long a query waits for a free connection (or for the server to accept one).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The advisory lock key of the scheduler ("mailflee" in ASCII): one `mailfleet run` per
/// database schedules; others stand by.
const SCHEDULER_LOCK: i64 = 0x6d61_696c_666c_6565;

/// Held by the one `mailfleet run` scheduling the batches of a database: a session advisory
/// lock, gone with its connection — when the service ends, and when it is killed (the server
/// notices the closed socket), so a standby polling [`try_take`](SchedulerLock::try_take)
/// takes over.
pub struct SchedulerLock {
    session: PgConnection,
}

impl SchedulerLock {
    /// The lock on `url`'s database, or `None` while another service holds it.
    pub async fn try_take(url: &str) -> Result<Option<SchedulerLock>, StoresError> {
        let mut session = PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK)
            .fetch_one(&mut session)
            .await?;
        Ok(taken.then_some(SchedulerLock { session }))
    }

    /// Whether the server still sees this session holding the lock: `false` once the
    /// connection is lost (the server has let go of the lock, or will when it notices), so a
    /// leader cut off from its database stops scheduling before a standby starts.
    pub async fn is_held(&mut self) -> bool {
        // A bigint advisory key shows in pg_locks as its high half (classid) and low half (objid).
        let held = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
             AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
             AND ((classid::bigint << 32) | objid::bigint) = $1)",
        )
        .bind(SCHEDULER_LOCK)
        .fetch_one(&mut self.session);
        matches!(
            tokio::time::timeout(LOCK_CHECK_TIMEOUT, held).await,
            Ok(Ok(true))
        )
    }
}

/// How long a leader waits for the server to confirm its lock before it counts it lost.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct PostgresStateStore {
    pub(crate) pool: PgPool,
    /// Whose rows this handle reads and writes.
    tenant: Arc<str>,
}

impl PostgresStateStore {
    /// Connects to `url` (`postgres://user:password@host:5432/database`, TLS as its `sslmode`
    /// says) and brings the schema up to date. Services starting at once are safe: the
    /// migrator holds an advisory lock while it runs. The handle sees the default tenant's
    /// records.
    pub async fn connect(url: &str) -> Result<Self, StoresError> {
        // Plans made for each query's own values: a page, a filter or a search is planned
        // from what it asks for, where a prepared statement's generic plan (PostgreSQL's
        // choice after five runs) guesses, and walked 50,000 users for one search in ten.
        let options =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_custom_plan")]);
        // One plain connection first: a pool retries a refused connection until its acquire
        // timeout and then reports only that it timed out; this says why, at once.
        let mut first = PgConnection::connect_with(&options).await?;
        MIGRATOR.run(&mut first).await?;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PostgresStateStore {
            pool,
            tenant: Arc::from(DEFAULT_TENANT),
        })
    }

    /// The same database, seeing only `tenant`'s records.
    pub fn scoped_to(&self, tenant: &str) -> PostgresStateStore {
        PostgresStateStore {
            pool: self.pool.clone(),
            tenant: Arc::from(tenant),
        }
    }

    /// `ANALYZE batch_users`, so the planner knows a batch just created is large. Until it
    /// does (autovacuum may be minutes away, or off), it takes the batch for a handful of rows
    /// and reads every one of its users for a page: 400 ms instead of under 1 at 50,000 users
    /// (`loadtest bench api --state postgres`). A failure costs only speed, so it is logged.
    async fn refresh_statistics(&self) {
        if let Err(error) = sqlx::query("ANALYZE batch_users").execute(&self.pool).await {
            tracing::warn!(%error, "ANALYZE batch_users failed; pages of a new batch may be slow \
                until autovacuum analyzes the table");
        }
    }

    async fn one<T: DeserializeOwned + Send + Unpin + 'static>(
        &self,
        query: &'static str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let row: Option<Json<T>> = sqlx::query_scalar(query)
            .bind(&*self.tenant)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg)?;
        Ok(row.map(|Json(record)| record))
    }

    async fn all<T: DeserializeOwned + Send + Unpin + 'static>(
        &self,
        query: &'static str,
        key: Option<&str>,
    ) -> Result<Vec<T>, StoreError> {
        let mut query = sqlx::query_scalar::<_, Json<T>>(query).bind(&*self.tenant);
        if let Some(key) = key {
            query = query.bind(key);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(pg)?;
        Ok(rows.into_iter().map(|Json(record)| record).collect())
    }
}

pub(crate) fn pg(error: sqlx::Error) -> StoreError {
    StoresError::from(error).into()
}

/// Versions are `u64` in the records and `BIGINT` in the tables.
fn column(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version)
        .map_err(|_| StoreError::invalid(format!("row version {version} out of range")))
}

#[async_trait]
impl StateStore for PostgresStateStore {
    async fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO endpoints (tenant, name, record) VALUES ($1, $2, $3)
             ON CONFLICT (tenant, name) DO UPDATE SET record = EXCLUDED.record",
        )
        .bind(&*self.tenant)
        .bind(&endpoint.name)
        .bind(Json(endpoint))
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn endpoint(&self, name: &str) -> Result<Option<EndpointRecord>, StoreError> {
        self.one(
            "SELECT record FROM endpoints WHERE tenant = $1 AND name = $2",
            name,
        )
        .await
    }

    async fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        self.all(
            "SELECT record FROM endpoints WHERE tenant = $1 ORDER BY name COLLATE \"C\"",
            None,
        )
        .await
    }

    async fn remove_endpoint(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM endpoints WHERE tenant = $1 AND name = $2")
            .bind(&*self.tenant)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn create_batch(
        &self,
        batch: &BatchRecord,
        users: &[UserRecord],
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await.map_err(pg)?;
        let inserted = sqlx::query(
            "INSERT INTO batches (tenant, name, state, version, record) VALUES ($4, $1, $2, 1, $3)
             ON CONFLICT (tenant, name) DO NOTHING",
        )
        .bind(&batch.name)
        .bind(batch.state.to_string())
        .bind(Json(batch))
        .bind(&*self.tenant)
        .execute(&mut *transaction)
        .await
        .map_err(pg)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::conflict(format!(
                "a batch named {} exists already",
                batch.name
            )));
        }
        for (position, user) in (0..).zip(users) {
            insert_user(&mut transaction, &self.tenant, &batch.name, position, user).await?;
        }
        transaction.commit().await.map_err(pg)?;
        if users.len() >= ANALYZE_AFTER_USERS {
            self.refresh_statistics().await;
        }
        Ok(())
    }

    async fn put_batch(&self, batch: &mut BatchRecord) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE batches SET state = $2, record = $3, version = version + 1
             WHERE tenant = $5 AND name = $1 AND version = $4",
        )
        .bind(&batch.name)
        .bind(batch.state.to_string())
        .bind(Json(&*batch))
        .bind(column(batch.version)?)
        .bind(&*self.tenant)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::conflict(format!(
                "batch {} was changed or removed since it was read at version {}",
                batch.name, batch.version
            )));
        }
        batch.version += 1;
        Ok(())
    }

    async fn batch(&self, name: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.one(
            "SELECT record || jsonb_build_object('version', version) FROM batches
             WHERE tenant = $1 AND name = $2",
            name,
        )
        .await
    }

    async fn batches(&self) -> Result<Vec<BatchRecord>, StoreError> {
        self.all(
            "SELECT record || jsonb_build_object('version', version) FROM batches
             WHERE tenant = $1 ORDER BY name COLLATE \"C\"",
            None,
        )
        .await
    }

    async fn remove_batch(&self, name: &str) -> Result<(), StoreError> {
        // Its users go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM batches WHERE tenant = $1 AND name = $2")
            .bind(&*self.tenant)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn put_users(&self, batch: &str, users: &mut [UserRecord]) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await.map_err(pg)?;
        // Locking the batch's row makes writers of one batch's users take turns, so two that
        // add users never pick the same positions.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM batches WHERE tenant = $1 AND name = $2 FOR UPDATE")
                .bind(&*self.tenant)
                .bind(batch)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(pg)?;
        if exists.is_none() {
            return Err(StoreError::not_found(format!(
                "there is no batch named {batch}"
            )));
        }
        let mut next: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM batch_users
             WHERE tenant = $1 AND batch = $2",
        )
        .bind(&*self.tenant)
        .bind(batch)
        .fetch_one(&mut *transaction)
        .await
        .map_err(pg)?;
        for user in users.iter() {
            if user.version == 0 {
                insert_user(&mut transaction, &self.tenant, batch, next, user).await?;
                next += 1;
            } else {
                update_user(&mut transaction, &self.tenant, batch, user).await?;
            }
        }
        transaction.commit().await.map_err(pg)?;
        for user in users {
            user.version += 1;
        }
        Ok(())
    }

    async fn users(&self, batch: &str) -> Result<Vec<UserRecord>, StoreError> {
        self.all(
            "SELECT record || jsonb_build_object('version', version) FROM batch_users
             WHERE tenant = $1 AND batch = $2 ORDER BY position",
            Some(batch),
        )
        .await
    }

    async fn user(&self, batch: &str, email: &str) -> Result<Option<UserRecord>, StoreError> {
        // By key; then with ASCII letters folded (a scan of the batch's addresses) — a batch
        // never holds one address in two cases, so either finds the one user.
        let comparisons = [
            ("email = $3", email.to_owned()),
            (
                "translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') = $3",
                email.to_ascii_lowercase(),
            ),
        ];
        for (comparison, key) in comparisons {
            let found: Option<Json<UserRecord>> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT {VERSIONED_RECORD} FROM batch_users
                 WHERE tenant = $1 AND batch = $2 AND {comparison} ORDER BY position LIMIT 1"
            )))
            .bind(&*self.tenant)
            .bind(batch)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg)?;
            if let Some(Json(user)) = found {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    async fn user_page(&self, batch: &str, query: &UserQuery) -> Result<UserPage, StoreError> {
        let (text, binds) = user_page_sql(Dialect::Postgres, VERSIONED_RECORD, query);
        let mut select = sqlx::query_as::<_, (i32, Json<UserRecord>)>(AssertSqlSafe(text))
            .bind(&*self.tenant)
            .bind(batch);
        for bind in binds {
            select = match bind {
                Bind::Text(text) => select.bind(text),
                Bind::Integer(number) => select.bind(number),
            };
        }
        let rows = select.fetch_all(&self.pool).await.map_err(pg)?;
        // Positions are never negative (counted from 0).
        let rows = rows
            .into_iter()
            .map(|(position, Json(user))| (position.unsigned_abs().into(), user))
            .collect();
        Ok(user_query::page_of(rows, query))
    }

    async fn user_tally(&self, batch: &str) -> Result<Vec<StateTally>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            // Grouped in the order of the index batch_users_by_state_position (bytewise), which
            // then needs no sort: 47 ms instead of 128 over 50,000 users not yet vacuumed.
            "SELECT state COLLATE \"C\", COUNT(*), SUM(items_synced)::bigint,
                 SUM(items_skipped)::bigint
             FROM batch_users WHERE tenant = $1 AND batch = $2 GROUP BY state COLLATE \"C\"",
        )
        .bind(&*self.tenant)
        .bind(batch)
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        TallyRow::into_tallies(
            rows.into_iter()
                .map(|(state, users, items_synced, items_skipped)| TallyRow {
                    state,
                    users,
                    items_synced,
                    items_skipped,
                })
                .collect(),
        )
    }

    async fn user_change_mark(&self, batch: &str) -> Result<u64, StoreError> {
        let mark: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(changed), 0) FROM batch_users WHERE tenant = $1 AND batch = $2",
        )
        .bind(&*self.tenant)
        .bind(batch)
        .fetch_one(&self.pool)
        .await
        .map_err(pg)?;
        Ok(mark as u64)
    }

    async fn users_changed_after(
        &self,
        batch: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChangedUser>, StoreError> {
        let rows: Vec<(i64, Json<UserRecord>)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT changed, {VERSIONED_RECORD} FROM batch_users
             WHERE tenant = $1 AND batch = $2 AND changed > $3 ORDER BY changed LIMIT $4"
        )))
        .bind(&*self.tenant)
        .bind(batch)
        .bind(column(after)?)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        Ok(rows
            .into_iter()
            .map(|(change, Json(user))| ChangedUser {
                change: change as u64,
                user,
            })
            .collect())
    }
}

/// A batch created with at least this many users has the table's statistics refreshed
/// ([`PostgresStateStore::refresh_statistics`]); a smaller one is cheap to read in any plan.
const ANALYZE_AFTER_USERS: usize = 1_000;

/// A user's record with its row version put in (the column is the truth).
const VERSIONED_RECORD: &str = "record || jsonb_build_object('version', version)";

/// Adds a new user at `position` (version 1); a conflict if the batch has the address already.
async fn insert_user(
    db: &mut PgConnection,
    tenant: &str,
    batch: &str,
    position: i32,
    user: &UserRecord,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO batch_users (tenant, batch, email, position, state, version, record)
         VALUES ($6, $1, $2, $3, $4, 1, $5)
         ON CONFLICT (tenant, batch, email) DO NOTHING",
    )
    .bind(batch)
    .bind(&user.email)
    .bind(position)
    .bind(user.state.to_string())
    .bind(Json(user))
    .bind(tenant)
    .execute(db)
    .await
    .map_err(pg)?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::conflict(format!(
            "user {} is in batch {batch} already",
            user.email
        )));
    }
    Ok(())
}

/// Replaces a user still at the version it was read at.
async fn update_user(
    db: &mut PgConnection,
    tenant: &str,
    batch: &str,
    user: &UserRecord,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE batch_users SET state = $3, record = $4, version = version + 1,
                changed = nextval('batch_user_changes')
         WHERE tenant = $6 AND batch = $1 AND email = $2 AND version = $5",
    )
    .bind(batch)
    .bind(&user.email)
    .bind(user.state.to_string())
    .bind(Json(user))
    .bind(column(user.version)?)
    .bind(tenant)
    .execute(db)
    .await
    .map_err(pg)?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::conflict(format!(
            "user {} of batch {batch} was changed or removed since it was read at version {}",
            user.email, user.version
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::contract::control_store::control_store_contract;
    use crate::contract::state_store::state_store_contract;
    use mailfleet_shared::store_error::StoreErrorKind;
    use mailfleet_testkit::postgres::TestDatabase;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_state_keeps_the_contract() {
        let database = TestDatabase::create().await;
        // Two pools, as two processes of a fleet have.
        let store = Arc::new(PostgresStateStore::connect(database.url()).await.unwrap());
        let other = Arc::new(PostgresStateStore::connect(database.url()).await.unwrap());
        state_store_contract(store, other).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_control_keeps_the_contract() {
        let database = TestDatabase::create().await;
        let store = Arc::new(PostgresStateStore::connect(database.url()).await.unwrap());
        control_store_contract(store).await;
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_and_an_unknown_database_invalid() {
        let refused = PostgresStateStore::connect("postgres://postgres@127.0.0.1:1/none")
            .await
            .err()
            .map(StoreError::from)
            .expect("nothing listens on port 1");
        assert_eq!(refused.kind(), StoreErrorKind::Unavailable, "{refused}");
        let database = TestDatabase::create().await;
        let (server, _) = database.url().rsplit_once('/').unwrap();
        let unknown = PostgresStateStore::connect(&format!("{server}/mf_no_such_database"))
            .await
            .err()
            .map(StoreError::from)
            .expect("no such database");
        assert_eq!(unknown.kind(), StoreErrorKind::Invalid, "{unknown}");
        assert!(
            unknown.to_string().contains("mf_no_such_database"),
            "{unknown}"
        );
    }
}
