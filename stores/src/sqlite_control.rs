//! Tenants, API tokens and the audit log in SQLite (ARCHITECTURE.md, "Tenants"), in the same
//! `state.db` as the tenants' records, so removing a tenant removes its records and tokens in
//! one transaction. Tokens are kept as the SHA-256 of their text, never the text.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailfleet_shared::state::StateStore;
use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::tenancy::{
    AuditEntry, ControlStore, DEFAULT_TENANT, DEFAULT_TENANT_STAYS, TenantRecord, TokenRecord,
};
use rusqlite::{OptionalExtension, Row, params};

use crate::error::sqlite_error as sql;
use crate::sqlite_state::{SqliteStateStore, from_json, to_json, write_transaction};
use crate::stored_time::{parse_time, time_text};
use crate::stored_token::TokenRow;

const TOKEN_COLUMNS: &str = "id, tenant, role, label, created_at, revoked_at, hash";

impl TokenRow {
    /// Reads a row of [`TOKEN_COLUMNS`].
    fn read(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
        Ok(TokenRow {
            id: row.get(0)?,
            tenant: row.get(1)?,
            role: row.get(2)?,
            label: row.get(3)?,
            created_at: row.get(4)?,
            revoked_at: row.get(5)?,
            hash: row.get(6)?,
        })
    }
}

#[async_trait]
impl ControlStore for SqliteStateStore {
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let (name, record) = (tenant.name.clone(), to_json(tenant)?);
        self.with(move |db, _| {
            let inserted = db
                .execute(
                    "INSERT OR IGNORE INTO tenants (name, record) VALUES (?1, ?2)",
                    params![name, record],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::conflict(format!(
                    "a tenant named {name} exists already"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn tenant(&self, name: &str) -> Result<Option<TenantRecord>, StoreError> {
        let name = name.to_owned();
        self.with(move |db, _| {
            db.query_row(
                "SELECT record FROM tenants WHERE name = ?1",
                [&name],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(sql)?
            .map(|text| from_json(&text, Some(&name)))
            .transpose()
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.with(|db, _| {
            let mut statement = db
                .prepare("SELECT record FROM tenants ORDER BY name")
                .map_err(sql)?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(sql)?;
            rows.map(|row| from_json(&row.map_err(sql)?, None))
                .collect()
        })
        .await
    }

    async fn remove_tenant(&self, name: &str) -> Result<bool, StoreError> {
        if name == DEFAULT_TENANT {
            return Err(StoreError::invalid(DEFAULT_TENANT_STAYS));
        }
        let name = name.to_owned();
        self.with(move |db, _| {
            let transaction = write_transaction(db)?;
            let mut removed = 0;
            for table in ["batch_users", "batches", "endpoints", "tokens"] {
                removed += transaction
                    .execute(&format!("DELETE FROM {table} WHERE tenant = ?1"), [&name])
                    .map_err(sql)?;
            }
            removed += transaction
                .execute("DELETE FROM tenants WHERE name = ?1", [&name])
                .map_err(sql)?;
            transaction.commit().map_err(sql)?;
            Ok(removed > 0)
        })
        .await
    }

    async fn create_token(&self, token: &TokenRecord, hash: &str) -> Result<(), StoreError> {
        let token = token.clone();
        let hash = hash.to_owned();
        self.with(move |db, _| {
            let inserted = db
                .execute(
                    &format!(
                        "INSERT OR IGNORE INTO tokens ({TOKEN_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ),
                    params![
                        token.id,
                        token.tenant,
                        token.role.as_str(),
                        token.label,
                        time_text(token.created_at),
                        token.revoked_at.map(time_text),
                        hash
                    ],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::conflict(format!(
                    "a token with id {} exists already",
                    token.id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn token(&self, id: &str) -> Result<Option<(TokenRecord, String)>, StoreError> {
        let id = id.to_owned();
        self.with(move |db, _| {
            db.query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?1"),
                [&id],
                TokenRow::read,
            )
            .optional()
            .map_err(sql)?
            .map(TokenRow::decode)
            .transpose()
        })
        .await
    }

    async fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let tenant = tenant.map(str::to_owned);
        self.with(move |db, _| {
            let mut statement = db
                .prepare(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens
                     WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at, id"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map([&tenant], TokenRow::read)
                .map_err(sql)?;
            rows.map(|row| Ok(row.map_err(sql)?.decode()?.0)).collect()
        })
        .await
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.with(move |db, _| {
            let found = db
                .execute(
                    "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                    params![id, time_text(at)],
                )
                .map_err(sql)?;
            Ok(found > 0)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.with(move |db, _| {
            db.execute(
                "INSERT INTO audit (at, tenant, actor, action, subject)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    time_text(entry.at),
                    entry.tenant,
                    entry.actor,
                    entry.action,
                    entry.subject
                ],
            )
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn audit(&self, tenant: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let tenant = tenant.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |db, _| {
            let mut statement = db
                .prepare(
                    "SELECT at, tenant, actor, action, subject FROM audit
                     WHERE tenant = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = statement
                .query_map(params![tenant, limit], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        AuditEntry {
                            at: DateTime::<Utc>::MIN_UTC,
                            tenant: row.get(1)?,
                            actor: row.get(2)?,
                            action: row.get(3)?,
                            subject: row.get(4)?,
                        },
                    ))
                })
                .map_err(sql)?;
            rows.map(|row| {
                let (at, entry) = row.map_err(sql)?;
                Ok(AuditEntry {
                    at: parse_time(&at)?,
                    ..entry
                })
            })
            .collect()
        })
        .await
    }

    fn tenant_state(&self, tenant: &str) -> Arc<dyn StateStore> {
        Arc::new(self.scoped_to(tenant))
    }
}
