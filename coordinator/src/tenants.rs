//! Tenants and API tokens as operations (ARCHITECTURE.md, "Tenants"), shared by the `tenant`
//! and `token` commands and the HTTP API: they change the stores, append to the audit log and
//! return data; printing is the front end's.

use chrono::Utc;
use mailfleet_shared::state::endpoint_scope;
use mailfleet_shared::tenancy::{
    AuditEntry, ControlStore, DEFAULT_TENANT, Role, TenantRecord, TokenRecord, check_tenant_name,
    token_hash, token_text,
};
use mailfleet_stores::tenant_keys::TenantKeys;
use rand::TryRngCore;
use rand::rngs::OsRng;

use crate::backends::ProviderStores;
use crate::error::CliError;
use crate::tenant_stores::TenantStores;

/// Appends what `actor` did to `tenant`'s audit log.
pub async fn audit(
    control: &dyn ControlStore,
    tenant: &str,
    actor: &str,
    action: &str,
    subject: &str,
) -> Result<(), CliError> {
    control
        .append_audit(&AuditEntry {
            at: Utc::now(),
            tenant: tenant.to_owned(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
        })
        .await?;
    Ok(())
}

/// Creates a tenant and its secret key.
pub async fn create_tenant(
    control: &dyn ControlStore,
    keys: &TenantKeys,
    tenant: &TenantRecord,
    actor: &str,
) -> Result<(), CliError> {
    check_tenant_name(&tenant.name).map_err(CliError::Invalid)?;
    if control.tenant(&tenant.name).await?.is_some() {
        return Err(CliError::Invalid(format!(
            "a tenant named {} exists already",
            tenant.name
        )));
    }
    // The key first: a tenant that exists always has one to seal its secrets with.
    keys.create_key(&tenant.name).await?;
    control.create_tenant(tenant).await?;
    audit(control, &tenant.name, actor, "tenant.create", &tenant.name).await
}

/// Removes a tenant: each batch as `batch remove` does (sealed passwords, checkpoints,
/// records), its endpoints' secrets, the key that sealed them (so copies stay sealed), then its
/// endpoints, users and tokens. Its audit log stays. Refused while one of its batches may be
/// syncing: the pass would go on with credentials that are gone.
pub async fn remove_tenant(
    provider: &ProviderStores,
    name: &str,
    actor: &str,
) -> Result<(), CliError> {
    let control = provider.control.as_ref();
    if name == DEFAULT_TENANT {
        return Err(CliError::Invalid(
            mailfleet_shared::tenancy::DEFAULT_TENANT_STAYS.into(),
        ));
    }
    if control.tenant(name).await?.is_none() {
        return Err(CliError::Invalid(format!("no tenant named {name}")));
    }
    let stores = TenantStores::of(provider, name);
    let batches = stores.state.batches().await?;
    if let Some(busy) = batches.iter().find(|batch| batch.state.is_active()) {
        return Err(CliError::Conflict(format!(
            "tenant {name}'s batch {} is {}: stop it (batch stop) before removing the tenant",
            busy.name, busy.state
        )));
    }
    for batch in batches {
        stores.remove_batch(&batch.name).await?;
    }
    for endpoint in stores.state.endpoints().await? {
        stores
            .credentials
            .remove_scope(&endpoint_scope(&endpoint.name))
            .await?;
    }
    provider.keys.remove_key(name).await?;
    control.remove_tenant(name).await?;
    audit(control, name, actor, "tenant.remove", name).await
}

/// The users `tenant` has in all its batches, and an error when adding `more` would exceed
/// its `max_users`.
pub async fn check_max_users(
    control: &dyn ControlStore,
    tenant: &str,
    more: usize,
) -> Result<(), CliError> {
    let Some(limit) = control
        .tenant(tenant)
        .await?
        .and_then(|record| record.max_users)
    else {
        return Ok(());
    };
    let have = user_count(control, tenant).await?;
    if have + more > limit {
        return Err(CliError::Invalid(format!(
            "tenant {tenant} may have at most {limit} users; it has {have} and this adds {more}"
        )));
    }
    Ok(())
}

/// Users in all of `tenant`'s batches.
pub async fn user_count(control: &dyn ControlStore, tenant: &str) -> Result<usize, CliError> {
    let state = control.tenant_state(tenant);
    let mut count = 0;
    for batch in state.batches().await? {
        // Counted by the store's index, not by reading every user of every batch.
        let tallies = state.user_tally(&batch.name).await?;
        count += tallies.iter().map(|tally| tally.users).sum::<usize>();
    }
    Ok(count)
}

/// Bytes of randomness in a token's id and secret.
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// `bytes` random bytes from the operating system, as lowercase hex.
fn random_hex(bytes: usize) -> Result<String, CliError> {
    let mut buffer = vec![0u8; bytes];
    OsRng
        .try_fill_bytes(&mut buffer)
        .map_err(|e| CliError::failed("the operating system's random source", e))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates a token of `tenant` (`None`: a provider token) and returns it with its text — the
/// only time the text exists outside the caller's hands; the store keeps its hash.
pub async fn create_token(
    control: &dyn ControlStore,
    tenant: Option<&str>,
    role: Role,
    label: &str,
    actor: &str,
) -> Result<(TokenRecord, String), CliError> {
    if let Some(tenant) = tenant
        && control.tenant(tenant).await?.is_none()
    {
        return Err(CliError::Invalid(format!("no tenant named {tenant}")));
    }
    if (tenant.is_none()) != (role == Role::Provider) {
        return Err(CliError::Invalid(
            "a provider token has no tenant, and only a provider token".into(),
        ));
    }
    let record = TokenRecord {
        id: random_hex(ID_BYTES)?,
        tenant: tenant.map(str::to_owned),
        role,
        label: label.to_owned(),
        created_at: Utc::now(),
        revoked_at: None,
    };
    let text = token_text(&record.id, &random_hex(SECRET_BYTES)?);
    control.create_token(&record, &token_hash(&text)).await?;
    let audited = tenant.unwrap_or(DEFAULT_TENANT);
    audit(control, audited, actor, "token.create", &record.id).await?;
    Ok((record, text))
}

/// Revokes token `id`.
pub async fn revoke_token(
    control: &dyn ControlStore,
    id: &str,
    actor: &str,
) -> Result<TokenRecord, CliError> {
    let Some((token, _)) = control.token(id).await? else {
        return Err(CliError::Invalid(format!("no token with id {id}")));
    };
    control.revoke_token(id, Utc::now()).await?;
    let audited = token.tenant.as_deref().unwrap_or(DEFAULT_TENANT);
    audit(control, audited, actor, "token.revoke", id).await?;
    Ok(token)
}
