//! The `mailfleet` binary: parse the command line, set up logging, run, exit with a status that
//! scripts can rely on (0 all users completed, 1 some failed, 2 invalid input).
//!
//! # Layout
//! - `cli`: the clap command line; `backends`: embedded or RabbitMQ/Redis, chosen in one place.
//! - `migrate`: `mailfleet migrate` in embedded mode (in-process queue, SQLite state).
//! - `admission`: at most N users in flight.
//! - `collector`: reports → per-user results; `summary`: printing them; `progress`: terminal bars.
//! - `endpoint_test`: `mailfleet endpoint test`; `worker_cmd`: `mailfleet worker`.

mod admission;
mod backends;
mod cli;
mod collector;
mod endpoint_test;
mod error;
mod migrate;
mod progress;
mod summary;
mod worker_cmd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, EndpointCommand};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mailfleet: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(&cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mailfleet: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn init_logging(cli: &Cli) {
    let filter = EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn dispatch(command: &Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Migrate(args) => {
            let results = migrate::run(args).await?;
            let printed = if args.json {
                summary::print_json(&results)
            } else {
                summary::print_human(&results)
            };
            printed.map_err(|e| CliError::State(format!("cannot print results: {e}")))?;
            let all_completed = results.iter().all(|r| r.status.is_success());
            Ok(ExitCode::from(if all_completed { 0 } else { 1 }))
        }
        Command::Worker(args) => {
            worker_cmd::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Endpoint {
            command: EndpointCommand::Test(args),
        } => {
            let checks = endpoint_test::run(args).await?;
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
            Ok(ExitCode::from(if checks.iter().all(|c| c.ok) {
                0
            } else {
                1
            }))
        }
    }
}
