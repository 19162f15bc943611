//! `mailfleet endpoint create|list|show|remove`: named migration endpoints in the state store,
//! their admin password sealed in the credential store under the endpoint's scope; and
//! `endpoint test` ([`test`]): can mailfleet reach the server and log in.

mod test;

pub use test::{Check, USER_PASSWORD_VARIABLE, checks, print_checks, stored_server};

use std::process::ExitCode;

use mailfleet_shared::lifecycle::validate_batch_name;
use mailfleet_shared::server_profile::ProfileChoice;
use mailfleet_shared::state::{EndpointRecord, endpoint_scope};

use super::print_json;
use crate::backends::open_admin;
use crate::cli::admin::{EndpointCommand, EndpointCreateArgs};
use crate::cli::args::EndpointOAuth2Args;
use crate::cli::args::{ListArgs, NamedArgs, StateArgs};
use crate::error::CliError;
use crate::input::{self, ServerInput};
use crate::records::{self, admin_credential, oauth2_credential};
use crate::settings::Settings;
use crate::tenant_stores::TenantStores;

pub async fn run(command: &EndpointCommand, settings: &Settings) -> Result<ExitCode, CliError> {
    match command {
        EndpointCommand::Create(args) => create_command(args, settings).await?,
        EndpointCommand::List(args) => list_command(args, settings).await?,
        EndpointCommand::Show(args) => show_command(args, settings).await?,
        EndpointCommand::Remove(args) => remove_command(args, settings).await?,
        EndpointCommand::Test(args) => return test::run(args, settings).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn stores(settings: &Settings, state: &StateArgs) -> Result<TenantStores, CliError> {
    Ok(open_admin(settings, &state.state_dir).await?.into())
}

/// Where `endpoint create` reads the admin password (never a flag: it would show in `ps`).
pub const ADMIN_PASSWORD_VARIABLE: &str = "MAILFLEET_ADMIN_PASSWORD";

/// A new endpoint: its name, the server with the secrets to seal, its limits and profile.
pub struct EndpointSpec {
    pub name: String,
    pub server: ServerInput,
    pub max_concurrent_migrations: usize,
    pub max_concurrent_incremental_syncs: usize,
    pub profile: ProfileChoice,
}

/// An endpoint name follows the rules of batch names.
pub fn check_name(name: &str) -> Result<(), CliError> {
    validate_batch_name(name)
        .map_err(|e| CliError::Invalid(e.0.replacen("batch name", "endpoint name", 1)))
}

/// Only basic authentication is named; OAuth2 has its own settings.
pub fn check_authentication(authentication: &str) -> Result<(), CliError> {
    if authentication.eq_ignore_ascii_case("basic") {
        return Ok(());
    }
    Err(CliError::Invalid(format!(
        "authentication {authentication:?} is not supported; use basic (LOGIN or SASL PLAIN, over TLS), \
         or OAuth2 tokens with --oauth2"
    )))
}

/// Stores the endpoint `spec` describes, its secrets sealed under the endpoint's scope.
pub async fn create(stores: &TenantStores, spec: EndpointSpec) -> Result<EndpointRecord, CliError> {
    if stores.state.endpoint(&spec.name).await?.is_some() {
        return Err(CliError::Conflict(format!(
            "an endpoint named {} exists already",
            spec.name
        )));
    }
    let secrets = [
        (
            admin_credential(&spec.name),
            spec.server.admin_password.as_ref(),
        ),
        (
            oauth2_credential(&spec.name),
            spec.server.oauth2_secret.as_ref(),
        ),
    ];
    input::seal_passwords(
        stores.credentials.as_ref(),
        secrets
            .into_iter()
            .filter_map(|(id, secret)| Some((id, secret?))),
    )
    .await?;
    let record = EndpointRecord {
        name: spec.name,
        endpoint: spec.server.endpoint,
        max_concurrent_migrations: spec.max_concurrent_migrations.max(1),
        max_concurrent_incremental_syncs: spec.max_concurrent_incremental_syncs.max(1),
        profile: match spec.profile {
            ProfileChoice::Auto => None,
            ProfileChoice::Fixed(profile) => Some(profile),
        },
    };
    stores.state.put_endpoint(&record).await?;
    Ok(record)
}

/// The server `endpoint create`'s flags describe, after the checks every create makes, here
/// or over `--api` (so both print the same messages): the name, the authentication, the URL,
/// the admin login and its password, the OAuth2 flags and their secret.
pub fn checked_server(args: &EndpointCreateArgs) -> Result<ServerInput, CliError> {
    check_name(&args.name)?;
    check_authentication(&args.authentication)?;
    input::server(
        ("--server", &args.server),
        (
            args.admin.as_deref(),
            args.admin_format.as_deref(),
            ADMIN_PASSWORD_VARIABLE,
        ),
        (&args.oauth2.flags(), EndpointOAuth2Args::SECRET_VARIABLE),
    )
}

async fn create_command(args: &EndpointCreateArgs, settings: &Settings) -> Result<(), CliError> {
    let server = checked_server(args)?;
    let stores = stores(settings, &args.state).await?;
    let spec = EndpointSpec {
        name: args.name.clone(),
        server,
        max_concurrent_migrations: args.max_concurrent_migrations,
        max_concurrent_incremental_syncs: args.max_concurrent_incremental_syncs,
        profile: args.profile,
    };
    let record = create(&stores, spec).await?;
    stores.audit_cli("endpoint.create", &record.name).await?;
    print_created(&record);
    Ok(())
}

/// What `endpoint create` prints, here or through the API.
pub fn print_created(record: &EndpointRecord) {
    println!("endpoint {} created: {}", record.name, describe(record));
}

async fn list_command(args: &ListArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    print_list(&stores.state.endpoints().await?, args.json);
    Ok(())
}

/// What `endpoint list` prints, here or through the API.
pub fn print_list(endpoints: &[EndpointRecord], json: bool) {
    if json {
        print_json(&endpoints);
        return;
    }
    for record in endpoints {
        println!("{}  {}", record.name, describe(record));
    }
}

async fn show_command(args: &NamedArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    let record = records::endpoint(stores.state.as_ref(), &args.name).await?;
    print_one(&record, args.json);
    Ok(())
}

/// What `endpoint show` prints, here or through the API.
pub fn print_one(record: &EndpointRecord, json: bool) {
    if json {
        print_json(record);
    } else {
        println!("{}  {}", record.name, describe(record));
    }
}

/// Removes the endpoint `name` and its sealed secrets, unless a batch uses it.
pub async fn remove(stores: &TenantStores, name: &str) -> Result<(), CliError> {
    records::endpoint(stores.state.as_ref(), name).await?;
    let users: Vec<String> = stores
        .state
        .batches()
        .await?
        .into_iter()
        .filter(|b| b.source_endpoint == name || b.target_endpoint == name)
        .map(|b| b.name)
        .collect();
    if !users.is_empty() {
        return Err(CliError::Conflict(format!(
            "endpoint {name} is used by batch {}; remove the batch first",
            users.join(", ")
        )));
    }
    stores
        .credentials
        .remove_scope(&endpoint_scope(name))
        .await?;
    stores.state.remove_endpoint(name).await?;
    Ok(())
}

async fn remove_command(args: &NamedArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = stores(settings, &args.state).await?;
    remove(&stores, &args.name).await?;
    stores.audit_cli("endpoint.remove", &args.name).await?;
    print_removed(&args.name);
    Ok(())
}

/// What `endpoint remove` prints, here or through the API.
pub fn print_removed(name: &str) {
    println!("endpoint {name} removed");
}

/// One line about an endpoint: its URL, how mailfleet logs in, its limits.
pub fn describe(record: &EndpointRecord) -> String {
    let endpoint = &record.endpoint;
    let admin = match (&endpoint.admin, endpoint.oauth2()) {
        (_, Some(oauth2)) => format!(", OAuth2 ({})", oauth2.provider),
        (Some(admin), None) => format!(", admin {} ({})", admin.user, admin.format),
        (None, None) => String::new(),
    };
    format!(
        "{}{admin}, max {} migrations / {} incremental syncs at once",
        record.endpoint.url(),
        record.max_concurrent_migrations,
        record.max_concurrent_incremental_syncs
    )
}
