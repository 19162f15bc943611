//! `/api/v1/tokens`: API tokens. Admins manage their tenant's (never with a role above their
//! own); the provider any tenant's, and provider tokens. The token text is in the answer to
//! its creation only: the store keeps its SHA-256.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use mailfleet_shared::tenancy::{Role, TokenRecord, token_hash, token_text};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Shared;
use super::auth::{Caller, TENANT_HEADER};
use super::body;
use super::problem::Problem;

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    /// viewer, operator, admin (or provider, by a provider token without a tenant).
    pub role: String,
    #[serde(default)]
    pub label: String,
    /// Provider tokens only: the tenant the new token belongs to (none: a provider token).
    pub tenant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    /// `mf_{id}_{secret}`: shown this once.
    pub token: String,
    pub role: String,
    pub tenant: Option<String>,
}

/// The caller's tenant's tokens; a provider's: the tenant in its header, else every token.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "tokens without their secrets: id, tenant, role, label, created_at, revoked_at"),
        (status = 403, body = Problem)))]
pub async fn list(
    State(api): State<Shared>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<Json<Vec<TokenRecord>>, Problem> {
    caller.require(Role::Admin)?;
    let tenant = match &caller.tenant {
        Some(tenant) => Some(tenant.clone()),
        None => headers
            .get(TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    Ok(Json(api.control.tokens(tenant.as_deref()).await?))
}

/// A new token; its text is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(api): State<Shared>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedToken>), Problem> {
    caller.require(Role::Admin)?;
    let new: NewToken = body::parse(&body)?;
    let role: Role = new
        .role
        .parse()
        .map_err(|e: String| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    caller.require(role)?;
    let tenant = match (&caller.tenant, new.tenant) {
        (Some(own), None) => Some(own.clone()),
        (Some(_), Some(_)) => {
            return Err(Problem::forbidden(
                "only a provider token names the tenant of a new token",
            ));
        }
        (None, named) => named,
    };
    match &tenant {
        Some(name) if api.control.tenant(name).await?.is_none() => {
            return Err(Problem::not_found(format!("no tenant named {name}")));
        }
        Some(_) if role == Role::Provider => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "a provider token belongs to no tenant",
            ));
        }
        None if role != Role::Provider => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "name the tenant of a viewer, operator or admin token",
            ));
        }
        _ => {}
    }
    let id = random_text(10).to_ascii_lowercase();
    let text = token_text(&id, &random_text(32));
    let record = TokenRecord {
        id: id.clone(),
        tenant: tenant.clone(),
        role,
        label: new.label,
        created_at: Utc::now(),
        revoked_at: None,
    };
    api.control
        .create_token(&record, &token_hash(&text))
        .await?;
    let audited = tenant.as_deref().unwrap_or("provider");
    api.audit(audited, &caller, "token.create", &id).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id,
            token: text,
            role: role.as_str().to_owned(),
            tenant,
        }),
    ))
}

/// Revokes a token: it stays listed, and is refused (401) from now on.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "the token's id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke(
    State(api): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let not_found = || Problem::not_found(format!("no token {id}"));
    let (record, _) = api.control.token(&id).await?.ok_or_else(not_found)?;
    // Another tenant's token is as absent as one never made; a stronger one is out of reach.
    if caller.tenant.is_some() && record.tenant != caller.tenant {
        return Err(not_found());
    }
    caller.require(record.role)?;
    api.control.revoke_token(&id, Utc::now()).await?;
    let audited = record.tenant.as_deref().unwrap_or("provider");
    api.audit(audited, &caller, "token.revoke", &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn random_text(length: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}
