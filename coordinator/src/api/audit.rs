//! `GET /api/v1/audit`: who changed what in the tenant, newest first.

use axum::Json;
use axum::extract::{Query, State};
use mailfleet_shared::tenancy::AuditEntry;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Shared;
use super::auth::InTenant;
use super::problem::Problem;

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The tenant's audit log: at, actor (token id or `cli`), action, subject.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "entries, newest first")))]
pub async fn list(
    State(api): State<Shared>,
    tenant: InTenant,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(api.control.audit(&tenant.tenant, limit).await?))
}
