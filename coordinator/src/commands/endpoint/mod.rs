//! `mailfleet endpoint create|list|show|remove`: named migration endpoints in the state store,
//! their admin password sealed in the credential store under the endpoint's scope; and
//! `endpoint test` ([`test`]): can mailfleet reach the server and log in.

mod test;

use std::process::ExitCode;

use mailfleet_shared::lifecycle::validate_batch_name;
use mailfleet_shared::server_profile::ProfileChoice;
use mailfleet_shared::state::{EndpointRecord, endpoint_scope};

use super::print_json;
use crate::backends::open_admin;
use crate::cli::admin::{EndpointCommand, EndpointCreateArgs};
use crate::cli::args::EndpointOAuth2Args;
use crate::cli::args::{ListArgs, NamedArgs};
use crate::error::CliError;
use crate::input;
use crate::records::{self, admin_credential, oauth2_credential};
use crate::settings::Settings;

pub async fn run(command: &EndpointCommand, settings: &Settings) -> Result<ExitCode, CliError> {
    match command {
        EndpointCommand::Create(args) => create(args, settings).await?,
        EndpointCommand::List(args) => list(args, settings).await?,
        EndpointCommand::Show(args) => show(args, settings).await?,
        EndpointCommand::Remove(args) => remove(args, settings).await?,
        EndpointCommand::Test(args) => return test::run(args, settings).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `endpoint create` reads the admin password (never a flag: it would show in `ps`).
pub const ADMIN_PASSWORD_VARIABLE: &str = "MAILFLEET_ADMIN_PASSWORD";

async fn create(args: &EndpointCreateArgs, settings: &Settings) -> Result<(), CliError> {
    validate_batch_name(&args.name)
        .map_err(|e| CliError::Invalid(e.0.replacen("batch name", "endpoint name", 1)))?;
    if !args.authentication.eq_ignore_ascii_case("basic") {
        return Err(CliError::Invalid(format!(
            "authentication {:?} is not supported; use basic (LOGIN or SASL PLAIN, over TLS), \
             or OAuth2 tokens with --oauth2",
            args.authentication
        )));
    }
    let server = input::server(
        ("--server", &args.server),
        (
            args.admin.as_deref(),
            args.admin_format.as_deref(),
            ADMIN_PASSWORD_VARIABLE,
        ),
        (&args.oauth2.flags(), EndpointOAuth2Args::SECRET_VARIABLE),
    )?;
    let stores = open_admin(settings, &args.state.state_dir).await?;
    if stores.state.endpoint(&args.name).await?.is_some() {
        return Err(CliError::Invalid(format!(
            "an endpoint named {} exists already",
            args.name
        )));
    }
    let secrets = [
        (admin_credential(&args.name), server.admin_password.as_ref()),
        (oauth2_credential(&args.name), server.oauth2_secret.as_ref()),
    ];
    input::seal_passwords(
        stores.credentials.as_ref(),
        secrets
            .into_iter()
            .filter_map(|(id, secret)| Some((id, secret?))),
    )
    .await?;
    let record = EndpointRecord {
        name: args.name.clone(),
        endpoint: server.endpoint,
        max_concurrent_migrations: args.max_concurrent_migrations.max(1),
        max_concurrent_incremental_syncs: args.max_concurrent_incremental_syncs.max(1),
        profile: match args.profile {
            ProfileChoice::Auto => None,
            ProfileChoice::Fixed(profile) => Some(profile),
        },
    };
    stores.state.put_endpoint(&record).await?;
    stores.audit("endpoint.create", &record.name).await?;
    println!("endpoint {} created: {}", record.name, describe(&record));
    Ok(())
}

async fn list(args: &ListArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    let endpoints = stores.state.endpoints().await?;
    if args.json {
        print_json(&endpoints);
    } else {
        for record in &endpoints {
            println!("{}  {}", record.name, describe(record));
        }
    }
    Ok(())
}

async fn show(args: &NamedArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    let record = records::endpoint(stores.state.as_ref(), &args.name).await?;
    if args.json {
        print_json(&record);
    } else {
        println!("{}  {}", record.name, describe(&record));
    }
    Ok(())
}

async fn remove(args: &NamedArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_admin(settings, &args.state.state_dir).await?;
    records::endpoint(stores.state.as_ref(), &args.name).await?;
    let users: Vec<String> = stores
        .state
        .batches()
        .await?
        .into_iter()
        .filter(|b| b.source_endpoint == args.name || b.target_endpoint == args.name)
        .map(|b| b.name)
        .collect();
    if !users.is_empty() {
        return Err(CliError::Invalid(format!(
            "endpoint {} is used by batch {}; remove the batch first",
            args.name,
            users.join(", ")
        )));
    }
    stores
        .credentials
        .remove_scope(&endpoint_scope(&args.name))
        .await?;
    stores.state.remove_endpoint(&args.name).await?;
    stores.audit("endpoint.remove", &args.name).await?;
    println!("endpoint {} removed", args.name);
    Ok(())
}

fn describe(record: &EndpointRecord) -> String {
    let endpoint = &record.endpoint;
    let admin = match (&endpoint.admin, endpoint.oauth2()) {
        (_, Some(oauth2)) => format!(", OAuth2 ({:?})", oauth2.provider),
        (Some(admin), None) => format!(", admin {} ({:?})", admin.user, admin.format),
        (None, None) => String::new(),
    };
    format!(
        "{}{admin}, max {} migrations / {} incremental syncs at once",
        record.endpoint.url(),
        record.max_concurrent_migrations,
        record.max_concurrent_incremental_syncs
    )
}
