//! Per-tenant secret keys (ARCHITECTURE.md, "Tenants"): the credentials of every tenant but the
//! default one are sealed under a key of the tenant's own, derived from the master key and a
//! random salt the tenant got at creation (HKDF-SHA256). The salt is itself a credential (scope
//! `tenant-key:NAME`, sealed under the master key), so every worker that can open credentials
//! can derive the key — and once the tenant is removed with its salt, its secrets stay sealed
//! for good, wherever a copy of them survived.
//!
//! [`TenantKeys`] wraps the credential store every process uses: a scope made by
//! `tenant_scope` picks the key, so callers never handle keys; the default tenant's scopes are
//! sealed as before (an installation from before tenants keeps its secrets).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::tenancy::{DEFAULT_TENANT, scope_tenant, tenant_scope};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::SecretBox;

/// Bytes of a tenant's salt.
const SALT_LEN: usize = 32;

/// Where a tenant's salt is kept.
pub fn tenant_key_id(tenant: &str) -> CredentialId {
    CredentialId {
        scope: format!("tenant-key:{tenant}"),
        name: "salt".to_owned(),
    }
}

/// A credential store that seals each tenant's secrets under the tenant's own key.
pub struct TenantKeys {
    inner: Arc<dyn CredentialStore>,
    master: SecretBox,
}

impl TenantKeys {
    /// `inner` seals everything under `master` (the key it was opened with); this seals a
    /// tenant's secrets once more under the tenant's key before they reach it.
    pub fn new(inner: Arc<dyn CredentialStore>, master: SecretBox) -> TenantKeys {
        TenantKeys { inner, master }
    }

    /// Gives `tenant` its key (a fresh random salt), unless it has one: at tenant creation,
    /// before anything of the tenant's is sealed.
    pub async fn create_key(&self, tenant: &str) -> Result<(), StoreError> {
        let id = tenant_key_id(tenant);
        if self.inner.get(&id).await?.is_some() {
            return Ok(());
        }
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill_bytes(&mut salt);
        self.inner
            .put(&id, &SecretString::from(STANDARD.encode(salt)))
            .await
    }

    /// Forgets `tenant`'s key: whatever was sealed under it cannot be opened any more.
    pub async fn remove_key(&self, tenant: &str) -> Result<(), StoreError> {
        self.inner.remove_scope(&tenant_key_id(tenant).scope).await
    }

    /// The box of `tenant`'s key; an error when the tenant has none (never created, or removed).
    async fn tenant_box(&self, tenant: &str) -> Result<SecretBox, StoreError> {
        let salt = self
            .inner
            .get(&tenant_key_id(tenant))
            .await?
            .ok_or_else(|| {
                StoreError::not_found(format!(
                    "tenant {tenant} has no secret key (was the tenant removed?)"
                ))
            })?;
        let salt = STANDARD
            .decode(salt.expose_secret())
            .map_err(|_| StoreError::corrupt(format!("the secret key salt of tenant {tenant}")))?;
        Ok(self.master.derive(&salt, tenant))
    }
}

#[async_trait]
impl CredentialStore for TenantKeys {
    async fn put(&self, id: &CredentialId, secret: &SecretString) -> Result<(), StoreError> {
        match scope_tenant(&id.scope) {
            (DEFAULT_TENANT, _) => self.inner.put(id, secret).await,
            (tenant, _) => {
                let sealed = self.tenant_box(tenant).await?.seal(secret);
                self.inner.put(id, &SecretString::from(sealed)).await
            }
        }
    }

    async fn get(&self, id: &CredentialId) -> Result<Option<SecretString>, StoreError> {
        match scope_tenant(&id.scope) {
            (DEFAULT_TENANT, _) => self.inner.get(id).await,
            (tenant, _) => match self.inner.get(id).await? {
                None => Ok(None),
                Some(sealed) => {
                    let tenant_box = self.tenant_box(tenant).await?;
                    tenant_box
                        .open_credential(id, sealed.expose_secret())
                        .map(Some)
                }
            },
        }
    }

    async fn remove_scope(&self, scope: &str) -> Result<(), StoreError> {
        self.inner.remove_scope(scope).await
    }
}

/// One tenant's view of the credential store: the scopes its callers name (`endpoint:NAME`,
/// `batch:NAME`) become the tenant's (`tenant_scope`), so commands and handlers written for
/// one tenant need no change to work for any; a scope of another tenant is refused.
pub struct TenantCredentials {
    inner: Arc<dyn CredentialStore>,
    tenant: String,
}

impl TenantCredentials {
    /// `inner` should be a [`TenantKeys`], so the tenant's secrets get its key.
    pub fn new(inner: Arc<dyn CredentialStore>, tenant: &str) -> TenantCredentials {
        TenantCredentials {
            inner,
            tenant: tenant.to_owned(),
        }
    }

    /// `scope` as the tenant's: already its own (a job spec's batch scope) or made so.
    fn scope(&self, scope: &str) -> Result<String, StoreError> {
        match scope_tenant(scope) {
            (DEFAULT_TENANT, _) => Ok(tenant_scope(&self.tenant, scope)),
            (owner, _) if owner == self.tenant => Ok(scope.to_owned()),
            (owner, _) => Err(StoreError::invalid(format!(
                "scope of tenant {owner} used in tenant {}",
                self.tenant
            ))),
        }
    }

    fn id(&self, id: &CredentialId) -> Result<CredentialId, StoreError> {
        Ok(CredentialId {
            scope: self.scope(&id.scope)?,
            name: id.name.clone(),
        })
    }
}

#[async_trait]
impl CredentialStore for TenantCredentials {
    async fn put(&self, id: &CredentialId, secret: &SecretString) -> Result<(), StoreError> {
        self.inner.put(&self.id(id)?, secret).await
    }

    async fn get(&self, id: &CredentialId) -> Result<Option<SecretString>, StoreError> {
        self.inner.get(&self.id(id)?).await
    }

    async fn remove_scope(&self, scope: &str) -> Result<(), StoreError> {
        self.inner.remove_scope(&self.scope(scope)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    /// Two tenants' same-named endpoints hold distinct secrets under distinct keys; the
    /// default tenant's stay where and as they were; a removed tenant's cannot be opened.
    #[tokio::test]
    async fn each_tenant_seals_under_its_own_key_and_loses_it_with_the_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let master = SecretBox::from_key_bytes(&[5u8; 32]).unwrap();
        let raw = Arc::new(SqliteStore::open(dir.path(), master.clone()).unwrap());
        let keys = Arc::new(TenantKeys::new(raw.clone(), master.clone()));
        keys.create_key("acme").await.unwrap();
        keys.create_key("globex").await.unwrap();
        let view = |tenant: &str| TenantCredentials::new(keys.clone(), tenant);
        let id = CredentialId {
            scope: "endpoint:old".into(),
            name: "admin".into(),
        };
        view("acme").put(&id, &secret("acme-pw")).await.unwrap();
        view("globex").put(&id, &secret("globex-pw")).await.unwrap();
        view(DEFAULT_TENANT)
            .put(&id, &secret("default-pw"))
            .await
            .unwrap();
        let read = |tenant: &'static str| {
            let view = view(tenant);
            let id = id.clone();
            async move {
                view.get(&id)
                    .await
                    .map(|s| s.map(|s| s.expose_secret().to_owned()))
            }
        };
        assert_eq!(read("acme").await.unwrap().as_deref(), Some("acme-pw"));
        assert_eq!(read("globex").await.unwrap().as_deref(), Some("globex-pw"));
        assert_eq!(
            read(DEFAULT_TENANT).await.unwrap().as_deref(),
            Some("default-pw")
        );
        // The default tenant's secret is where it always was, under the master key alone.
        let plain = raw.get(&id).await.unwrap().unwrap();
        assert_eq!(plain.expose_secret(), "default-pw");
        // A tenant's is sealed once more: the master key alone does not open it.
        let acme_id = CredentialId {
            scope: tenant_scope("acme", "endpoint:old"),
            ..id.clone()
        };
        let doubly = raw.get(&acme_id).await.unwrap().unwrap();
        assert!(!doubly.expose_secret().contains("acme-pw"));
        assert!(master.open(doubly.expose_secret()).is_err());
        // Another tenant's scope is refused, not reached.
        assert!(view("globex").get(&acme_id).await.is_err());

        keys.remove_key("acme").await.unwrap();
        assert!(
            read("acme").await.is_err(),
            "opened after its key was removed"
        );
        assert!(view("acme").put(&id, &secret("x")).await.is_err());
        keys.create_key("acme").await.unwrap();
        assert!(
            read("acme").await.is_err(),
            "a tenant created again under the name gets a new key"
        );
        assert_eq!(read("globex").await.unwrap().as_deref(), Some("globex-pw"));
    }
}
