//! `/api/v1/batches/{name}/users`: a batch's users, filtered, sorted and paged for a screen
//! of thousands; one user with its folders, skipped items, warnings and errors. Both ask the
//! store for what they show (`StateStore::user_page`, `StateStore::user`): a page of a
//! 50,000-user batch reads its 50 users, not the batch.

use axum::Json;
use axum::extract::{Path, Query};
use mailfleet_shared::checkpoint::CheckpointKey;
use mailfleet_shared::lifecycle::{UserRecord, UserState};
use mailfleet_shared::state::batch_scope;
use mailfleet_shared::tenancy::tenant_scope;
use mailfleet_shared::user_query::{UserOrder, UserQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::InTenant;
use super::problem::Problem;
use super::user_cursor;
use crate::error::CliError;
use crate::records;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, IntoParams)]
pub struct UsersQuery {
    /// Only users in this state (Queued, Syncing, Synced, Failed, …; any case).
    pub state: Option<String>,
    /// Only users whose address contains this text (ASCII letters in any case).
    pub q: Option<String>,
    /// email (default), state, items_synced or items_skipped; `-` first for descending.
    pub sort: Option<String>,
    /// From a previous answer's next_cursor, with the same sort.
    pub cursor: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    /// Each user's stored record: state, counts, skipped items, warnings, errors, times.
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<UserRecord>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A page of the batch's users.
#[utoipa::path(get, path = "/api/v1/batches/{name}/users", tag = "batches",
    params(("name" = String, Path, description = "the batch"), UsersQuery),
    responses((status = 200, body = UserPage), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn list(
    tenant: InTenant,
    Path(name): Path<String>,
    Query(query): Query<UsersQuery>,
) -> Result<Json<UserPage>, Problem> {
    let batch = records::batch(tenant.stores.state.as_ref(), &name).await?;
    let Some(selection) = selection(&query)? else {
        return Ok(Json(UserPage {
            users: Vec::new(),
            next_cursor: None,
        }));
    };
    let page = tenant
        .stores
        .state
        .user_page(&batch.name, &selection)
        .await?;
    let next_cursor = page
        .next
        .map(|place| user_cursor::encode(sort(&query), &place));
    Ok(Json(UserPage {
        users: page.users,
        next_cursor,
    }))
}

/// The request's sort, `email` when it names none.
fn sort(query: &UsersQuery) -> &str {
    query.sort.as_deref().unwrap_or("email")
}

/// The store's query for the list's parameters; `None` when no user can match (a state that
/// does not exist).
fn selection(query: &UsersQuery) -> Result<Option<UserQuery>, CliError> {
    let state = match query.state.as_deref() {
        Some(name) => match UserState::named(name) {
            Some(state) => Some(state),
            None => return Ok(None),
        },
        None => None,
    };
    let sort = sort(query);
    let (descending, key) = match sort.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, sort),
    };
    let order = match key {
        "email" => UserOrder::Email,
        "state" => UserOrder::State,
        "items_synced" => UserOrder::ItemsSynced,
        "items_skipped" => UserOrder::ItemsSkipped,
        other => {
            return Err(CliError::Invalid(format!(
                "sort {other:?}: use email, state, items_synced or items_skipped"
            )));
        }
    };
    let after = match &query.cursor {
        Some(cursor) => Some(user_cursor::decode(cursor, sort, order.counts())?),
        None => None,
    };
    Ok(Some(UserQuery {
        state,
        contains: query.q.clone(),
        order,
        descending,
        after,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct FolderProgress {
    pub folder: String,
    /// Every source UID up to here is on the target.
    pub last_source_uid: u32,
}

#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    /// The stored record: state, counts, skipped items, warnings, errors, times.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub user: UserRecord,
    /// The folders copied so far, from their checkpoints.
    pub folders: Vec<FolderProgress>,
}

/// One user of the batch.
#[utoipa::path(get, path = "/api/v1/batches/{name}/users/{email}", tag = "batches",
    params(("name" = String, Path, description = "the batch"),
        ("email" = String, Path, description = "the user's address")),
    responses((status = 200, body = UserDetail), (status = 404, body = Problem)))]
pub async fn show(
    tenant: InTenant,
    Path((name, email)): Path<(String, String)>,
) -> Result<Json<UserDetail>, Problem> {
    let batch = records::batch(tenant.stores.state.as_ref(), &name).await?;
    let user = tenant
        .stores
        .state
        .user(&batch.name, &email)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("batch {} has no user {email}", batch.name)))?;
    // Workers checkpoint under the tenant's scope of the batch (see `service::batch_job`).
    let scope = tenant_scope(&tenant.stores.tenant, &batch_scope(&batch.name));
    let checkpoints = &tenant.stores.checkpoints;
    let mut folders = Vec::new();
    for folder in checkpoints.mapped_folders(&scope, &user.email).await? {
        let key = CheckpointKey {
            scope: scope.clone(),
            user: user.email.clone(),
            folder: folder.clone(),
        };
        if let Some(checkpoint) = checkpoints.load(&key).await? {
            folders.push(FolderProgress {
                folder,
                last_source_uid: checkpoint.last_source_uid,
            });
        }
    }
    Ok(Json(UserDetail { user, folders }))
}
