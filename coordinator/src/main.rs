//! The `mailfleet` binary: parse the command line, set up logging, run, exit with a status that
//! scripts can rely on (0 all users completed, 1 some failed, 2 invalid input).
//!
//! # Layout
//! - `cli`: the clap command line; `backends`: embedded or RabbitMQ/Redis, chosen in one place.
//! - `migrate`: one run of a CSV — `mailfleet migrate` (embedded or distributed) and
//!   `mailfleet coordinator` (the same without local workers).
//! - `admission`: at most N users in flight.
//! - `collector`: reports → per-user results; `summary`: printing them; `progress`: terminal bars.
//! - `endpoint_test`: `mailfleet endpoint test`; `worker_cmd`: `mailfleet worker`.
//! - `settings`: mailfleet.toml + `MAILFLEET_*` + flags; `telemetry`: logs and metrics
//!   registry; `http`: /metrics, /status, /healthz; `status`: what /status and gauges show.

mod admission;
mod backends;
mod batches;
mod cli;
mod collector;
mod dns_check;
mod endpoint_test;
mod endpoints;
mod error;
mod http;
mod migrate;
mod notify;
mod pass;
mod progress;
mod service;
mod service_cli;
mod settings;
mod signals;
mod status;
mod summary;
mod telemetry;
mod users_report;
mod verify_cmd;
mod worker_cmd;

use std::process::ExitCode;

use clap::Parser;
use tracing::Instrument;

use crate::cli::{Cli, Command};
use crate::collector::UserResult;
use crate::error::CliError;
use crate::service_cli::{DnsCommand, EndpointCommand, ReportCommand};
use crate::settings::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = Settings::load(cli.config.as_deref())
        .map(|settings| settings.overridden_by(cli.flag_settings()))
        .and_then(|settings| {
            let guard = telemetry::init(&settings, cli.command.service_name())?;
            Ok((settings, guard))
        });
    // Dropped last, after the runtime: flushes the traces of the whole run.
    let (settings, _telemetry) = match started {
        Ok(started) => started,
        Err(error) => {
            eprintln!("mailfleet: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mailfleet: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(&cli.command, &settings)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mailfleet: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn dispatch(command: &Command, settings: &Settings) -> Result<ExitCode, CliError> {
    match command {
        Command::Migrate(args) => {
            let span = tracing::info_span!("migrate", csv = %args.run.csv.display(), workers = args.workers);
            let results = migrate::run(&args.run, args.workers, settings)
                .instrument(span)
                .await?;
            finish_run(&results, args.run.json)
        }
        Command::Coordinator(args) => {
            let span = tracing::info_span!("coordinate", csv = %args.csv.display());
            let results = migrate::run(args, 0, settings).instrument(span).await?;
            finish_run(&results, args.json)
        }
        Command::Config => {
            backends::check(settings)?;
            for (key, value) in settings.describe() {
                match value {
                    Some(value) => println!("{key} = {value}"),
                    None => println!("# {key} (unset)"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(_) => {
            worker_cmd::run(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Endpoint { command } => endpoint(command, settings).await,
        Command::Batch { command } => {
            batches::run(command, settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            service::run(args, settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => verify_cmd::run(args, settings).await,
        Command::Dns {
            command: DnsCommand::Check(args),
        } => {
            let check =
                dns_check::check(&args.domain, args.expect_mx.as_deref(), settings.dns_server)
                    .await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&check).unwrap_or_default()
                );
            } else {
                dns_check::print(&check);
            }
            Ok(ExitCode::from(u8::from(
                check.points_at_target == Some(false),
            )))
        }
        Command::Report {
            command: ReportCommand::Users(args),
        } => {
            users_report::run(args, settings).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn endpoint(command: &EndpointCommand, settings: &Settings) -> Result<ExitCode, CliError> {
    match command {
        EndpointCommand::Create(args) => endpoints::create(args, settings).await?,
        EndpointCommand::List(args) => endpoints::list(args, settings).await?,
        EndpointCommand::Show(args) => endpoints::show(args, settings).await?,
        EndpointCommand::Remove(args) => endpoints::remove(args, settings).await?,
        EndpointCommand::Test(args) => {
            let checks = endpoint_test::run(args, settings).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&checks).unwrap_or_default()
                );
            } else {
                for c in &checks {
                    println!(
                        "{} {}: {}",
                        if c.ok { "ok  " } else { "FAIL" },
                        c.check,
                        c.detail
                    );
                }
            }
            return Ok(ExitCode::from(if checks.iter().all(|c| c.ok) {
                0
            } else {
                1
            }));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a run's results; exit 0 when every user completed, 1 otherwise.
fn finish_run(results: &[UserResult], json: bool) -> Result<ExitCode, CliError> {
    let printed = if json {
        summary::print_json(results)
    } else {
        summary::print_human(results)
    };
    printed.map_err(|e| CliError::State(format!("cannot print results: {e}")))?;
    let all_completed = results.iter().all(|r| r.status.is_success());
    Ok(ExitCode::from(if all_completed { 0 } else { 1 }))
}
