//! `mailfleet endpoint test`: can we reach the server, and do these logins work?
//!
//! Answers in plain words, one line per check, so an admin can fix a firewall, a certificate or
//! an admin login format before starting a batch.

use std::process::ExitCode;
use std::time::Duration;

use mailfleet_shared::endpoint::{Endpoint, OAuth2};
use mailfleet_worker::error::WorkerError;
use mailfleet_worker::imap::ImapLimits;
use mailfleet_worker::imap::connect::{Credentials, ImapConnection, connect, connect_as, probe};
use mailfleet_worker::imap::sasl::BearerLogin;
use mailfleet_worker::oauth2::{TokenProvider, provider_for};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::backends::open_admin;
use crate::cli::admin::EndpointTestArgs;
use crate::commands::print_json;
use crate::error::CliError;
use crate::input::{self, ServerInput};
use crate::records;
use crate::settings::Settings;
use crate::tenant_stores::TenantStores;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// A stored endpoint with its sealed secrets, to test.
pub async fn stored_server(stores: &TenantStores, name: &str) -> Result<ServerInput, CliError> {
    let record = records::endpoint(stores.state.as_ref(), name).await?;
    let credentials = stores.credentials.as_ref();
    Ok(ServerInput {
        admin_password: records::stored_admin_password(credentials, name).await?,
        oauth2_secret: records::stored_oauth2_secret(credentials, name).await?,
        endpoint: record.endpoint,
    })
}

/// The endpoint to test and its secrets: a stored endpoint, or the flags.
async fn endpoint_to_test(
    args: &EndpointTestArgs,
    settings: &Settings,
) -> Result<ServerInput, CliError> {
    if let Some(name) = &args.endpoint {
        let stores: TenantStores = open_admin(settings, &args.state.state_dir).await?.into();
        return stored_server(&stores, name).await;
    }
    let url = args.source.as_deref().unwrap_or_default();
    input::source_server(url, &args.source_admin, &args.source_oauth2)
}

/// Runs every check and prints them; exit 1 when any failed.
pub async fn run(args: &EndpointTestArgs, settings: &Settings) -> Result<ExitCode, CliError> {
    let server = endpoint_to_test(args, settings).await?;
    let checks = checks(
        &server,
        &args.users,
        input::secret_from_environment(USER_PASSWORD_VARIABLE),
    )
    .await?;
    Ok(print_checks(&checks, args.json))
}

/// What `endpoint test` prints, here or through the API; exit 1 when any check failed.
pub fn print_checks(checks: &[Check], json: bool) -> ExitCode {
    if json {
        print_json(&checks);
    } else {
        for c in checks {
            let verdict = if c.ok { "ok  " } else { "FAIL" };
            println!("{verdict} {}: {}", c.check, c.detail);
        }
    }
    ExitCode::from(u8::from(!checks.iter().all(|c| c.ok)))
}

/// Where `endpoint test --user` reads the user's password when the endpoint has no admin.
pub const USER_PASSWORD_VARIABLE: &str = "MAILFLEET_USER_PASSWORD";

/// Connects to `server` and logs in for each of `users` (as its admin, with its OAuth2
/// provider, or with `user_password`); one check each, in order.
pub async fn checks(
    server: &ServerInput,
    users: &[String],
    user_password: Option<SecretString>,
) -> Result<Vec<Check>, CliError> {
    let endpoint = &server.endpoint;
    let label = endpoint.url();
    let reached = probe(&label, endpoint, TIMEOUT).await;
    let mut checks = vec![Check::of(format!("connect to {label}"), reached, |()| {
        "server answered".to_owned()
    })];
    match endpoint.oauth2() {
        Some(oauth2) => {
            let provider = provider_for(oauth2, server.oauth2_secret.clone())
                .map_err(|e| CliError::Invalid(format!("OAuth2: {e}")))?;
            for user in users {
                checks.extend(token_login(endpoint, oauth2, provider.as_ref(), user).await);
            }
        }
        None => {
            let password = match &server.admin_password {
                Some(admin) if endpoint.admin.is_some() => Some(admin.clone()),
                _ if !users.is_empty() => Some(user_password.ok_or_else(|| {
                    CliError::Invalid(format!(
                        "--user without --source-admin needs the user's password in {USER_PASSWORD_VARIABLE}"
                    ))
                })?),
                _ => None,
            };
            for user in users {
                let login = endpoint.login_for(user);
                let password = password
                    .as_ref()
                    .expect("a password exists whenever users are given");
                let check = format!("login {} for {user}", login.display_user());
                let connected = connect(label.clone(), endpoint, &login, password, TIMEOUT).await;
                checks.push(logged_in(check, connected).await);
            }
        }
    }
    Ok(checks)
}

/// An OAuth2 login in its two steps, each its own check: a token from the identity provider
/// for `user`, then AUTHENTICATE with it.
async fn token_login(
    endpoint: &Endpoint,
    oauth2: &OAuth2,
    provider: &dyn TokenProvider,
    user: &str,
) -> Vec<Check> {
    let token = provider.fetch(user).await;
    let token_check = Check::of(
        format!("token from {} for {user}", provider.name()),
        token.as_ref().map(|_| ()),
        |()| "issued".to_owned(),
    );
    let Ok(token) = token else {
        return vec![token_check];
    };
    let bearer = BearerLogin {
        user,
        token: &token.secret,
        mechanism: oauth2.mechanism,
    };
    let connected = connect_as(
        endpoint.url(),
        endpoint,
        &Credentials::Bearer(bearer),
        ImapLimits::with_timeouts(TIMEOUT),
    )
    .await;
    vec![
        token_check,
        logged_in(format!("OAuth2 login for {user}"), connected).await,
    ]
}

/// A login's check: the server's capabilities after it, or why it failed.
async fn logged_in(check: String, connected: Result<ImapConnection, WorkerError>) -> Check {
    match connected {
        Ok(connection) => {
            let mut capabilities: Vec<_> = connection.capabilities.iter().cloned().collect();
            capabilities.sort();
            connection.logout().await;
            Check {
                check,
                ok: true,
                detail: format!("capabilities: {}", capabilities.join(" ")),
            }
        }
        Err(error) => Check::of(check, Err(error), |()| String::new()),
    }
}

impl Check {
    fn of<T, E: std::fmt::Display>(
        check: String,
        outcome: Result<T, E>,
        detail: impl FnOnce(T) -> String,
    ) -> Check {
        match outcome {
            Ok(value) => Check {
                check,
                ok: true,
                detail: detail(value),
            },
            Err(error) => Check {
                check,
                ok: false,
                detail: error.to_string(),
            },
        }
    }
}
