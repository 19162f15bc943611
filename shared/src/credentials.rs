//! Where workers find passwords: queue messages carry ids, never secrets (ARCHITECTURE.md, "From a
//! CSV row to an APPEND").
//!
//! Backends store only ciphertext sealed with AES-256-GCM (see `mailfleet_stores::crypto`), so a
//! copy of the state database or of Redis reveals no password.

use async_trait::async_trait;
use secrecy::SecretString;

use crate::store_error::StoreError;

/// Identifies one secret: the login password of a CSV row, an endpoint's admin password or its
/// OAuth2 provider secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialId {
    pub scope: String,
    /// e.g. `user:alice@example.com`, `source-admin`, `target-admin`, `target-oauth2`.
    pub name: String,
}

impl CredentialId {
    pub fn user(scope: &str, email: &str) -> Self {
        Self {
            scope: scope.to_owned(),
            name: format!("user:{email}"),
        }
    }
    pub fn source_admin(scope: &str) -> Self {
        Self {
            scope: scope.to_owned(),
            name: "source-admin".to_owned(),
        }
    }
    pub fn target_admin(scope: &str) -> Self {
        Self {
            scope: scope.to_owned(),
            name: "target-admin".to_owned(),
        }
    }
    /// The OAuth2 provider secret of an endpoint (client secret, certificate PEM with its key,
    /// service-account JSON key); `side` is `source` or `target`.
    pub fn oauth2(scope: &str, side: &str) -> Self {
        Self {
            scope: scope.to_owned(),
            name: format!("{side}-oauth2"),
        }
    }
}

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn put(&self, id: &CredentialId, secret: &SecretString) -> Result<(), StoreError>;
    /// `Ok(None)` when nothing is stored under `id`.
    async fn get(&self, id: &CredentialId) -> Result<Option<SecretString>, StoreError>;
    async fn remove_scope(&self, scope: &str) -> Result<(), StoreError>;
}
