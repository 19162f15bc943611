//! `mailfleet migrate` and `mailfleet coordinator`: one migration run of a CSV, with collector
//! (and for `migrate`, workers) in this process — on the embedded backends (in-process queue,
//! SQLite) by default, or on RabbitMQ and Redis (see [`crate::backends`]). Exit 0 when every
//! user completed, 1 when some failed, 2 on invalid input, 130 when stopped by a signal.
//!
//! The run is the distributed flow in miniature: one `DiscoverUser` task per CSV row, folder tasks
//! published by discovery, reports aggregated by the [`Collector`]. Re-running with the same
//! state dir resumes from checkpoints; with a fresh one the fingerprint guard still prevents
//! duplicates.

use std::process::ExitCode;
use std::sync::Arc;

use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::job_spec::JobSpec;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::migration_csv::MigrationRow;
use mailfleet_worker::Job;
use tracing::Instrument;

use crate::backends::{self, Backends};
use crate::cli::run::RunArgs;
use crate::error::CliError;
use crate::input::{self, ServerInput};
use crate::observe;
use crate::run::progress::TerminalProgress;
use crate::run::{Concurrency, Observers, UserResult, dead_letters, run_pass, summary};
use crate::settings::Settings;
use crate::shutdown::StopSignal;

/// Everything `migrate` needs, validated before anything starts (invalid input → exit 2).
struct Plan {
    rows: Vec<MigrationRow>,
    source: ServerInput,
    target: ServerInput,
}

/// Runs the CSV of `args` to the end with `workers` task loops in this process (0: a
/// coordinator only, for `mailfleet worker` processes elsewhere), then prints the results.
pub async fn run(
    args: &RunArgs,
    workers: usize,
    settings: &Settings,
    stop: &StopSignal,
) -> Result<ExitCode, CliError> {
    let span = tracing::info_span!("migrate", csv = %args.csv.display(), workers);
    let results = migrate(args, workers, settings, stop)
        .instrument(span)
        .await?;
    let printed = if args.json {
        summary::print_json(&results)
    } else {
        summary::print_human(&results)
    };
    printed.map_err(|e| CliError::failed("printing the results", e))?;
    let all_completed = results.iter().all(|r| r.status.is_success());
    Ok(ExitCode::from(if all_completed { 0 } else { 1 }))
}

async fn migrate(
    args: &RunArgs,
    workers: usize,
    settings: &Settings,
    stop: &StopSignal,
) -> Result<Vec<UserResult>, CliError> {
    let plan = Plan::validate(args)?;
    if workers == 0 {
        settings.require_fleet("a coordinator without local workers")?;
    }
    let backends = backends::open(settings, &args.state_dir, workers).await?;
    let board = observe::status_board(settings, backends.dead_letters.as_ref()).await?;
    if let Some(broker) = &backends.dead_letters {
        dead_letters::report_as_failures(broker.clone());
    }
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
        batch: format!(
            "migrate:{}>{}",
            plan.source.endpoint.url(),
            plan.target.endpoint.url()
        ),
        source: plan.source.endpoint.clone(),
        target: plan.target.endpoint.clone(),
        include_folders: args.rules.include_folders.clone(),
        exclude_folders: args.rules.exclude_folders.clone(),
        max_message_size: args.rules.max_message_size,
        folder_part_messages: args.folder_part_messages,
        received_after: args.rules.received_after,
        mirror_deletions: args.rules.mirror_deletions,
        target_profile: args.target_profile.resolve(&plan.target.endpoint),
    };
    let batch = spec.batch.clone();
    plan.seal_passwords(credentials.as_ref(), &batch).await?;
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
        stop,
    )
    .await;
    queue.close();
    // Passwords are needed only while the run lasts. An interrupted run has not ended: its
    // tasks may still be in the broker, and the same command resumes it.
    if !matches!(results, Err(CliError::Interrupted)) {
        remove_run_passwords(credentials.as_ref(), &batch).await;
    }
    results
}

/// Removes the run's sealed passwords once its users are done. A store whose server restarted
/// during the run (a Redis restart) answers the first command on the dropped connection with
/// an error while it reconnects, so an `Unavailable` answer is tried again, a second apart. If
/// it still fails, the users' results stand (they are what the run was for) and the error is
/// logged: the passwords stay sealed under the run's scope, and the next run between the same
/// servers seals them again and removes them.
async fn remove_run_passwords(credentials: &dyn CredentialStore, scope: &str) {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match credentials.remove_scope(scope).await {
            Ok(()) => return,
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => {
                tracing::error!(%error, "the run's sealed passwords could not be removed");
                return;
            }
        }
    }
}

impl Plan {
    fn validate(args: &RunArgs) -> Result<Plan, CliError> {
        let rows = input::read_migration_csv(&args.csv)?;
        let source = input::source_server(&args.source, &args.source_admin, &args.source_oauth2)?;
        let target = input::target_server(&args.target, &args.target_admin, &args.target_oauth2)?;
        input::check_user_roots(&source.endpoint, &rows)?;
        input::check_copy_rules(&args.rules)?;
        Ok(Plan {
            rows,
            source,
            target,
        })
    }

    /// Seals the CSV's passwords, the admin passwords and the OAuth2 secrets under the run's
    /// scope.
    async fn seal_passwords(
        &self,
        store: &dyn CredentialStore,
        scope: &str,
    ) -> Result<(), CliError> {
        input::seal_row_passwords(store, scope, &self.rows).await?;
        let servers = [
            (&self.source, "source", CredentialId::source_admin(scope)),
            (&self.target, "target", CredentialId::target_admin(scope)),
        ];
        let secrets = servers.into_iter().flat_map(|(server, side, admin)| {
            [
                (admin, server.admin_password.as_ref()),
                (
                    CredentialId::oauth2(scope, side),
                    server.oauth2_secret.as_ref(),
                ),
            ]
        });
        input::seal_passwords(
            store,
            secrets.filter_map(|(id, secret)| Some((id, secret?))),
        )
        .await
    }
}
