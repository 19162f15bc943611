//! Tenants, API tokens and the audit log in PostgreSQL (ARCHITECTURE.md, "Tenants"), in the
//! same database as the tenants' records (`migrations/postgres/0002_tenants.sql`), so removing
//! a tenant removes its records and tokens in one transaction. Tokens are kept as the SHA-256 of
//! their text, never the text.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailfleet_shared::state::StateStore;
use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::tenancy::{
    AuditEntry, ControlStore, DEFAULT_TENANT, DEFAULT_TENANT_STAYS, TenantRecord, TokenRecord,
};
use sqlx::types::Json;

use crate::postgres_state::{PostgresStateStore, pg};
use crate::stored_time::{parse_time, time_text};
use crate::stored_token::TokenRow;

/// The columns of [`TokenRow`], spliced into queries (sqlx takes only static query text).
macro_rules! token_columns {
    () => {
        "id, tenant, role, label, created_at, revoked_at, hash"
    };
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: String,
    tenant: String,
    actor: String,
    action: String,
    subject: String,
}

#[async_trait]
impl ControlStore for PostgresStateStore {
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO tenants (name, record) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&tenant.name)
        .bind(Json(tenant))
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::conflict(format!(
                "a tenant named {} exists already",
                tenant.name
            )));
        }
        Ok(())
    }

    async fn tenant(&self, name: &str) -> Result<Option<TenantRecord>, StoreError> {
        let row: Option<Json<TenantRecord>> =
            sqlx::query_scalar("SELECT record FROM tenants WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(pg)?;
        Ok(row.map(|Json(record)| record))
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let rows: Vec<Json<TenantRecord>> =
            sqlx::query_scalar("SELECT record FROM tenants ORDER BY name COLLATE \"C\"")
                .fetch_all(&self.pool)
                .await
                .map_err(pg)?;
        Ok(rows.into_iter().map(|Json(record)| record).collect())
    }

    async fn remove_tenant(&self, name: &str) -> Result<bool, StoreError> {
        if name == DEFAULT_TENANT {
            return Err(StoreError::invalid(DEFAULT_TENANT_STAYS));
        }
        let mut transaction = self.pool.begin().await.map_err(pg)?;
        let mut removed = 0;
        // Users go with their batches (ON DELETE CASCADE).
        for query in [
            "DELETE FROM batches WHERE tenant = $1",
            "DELETE FROM endpoints WHERE tenant = $1",
            "DELETE FROM tokens WHERE tenant = $1",
        ] {
            removed += sqlx::query(query)
                .bind(name)
                .execute(&mut *transaction)
                .await
                .map_err(pg)?
                .rows_affected();
        }
        removed += sqlx::query("DELETE FROM tenants WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(pg)?
            .rows_affected();
        transaction.commit().await.map_err(pg)?;
        Ok(removed > 0)
    }

    async fn create_token(&self, token: &TokenRecord, hash: &str) -> Result<(), StoreError> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&token.id)
        .bind(&token.tenant)
        .bind(token.role.as_str())
        .bind(&token.label)
        .bind(time_text(token.created_at))
        .bind(token.revoked_at.map(time_text))
        .bind(hash)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::conflict(format!(
                "a token with id {} exists already",
                token.id
            )));
        }
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<(TokenRecord, String)>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg)?;
        row.map(TokenRow::decode).transpose()
    }

    async fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE $1::TEXT IS NULL OR tenant = $1
             ORDER BY created_at, id COLLATE \"C\""
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        rows.into_iter().map(|row| Ok(row.decode()?.0)).collect()
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let found =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(time_text(at))
                .execute(&self.pool)
                .await
                .map_err(pg)?;
        Ok(found.rows_affected() > 0)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, tenant, actor, action, subject) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(time_text(entry.at))
        .bind(&entry.tenant)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.subject)
        .execute(&self.pool)
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn audit(&self, tenant: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, tenant, actor, action, subject FROM audit
             WHERE tenant = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(pg)?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: parse_time(&row.at)?,
                    tenant: row.tenant,
                    actor: row.actor,
                    action: row.action,
                    subject: row.subject,
                })
            })
            .collect()
    }

    fn tenant_state(&self, tenant: &str) -> Arc<dyn StateStore> {
        Arc::new(self.scoped_to(tenant))
    }
}
