//! `mailfleet migrate` and `mailfleet coordinator`: one migration run of a CSV, with collector
//! (and for `migrate`, workers) in this process — on the embedded backends (in-process queue,
//! SQLite) by default, or on RabbitMQ and Redis (see [`crate::backends`]).
//!
//! The run is the distributed flow in miniature: one `DiscoverUser` task per CSV row, folder tasks
//! published by discovery, reports aggregated by the [`Collector`]. Re-running with the same
//! state dir resumes from checkpoints; with a fresh one the fingerprint guard still prevents
//! duplicates.

use std::path::Path;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::endpoint::{AdminLogin, Endpoint};
use mailfleet_shared::folder_filter::FolderFilter;
use mailfleet_shared::job_spec::JobSpec;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::migration_csv::{MigrationRow, parse_migration_csv};
use mailfleet_worker::Job;
use secrecy::SecretString;

use crate::backends::{self, Backends};
use crate::cli::RunArgs;
use crate::collector::UserResult;
use crate::error::CliError;
use crate::pass::{Concurrency, Observers, run_pass};
use crate::progress::TerminalProgress;
use crate::settings::Settings;
use crate::status::StatusBoard;

/// Everything `migrate` needs, validated before anything starts (invalid input → exit 2).
struct Plan {
    rows: Vec<MigrationRow>,
    source: Endpoint,
    target: Endpoint,
    source_admin_password: Option<SecretString>,
    target_admin_password: Option<SecretString>,
}

/// Runs the CSV of `args` to the end with `workers` task loops in this process (0: a
/// coordinator only, for `mailfleet worker` processes elsewhere).
pub async fn run(
    args: &RunArgs,
    workers: usize,
    settings: &Settings,
) -> Result<Vec<UserResult>, CliError> {
    let plan = validate(args)?;
    if workers == 0 {
        settings.require_fleet("a coordinator without local workers")?;
    }
    let backends = backends::open(settings, &args.state_dir, workers).await?;
    let board = StatusBoard::start(settings, backends.dead_letters.as_ref()).await?;
    let Backends {
        queue,
        checkpoints,
        credentials,
        dead_letters: _reported_by_the_board,
        job_specs,
        state_dir_lock: _held_for_the_run,
    } = backends;
    let spec = JobSpec {
        // Checkpoints of one source/target pair never shortcut a run between two other servers.
        batch: format!("migrate:{}>{}", plan.source.url(), plan.target.url()),
        source: plan.source.clone(),
        target: plan.target.clone(),
        include_folders: args.include_folders.clone(),
        exclude_folders: args.exclude_folders.clone(),
        max_message_size: args.max_message_size,
        folder_part_messages: args.folder_part_messages,
        received_after: args.received_after,
    };
    let batch = spec.batch.clone();
    store_credentials(credentials.as_ref(), &batch, &plan).await?;
    if let Some(job_specs) = &job_specs {
        job_specs.put_job_spec(&spec).await?;
    }

    let progress = Arc::new(TerminalProgress::new(!args.json));
    let job = Job::from_spec(
        spec,
        checkpoints,
        credentials.clone(),
        settings.tuning(),
        progress.clone(),
    )
    .map_err(|e| CliError::Invalid(e.to_string()))?;
    let users: Vec<MailboxUser> = plan.rows.iter().map(MigrationRow::mailbox_user).collect();
    let results = run_pass(
        Arc::new(job),
        queue.clone(),
        &users,
        Concurrency {
            workers,
            max_concurrent_users: args.max_concurrent_migrations,
        },
        Observers {
            progress: &progress,
            board: &board,
            finished_users: None,
        },
    )
    .await;
    queue.close();
    // Passwords are needed only while the run lasts.
    credentials.remove_scope(&batch).await?;
    results
}

fn validate(args: &RunArgs) -> Result<Plan, CliError> {
    let rows = read_migration_csv(&args.csv)?;
    let mut source = parse_endpoint("--source", &args.source)?;
    let mut target = parse_endpoint("--target", &args.target)?;
    source.admin = admin_login(
        args.source_admin.source_admin.as_deref(),
        args.source_admin.source_admin_format.as_deref(),
    )?;
    target.admin = admin_login(
        args.target_admin.target_admin.as_deref(),
        args.target_admin.target_admin_format.as_deref(),
    )?;
    check_user_roots(&source, &rows)?;
    // Checked now so that a bad rule stops the run before it starts.
    FolderFilter::new(&args.include_folders, &args.exclude_folders)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    Ok(Plan {
        source_admin_password: admin_password(&source, "MAILFLEET_SOURCE_ADMIN_PASSWORD")?,
        target_admin_password: admin_password(&target, "MAILFLEET_TARGET_ADMIN_PASSWORD")?,
        rows,
        source,
        target,
    })
}

/// Reads and validates a migration CSV; every error with its line number (exit 2).
pub fn read_migration_csv(path: &Path) -> Result<Vec<MigrationRow>, CliError> {
    let bytes = read_csv(path)?;
    parse_migration_csv(&bytes).map_err(|errors| CliError::InvalidCsv {
        path: path.display().to_string(),
        errors,
    })
}

/// The courier admin format reaches each user's folders through the CSV's UserRoot.
pub fn check_user_roots(source: &Endpoint, rows: &[MigrationRow]) -> Result<(), CliError> {
    if source
        .admin
        .as_ref()
        .is_some_and(|a| a.format.needs_user_root())
        && let Some(row) = rows.iter().find(|r| r.user_root.is_none())
    {
        return Err(CliError::Invalid(format!(
            "line {}: {} has no UserRoot, which the courier admin format needs",
            row.line, row.email
        )));
    }
    Ok(())
}

fn read_csv(path: &Path) -> Result<Vec<u8>, CliError> {
    let size = std::fs::metadata(path)
        .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", path.display())))?
        .len();
    if size > mailfleet_shared::migration_csv::MAX_BYTES as u64 {
        return Err(CliError::Invalid(format!(
            "{}: the file is {size} bytes; a migration CSV may have at most 10 MB",
            path.display()
        )));
    }
    std::fs::read(path)
        .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", path.display())))
}

pub fn parse_endpoint(flag: &str, url: &str) -> Result<Endpoint, CliError> {
    Endpoint::from_url(url).map_err(|e| CliError::Invalid(format!("{flag}: {e}")))
}

pub fn admin_login(
    user: Option<&str>,
    format: Option<&str>,
) -> Result<Option<AdminLogin>, CliError> {
    match (user, format) {
        (Some(user), Some(format)) => Ok(Some(AdminLogin {
            user: user.to_owned(),
            format: format
                .parse()
                .map_err(|e| CliError::Invalid(format!("admin format: {e}")))?,
        })),
        _ => Ok(None),
    }
}

/// The admin password comes from the environment only, so it never shows in `ps` or shell history.
pub fn admin_password(
    endpoint: &Endpoint,
    variable: &str,
) -> Result<Option<SecretString>, CliError> {
    if endpoint.admin.is_none() {
        return Ok(None);
    }
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
        _ => Err(CliError::Invalid(format!(
            "an admin login needs its password in {variable}"
        ))),
    }
}

/// Seals the CSV's passwords and the admin passwords under the run's scope.
async fn store_credentials(
    store: &dyn CredentialStore,
    batch: &str,
    plan: &Plan,
) -> Result<(), CliError> {
    let users = plan
        .rows
        .iter()
        .map(|row| (CredentialId::user(batch, &row.email), &row.password));
    let admins = [
        (
            CredentialId::source_admin(batch),
            &plan.source_admin_password,
        ),
        (
            CredentialId::target_admin(batch),
            &plan.target_admin_password,
        ),
    ]
    .into_iter()
    .filter_map(|(id, password)| Some((id, password.as_ref()?)));
    seal_passwords(store, users.chain(admins)).await
}

/// Seals every password into the store. Many puts are in flight at once: with Redis they
/// travel pipelined on one connection, which turns a 50,000-row CSV from 50,000 round trips
/// into a few hundred.
pub async fn seal_passwords<'a>(
    store: &dyn CredentialStore,
    passwords: impl Iterator<Item = (CredentialId, &'a SecretString)>,
) -> Result<(), CliError> {
    futures_util::stream::iter(passwords)
        .map(|(id, password)| async move { store.put(&id, password).await })
        .buffer_unordered(PUTS_IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    Ok(())
}

/// Credential writes in flight at once while a run is planned.
const PUTS_IN_FLIGHT: usize = 256;
