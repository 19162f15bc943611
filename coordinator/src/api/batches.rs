//! `/api/v1/batches`: the tenant's batches through the `batch`, `report` and `verify`
//! commands' operations — create from CSV text, the lifecycle, the report, verification.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailfleet_shared::lifecycle::{BatchRecord, UserRecord, UserState};
use mailfleet_shared::tenancy::Role;
use mailfleet_shared::user_query::{self, StateTally};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::InTenant;
use super::body;
use super::problem::Problem;
use super::{Shared, sendable};
use crate::cli::admin::ReportFormat;
use crate::cli::args::CopyRuleArgs;
use crate::commands::batch::{self, BatchSpec, Command, Transitioned};
use crate::commands::{report, verify};
use crate::error::CliError;
use crate::input;
use crate::records;
use crate::tenant_stores::TenantStores;

/// How many of a batch's users are where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub total: usize,
    pub queued: usize,
    /// In a pass now (initial, incremental or final).
    pub syncing: usize,
    pub synced: usize,
    pub completed: usize,
    pub failed: usize,
    pub stopped: usize,
    pub items_synced: u64,
    pub items_skipped: u64,
}

impl Counts {
    pub fn of(users: &[UserRecord]) -> Self {
        Counts::of_tallies(&user_query::tally(users))
    }

    /// From the store's count of each state ([`StateStore::user_tally`]), which reads no user.
    ///
    /// [`StateStore::user_tally`]: mailfleet_shared::state::StateStore::user_tally
    pub fn of_tallies(tallies: &[StateTally]) -> Self {
        let mut counts = Counts::default();
        for tally in tallies {
            counts.total += tally.users;
            counts.items_synced += tally.items_synced;
            counts.items_skipped += tally.items_skipped;
            let bucket = match tally.state {
                UserState::Queued => &mut counts.queued,
                UserState::Syncing | UserState::IncrementalSyncing | UserState::Completing => {
                    &mut counts.syncing
                }
                UserState::Synced | UserState::IncrementalSynced => &mut counts.synced,
                UserState::Completed | UserState::CompletedWithWarnings => &mut counts.completed,
                UserState::Failed | UserState::IncrementalFailed => &mut counts.failed,
                UserState::Stopped => &mut counts.stopped,
            };
            *bucket += tally.users;
        }
        counts
    }

    /// The counts of batch `name`'s users, from the store's index.
    pub async fn load(stores: &TenantStores, name: &str) -> Result<Self, CliError> {
        Ok(Counts::of_tallies(&stores.state.user_tally(name).await?))
    }
}

/// A batch: every stored field (name, state, endpoints, times, rules) and its users' counts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub batch: BatchRecord,
    pub counts: Counts,
}

impl BatchView {
    pub async fn load(stores: &TenantStores, name: &str) -> Result<Self, CliError> {
        let batch = records::batch(stores.state.as_ref(), name).await?;
        Ok(BatchView {
            counts: Counts::load(stores, &batch.name).await?,
            batch,
        })
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewBatch {
    /// Unique in the tenant, at most 64 characters, letters, digits, '-' and '_'.
    pub name: String,
    pub source_endpoint: String,
    pub target_endpoint: String,
    /// The migration CSV's text: `EmailAddress,UserName,Password[,UserRoot]`.
    pub csv: String,
    /// RFC 3339 or `+DURATION` from now (`+2h`).
    pub start_after: Option<String>,
    /// Start as soon as the service sees the batch.
    #[serde(default)]
    pub autostart: bool,
    /// Begin completion by itself at this time (same forms as start_after).
    pub complete_after: Option<String>,
    #[serde(default)]
    pub mirror_deletions: bool,
    #[serde(default)]
    pub include_folders: Vec<String>,
    #[serde(default)]
    pub exclude_folders: Vec<String>,
    /// YYYY-MM-DD
    #[schema(value_type = Option<String>)]
    pub received_after: Option<chrono::NaiveDate>,
    /// Bytes; default 35 MiB.
    pub max_message_size: Option<u64>,
    pub target_mx: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// Default `24h`.
    pub incremental_interval: Option<String>,
    /// Default `72h`.
    pub completion_window: Option<String>,
}

impl NewBatch {
    fn spec(&self) -> Result<BatchSpec, CliError> {
        let duration = |field: &str, text: &Option<String>, default: &str| {
            humantime::parse_duration(text.as_deref().unwrap_or(default))
                .map_err(|e| CliError::Invalid(format!("{field}: {e}")))
        };
        Ok(BatchSpec {
            name: self.name.clone(),
            source_endpoint: self.source_endpoint.clone(),
            target_endpoint: self.target_endpoint.clone(),
            rules: CopyRuleArgs {
                exclude_folders: self.exclude_folders.clone(),
                include_folders: self.include_folders.clone(),
                received_after: self.received_after,
                max_message_size: self
                    .max_message_size
                    .unwrap_or(mailfleet_worker::job::DEFAULT_MAX_MESSAGE_SIZE),
                mirror_deletions: self.mirror_deletions,
            },
            start_after: self.start_after.clone(),
            autostart: self.autostart,
            complete_after: self.complete_after.clone(),
            target_mx: self.target_mx.clone(),
            notify: self.notify.clone(),
            incremental_interval: duration(
                "incremental_interval",
                &self.incremental_interval,
                "24h",
            )?,
            completion_window: duration("completion_window", &self.completion_window, "72h")?,
        })
    }
}

/// The tenant's batches with their users' counts.
#[utoipa::path(get, path = "/api/v1/batches", tag = "batches",
    responses((status = 200, body = [BatchView])))]
pub async fn list(tenant: InTenant) -> Result<Json<Vec<BatchView>>, Problem> {
    let mut views = Vec::new();
    for batch in tenant.stores.state.batches().await? {
        views.push(BatchView {
            counts: Counts::load(&tenant.stores, &batch.name).await?,
            batch,
        });
    }
    Ok(Json(views))
}

/// A new batch from a migration CSV (operator+); 422 with every CSV error and its line.
#[utoipa::path(post, path = "/api/v1/batches", tag = "batches", request_body = NewBatch,
    responses((status = 201, body = BatchView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create(
    State(api): State<Shared>,
    tenant: InTenant,
    body: Bytes,
) -> Result<(StatusCode, Json<BatchView>), Problem> {
    tenant.caller.require(Role::Operator)?;
    let new: NewBatch = body::parse(&body)?;
    let batch = batch::new_batch(&new.spec()?, chrono::Utc::now())?;
    let rows = input::migration_csv("csv", new.csv.as_bytes())?;
    let users = sendable(batch::create(&tenant.stores, &batch, &rows)).await?;
    api.audit(&tenant.tenant, &tenant.caller, "batch.create", &batch.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(BatchView {
            counts: Counts::of(&users),
            batch,
        }),
    ))
}

/// One batch.
#[utoipa::path(get, path = "/api/v1/batches/{name}", tag = "batches",
    params(("name" = String, Path, description = "the batch")),
    responses((status = 200, body = BatchView), (status = 404, body = Problem)))]
pub async fn show(tenant: InTenant, Path(name): Path<String>) -> Result<Json<BatchView>, Problem> {
    Ok(Json(BatchView::load(&tenant.stores, &name).await?))
}

/// Removes a batch that is not syncing, with its users and sealed passwords (operator+).
#[utoipa::path(delete, path = "/api/v1/batches/{name}", tag = "batches",
    params(("name" = String, Path, description = "the batch")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn remove(
    State(api): State<Shared>,
    tenant: InTenant,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    tenant.caller.require(Role::Operator)?;
    batch::transition(&tenant.stores, &name, Command::Remove).await?;
    api.audit(&tenant.tenant, &tenant.caller, "batch.remove", &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A lifecycle command by an operator, audited; the batch as it is now.
async fn lifecycle(
    api: &Shared,
    tenant: &InTenant,
    name: &str,
    command: Command,
    action: &str,
) -> Result<Json<BatchView>, Problem> {
    tenant.caller.require(Role::Operator)?;
    let transitioned = batch::transition(&tenant.stores, name, command).await?;
    api.audit(&tenant.tenant, &tenant.caller, action, name)
        .await?;
    match transitioned {
        Transitioned::To(batch) => Ok(Json(BatchView::load(&tenant.stores, &batch.name).await?)),
        // Only `remove` removes, and it has its own route.
        Transitioned::Removed(name) => Err(Problem::not_found(format!("no batch named {name}"))),
    }
}

macro_rules! lifecycle_route {
    ($function:ident, $path:literal, $command:expr, $action:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "batches",
                    params(("name" = String, Path, description = "the batch")),
                    responses((status = 200, body = BatchView), (status = 403, body = Problem),
                        (status = 404, body = Problem), (status = 409, body = Problem)))]
        pub async fn $function(
            State(api): State<Shared>,
            tenant: InTenant,
            Path(name): Path<String>,
        ) -> Result<Json<BatchView>, Problem> {
            lifecycle(&api, &tenant, &name, $command, $action).await
        }
    };
}

lifecycle_route!(
    start,
    "/api/v1/batches/{name}/start",
    Command::Start,
    "batch.start",
    "Starts a created batch now, or resumes a stopped one (operator+)."
);
lifecycle_route!(
    stop,
    "/api/v1/batches/{name}/stop",
    Command::Stop,
    "batch.stop",
    "Stops syncing; a running pass finishes first (operator+)."
);
lifecycle_route!(
    resume,
    "/api/v1/batches/{name}/resume",
    Command::Resume,
    "batch.resume",
    "Resumes a stopped batch (operator+)."
);
lifecycle_route!(
    sync_now,
    "/api/v1/batches/{name}/sync-now",
    Command::SyncNow,
    "batch.sync-now",
    "Runs the next incremental sync now (operator+)."
);

#[derive(Deserialize, IntoParams)]
pub struct CompleteQuery {
    /// Complete even though a domain's MX does not point at the batch's target_mx yet.
    #[serde(default)]
    pub force: bool,
}

/// MX switched: syncing goes on for the completion window, then a final sync (operator+).
#[utoipa::path(post, path = "/api/v1/batches/{name}/complete", tag = "batches",
    params(("name" = String, Path, description = "the batch"), CompleteQuery),
    responses((status = 200, body = BatchView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn complete(
    State(api): State<Shared>,
    tenant: InTenant,
    Path(name): Path<String>,
    Query(query): Query<CompleteQuery>,
) -> Result<Json<BatchView>, Problem> {
    tenant.caller.require(Role::Operator)?;
    batch::complete(&tenant.stores, &name, query.force, api.dns_server, |_| {}).await?;
    api.audit(&tenant.tenant, &tenant.caller, "batch.complete", &name)
        .await?;
    Ok(Json(BatchView::load(&tenant.stores, &name).await?))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub batch: String,
    /// Per user: exact, folders, messages on each side, what is missing or duplicated.
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<verify::Verified>,
}

#[derive(Deserialize, IntoParams)]
pub struct VerifyQuery {
    /// Only this user (as `verify --user`); 404 when the batch has no such user.
    pub user: Option<String>,
}

/// Reads source and target of every user (or one) now and compares them (operator+: it logs
/// in to both servers).
#[utoipa::path(post, path = "/api/v1/batches/{name}/verify", tag = "batches",
    params(("name" = String, Path, description = "the batch"), VerifyQuery),
    responses((status = 200, body = Verification), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn verify(
    State(api): State<Shared>,
    tenant: InTenant,
    Path(name): Path<String>,
    Query(query): Query<VerifyQuery>,
) -> Result<Json<Verification>, Problem> {
    tenant.caller.require(Role::Operator)?;
    let users = verify::verify(
        &tenant.stores,
        &name,
        query.user.as_deref(),
        api.tuning.clone(),
    )
    .await?;
    Ok(Json(Verification { batch: name, users }))
}

#[derive(Deserialize, IntoParams)]
pub struct ReportQuery {
    /// csv (default), json or html.
    pub format: Option<String>,
}

/// The users report, as `mailfleet report users` writes it.
#[utoipa::path(get, path = "/api/v1/batches/{name}/report", tag = "batches",
    params(("name" = String, Path, description = "the batch"), ReportQuery),
    responses((status = 200, description = "the report in the format asked for"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn report(
    tenant: InTenant,
    Path(name): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, Problem> {
    let (format, content_type) = match query.format.as_deref().unwrap_or("csv") {
        "csv" => (ReportFormat::Csv, "text/csv; charset=utf-8"),
        "json" => (ReportFormat::Json, "application/json"),
        "html" => (ReportFormat::Html, "text/html; charset=utf-8"),
        other => {
            return Err(
                CliError::Invalid(format!("format {other:?}: use csv, json or html")).into(),
            );
        }
    };
    let text = report::report(&tenant.stores, &name, format).await?;
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}
