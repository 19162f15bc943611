//! `mailfleet --api URL …`: the `endpoint`, `batch`, `report` and `verify` commands run on a
//! `mailfleet serve` elsewhere, through its HTTP API (ARCHITECTURE.md, "The service and its
//! API"), instead of on this machine's stores.
//!
//! Each subcommand maps to its route; the API's own request and answer types (`api`) are
//! sent and read, and the answer is printed by the function the local command prints with, so
//! the output (and `--json`) is the same wherever the command ran. A problem+json answer
//! becomes the error the local command would exit with ([`problem`]). A command the API has no
//! route for says so rather than quietly running here.

mod batch;
mod client;
mod endpoint;
mod problem;

pub use client::{ApiClient, TOKEN_VARIABLE};

use std::process::ExitCode;

use reqwest::Method;

use crate::api::Verification;
use crate::cli::Command;
use crate::cli::admin::{ReportCommand, ReportUsersArgs, VerifyArgs};
use crate::commands::{report, verify};
use crate::error::CliError;

/// Runs `command` through the API behind `api`.
pub async fn run(command: &Command, api: &ApiClient) -> Result<ExitCode, CliError> {
    match command {
        Command::Endpoint { command } => endpoint::run(command, api).await,
        Command::Batch { command } => batch::run(command, api).await.map(|()| ExitCode::SUCCESS),
        Command::Report {
            command: ReportCommand::Users(args),
        } => report_users(args, api).await.map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify(args, api).await,
        Command::Migrate(_)
        | Command::Coordinator(_)
        | Command::Worker(_)
        | Command::Config
        | Command::Run(_)
        | Command::Serve(_)
        | Command::Dns { .. }
        | Command::Tenant { .. }
        | Command::Token { .. } => Err(CliError::Invalid(
            "--api (or MAILFLEET_API) only applies to the endpoint, batch, report and verify \
             commands; this one runs on this machine: drop --api or unset MAILFLEET_API"
                .into(),
        )),
    }
}

/// The error of a command (or an option of one) the API has no route for.
fn not_available(what: &str, instead: &str) -> CliError {
    CliError::Invalid(format!(
        "{what} is not available with --api: the API has no route for it; {instead}"
    ))
}

async fn report_users(args: &ReportUsersArgs, api: &ApiClient) -> Result<(), CliError> {
    let request = api
        .request(Method::GET, &["batches", &args.batch, "report"])
        .query(&[("format", args.format.name())]);
    let text = api.text(request).await?;
    report::write(&text, args.output.as_deref())
}

async fn verify(args: &VerifyArgs, api: &ApiClient) -> Result<ExitCode, CliError> {
    let mut request = api.request(Method::POST, &["batches", &args.batch, "verify"]);
    if let Some(user) = &args.user {
        request = request.query(&[("user", user)]);
    }
    let verification: Verification = api.json(request).await?;
    Ok(verify::print_verified(
        &verification.batch,
        &verification.users,
        args.json,
    ))
}
