//! One tenant's stores: what the operations of the `endpoint`, `batch`, `report` and `verify`
//! commands work on, whether the command line or the HTTP API (`api/`) calls them — one
//! implementation, two front ends (ARCHITECTURE.md, "The service and its API").

use std::sync::Arc;

use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::state::StateStore;
use mailfleet_shared::tenancy::{CLI_ACTOR, ControlStore};
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
