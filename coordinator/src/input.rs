//! What users hand mailfleet, checked before anything starts: migration CSVs, server URLs,
//! admin logins and their passwords (from the environment only) — and sealing the passwords
//! into the credential store, so that from here on only ids travel (ARCHITECTURE.md, "From a
//! CSV row to an APPEND").
//!
//! Every failure here is invalid input (exit 2) naming the flag, file, line or user.

use std::path::Path;

use futures_util::{StreamExt, TryStreamExt};
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::endpoint::{AdminLogin, Endpoint};
use mailfleet_shared::folder_filter::FolderFilter;
use mailfleet_shared::migration_csv::{MAX_BYTES, MigrationRow, parse_migration_csv};
use secrecy::SecretString;

use crate::cli::args::{CopyRuleArgs, SourceAdminArgs, TargetAdminArgs};
use crate::error::CliError;

/// Reads and validates a migration CSV; every error with its line number.
pub fn read_migration_csv(path: &Path) -> Result<Vec<MigrationRow>, CliError> {
    let unreadable =
        |e: std::io::Error| CliError::Invalid(format!("cannot read {}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_BYTES as u64 {
        return Err(CliError::Invalid(format!(
            "{}: the file is {size} bytes; a migration CSV may have at most 10 MB",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
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

/// A source server from `--source` and `--source-admin`, with the admin password.
pub fn source_endpoint(
    url: &str,
    admin: &SourceAdminArgs,
) -> Result<(Endpoint, Option<SecretString>), CliError> {
    endpoint_with_admin(
        ("--source", url),
        admin.source_admin.as_deref(),
        admin.source_admin_format.as_deref(),
        SOURCE_ADMIN_PASSWORD,
    )
}

/// A target server from `--target` and `--target-admin`, with the admin password.
pub fn target_endpoint(
    url: &str,
    admin: &TargetAdminArgs,
) -> Result<(Endpoint, Option<SecretString>), CliError> {
    endpoint_with_admin(
        ("--target", url),
        admin.target_admin.as_deref(),
        admin.target_admin_format.as_deref(),
        TARGET_ADMIN_PASSWORD,
    )
}

/// The server `(flag, url)` names, its admin login (if any) and that admin's password.
fn endpoint_with_admin(
    (flag, url): (&str, &str),
    admin: Option<&str>,
    admin_format: Option<&str>,
    password_variable: &str,
) -> Result<(Endpoint, Option<SecretString>), CliError> {
    let mut endpoint = parse_endpoint(flag, url)?;
    endpoint.admin = admin_login(admin, admin_format)?;
    let password = admin_password(&endpoint, password_variable)?;
    Ok((endpoint, password))
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
