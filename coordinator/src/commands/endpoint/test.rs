//! `mailfleet endpoint test`: can we reach the server, and do these logins work?
//!
//! Answers in plain words, one line per check, so an admin can fix a firewall, a certificate or
//! an admin login format before starting a batch.

use std::process::ExitCode;
use std::time::Duration;

use mailfleet_shared::endpoint::Endpoint;
use mailfleet_worker::imap::connect::{connect, probe};
use secrecy::SecretString;
use serde::Serialize;

use crate::backends::open_admin;
use crate::cli::admin::EndpointTestArgs;
use crate::commands::print_json;
use crate::error::CliError;
use crate::settings::Settings;
use crate::{input, records};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// The endpoint to test and its admin password: a stored endpoint, or the flags.
async fn endpoint_to_test(
    args: &EndpointTestArgs,
    settings: &Settings,
) -> Result<(Endpoint, Option<SecretString>), CliError> {
    if let Some(name) = &args.endpoint {
        let stores = open_admin(settings, &args.state.state_dir).await?;
        let record = records::endpoint(stores.state.as_ref(), name).await?;
        let password = records::stored_admin_password(stores.credentials.as_ref(), name).await?;
        return Ok((record.endpoint, password));
    }
    let url = args.source.as_deref().unwrap_or_default();
    input::source_endpoint(url, &args.source_admin)
}

/// Runs every check and prints them; exit 1 when any failed.
pub async fn run(args: &EndpointTestArgs, settings: &Settings) -> Result<ExitCode, CliError> {
    let checks = checks(args, settings).await?;
    if args.json {
        print_json(&checks);
    } else {
        for c in &checks {
            let verdict = if c.ok { "ok  " } else { "FAIL" };
            println!("{verdict} {}: {}", c.check, c.detail);
        }
    }
    Ok(ExitCode::from(u8::from(!checks.iter().all(|c| c.ok))))
}

async fn checks(args: &EndpointTestArgs, settings: &Settings) -> Result<Vec<Check>, CliError> {
    let (endpoint, admin_password) = endpoint_to_test(args, settings).await?;
    let password = match admin_password {
        Some(admin) if endpoint.admin.is_some() => Some(admin),
        _ if !args.users.is_empty() => Some(user_password()?),
        _ => None,
    };
    let label = endpoint.url();
    let mut checks = Vec::new();
    let reached = probe(&label, &endpoint, TIMEOUT).await;
    checks.push(Check {
        check: format!("connect to {label}"),
        ok: reached.is_ok(),
        detail: reached
            .err()
            .map_or_else(|| "server answered".to_owned(), |e| e.to_string()),
    });
    for user in &args.users {
        let login = endpoint.login_for(user);
        let password = password
            .as_ref()
            .expect("a password exists whenever users are given");
        let check = format!("login {} for {user}", login.display_user());
        checks.push(
            match connect(label.clone(), &endpoint, &login, password, TIMEOUT).await {
                Ok(connection) => {
                    let mut capabilities: Vec<_> =
                        connection.capabilities.iter().cloned().collect();
                    capabilities.sort();
                    connection.logout().await;
                    Check {
                        check,
                        ok: true,
                        detail: format!("capabilities: {}", capabilities.join(" ")),
                    }
                }
                Err(error) => Check {
                    check,
                    ok: false,
                    detail: error.to_string(),
                },
            },
        );
    }
    Ok(checks)
}

fn user_password() -> Result<SecretString, CliError> {
    input::secret_from_environment("MAILFLEET_USER_PASSWORD").ok_or_else(|| {
        CliError::Invalid(
            "--user without --source-admin needs the user's password in MAILFLEET_USER_PASSWORD"
                .into(),
        )
    })
}
