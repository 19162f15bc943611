//! `mailfleet --api URL endpoint …`: `/api/v1/endpoints`.

use std::process::ExitCode;

use secrecy::ExposeSecret;

use super::{ApiClient, not_available};
use crate::api::{EndpointView, NewEndpoint, TestRequest};
use crate::cli::admin::{EndpointCommand, EndpointCreateArgs, EndpointTestArgs};
use crate::commands::endpoint::{self, Check, USER_PASSWORD_VARIABLE};
use crate::error::CliError;
use crate::input;

pub async fn run(command: &EndpointCommand, api: &ApiClient) -> Result<ExitCode, CliError> {
    match command {
        EndpointCommand::Create(args) => create(args, api).await?,
        EndpointCommand::List(args) => {
            let views: Vec<EndpointView> = api.get(&["endpoints"]).await?;
            let records: Vec<_> = views.into_iter().map(|view| view.record).collect();
            endpoint::print_list(&records, args.json);
        }
        EndpointCommand::Show(args) => {
            let view: EndpointView = api.get(&["endpoints", &args.name]).await?;
            endpoint::print_one(&view.record, args.json);
        }
        EndpointCommand::Remove(args) => {
            api.delete(&["endpoints", &args.name]).await?;
            endpoint::print_removed(&args.name);
        }
        EndpointCommand::Test(args) => return test(args, api).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// The flags checked here as the local command checks them (the same messages), then sent;
/// the admin password from MAILFLEET_ADMIN_PASSWORD travels in the body, over TLS.
async fn create(args: &EndpointCreateArgs, api: &ApiClient) -> Result<(), CliError> {
    if args.oauth2.oauth2.is_some() {
        return Err(not_available(
            "endpoint create --oauth2",
            "the API takes an admin password only; create it without --api",
        ));
    }
    let server = endpoint::checked_server(args)?;
    let new = NewEndpoint {
        name: args.name.clone(),
        url: args.server.clone(),
        admin_user: args.admin.clone(),
        admin_password: server
            .admin_password
            .as_ref()
            .map(|password| password.expose_secret().to_owned()),
        admin_format: args.admin_format.clone(),
        max_concurrent_migrations: Some(args.max_concurrent_migrations),
        max_concurrent_incremental_syncs: Some(args.max_concurrent_incremental_syncs),
        profile: Some(args.profile.name().to_owned()),
    };
    let view: EndpointView = api.post(&["endpoints"], &new).await?;
    endpoint::print_created(&view.record);
    Ok(())
}

/// The service tests a stored endpoint from where it runs; a URL given with --source would be
/// tested from here, which is what `endpoint test` without --api does.
async fn test(args: &EndpointTestArgs, api: &ApiClient) -> Result<ExitCode, CliError> {
    let Some(name) = &args.endpoint else {
        return Err(not_available(
            "endpoint test --source",
            "test a stored endpoint from the service with --endpoint NAME, or test the URL \
             from this machine without --api",
        ));
    };
    let request = TestRequest {
        users: args.users.clone(),
        password: input::secret_from_environment(USER_PASSWORD_VARIABLE)
            .map(|password| password.expose_secret().to_owned()),
    };
    let checks: Vec<Check> = api.post(&["endpoints", name, "test"], &request).await?;
    Ok(endpoint::print_checks(&checks, args.json))
}
