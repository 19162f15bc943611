//! Who is calling: `Authorization: Bearer mf_{id}_{secret}` → the stored token by its id, the
//! presented text checked against its SHA-256 in constant time (`token_matches`). A tenant token
//! acts in its tenant (403 if its `Mailfleet-Tenant` header names another); a provider token in
//! the tenant that header names.
//!
//! Unknown, malformed or revoked: 401 (the same answer, so nothing is learnt by guessing).
//! Over the rate limit: 429. A role too weak: 403 ([`Caller::require`]). Another tenant's
//! resource is simply not in the caller's tenant's store: 404.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mailfleet_shared::tenancy::{Role, token_id, token_matches};

use super::Shared;
use super::problem::Problem;
use crate::tenant_stores::TenantStores;

/// The header a provider token names the tenant it acts in with.
pub const TENANT_HEADER: &str = "Mailfleet-Tenant";

/// An authenticated token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    /// `None`: a provider token.
    pub tenant: Option<String>,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller's role allows what `needed` may do.
    pub fn require(&self, needed: Role) -> Result<(), Problem> {
        if self.role.allows(needed) {
            return Ok(());
        }
        Err(Problem::forbidden(format!(
            "this needs the {} role; token {} has {}",
            needed.as_str(),
            self.token_id,
            self.role.as_str()
        )))
    }
}

impl FromRequestParts<Shared> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, Problem> {
        let text = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(Problem::unauthorized)?;
        let id = token_id(text).ok_or_else(Problem::unauthorized)?;
        let (record, hash) = api
            .control
            .token(id)
            .await?
            .ok_or_else(Problem::unauthorized)?;
        if record.revoked_at.is_some() || !token_matches(text, &hash) {
            return Err(Problem::unauthorized());
        }
        api.limiter
            .check(&record.id)
            .map_err(Problem::too_many_requests)?;
        Ok(Caller {
            token_id: record.id,
            tenant: record.tenant,
            role: record.role,
        })
    }
}

/// A caller acting in one tenant, with that tenant's stores: what every tenant route takes.
pub struct InTenant {
    pub caller: Caller,
    pub tenant: String,
    pub stores: TenantStores,
}

impl FromRequestParts<Shared> for InTenant {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Shared) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, api).await?;
        let named = parts
            .headers
            .get(TENANT_HEADER)
            .and_then(|value| value.to_str().ok());
        let tenant = match &caller.tenant {
            // Said rather than ignored: `--as-tenant` with a tenant's token would otherwise
            // act, unnoticed, in the token's tenant instead of the one asked for.
            Some(tenant) if named.is_some_and(|named| named != tenant) => {
                return Err(Problem::forbidden(format!(
                    "token {} acts in tenant {tenant} only, not in {} ({TENANT_HEADER}); only \
                     a provider token chooses its tenant",
                    caller.token_id,
                    named.unwrap_or_default()
                )));
            }
            Some(tenant) => tenant.clone(),
            None => {
                let named = named.ok_or_else(|| {
                    Problem::bad_request(format!(
                        "a provider token names the tenant it acts in: {TENANT_HEADER}: NAME"
                    ))
                })?;
                if api.control.tenant(named).await?.is_none() {
                    return Err(Problem::not_found(format!("no tenant named {named}")));
                }
                named.to_owned()
            }
        };
        let stores = api.tenant_stores(&tenant);
        Ok(InTenant {
            caller,
            tenant,
            stores,
        })
    }
}
