//! `/api/v1/endpoints`: the tenant's migration endpoints, through the `endpoint` command's
//! operations. Admin passwords come in the request body and are sealed at once; no answer
//! carries them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailfleet_shared::server_profile::ProfileChoice;
use mailfleet_shared::state::EndpointRecord;
use mailfleet_shared::tenancy::Role;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::InTenant;
use super::body;
use super::problem::Problem;
use super::{Shared, sendable};
use crate::commands::endpoint::{self, Check, EndpointSpec};
use crate::error::CliError;
use crate::input::{self, ServerInput};
use crate::records;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewEndpoint {
    /// Letters, digits, '-' and '_'.
    pub name: String,
    /// imap://host:port, imap+starttls://host:port or imaps://host:port.
    pub url: String,
    /// Log in as this admin on behalf of each user (with admin_password and admin_format).
    pub admin_user: Option<String>,
    pub admin_password: Option<String>,
    /// exchange | dovecot | mirapoint | courier | cyrus
    pub admin_format: Option<String>,
    /// Default 20.
    pub max_concurrent_migrations: Option<usize>,
    /// Default 10.
    pub max_concurrent_incremental_syncs: Option<usize>,
    /// auto (default) | generic | m365
    pub profile: Option<String>,
}

/// An endpoint as the API shows it: the stored record and the CLI's one-line description.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub record: EndpointRecord,
}

impl EndpointView {
    fn of(record: EndpointRecord) -> Self {
        EndpointView {
            name: record.name.clone(),
            description: endpoint::describe(&record),
            record,
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct TestRequest {
    /// Users to log in for (as the endpoint's admin).
    #[serde(default)]
    pub users: Vec<String>,
    /// The users' own password, for an endpoint without an admin.
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TestCheck {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// The tenant's endpoints.
#[utoipa::path(get, path = "/api/v1/endpoints", tag = "endpoints",
    responses((status = 200, body = [EndpointView])))]
pub async fn list(tenant: InTenant) -> Result<Json<Vec<EndpointView>>, Problem> {
    let endpoints = tenant.stores.state.endpoints().await?;
    Ok(Json(endpoints.into_iter().map(EndpointView::of).collect()))
}

/// A new endpoint (admin+).
#[utoipa::path(post, path = "/api/v1/endpoints", tag = "endpoints", request_body = NewEndpoint,
    responses((status = 201, body = EndpointView), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(api): State<Shared>,
    tenant: InTenant,
    body: Bytes,
) -> Result<(StatusCode, Json<EndpointView>), Problem> {
    tenant.caller.require(Role::Admin)?;
    let new: NewEndpoint = body::parse(&body)?;
    endpoint::check_name(&new.name)?;
    let spec = EndpointSpec {
        server: server(&new)?,
        max_concurrent_migrations: new.max_concurrent_migrations.unwrap_or(20),
        max_concurrent_incremental_syncs: new.max_concurrent_incremental_syncs.unwrap_or(10),
        profile: new
            .profile
            .as_deref()
            .unwrap_or("auto")
            .parse::<ProfileChoice>()
            .map_err(|e| CliError::Invalid(format!("profile: {e}")))?,
        name: new.name,
    };
    let record = sendable(endpoint::create(&tenant.stores, spec)).await?;
    api.audit(
        &tenant.tenant,
        &tenant.caller,
        "endpoint.create",
        &record.name,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(EndpointView::of(record))))
}

/// The server the request describes, checked as `endpoint create` checks its flags.
fn server(new: &NewEndpoint) -> Result<ServerInput, CliError> {
    let mut endpoint = input::parse_endpoint("url", &new.url)?;
    endpoint.admin = input::admin_login(new.admin_user.as_deref(), new.admin_format.as_deref())?;
    let admin_password = match (&endpoint.admin, &new.admin_password) {
        (None, _) => None,
        (Some(_), Some(password)) if !password.is_empty() => {
            Some(SecretString::from(password.clone()))
        }
        (Some(_), _) => {
            return Err(CliError::Invalid(
                "an admin login needs its password in admin_password".into(),
            ));
        }
    };
    endpoint
        .check_authentication()
        .map_err(|e| CliError::Invalid(format!("url: {e}")))?;
    Ok(ServerInput {
        endpoint,
        admin_password,
        oauth2_secret: None,
    })
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "the endpoint")),
    responses((status = 200, body = EndpointView), (status = 404, body = Problem)))]
pub async fn show(
    tenant: InTenant,
    Path(name): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    let record = records::endpoint(tenant.stores.state.as_ref(), &name).await?;
    Ok(Json(EndpointView::of(record)))
}

/// Removes an endpoint no batch uses (admin+).
#[utoipa::path(delete, path = "/api/v1/endpoints/{name}", tag = "endpoints",
    params(("name" = String, Path, description = "the endpoint")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn remove(
    State(api): State<Shared>,
    tenant: InTenant,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    tenant.caller.require(Role::Admin)?;
    endpoint::remove(&tenant.stores, &name).await?;
    api.audit(&tenant.tenant, &tenant.caller, "endpoint.remove", &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Connects to the endpoint and logs in for the users given (operator+).
#[utoipa::path(post, path = "/api/v1/endpoints/{name}/test", tag = "endpoints",
    params(("name" = String, Path, description = "the endpoint")), request_body = TestRequest,
    responses((status = 200, body = [TestCheck]), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn test(
    tenant: InTenant,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Vec<TestCheck>>, Problem> {
    tenant.caller.require(Role::Operator)?;
    // The body is optional: no users means connect only.
    let request: TestRequest = match body.is_empty() {
        true => TestRequest::default(),
        false => body::parse(&body)?,
    };
    let server = endpoint::stored_server(&tenant.stores, &name).await?;
    let checks = endpoint::checks(
        &server,
        &request.users,
        request.password.map(SecretString::from),
    )
    .await?;
    Ok(Json(
        checks
            .into_iter()
            .map(|Check { check, ok, detail }| TestCheck { check, ok, detail })
            .collect(),
    ))
}
