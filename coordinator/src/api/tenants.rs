//! `/api/v1/tenants`: the provider's customers. Provider tokens only (others get 403).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use mailfleet_shared::lifecycle::validate_batch_name;
use mailfleet_shared::tenancy::{DEFAULT_TENANT, Role, TenantRecord};
use serde::Deserialize;
use utoipa::ToSchema;

use super::Shared;
use super::auth::Caller;
use super::body;
use super::problem::Problem;

#[derive(Deserialize, ToSchema)]
pub struct NewTenant {
    /// Letters, digits, '-' and '_'.
    pub name: String,
    /// Users of this tenant in a sync at once, across its batches.
    pub max_concurrent_migrations: Option<usize>,
    /// Users this tenant may have in all its batches together.
    pub max_users: Option<usize>,
}

/// Every tenant.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, description = "the tenants: name, max_concurrent_migrations, max_users, created_at"),
        (status = 403, body = Problem)))]
pub async fn list(
    State(api): State<Shared>,
    caller: Caller,
) -> Result<Json<Vec<TenantRecord>>, Problem> {
    caller.require(Role::Provider)?;
    Ok(Json(api.control.tenants().await?))
}

/// A new tenant.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, description = "the tenant as stored"), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(api): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<TenantRecord>), Problem> {
    caller.require(Role::Provider)?;
    let new: NewTenant = body::parse(&body)?;
    validate_batch_name(&new.name).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.0.replacen("batch name", "tenant name", 1),
        )
    })?;
    let record = TenantRecord {
        name: new.name,
        max_concurrent_migrations: new.max_concurrent_migrations,
        max_users: new.max_users,
        created_at: Utc::now(),
    };
    crate::tenants::create_tenant(
        api.control.as_ref(),
        &api.stores.keys,
        &record,
        &caller.token_id,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Removes a tenant with its endpoints, batches, users and tokens.
#[utoipa::path(delete, path = "/api/v1/tenants/{name}", tag = "tenants",
    params(("name" = String, Path, description = "the tenant")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn remove(
    State(api): State<Shared>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Provider)?;
    if name == DEFAULT_TENANT {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "the default tenant stays: it holds what the command line manages",
        ));
    }
    if api.control.tenant(&name).await?.is_none() {
        return Err(Problem::not_found(format!("no tenant named {name}")));
    }
    crate::tenants::remove_tenant(&api.stores, &name, &caller.token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
