//! A token row as both control stores keep it (SQLite and PostgreSQL have the same columns:
//! `id, tenant, role, label, created_at, revoked_at, hash`), and its decoding into the record
//! and stored hash, in one place.

use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::tenancy::TokenRecord;

use crate::stored_time::parse_time;

/// A token row as stored, decoded after the query.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: String,
    pub tenant: Option<String>,
    pub role: String,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub hash: String,
}

impl TokenRow {
    /// The record and the stored hash; a role or time that does not read back is corrupt.
    pub fn decode(self) -> Result<(TokenRecord, String), StoreError> {
        let record = TokenRecord {
            role: self
                .role
                .parse()
                .map_err(|e| StoreError::corrupt(format!("token {}: {e}", self.id)))?,
            created_at: parse_time(&self.created_at)?,
            revoked_at: self.revoked_at.as_deref().map(parse_time).transpose()?,
            id: self.id,
            tenant: self.tenant,
            label: self.label,
        };
        Ok((record, self.hash))
    }
}
