//! `mailfleet batch …`: create a batch from a migration CSV, move it through its lifecycle,
//! look at it. These commands only change the state store; `mailfleet run` on the same state
//! dir notices and does the syncing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use mailfleet_shared::credentials::CredentialId;
pub use mailfleet_shared::lifecycle::BatchCommand as Command;
use mailfleet_shared::lifecycle::{
    BatchRecord, BatchState, LifecyclePolicy, UserRecord, validate_batch_name,
};
use mailfleet_shared::migration_csv::MigrationRow;
use mailfleet_shared::state::batch_scope;
use mailfleet_worker::job::Side;

use super::print_json;
use crate::backends::open_admin;
use crate::cli::admin::{AddUsersArgs, BatchCommand, BatchCreateArgs, CompleteArgs};
use crate::cli::args::{CopyRuleArgs, ListArgs, NamedArgs, StateArgs};
use crate::display;
use crate::error::CliError;
use crate::input::{check_copy_rules, check_user_roots, read_migration_csv, seal_row_passwords};
use crate::records;
use crate::service::mx_check::{self, MxCheck};
use crate::settings::Settings;
use crate::tenant_stores::TenantStores;
use crate::tenants;

pub async fn run(command: &BatchCommand, settings: &Settings) -> Result<(), CliError> {
    match command {
        BatchCommand::Create(args) => create_command(args, settings).await,
        BatchCommand::Start(args) => transition_command(args, Command::Start, settings).await,
        BatchCommand::Stop(args) => transition_command(args, Command::Stop, settings).await,
        BatchCommand::Resume(args) => transition_command(args, Command::Resume, settings).await,
        BatchCommand::Complete(args) => complete_command(args, settings).await,
        BatchCommand::Remove(args) => transition_command(args, Command::Remove, settings).await,
        BatchCommand::SyncNow(args) => transition_command(args, Command::SyncNow, settings).await,
        BatchCommand::List(args) => list_command(args, settings).await,
        BatchCommand::Status(args) => status_command(args, settings).await,
        BatchCommand::AddUsers(args) => add_users_command(args, settings).await,
    }
}

async fn stores(settings: &Settings, state: &StateArgs) -> Result<TenantStores, CliError> {
    Ok(open_admin(settings, &state.state_dir).await?.into())
}

/// What a new batch is made of, from `batch create`'s flags or the API's request.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub name: String,
    pub source_endpoint: String,
    pub target_endpoint: String,
    pub rules: CopyRuleArgs,
    /// RFC 3339 or `+DURATION` (see [`parse_time`]).
    pub start_after: Option<String>,
    pub autostart: bool,
    pub complete_after: Option<String>,
    pub target_mx: Option<String>,
    pub notify: Vec<String>,
    pub incremental_interval: std::time::Duration,
    pub completion_window: std::time::Duration,
}

impl From<&BatchCreateArgs> for BatchSpec {
    fn from(args: &BatchCreateArgs) -> Self {
        BatchSpec {
            name: args.name.clone(),
            source_endpoint: args.endpoint.clone(),
            target_endpoint: args.target_endpoint.clone(),
            rules: args.rules.clone(),
            start_after: args.start_after.clone(),
            autostart: args.autostart,
            complete_after: args.complete_after.clone(),
            target_mx: args.target_mx.clone(),
            notify: args.notify.clone(),
            incremental_interval: args.incremental_interval,
            completion_window: args.completion_window,
        }
    }
}

/// The batch `spec` describes, checked (name, times, folder rules) before any store is opened
/// or any CSV read; nothing stored yet.
pub fn new_batch(spec: &BatchSpec, now: DateTime<Utc>) -> Result<BatchRecord, CliError> {
    validate_batch_name(&spec.name).map_err(|e| CliError::Invalid(e.0))?;
    let start_after = match (&spec.start_after, spec.autostart) {
        (Some(text), _) => Some(parse_time("--start-after", text, now)?),
        (None, true) => Some(now),
        (None, false) => None,
    };
    let complete_after = spec
        .complete_after
        .as_deref()
        .map(|text| parse_time("--complete-after", text, now))
        .transpose()?;
    check_copy_rules(&spec.rules)?;
    Ok(BatchRecord {
        name: spec.name.clone(),
        source_endpoint: spec.source_endpoint.clone(),
        target_endpoint: spec.target_endpoint.clone(),
        include_folders: spec.rules.include_folders.clone(),
        exclude_folders: spec.rules.exclude_folders.clone(),
        received_after: spec.rules.received_after,
        max_message_size: spec.rules.max_message_size,
        mirror_deletions: spec.rules.mirror_deletions,
        notify: spec.notify.clone(),
        target_mx: spec.target_mx.clone(),
        policy: LifecyclePolicy {
            incremental_interval: spec.incremental_interval,
            completion_window: spec.completion_window,
        },
        created_at: now,
        start_after,
        complete_after,
        ..BatchRecord::default()
    })
}

/// Stores `batch` (from [`new_batch`]) with one user per CSV row, their passwords and the
/// endpoints' secrets sealed under the batch's scope; the users as stored.
pub async fn create(
    stores: &TenantStores,
    batch: &BatchRecord,
    rows: &[MigrationRow],
) -> Result<Vec<UserRecord>, CliError> {
    tenants::check_max_users(stores.control.as_ref(), &stores.tenant, rows.len()).await?;
    let source = records::endpoint(stores.state.as_ref(), &batch.source_endpoint).await?;
    records::endpoint(stores.state.as_ref(), &batch.target_endpoint).await?;
    check_user_roots(&source.endpoint, rows)?;
    if stores.state.batch(&batch.name).await?.is_some() {
        return Err(CliError::Conflict(format!(
            "a batch named {} exists already",
            batch.name
        )));
    }
    let scope = batch_scope(&batch.name);
    seal_row_passwords(stores.credentials.as_ref(), &scope, rows).await?;
    copy_endpoint_secrets(stores, &batch.source_endpoint, &scope, Side::Source).await?;
    copy_endpoint_secrets(stores, &batch.target_endpoint, &scope, Side::Target).await?;
    let users: Vec<UserRecord> = rows.iter().map(user_record).collect();
    stores.state.create_batch(batch, &users).await?;
    Ok(users)
}

async fn create_command(args: &BatchCreateArgs, settings: &Settings) -> Result<(), CliError> {
    let batch = new_batch(&BatchSpec::from(args), Utc::now())?;
    let rows = read_migration_csv(&args.csv)?;
    let stores = stores(settings, &args.state).await?;
    let users = create(&stores, &batch, &rows).await?;
    stores.audit_cli("batch.create", &batch.name).await?;
    print_created(&batch, users.len());
    Ok(())
}

/// What `batch create` prints, here or through the API.
pub fn print_created(batch: &BatchRecord, users: usize) {
    println!(
        "batch {} created with {users} users; {}",
        batch.name,
        match batch.start_after {
            Some(at) => format!("starts at {at}"),
            None => "start it with `mailfleet batch start`".to_owned(),
        }
    );
}

/// `batch complete`: when the batch names its target MX, the users' domains must point at it
/// (the MX switch is what completion means) unless `force`. Each domain's check goes to
/// `checked` as it is made, also when completion is then refused.
pub async fn complete(
    stores: &TenantStores,
    name: &str,
    force: bool,
    dns_server: Option<std::net::SocketAddr>,
    mut checked: impl FnMut(&MxCheck),
) -> Result<BatchRecord, CliError> {
    let batch = records::batch(stores.state.as_ref(), name).await?;
    if let Some(target_mx) = &batch.target_mx {
        let users = stores.state.users(&batch.name).await?;
        let domains: BTreeSet<String> = users
            .iter()
            .filter_map(|u| u.email.rsplit_once('@'))
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .collect();
        let mut not_switched = Vec::new();
        for domain in &domains {
            let check = mx_check::check(domain, Some(target_mx), dns_server).await?;
            checked(&check);
            if check.points_at_target != Some(true) {
                not_switched.push(domain.clone());
            }
        }
        if !not_switched.is_empty() && !force {
            return Err(CliError::Invalid(format!(
                "batch {}: the MX of {} does not point at {target_mx} yet; switch it first, or complete with --force",
                batch.name,
                not_switched.join(", ")
            )));
        }
    }
    match transition(stores, name, Command::Complete).await? {
        Transitioned::To(batch) => Ok(*batch),
        // Completing never removes; should it, the batch is gone.
        Transitioned::Removed(name) => Err(CliError::NotFound(format!("no batch named {name}"))),
    }
}

async fn complete_command(args: &CompleteArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    let batch = complete(
        &stores,
        &args.name,
        args.force,
        settings.dns_server,
        mx_check::print,
    )
    .await?;
    stores.audit_cli("batch.complete", &batch.name).await?;
    print_transitioned(&Transitioned::To(Box::new(batch)), Command::Complete);
    Ok(())
}

/// Where a lifecycle command left a batch.
#[derive(Debug)]
pub enum Transitioned {
    To(Box<BatchRecord>),
    /// `remove`: the batch, its users and its sealed passwords are gone.
    Removed(String),
}

/// Applies a lifecycle command (start, stop, resume, complete without the MX check, remove,
/// sync now) to the stored batch `name`.
pub async fn transition(
    stores: &TenantStores,
    name: &str,
    command: Command,
) -> Result<Transitioned, CliError> {
    // Re-applied to a fresh read if the service (or another command) wrote the batch between
    // our read and our write, so neither change is lost.
    let batch = records::update_batch(stores.state.as_ref(), name, |batch| {
        batch
            .apply(command, Utc::now())
            .map_err(|e| CliError::Conflict(e.0))
    })
    .await?;
    // Removing is stored first: nothing starts a Removing batch, and a removal cut short is
    // finished by running `batch remove` again.
    if batch.state == BatchState::Removing {
        stores.remove_batch(&batch.name).await?;
        return Ok(Transitioned::Removed(batch.name));
    }
    Ok(Transitioned::To(Box::new(batch)))
}

async fn transition_command(
    args: &NamedArgs,
    command: Command,
    settings: &Settings,
) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    let transitioned = transition(&stores, &args.name, command).await?;
    let (action, name) = match &transitioned {
        Transitioned::Removed(name) => ("batch.remove".to_owned(), name),
        Transitioned::To(batch) => (format!("batch.{command}"), &batch.name),
    };
    stores.audit_cli(&action, name).await?;
    print_transitioned(&transitioned, command);
    Ok(())
}

/// What lifecycle `command` prints, here or through the API: where it left the batch.
pub fn print_transitioned(transitioned: &Transitioned, command: Command) {
    match transitioned {
        Transitioned::Removed(name) => println!("batch {name} removed"),
        Transitioned::To(batch) if command == Command::Complete => println!(
            "batch {} is {}: syncing goes on until {}, then a final sync",
            batch.name,
            batch.state,
            batch
                .completion_deadline
                .map_or_else(String::new, display::time)
        ),
        Transitioned::To(batch) => println!("batch {} is {}", batch.name, batch.state),
    }
}

async fn list_command(args: &ListArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    print_list(&stores.state.batches().await?, args.json);
    Ok(())
}

/// What `batch list` prints, here or through the API.
pub fn print_list(batches: &[BatchRecord], json: bool) {
    if json {
        print_json(&batches);
        return;
    }
    for batch in batches {
        println!(
            "{:<24} {:<20} {} -> {}",
            batch.name, batch.state, batch.source_endpoint, batch.target_endpoint
        );
    }
}

/// The stored batch `name` and its users.
pub async fn status(
    stores: &TenantStores,
    name: &str,
) -> Result<(BatchRecord, Vec<UserRecord>), CliError> {
    let batch = records::batch(stores.state.as_ref(), name).await?;
    let users = stores.state.users(&batch.name).await?;
    Ok((batch, users))
}

async fn status_command(args: &NamedArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    let (batch, users) = status(&stores, &args.name).await?;
    print_status(&batch, &users, args.json);
    Ok(())
}

/// What `batch status` prints, here or through the API: the batch and every user.
pub fn print_status(batch: &BatchRecord, users: &[UserRecord], json: bool) {
    if json {
        print_json(&serde_json::json!({ "batch": batch, "users": users }));
        return;
    }
    println!("batch {}: {}", batch.name, batch.state);
    let time = |at: Option<DateTime<Utc>>| at.map_or_else(|| "-".to_owned(), display::time);
    println!(
        "  last sync finished: {}",
        time(batch.last_sync_finished_at)
    );
    println!("  next sync:          {}", time(batch.next_sync_at));
    if batch.completion_deadline.is_some() {
        println!(
            "  completion window ends: {}",
            time(batch.completion_deadline)
        );
    }
    for user in users {
        println!(
            "  {:<32} {:<22} synced {:>7}  skipped {:>4}  {}",
            user.email,
            user.state.to_string(),
            user.items_synced,
            user.items_skipped,
            user.errors.join("; ")
        );
    }
}

/// Adds one user per CSV row to the batch `name`; the users added.
pub async fn add_users(
    stores: &TenantStores,
    name: &str,
    rows: &[MigrationRow],
) -> Result<Vec<UserRecord>, CliError> {
    let batch = records::batch(stores.state.as_ref(), name).await?;
    if batch.is_finished() {
        return Err(CliError::Conflict(format!(
            "batch {} is {}; users can only be added before it completes",
            batch.name, batch.state
        )));
    }
    let source = records::endpoint(stores.state.as_ref(), &batch.source_endpoint).await?;
    check_user_roots(&source.endpoint, rows)?;
    tenants::check_max_users(stores.control.as_ref(), &stores.tenant, rows.len()).await?;
    let existing = stores.state.users(&batch.name).await?;
    if let Some(row) = rows.iter().find(|row| {
        existing
            .iter()
            .any(|u| u.email.eq_ignore_ascii_case(&row.email))
    }) {
        return Err(CliError::Conflict(format!(
            "line {}: {} is in batch {} already",
            row.line, row.email, batch.name
        )));
    }
    seal_row_passwords(stores.credentials.as_ref(), &batch_scope(&batch.name), rows).await?;
    let mut users: Vec<UserRecord> = rows.iter().map(user_record).collect();
    stores.state.put_users(&batch.name, &mut users).await?;
    // Users added after the initial sync get theirs with the next pass, which is now (a batch
    // not synced yet refuses sync-now and syncs them with the others).
    records::update_batch(stores.state.as_ref(), &batch.name, |batch| {
        let _ = batch.apply(Command::SyncNow, Utc::now());
        Ok(())
    })
    .await?;
    Ok(users)
}

async fn add_users_command(args: &AddUsersArgs, settings: &Settings) -> Result<(), CliError> {
    let rows = read_migration_csv(&args.csv)?;
    let stores = stores(settings, &args.state).await?;
    let users = add_users(&stores, &args.name, &rows).await?;
    stores.audit_cli("batch.add-users", &args.name).await?;
    println!("{} users added to batch {}", users.len(), args.name);
    Ok(())
}

fn user_record(row: &MigrationRow) -> UserRecord {
    UserRecord::queued(&row.email, &row.user_name, row.user_root.as_deref())
}

/// The batch keeps its own copy of an endpoint's admin password and OAuth2 secret, so workers
/// find every secret of a pass under the batch's scope; `side` is the endpoint's role in the
/// batch.
async fn copy_endpoint_secrets(
    stores: &TenantStores,
    endpoint: &str,
    scope: &str,
    side: Side,
) -> Result<(), CliError> {
    let credentials = stores.credentials.as_ref();
    let admin = match side {
        Side::Source => CredentialId::source_admin(scope),
        Side::Target => CredentialId::target_admin(scope),
    };
    let copies = [
        (
            admin,
            records::stored_admin_password(credentials, endpoint).await?,
        ),
        (
            CredentialId::oauth2(scope, side.name()),
            records::stored_oauth2_secret(credentials, endpoint).await?,
        ),
    ];
    for (id, secret) in copies {
        if let Some(secret) = secret {
            credentials.put(&id, &secret).await?;
        }
    }
    Ok(())
}

/// RFC 3339, or `+DURATION` from `now` (`+90s`, `+2h`).
pub fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
    let invalid = |why: String| CliError::Invalid(format!("{flag} {text:?}: {why}"));
    match text.strip_prefix('+') {
        Some(relative) => {
            let duration =
                humantime::parse_duration(relative).map_err(|e| invalid(e.to_string()))?;
            chrono::Duration::from_std(duration)
                .map(|d| now + d)
                .map_err(|e| invalid(e.to_string()))
        }
        None => DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| {
                invalid(format!(
                    "{e}; use RFC 3339 (2026-12-01T22:00:00Z) or +DURATION"
                ))
            }),
    }
}
