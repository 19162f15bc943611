//! One module per command of the `mailfleet` binary. Each imports only from below (the
//! `cli` arguments, `input`, `records`, `backends`, `run`, `service`, `observe`), never from
//! another command, so a command can be read — and changed — on its own.

pub mod batch;
pub mod config;
pub mod dns;
pub mod endpoint;
pub mod migrate;
pub mod report;
pub mod serve;
pub mod verify;
pub mod worker;

use std::process::ExitCode;

use crate::cli::Command;
use crate::cli::admin::{DnsCommand, ReportCommand};
use crate::error::CliError;
use crate::service;
use crate::settings::Settings;
use crate::shutdown::StopSignal;

/// Runs `command`; the exit status scripts rely on (0 done, 1 some users failed or a check
/// did not pass, 2 invalid input, 130 stopped by a signal).
pub async fn dispatch(command: &Command, settings: &Settings) -> Result<ExitCode, CliError> {
    let stop = || StopSignal::on_sigterm_or_ctrl_c(settings.shutdown_grace());
    match command {
        Command::Migrate(args) => migrate::run(&args.run, args.workers, settings, &stop()).await,
        Command::Coordinator(args) => migrate::run(args, 0, settings, &stop()).await,
        Command::Worker(_) => worker::run(settings, &stop())
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Run(args) => service::run(args, settings, &stop())
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args, settings, &stop())
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Config => config::run(settings),
        Command::Endpoint { command } => endpoint::run(command, settings).await,
        Command::Batch { command } => batch::run(command, settings)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Report {
            command: ReportCommand::Users(args),
        } => report::run(args, settings)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify::run(args, settings).await,
        Command::Dns {
            command: DnsCommand::Check(args),
        } => dns::run(args, settings).await,
    }
}

/// `value` as pretty JSON on stdout: what every `--json` flag prints.
fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
