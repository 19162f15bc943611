//! The tenants the scheduler serves, each with its own view of the state store, and what their
//! passes count against (ARCHITECTURE.md, "Many batches at once").

use std::sync::Arc;

use mailfleet_shared::lifecycle::PassKind;
use mailfleet_shared::state::{EndpointRecord, StateStore};
use mailfleet_shared::tenancy::{DEFAULT_TENANT, TenantRecord};

use crate::run::slots::{Claim, Limit};

/// A tenant without a quota weighs as much as a tenant allowed this many users in sync (the
/// default `max_concurrent_migrations` of an endpoint): tenants share free slots in proportion
/// to their quotas.
const UNLIMITED_TENANT_WEIGHT: usize = 20;

pub struct Tenant {
    pub name: String,
    /// Users in sync at once across the tenant's batches; `None`: the endpoints' limits only.
    pub max_concurrent_migrations: Option<usize>,
    /// The tenant's endpoints, batches and users, and nobody else's.
    pub state: Arc<dyn StateStore>,
}

impl Tenant {
    /// The single tenant of an installation without tenants: the whole state store.
    pub fn default_of(state: Arc<dyn StateStore>) -> Self {
        Tenant {
            name: DEFAULT_TENANT.to_owned(),
            max_concurrent_migrations: None,
            state,
        }
    }

    pub fn of(record: &TenantRecord, state: Arc<dyn StateStore>) -> Self {
        Tenant {
            name: record.name.clone(),
            max_concurrent_migrations: record.max_concurrent_migrations,
            state,
        }
    }

    /// What a pass of `kind` between `endpoints` counts against: each endpoint's
    /// max_concurrent_migrations, after the initial pass also its
    /// max_concurrent_incremental_syncs, and the tenant's quota.
    pub fn claim(&self, endpoints: &[&EndpointRecord], kind: PassKind) -> Claim {
        let mut limits = Vec::new();
        for endpoint in endpoints {
            let migrations = Limit::Migrations {
                tenant: self.name.clone(),
                endpoint: endpoint.name.clone(),
            };
            limits.push((migrations, endpoint.max_concurrent_migrations));
            if kind != PassKind::Initial {
                let incremental = Limit::IncrementalSyncs {
                    tenant: self.name.clone(),
                    endpoint: endpoint.name.clone(),
                };
                limits.push((incremental, endpoint.max_concurrent_incremental_syncs));
            }
        }
        if let Some(quota) = self.max_concurrent_migrations {
            let tenant = Limit::Tenant {
                tenant: self.name.clone(),
            };
            limits.push((tenant, quota));
        }
        // A batch from an endpoint into itself counts once against it.
        limits.sort();
        limits.dedup_by(|a, b| a.0 == b.0);
        Claim {
            tenant: self.name.clone(),
            weight: self
                .max_concurrent_migrations
                .unwrap_or(UNLIMITED_TENANT_WEIGHT),
            limits,
        }
    }
}
