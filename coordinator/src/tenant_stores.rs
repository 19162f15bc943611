//! One tenant's stores: what the operations of the `endpoint`, `batch`, `report` and `verify`
//! commands work on, whether the command line or the HTTP API (`api/`) calls them — one
//! implementation, two front ends (ARCHITECTURE.md, "The service and its API").

use std::sync::Arc;

use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::state::StateStore;
use mailfleet_shared::tenancy::DEFAULT_TENANT;

use crate::backends::AdminStores;

#[derive(Clone)]
pub struct TenantStores {
    pub tenant: String,
    /// Only this tenant's endpoints, batches and users (`ControlStore::tenant_state`).
    pub state: Arc<dyn StateStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub checkpoints: Arc<dyn CheckpointStore>,
}

impl From<AdminStores> for TenantStores {
    /// The stores a command opens on the machine: the default tenant's.
    fn from(stores: AdminStores) -> Self {
        TenantStores {
            tenant: DEFAULT_TENANT.to_owned(),
            state: stores.state,
            credentials: stores.credentials,
            checkpoints: stores.checkpoints,
        }
    }
}
