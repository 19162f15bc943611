//! Tenants, API tokens and the audit log: what lets one mailfleet service run migrations for many
//! customers (ARCHITECTURE.md, "Tenants").
//!
//! A tenant owns endpoints, batches and their users; names are unique per tenant only. Every
//! read and write of a tenant's records goes through the [`StateStore`] that
//! [`ControlStore::tenant_state`] returns — scoped in the store layer, so an HTTP handler that
//! forgets a check still cannot reach another tenant's rows. The CLI works on
//! [`DEFAULT_TENANT`] unless told otherwise, so a single-customer installation never meets
//! tenants at all.
//!
//! An API token is shown once, at creation, as `mf_{id}_{secret}`; the store keeps only the id,
//! what the token may do and the SHA-256 of the whole text ([`token_hash`]). A token is found by
//! its id and accepted when the hash of what was presented matches — compared in constant time.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::StateStore;
use crate::store_error::StoreError;

/// The tenant of a single-customer installation, and of every record written before tenants
/// existed.
pub const DEFAULT_TENANT: &str = "default";

/// A customer of the service and its quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    /// Users of this tenant in a sync at once, across all its batches and endpoints; `None`:
    /// only the endpoints' own limits apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_migrations: Option<usize>,
    /// Users this tenant may have in all its batches together; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<usize>,
    pub created_at: DateTime<Utc>,
}

/// What a token may do. A provider token manages tenants and may act in any of them; the others
/// belong to one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything of its tenant, changes nothing.
    Viewer,
    /// Runs batches: create, start, stop, resume, complete, sync now.
    Operator,
    /// Also manages endpoints (their admin credentials) and the tenant's tokens.
    Admin,
    /// The hosting provider: tenants, and any tenant's resources.
    Provider,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Provider => "provider",
        }
    }

    /// Whether this role may do what `needed` may (roles are ordered by power).
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            "provider" => Ok(Role::Provider),
            other => Err(format!(
                "unknown role {other:?} (expected viewer, operator, admin or provider)"
            )),
        }
    }
}

/// A stored API token: never the token itself (see [`token_hash`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public, unique; shown in `token list` and in the audit log as the actor.
    pub id: String,
    /// `None` for a provider token.
    pub tenant: Option<String>,
    pub role: Role,
    /// What the operator called it (`token create --label`), for `token list`.
    #[serde(default)]
    pub label: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One change, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub tenant: String,
    /// The token id that made the change, or `cli` for a command run on the machine.
    pub actor: String,
    /// What was done, e.g. `batch.start`, `endpoint.create`, `token.revoke`.
    pub action: String,
    /// What it was done to, e.g. the batch's or endpoint's name, or a token id.
    pub subject: String,
}

/// The actor of changes made by commands run on the service's machine (no token).
pub const CLI_ACTOR: &str = "cli";

/// The part of the state store that is not per tenant: tenants, tokens, the audit log, and the
/// door to each tenant's records.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// An error of kind `Conflict` if the name is taken.
    async fn create_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError>;
    async fn tenant(&self, name: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// Every tenant by name; [`DEFAULT_TENANT`] always exists.
    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError>;
    /// Removes the tenant with its endpoints, batches, users and tokens (its audit entries
    /// stay, for the provider). Returns whether it existed. The default tenant cannot be
    /// removed (an `Invalid` error). Its sealed credentials are the caller's to remove
    /// ([`tenant_scope`]), before this: afterwards its batches and endpoints are not listed.
    async fn remove_tenant(&self, name: &str) -> Result<bool, StoreError>;

    /// Stores a new token with the SHA-256 ([`token_hash`]) of its text.
    async fn create_token(&self, token: &TokenRecord, hash: &str) -> Result<(), StoreError>;
    /// The token with this id and its stored hash.
    async fn token(&self, id: &str) -> Result<Option<(TokenRecord, String)>, StoreError>;
    /// Tokens of one tenant, or every token when `tenant` is `None`.
    async fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRecord>, StoreError>;
    /// Marks the token revoked (it stays listed); returns whether it existed.
    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// The tenant's audit entries, newest first, at most `limit`.
    async fn audit(&self, tenant: &str, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;

    /// The tenant's endpoints, batches and users — and nothing of any other tenant's.
    fn tenant_state(&self, tenant: &str) -> Arc<dyn StateStore>;
}

/// Whether `name` may name a tenant: 1 to 63 of lowercase ASCII letters, digits and `-`, not
/// starting with `-` — safe in credential scopes, Redis keys, URLs and file names alike.
pub fn check_tenant_name(name: &str) -> Result<(), String> {
    let fits = (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        Ok(())
    } else {
        Err(format!(
            "invalid tenant name {name:?}: use 1 to 63 lowercase letters, digits and '-'"
        ))
    }
}

/// The error of removing the default tenant.
pub const DEFAULT_TENANT_STAYS: &str = "the default tenant cannot be removed";

const TENANT_SCOPE_PREFIX: &str = "tenant:";

/// The credential (and checkpoint) scope of a tenant's `scope` (`endpoint:NAME`,
/// `batch:NAME`): the default tenant's scopes are today's, unchanged, so an installation
/// from before tenants keeps its secrets; another tenant's are `tenant:TENANT/SCOPE`, so two
/// tenants' same-named endpoints never share a secret.
pub fn tenant_scope(tenant: &str, scope: &str) -> String {
    if tenant == DEFAULT_TENANT {
        scope.to_owned()
    } else {
        format!("{TENANT_SCOPE_PREFIX}{tenant}/{scope}")
    }
}

/// The tenant a scope made by [`tenant_scope`] belongs to, and the scope within it.
pub fn scope_tenant(scope: &str) -> (&str, &str) {
    scope
        .strip_prefix(TENANT_SCOPE_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or((DEFAULT_TENANT, scope))
}

/// The prefix of every token text; lets secret scanners recognise a leaked one.
pub const TOKEN_PREFIX: &str = "mf_";

/// The token text handed out once: `mf_{id}_{secret}`.
pub fn token_text(id: &str, secret: &str) -> String {
    format!("{TOKEN_PREFIX}{id}_{secret}")
}

/// The id inside a presented token text, if it has the shape of one.
pub fn token_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some(id)
}

/// What the store keeps of a token: the lowercase hex SHA-256 of its whole text.
pub fn token_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `presented` hashes to `stored`, in time independent of where they differ.
pub fn token_matches(presented: &str, stored: &str) -> bool {
    let presented = token_hash(presented);
    presented.len() == stored.len()
        && presented
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_text_carries_its_id_and_matches_only_its_hash() {
        let text = token_text("k3f9a", "s3cr3t");
        assert_eq!(token_id(&text), Some("k3f9a"));
        let stored = token_hash(&text);
        assert!(token_matches(&text, &stored));
        assert!(!token_matches(&token_text("k3f9a", "other"), &stored));
        assert_eq!(token_id("Bearer nonsense"), None);
        assert_eq!(token_id("mf__secret"), None);
    }

    #[test]
    fn tenant_scopes_keep_the_default_tenants_and_name_the_others() {
        assert_eq!(tenant_scope(DEFAULT_TENANT, "batch:q3"), "batch:q3");
        let scoped = tenant_scope("acme", "batch:q3");
        assert_eq!(scoped, "tenant:acme/batch:q3");
        assert_eq!(scope_tenant(&scoped), ("acme", "batch:q3"));
        assert_eq!(scope_tenant("batch:q3"), (DEFAULT_TENANT, "batch:q3"));
        assert!(check_tenant_name("acme-2").is_ok());
        for bad in ["", "Acme", "a/b", "-x", "a:b", &"x".repeat(64)] {
            assert!(check_tenant_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(Role::Provider.allows(Role::Admin));
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
    }
}
