//! The control store's contract (ARCHITECTURE.md, "Tenants"): tenants, tokens, the audit log,
//! and above all isolation — what one tenant's handle writes, another's cannot see, change or
//! remove. Run by SQLite and by PostgreSQL on a fresh store each, so names here are fixed.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use mailfleet_shared::lifecycle::UserRecord;
use mailfleet_shared::state::EndpointRecord;
use mailfleet_shared::store_error::StoreErrorKind;
use mailfleet_shared::tenancy::{
    AuditEntry, ControlStore, DEFAULT_TENANT, Role, TenantRecord, TokenRecord, token_hash,
};

use super::state_store::new_batch;

fn tenant(name: &str, max_users: Option<usize>) -> TenantRecord {
    TenantRecord {
        name: name.into(),
        max_concurrent_migrations: Some(4),
        max_users,
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    }
}

fn endpoint(name: &str, url: &str) -> EndpointRecord {
    EndpointRecord {
        name: name.into(),
        endpoint: mailfleet_shared::endpoint::Endpoint::from_url(url).unwrap(),
        max_concurrent_migrations: 20,
        max_concurrent_incremental_syncs: 10,
        profile: None,
    }
}

fn token(id: &str, tenant: Option<&str>, role: Role) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        tenant: tenant.map(str::to_owned),
        role,
        label: format!("{id} label"),
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        revoked_at: None,
    }
}

fn emails(users: &[UserRecord]) -> Vec<&str> {
    users.iter().map(|u| u.email.as_str()).collect()
}

/// The whole contract.
pub async fn control_store_contract(control: Arc<dyn ControlStore>) {
    tenants_round_trip(control.as_ref()).await;
    records_are_isolated_by_tenant(control.as_ref()).await;
    tokens_round_trip_and_revoke(control.as_ref()).await;
    audit_is_per_tenant_newest_first(control.as_ref()).await;
    removing_a_tenant_removes_its_records_and_tokens(control.as_ref()).await;
}

/// Tenants by name, unique, the default one always there.
pub async fn tenants_round_trip(control: &dyn ControlStore) {
    let acme = tenant("acme", Some(100));
    control.create_tenant(&acme).await.unwrap();
    control
        .create_tenant(&tenant("globex", None))
        .await
        .unwrap();
    let taken = control
        .create_tenant(&tenant("acme", None))
        .await
        .unwrap_err();
    assert_eq!(taken.kind(), StoreErrorKind::Conflict, "{taken}");
    assert_eq!(control.tenant("acme").await.unwrap(), Some(acme));
    assert_eq!(control.tenant("initech").await.unwrap(), None);
    let names: Vec<String> = control
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme", "default", "globex"]);
}

/// Same names in two tenants coexist; neither handle sees, changes or removes the other's.
pub async fn records_are_isolated_by_tenant(control: &dyn ControlStore) {
    let acme = control.tenant_state("acme");
    let globex = control.tenant_state("globex");
    let default = control.tenant_state(DEFAULT_TENANT);
    let acme_old = endpoint("old", "imaps://imap.acme.example:993");
    acme.put_endpoint(&acme_old).await.unwrap();
    assert_eq!(globex.endpoint("old").await.unwrap(), None);
    assert!(globex.endpoints().await.unwrap().is_empty());
    assert!(default.endpoints().await.unwrap().is_empty());
    globex.remove_endpoint("old").await.unwrap();
    assert_eq!(acme.endpoint("old").await.unwrap(), Some(acme_old.clone()));

    let globex_old = endpoint("old", "imap://127.0.0.1:1143");
    globex.put_endpoint(&globex_old).await.unwrap();
    assert_eq!(acme.endpoint("old").await.unwrap(), Some(acme_old));
    assert_eq!(globex.endpoint("old").await.unwrap(), Some(globex_old));

    let batch = new_batch("q3");
    acme.create_batch(&batch, &[UserRecord::queued("a@acme.example", "u", None)])
        .await
        .unwrap();
    globex
        .create_batch(&batch, &[UserRecord::queued("g@globex.example", "u", None)])
        .await
        .unwrap();
    acme.create_batch(&new_batch("acme-only"), &[])
        .await
        .unwrap();
    assert_eq!(emails(&acme.users("q3").await.unwrap()), ["a@acme.example"]);
    assert_eq!(
        emails(&globex.users("q3").await.unwrap()),
        ["g@globex.example"]
    );
    assert!(globex.batch("acme-only").await.unwrap().is_none());
    assert!(globex.users("acme-only").await.unwrap().is_empty());
    let names: Vec<String> = globex
        .batches()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["q3"]);

    let mut users = [UserRecord::queued("intruder@globex.example", "u", None)];
    let refused = globex.put_users("acme-only", &mut users).await.unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::NotFound, "{refused}");
    let mut acme_only = acme.batch("acme-only").await.unwrap().unwrap();
    let mut stolen = acme_only.clone();
    let refused = globex.put_batch(&mut stolen).await.unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Conflict, "{refused}");
    globex.remove_batch("acme-only").await.unwrap();
    globex.remove_batch("q3").await.unwrap();
    assert!(acme.users("acme-only").await.unwrap().is_empty());
    acme.put_batch(&mut acme_only).await.unwrap();
    assert_eq!(emails(&acme.users("q3").await.unwrap()), ["a@acme.example"]);
    assert!(globex.batch("q3").await.unwrap().is_none());
}

/// Tokens by id with their hash, listed per tenant or all, revoked but still listed.
pub async fn tokens_round_trip_and_revoke(control: &dyn ControlStore) {
    let admin = token("acmeadmin", Some("acme"), Role::Admin);
    let viewer = token("globexview", Some("globex"), Role::Viewer);
    let provider = token("provider1", None, Role::Provider);
    for (record, text) in [(&admin, "a"), (&viewer, "v"), (&provider, "p")] {
        control
            .create_token(record, &token_hash(text))
            .await
            .unwrap();
    }
    let taken = control
        .create_token(&admin, &token_hash("again"))
        .await
        .unwrap_err();
    assert_eq!(taken.kind(), StoreErrorKind::Conflict, "{taken}");
    assert_eq!(
        control.token("acmeadmin").await.unwrap(),
        Some((admin.clone(), token_hash("a")))
    );
    assert_eq!(control.token("nobody").await.unwrap(), None);
    assert_eq!(control.tokens(Some("acme")).await.unwrap(), [admin.clone()]);
    assert_eq!(control.tokens(None).await.unwrap().len(), 3);

    let at = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
    assert!(control.revoke_token("globexview", at).await.unwrap());
    assert!(!control.revoke_token("nobody", at).await.unwrap());
    let (revoked, _) = control.token("globexview").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(control.tokens(Some("globex")).await.unwrap(), [revoked]);
}

/// A tenant's audit holds its own entries only, newest first, at most `limit`.
pub async fn audit_is_per_tenant_newest_first(control: &dyn ControlStore) {
    let entry = |tenant: &str, action: &str, second: i64| AuditEntry {
        at: Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap(),
        tenant: tenant.into(),
        actor: "cli".into(),
        action: action.into(),
        subject: "q3".into(),
    };
    for (second, (tenant, action)) in [
        ("acme", "batch.create"),
        ("globex", "batch.create"),
        ("acme", "batch.start"),
        ("acme", "batch.stop"),
    ]
    .into_iter()
    .enumerate()
    {
        control
            .append_audit(&entry(tenant, action, second as i64))
            .await
            .unwrap();
    }
    let actions = |entries: Vec<AuditEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.action).collect()
    };
    assert_eq!(
        actions(control.audit("acme", 10).await.unwrap()),
        ["batch.stop", "batch.start", "batch.create"]
    );
    assert_eq!(
        actions(control.audit("acme", 2).await.unwrap()),
        ["batch.stop", "batch.start"]
    );
    let globex = control.audit("globex", 10).await.unwrap();
    assert_eq!(globex, [entry("globex", "batch.create", 1)]);
}

/// Removing a tenant removes its endpoints, batches, users and tokens, and nothing of another
/// tenant's; its audit stays; the default tenant stays.
pub async fn removing_a_tenant_removes_its_records_and_tokens(control: &dyn ControlStore) {
    assert!(control.remove_tenant("acme").await.unwrap());
    assert_eq!(control.tenant("acme").await.unwrap(), None);
    let acme = control.tenant_state("acme");
    assert!(acme.endpoints().await.unwrap().is_empty());
    assert!(acme.batches().await.unwrap().is_empty());
    assert!(acme.users("q3").await.unwrap().is_empty());
    assert!(control.tokens(Some("acme")).await.unwrap().is_empty());
    assert_eq!(control.token("acmeadmin").await.unwrap(), None);
    assert_eq!(control.audit("acme", 10).await.unwrap().len(), 3);

    let globex = control.tenant_state("globex");
    assert_eq!(globex.endpoints().await.unwrap().len(), 1);
    assert!(control.token("globexview").await.unwrap().is_some());
    assert!(!control.remove_tenant("acme").await.unwrap());
    let refused = control.remove_tenant(DEFAULT_TENANT).await.unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Invalid, "{refused}");
    assert!(control.tenant(DEFAULT_TENANT).await.unwrap().is_some());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite_state::SqliteStateStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_control_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStateStore::open(dir.path()).unwrap());
        control_store_contract(store).await;
    }
}
