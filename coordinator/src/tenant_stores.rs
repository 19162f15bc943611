//! One tenant's stores: what the operations of the `endpoint`, `batch`, `report` and `verify`
//! commands work on, whether the command line or the HTTP API (`api/`) calls them — one
//! implementation, two front ends (ARCHITECTURE.md, "The service and its API").

use std::sync::Arc;

use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::state::{StateStore, batch_scope};
use mailfleet_shared::tenancy::{CLI_ACTOR, ControlStore, tenant_scope};
use mailfleet_stores::tenant_keys::TenantCredentials;

use crate::backends::{AdminStores, ProviderStores};
use crate::error::CliError;

#[derive(Clone)]
pub struct TenantStores {
    pub tenant: String,
    /// Only this tenant's endpoints, batches and users (`ControlStore::tenant_state`).
    pub state: Arc<dyn StateStore>,
    /// Sealed with this tenant's key, under its scopes.
    pub credentials: Arc<dyn CredentialStore>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// Tenants (quotas) and the audit log.
    pub control: Arc<dyn ControlStore>,
}

impl TenantStores {
    /// `tenant`'s stores out of every tenant's (the API: one tenant per request).
    pub fn of(provider: &ProviderStores, tenant: &str) -> Self {
        TenantStores {
            tenant: tenant.to_owned(),
            state: provider.control.tenant_state(tenant),
            credentials: Arc::new(TenantCredentials::new(provider.keys.clone(), tenant)),
            checkpoints: provider.checkpoints.clone(),
            control: provider.control.clone(),
        }
    }

    /// Removes batch `name` with everything kept for it: its sealed passwords, its users'
    /// checkpoints and maps of copies (a batch made later under the name starts afresh; what
    /// is on the target already is still found by fingerprint, ARCHITECTURE.md rule 1), then
    /// its records. Each step is repeatable, so a removal cut short is finished by another.
    pub async fn remove_batch(&self, name: &str) -> Result<(), CliError> {
        self.credentials.remove_scope(&batch_scope(name)).await?;
        let scope = tenant_scope(&self.tenant, &batch_scope(name));
        for user in self.state.users(name).await? {
            self.checkpoints.clear_user(&scope, &user.email).await?;
        }
        self.state.remove_batch(name).await?;
        Ok(())
    }

    /// Appends a change made by a command on the machine to the tenant's audit log.
    pub async fn audit_cli(&self, action: &str, subject: &str) -> Result<(), CliError> {
        crate::tenants::audit(
            self.control.as_ref(),
            &self.tenant,
            CLI_ACTOR,
            action,
            subject,
        )
        .await
    }
}

impl From<AdminStores> for TenantStores {
    /// The stores a command opens on the machine: the `--tenant`'s.
    fn from(stores: AdminStores) -> Self {
        TenantStores {
            tenant: stores.tenant,
            state: stores.state,
            credentials: stores.credentials,
            checkpoints: stores.checkpoints,
            control: stores.control,
        }
    }
}
