//! `mailfleet batch …`: create a batch from a migration CSV, move it through its lifecycle,
//! look at it. These commands only change the state store; `mailfleet run` on the same state
//! dir notices and does the syncing.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use mailfleet_shared::credentials::CredentialId;
use mailfleet_shared::lifecycle::{
    BatchCommand as Command, BatchRecord, BatchState, LifecyclePolicy, UserRecord,
    validate_batch_name,
};
use mailfleet_shared::migration_csv::MigrationRow;
use mailfleet_shared::state::batch_scope;
use mailfleet_worker::job::Side;

use super::print_json;
use crate::backends::{AdminStores, open_admin};
use crate::cli::admin::{AddUsersArgs, BatchCommand, BatchCreateArgs, CompleteArgs};
use crate::cli::args::{ListArgs, NamedArgs};
use crate::error::CliError;
use crate::input::{check_copy_rules, check_user_roots, read_migration_csv, seal_row_passwords};
use crate::records;
use crate::service::mx_check;
use crate::settings::Settings;
use crate::tenants;

pub async fn run(command: &BatchCommand, settings: &Settings) -> Result<(), CliError> {
    match command {
        BatchCommand::Create(args) => create(args, settings).await,
        BatchCommand::Start(args) => transition(args, Command::Start, settings).await,
        BatchCommand::Stop(args) => transition(args, Command::Stop, settings).await,
        BatchCommand::Resume(args) => transition(args, Command::Resume, settings).await,
        BatchCommand::Complete(args) => complete(args, settings).await,
        BatchCommand::Remove(args) => transition(args, Command::Remove, settings).await,
        BatchCommand::SyncNow(args) => transition(args, Command::SyncNow, settings).await,
        BatchCommand::List(args) => list(args, settings).await,
        BatchCommand::Status(args) => status(args, settings).await,
        BatchCommand::AddUsers(args) => add_users(args, settings).await,
    }
}

async fn create(args: &BatchCreateArgs, settings: &Settings) -> Result<(), CliError> {
    validate_batch_name(&args.name).map_err(|e| CliError::Invalid(e.0))?;
    let now = Utc::now();
    let start_after = match (&args.start_after, args.autostart) {
        (Some(text), _) => Some(parse_time("--start-after", text, now)?),
        (None, true) => Some(now),
        (None, false) => None,
    };
    let complete_after = args
        .complete_after
        .as_deref()
        .map(|text| parse_time("--complete-after", text, now))
        .transpose()?;
    check_copy_rules(&args.rules)?;
    let rows = read_migration_csv(&args.csv)?;
    let stores = open_admin(settings, &args.state.state_dir).await?;
    tenants::check_max_users(stores.control.as_ref(), &stores.tenant, rows.len()).await?;
    let source = records::endpoint(stores.state.as_ref(), &args.endpoint).await?;
    records::endpoint(stores.state.as_ref(), &args.target_endpoint).await?;
    check_user_roots(&source.endpoint, &rows)?;
    if stores.state.batch(&args.name).await?.is_some() {
        return Err(CliError::Invalid(format!(
            "a batch named {} exists already",
            args.name
        )));
    }
    let scope = batch_scope(&args.name);
    seal_row_passwords(stores.credentials.as_ref(), &scope, &rows).await?;
    copy_endpoint_secrets(&stores, &args.endpoint, &scope, Side::Source).await?;
    copy_endpoint_secrets(&stores, &args.target_endpoint, &scope, Side::Target).await?;
    let batch = BatchRecord {
        name: args.name.clone(),
        source_endpoint: args.endpoint.clone(),
        target_endpoint: args.target_endpoint.clone(),
        include_folders: args.rules.include_folders.clone(),
        exclude_folders: args.rules.exclude_folders.clone(),
        received_after: args.rules.received_after,
        max_message_size: args.rules.max_message_size,
        mirror_deletions: args.rules.mirror_deletions,
        notify: args.notify.clone(),
        target_mx: args.target_mx.clone(),
        policy: LifecyclePolicy {
            incremental_interval: args.incremental_interval,
            completion_window: args.completion_window,
        },
        created_at: now,
        start_after,
        complete_after,
        ..BatchRecord::default()
    };
    let users: Vec<UserRecord> = rows.iter().map(user_record).collect();
    stores.state.create_batch(&batch, &users).await?;
    stores.audit("batch.create", &batch.name).await?;
    println!(
        "batch {} created with {} users; {}",
        batch.name,
        users.len(),
        match batch.start_after {
            Some(at) => format!("starts at {at}"),
            None => "start it with `mailfleet batch start`".to_owned(),
        }
    );
    Ok(())
}

/// `batch complete`: when the batch names its target MX, the users' domains must point at it
/// (the MX switch is what completion means) unless `--force`.
async fn complete(args: &CompleteArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    let batch = records::batch(stores.state.as_ref(), &args.name).await?;
    if let Some(target_mx) = &batch.target_mx {
        let users = stores.state.users(&batch.name).await?;
        let domains: BTreeSet<String> = users
            .iter()
            .filter_map(|u| u.email.rsplit_once('@'))
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .collect();
        let mut not_switched = Vec::new();
        for domain in &domains {
            let check = mx_check::check(domain, Some(target_mx), settings.dns_server).await?;
            mx_check::print(&check);
            if check.points_at_target != Some(true) {
                not_switched.push(domain.clone());
            }
        }
        if !not_switched.is_empty() && !args.force {
            return Err(CliError::Invalid(format!(
                "batch {}: the MX of {} does not point at {target_mx} yet; switch it first, or complete with --force",
                batch.name,
                not_switched.join(", ")
            )));
        }
    }
    let named = NamedArgs {
        name: args.name.clone(),
        json: false,
        state: args.state.clone(),
    };
    transition(&named, Command::Complete, settings).await
}

async fn transition(
    args: &NamedArgs,
    command: Command,
    settings: &Settings,
) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    // Re-applied to a fresh read if the service (or another command) wrote the batch between
    // our read and our write, so neither change is lost.
    let batch = records::update_batch(stores.state.as_ref(), &args.name, |batch| {
        batch
            .apply(command, Utc::now())
            .map_err(|e| CliError::Invalid(e.0))
    })
    .await?;
    // Removing is stored first: nothing starts a Removing batch, and a removal cut short is
    // finished by running `batch remove` again.
    if batch.state == BatchState::Removing {
        stores
            .credentials
            .remove_scope(&batch_scope(&batch.name))
            .await?;
        stores.state.remove_batch(&batch.name).await?;
        stores.audit("batch.remove", &batch.name).await?;
        println!("batch {} removed", batch.name);
        return Ok(());
    }
    stores
        .audit(&format!("batch.{command}"), &batch.name)
        .await?;
    match command {
        Command::Complete => println!(
            "batch {} is {}: syncing goes on until {}, then a final sync",
            batch.name,
            batch.state,
            batch
                .completion_deadline
                .map_or_else(String::new, |at| at.to_rfc3339())
        ),
        _ => println!("batch {} is {}", batch.name, batch.state),
    }
    Ok(())
}

async fn list(args: &ListArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    let batches = stores.state.batches().await?;
    if args.json {
        print_json(&batches);
        return Ok(());
    }
    for batch in &batches {
        println!(
            "{:<24} {:<20} {} -> {}",
            batch.name, batch.state, batch.source_endpoint, batch.target_endpoint
        );
    }
    Ok(())
}

async fn status(args: &NamedArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    let batch = records::batch(stores.state.as_ref(), &args.name).await?;
    let users = stores.state.users(&batch.name).await?;
    if args.json {
        print_json(&serde_json::json!({ "batch": batch, "users": users }));
        return Ok(());
    }
    println!("batch {}: {}", batch.name, batch.state);
    let time = |at: Option<DateTime<Utc>>| at.map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
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
    for user in &users {
        println!(
            "  {:<32} {:<22} synced {:>7}  skipped {:>4}  {}",
            user.email,
            user.state.to_string(),
            user.items_synced,
            user.items_skipped,
            user.errors.join("; ")
        );
    }
    Ok(())
}

async fn add_users(args: &AddUsersArgs, settings: &Settings) -> Result<(), CliError> {
    let rows = read_migration_csv(&args.csv)?;
    let stores = open_admin(settings, &args.state.state_dir).await?;
    let batch = records::batch(stores.state.as_ref(), &args.name).await?;
    if batch.is_finished() {
        return Err(CliError::Invalid(format!(
            "batch {} is {}; users can only be added before it completes",
            batch.name, batch.state
        )));
    }
    let source = records::endpoint(stores.state.as_ref(), &batch.source_endpoint).await?;
    check_user_roots(&source.endpoint, &rows)?;
    tenants::check_max_users(stores.control.as_ref(), &stores.tenant, rows.len()).await?;
    let existing = stores.state.users(&batch.name).await?;
    if let Some(row) = rows.iter().find(|row| {
        existing
            .iter()
            .any(|u| u.email.eq_ignore_ascii_case(&row.email))
    }) {
        return Err(CliError::Invalid(format!(
            "line {}: {} is in batch {} already",
            row.line, row.email, batch.name
        )));
    }
    seal_row_passwords(
        stores.credentials.as_ref(),
        &batch_scope(&batch.name),
        &rows,
    )
    .await?;
    let mut users: Vec<UserRecord> = rows.iter().map(user_record).collect();
    stores.state.put_users(&batch.name, &mut users).await?;
    stores.audit("batch.add-users", &batch.name).await?;
    // Users added after the initial sync get theirs with the next pass, which is now (a batch
    // not synced yet refuses sync-now and syncs them with the others).
    records::update_batch(stores.state.as_ref(), &batch.name, |batch| {
        let _ = batch.apply(Command::SyncNow, Utc::now());
        Ok(())
    })
    .await?;
    println!("{} users added to batch {}", users.len(), batch.name);
    Ok(())
}

fn user_record(row: &MigrationRow) -> UserRecord {
    UserRecord::queued(&row.email, &row.user_name, row.user_root.as_deref())
}

/// The batch keeps its own copy of an endpoint's admin password and OAuth2 secret, so workers
/// find every secret of a pass under the batch's scope; `side` is the endpoint's role in the
/// batch.
async fn copy_endpoint_secrets(
    stores: &AdminStores,
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
fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
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
