//! The HTTP API of `mailfleet serve`, under `/api/v1` (ARCHITECTURE.md, "The service and its
//! API"): JSON over the same operations the `endpoint`, `batch`, `report` and `verify` commands
//! run (one implementation, two front ends), each request acting in one tenant's stores.
//!
//! One module per resource; [`auth`] decides who calls and in which tenant, [`problem`] turns
//! the CLI's errors into problem+json, [`rate_limit`] keeps one token from starving the others,
//! [`events`] streams state changes, [`openapi`] collects the document from the handlers.

mod audit;
pub mod auth;
mod batches;
mod body;
mod endpoints;
mod events;
pub mod listener;
mod openapi;
pub mod problem;
pub mod rate_limit;
mod tenants;
mod tokens;
mod user_cursor;
mod users;
mod whoami;

/// The requests and answers `mailfleet --api` sends and reads (`remote`): the handlers' own
/// types, so the two ends cannot disagree.
pub use batches::{BatchView, NewBatch, Verification};
pub use endpoints::{EndpointView, NewEndpoint, TestRequest};
pub use users::UserPage;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use mailfleet_shared::tenancy::{AuditEntry, ControlStore};
use mailfleet_worker::Tuning;

use crate::backends::ProviderStores;
use crate::tenant_stores::TenantStores;
use auth::Caller;
use problem::Problem;
use rate_limit::RateLimiter;

/// What every handler shares.
pub struct ApiState {
    /// Every tenant's records, tokens, keys and the audit log.
    pub stores: ProviderStores,
    pub control: Arc<dyn ControlStore>,
    pub limiter: RateLimiter,
    /// For `verify`: the engine's limits, as the service uses them.
    pub tuning: Tuning,
    /// For `complete`'s MX check (setting `dns_server`).
    pub dns_server: Option<SocketAddr>,
}

pub type Shared = Arc<ApiState>;

impl ApiState {
    /// The stores of `tenant`: its records only.
    pub fn tenant_stores(&self, tenant: &str) -> TenantStores {
        TenantStores::of(&self.stores, tenant)
    }

    /// Records a change made through the API, with the token that made it as the actor.
    pub async fn audit(
        &self,
        tenant: &str,
        caller: &Caller,
        action: &str,
        subject: &str,
    ) -> Result<(), Problem> {
        let entry = AuditEntry {
            at: chrono::Utc::now(),
            tenant: tenant.to_owned(),
            actor: caller.token_id.clone(),
            action: action.to_owned(),
            subject: subject.to_owned(),
        };
        Ok(self.control.append_audit(&entry).await?)
    }
}

/// `operation` as a boxed `Send` future: proves `Send` where the lifetimes are concrete, which
/// rustc cannot do for some operations' futures inside axum's higher-ranked handler bounds
/// (rust-lang/rust#102211).
pub(crate) fn sendable<'a, T>(
    operation: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(operation)
}

/// The largest request body: a batch of the most rows a migration CSV may have
/// (`MAX_ROWS`, 50,000) at 640 bytes a row (address, login, password, user root), as JSON.
/// axum's default (2 MB) would refuse a 50,000-user batch's CSV.
const MAX_REQUEST_BYTES: usize = mailfleet_shared::migration_csv::MAX_ROWS * 640;

/// Every `/api/v1` route and `/api/v1/openapi.json` (no token needed for the document).
pub fn router(api: Shared) -> Router {
    let (routes, document) = openapi::routes().split_for_parts();
    let document = Arc::new(document.to_pretty_json().unwrap_or_default());
    routes
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        document.as_str().to_owned(),
                    )
                        .into_response()
                }
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(api)
}
