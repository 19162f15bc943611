//! What users hand mailfleet, checked before anything starts: migration CSVs, server URLs,
//! admin logins and their passwords (from the environment only) — and sealing the passwords
//! into the credential store, so that from here on only ids travel (ARCHITECTURE.md, "From a
//! CSV row to an APPEND").
//!
//! Every failure here is invalid input (exit 2) naming the flag, file, line or user.

use std::path::Path;

use futures_util::StreamExt;
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::endpoint::{
    AdminLogin, Authentication, Endpoint, MicrosoftCredential, OAuth2, SaslMechanism,
    TokenProviderKind,
};
use mailfleet_shared::folder_filter::FolderFilter;
use mailfleet_shared::migration_csv::{MAX_BYTES, MigrationRow, parse_migration_csv};
use mailfleet_shared::store_error::StoreError;
use secrecy::SecretString;

use crate::cli::args::{
    CopyRuleArgs, OAuth2Flags, OAuth2Provider, SaslChoice, SourceAdminArgs, SourceOAuth2Args,
    TargetAdminArgs, TargetOAuth2Args,
};
use crate::error::CliError;

/// Reads and validates a migration CSV; every error with its line number.
pub fn read_migration_csv(path: &Path) -> Result<Vec<MigrationRow>, CliError> {
    let unreadable =
        |e: std::io::Error| CliError::Invalid(format!("cannot read {}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    check_csv_size(&path.display().to_string(), size)?;
    let bytes = std::fs::read(path).map_err(unreadable)?;
    migration_csv(&path.display().to_string(), &bytes)
}

/// Validates a migration CSV handed over as text (the API's `csv` field); errors name it
/// `label`.
pub fn migration_csv(label: &str, bytes: &[u8]) -> Result<Vec<MigrationRow>, CliError> {
    check_csv_size(label, bytes.len() as u64)?;
    parse_migration_csv(bytes).map_err(|errors| CliError::InvalidCsv {
        path: label.to_owned(),
        errors,
    })
}

fn check_csv_size(label: &str, size: u64) -> Result<(), CliError> {
    if size > MAX_BYTES as u64 {
        return Err(CliError::Invalid(format!(
            "{label}: the file is {size} bytes; a migration CSV may have at most 10 MB"
        )));
    }
    Ok(())
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

/// Checked before a run or a batch is created, so that a bad rule stops it before it starts.
pub fn check_copy_rules(rules: &CopyRuleArgs) -> Result<(), CliError> {
    FolderFilter::new(&rules.include_folders, &rules.exclude_folders)
        .map(|_| ())
        .map_err(|e| CliError::Invalid(e.to_string()))
}

/// A server URL given with `flag`.
pub fn parse_endpoint(flag: &str, url: &str) -> Result<Endpoint, CliError> {
    Endpoint::from_url(url).map_err(|e| CliError::Invalid(format!("{flag}: {e}")))
}

/// The admin login of `user` in `format` (`dovecot`, `cyrus`, …), when both are given.
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

/// Where the source and target admin passwords of `--source-admin`/`--target-admin` are read.
pub const SOURCE_ADMIN_PASSWORD: &str = "MAILFLEET_SOURCE_ADMIN_PASSWORD";
pub const TARGET_ADMIN_PASSWORD: &str = "MAILFLEET_TARGET_ADMIN_PASSWORD";

/// A server as the command line describes it: where it is, how mailfleet logs in, and the
/// secrets to seal for that (never on the queue, never in the job spec).
pub struct ServerInput {
    pub endpoint: Endpoint,
    pub admin_password: Option<SecretString>,
    /// The OAuth2 provider's secret: a client secret, a certificate with its key, or a
    /// service account's key.
    pub oauth2_secret: Option<SecretString>,
}

/// The source server from `--source`, `--source-admin…` and `--source-oauth2…`.
pub fn source_server(
    url: &str,
    admin: &SourceAdminArgs,
    oauth2: &SourceOAuth2Args,
) -> Result<ServerInput, CliError> {
    server(
        ("--source", url),
        (
            admin.source_admin.as_deref(),
            admin.source_admin_format.as_deref(),
            SOURCE_ADMIN_PASSWORD,
        ),
        (&oauth2.flags(), SourceOAuth2Args::SECRET_VARIABLE),
    )
}

/// The target server from `--target`, `--target-admin…` and `--target-oauth2…`.
pub fn target_server(
    url: &str,
    admin: &TargetAdminArgs,
    oauth2: &TargetOAuth2Args,
) -> Result<ServerInput, CliError> {
    server(
        ("--target", url),
        (
            admin.target_admin.as_deref(),
            admin.target_admin_format.as_deref(),
            TARGET_ADMIN_PASSWORD,
        ),
        (&oauth2.flags(), TargetOAuth2Args::SECRET_VARIABLE),
    )
}

/// The server `(flag, url)` names, with its admin login `(user, format, password variable)`
/// or its OAuth2 settings `(flags, client secret variable)`.
pub fn server(
    (flag, url): (&str, &str),
    (admin, admin_format, password_variable): (Option<&str>, Option<&str>, &str),
    (oauth2, secret_variable): (&OAuth2Flags, &str),
) -> Result<ServerInput, CliError> {
    let mut endpoint = parse_endpoint(flag, url)?;
    endpoint.admin = admin_login(admin, admin_format)?;
    let admin_password = admin_password(&endpoint, password_variable)?;
    let mut oauth2_secret = None;
    if let Some((settings, secret)) = oauth2_settings(oauth2, secret_variable)? {
        endpoint.authentication = Authentication::OAuth2(settings);
        oauth2_secret = secret;
    }
    endpoint
        .check_authentication()
        .map_err(|e| CliError::Invalid(format!("{flag}: {e}")))?;
    Ok(ServerInput {
        endpoint,
        admin_password,
        oauth2_secret,
    })
}

/// The OAuth2 settings the flags choose and the provider secret they point at, read now (a
/// file the coordinator reads once and seals, so workers need no copy of it).
fn oauth2_settings(
    flags: &OAuth2Flags,
    secret_variable: &str,
) -> Result<Option<(OAuth2, Option<SecretString>)>, CliError> {
    let Some(provider) = flags.provider else {
        return Ok(None);
    };
    let missing = |what: &str| CliError::Invalid(format!("OAuth2 with {provider:?}: {what}"));
    let (kind, secret) = match provider {
        OAuth2Provider::Microsoft => {
            let (credential, secret) = match &flags.client_certificate {
                Some(path) => (MicrosoftCredential::Certificate, read_secret_file(path)?),
                None => (
                    MicrosoftCredential::Secret,
                    secret_from_environment(secret_variable).ok_or_else(|| {
                        missing(&format!(
                            "the client secret goes in {secret_variable} (or give a certificate)"
                        ))
                    })?,
                ),
            };
            let kind = TokenProviderKind::Microsoft {
                tenant: flags
                    .tenant
                    .clone()
                    .ok_or_else(|| missing("needs the tenant"))?,
                client_id: flags
                    .client_id
                    .clone()
                    .ok_or_else(|| missing("needs the app's client id"))?,
                credential,
            };
            (kind, Some(secret))
        }
        OAuth2Provider::Google => {
            let path = flags
                .service_account
                .as_ref()
                .ok_or_else(|| missing("needs the service account's JSON key file"))?;
            (TokenProviderKind::Google, Some(read_secret_file(path)?))
        }
        OAuth2Provider::TokenFile => {
            let path = flags
                .token_file
                .clone()
                .ok_or_else(|| missing("needs the token file"))?;
            (TokenProviderKind::TokenFile { path }, None)
        }
    };
    let settings = OAuth2 {
        provider: kind,
        mechanism: match flags.sasl {
            None => SaslMechanism::Auto,
            Some(SaslChoice::Xoauth2) => SaslMechanism::Xoauth2,
            Some(SaslChoice::Oauthbearer) => SaslMechanism::OAuthBearer,
        },
        token_url: flags.token_url.clone(),
        scope: flags.scope.clone(),
    };
    Ok(Some((settings, secret)))
}

/// A key or certificate file, read into a secret (its content never reaches a log or an
/// error: only its path does).
fn read_secret_file(path: &Path) -> Result<SecretString, CliError> {
    std::fs::read_to_string(path)
        .map(SecretString::from)
        .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", path.display())))
}

/// The admin password comes from the environment only, so it never shows in `ps` or shell
/// history.
pub fn admin_password(
    endpoint: &Endpoint,
    variable: &str,
) -> Result<Option<SecretString>, CliError> {
    if endpoint.admin.is_none() {
        return Ok(None);
    }
    secret_from_environment(variable).map(Some).ok_or_else(|| {
        CliError::Invalid(format!("an admin login needs its password in {variable}"))
    })
}

/// A non-empty secret from `variable`.
pub fn secret_from_environment(variable: &str) -> Option<SecretString> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(SecretString::from(value)),
        _ => None,
    }
}

/// Seals the CSV rows' passwords under `scope`.
pub async fn seal_row_passwords(
    store: &dyn CredentialStore,
    scope: &str,
    rows: &[MigrationRow],
) -> Result<(), CliError> {
    let passwords = rows
        .iter()
        .map(|row| (CredentialId::user(scope, &row.email), &row.password));
    seal_passwords(store, passwords).await
}

/// Seals every password into the store. Many puts are in flight at once: with Redis they
/// travel pipelined on one connection, which turns a 50,000-row CSV from 50,000 round trips
/// into a few hundred.
///
/// The passwords are collected before the future starts and the puts are named futures, not
/// closures: a future holding closures over borrowed rows is not provably `Send` inside an HTTP
/// handler's higher-ranked bounds (rust-lang/rust#102211), and the API seals through here too.
pub fn seal_passwords<'a>(
    store: &'a dyn CredentialStore,
    passwords: impl Iterator<Item = (CredentialId, &'a SecretString)>,
) -> impl std::future::Future<Output = Result<(), CliError>> + Send + 'a {
    seal_all(store, passwords.collect())
}

async fn seal_all(
    store: &dyn CredentialStore,
    passwords: Vec<(CredentialId, &SecretString)>,
) -> Result<(), CliError> {
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    for (id, password) in passwords {
        if in_flight.len() >= PUTS_IN_FLIGHT
            && let Some(put) = in_flight.next().await
        {
            put?;
        }
        in_flight.push(seal(store, id, password));
    }
    while let Some(put) = in_flight.next().await {
        put?;
    }
    Ok(())
}

async fn seal(
    store: &dyn CredentialStore,
    id: CredentialId,
    password: &SecretString,
) -> Result<(), StoreError> {
    store.put(&id, password).await
}

/// Credential writes in flight at once while a run is planned.
const PUTS_IN_FLIGHT: usize = 256;
