//! Named records of the state store as the commands and the service need them: an endpoint or
//! a batch by name (an error naming it when there is none), a batch changed without losing
//! another writer's change, and where an endpoint's admin password is sealed.

use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::lifecycle::BatchRecord;
use mailfleet_shared::state::{self, EndpointRecord, StateStore, endpoint_scope};
use secrecy::SecretString;

use crate::error::CliError;

/// The stored endpoint `name`.
pub async fn endpoint(store: &dyn StateStore, name: &str) -> Result<EndpointRecord, CliError> {
    store
        .endpoint(name)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no endpoint named {name}")))
}

/// The stored batch `name`.
pub async fn batch(store: &dyn StateStore, name: &str) -> Result<BatchRecord, CliError> {
    store
        .batch(name)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no batch named {name}")))
}

/// Applies `change` to the stored batch `name` and writes it, again from a fresh read when
/// another writer got there first (see [`update_batch`](state::update_batch)); the batch as
/// stored.
pub async fn update_batch(
    store: &dyn StateStore,
    name: &str,
    change: impl FnMut(&mut BatchRecord) -> Result<(), CliError> + Send,
) -> Result<BatchRecord, CliError> {
    state::update_batch(store, name, change)
        .await?
        .map(|(batch, ())| batch)
        .ok_or_else(|| CliError::NotFound(format!("no batch named {name}")))
}

/// Where an endpoint's admin password is sealed.
pub fn admin_credential(endpoint: &str) -> CredentialId {
    CredentialId {
        scope: endpoint_scope(endpoint),
        name: "admin".to_owned(),
    }
}

/// The admin password stored with endpoint `name`, if it has an admin login.
pub async fn stored_admin_password(
    credentials: &dyn CredentialStore,
    name: &str,
) -> Result<Option<SecretString>, CliError> {
    Ok(credentials.get(&admin_credential(name)).await?)
}

/// Where an endpoint's OAuth2 provider secret (client secret, certificate with its key,
/// service-account key) is sealed.
pub fn oauth2_credential(endpoint: &str) -> CredentialId {
    CredentialId {
        scope: endpoint_scope(endpoint),
        name: "oauth2".to_owned(),
    }
}

/// The OAuth2 provider secret stored with endpoint `name`, if it logs in with OAuth2.
pub async fn stored_oauth2_secret(
    credentials: &dyn CredentialStore,
    name: &str,
) -> Result<Option<SecretString>, CliError> {
    Ok(credentials.get(&oauth2_credential(name)).await?)
}
