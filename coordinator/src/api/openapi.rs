//! The OpenAPI 3.1 document of `/api/v1`, collected by utoipa from the handlers' own
//! `#[utoipa::path]` annotations as they are routed: a route is in the document because it is
//! in the router, so the two cannot disagree (the isolation test walks the document).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{LineError, Problem};
use super::{Shared, audit, batches, endpoints, events, tenants, tokens, users, whoami};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailfleet API",
        description = "Endpoints, batches, users, reports and events of one tenant; tenants and \
            tokens for the provider. Authorization: Bearer mf_{id}_{secret}; a provider token \
            names the tenant it acts in with the Mailfleet-Tenant header. Errors are \
            application/problem+json."
    ),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    components(schemas(Problem, LineError))
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every documented route of `/api/v1`.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(whoami::whoami))
        .routes(routes!(tenants::list, tenants::create))
        .routes(routes!(tenants::remove))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(endpoints::list, endpoints::create))
        .routes(routes!(endpoints::show, endpoints::remove))
        .routes(routes!(endpoints::test))
        .routes(routes!(batches::list, batches::create))
        .routes(routes!(batches::show, batches::remove))
        .routes(routes!(batches::start))
        .routes(routes!(batches::stop))
        .routes(routes!(batches::resume))
        .routes(routes!(batches::complete))
        .routes(routes!(batches::sync_now))
        .routes(routes!(batches::verify))
        .routes(routes!(batches::report))
        .routes(routes!(users::list))
        .routes(routes!(users::show))
        .routes(routes!(audit::list))
        .routes(routes!(events::stream))
}
