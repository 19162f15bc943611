//! `GET /api/v1/whoami`: what the presented token is.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::Problem;

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub token_id: String,
    /// `null` for a provider token.
    pub tenant: Option<String>,
    /// viewer, operator, admin or provider.
    pub role: String,
}

/// The token's id, tenant and role.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "tokens",
    responses((status = 200, body = WhoAmI), (status = 401, body = Problem)))]
pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        token_id: caller.token_id,
        tenant: caller.tenant,
        role: caller.role.as_str().to_owned(),
    })
}
