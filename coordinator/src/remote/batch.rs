//! `mailfleet --api URL batch …`: `/api/v1/batches`.

use mailfleet_shared::lifecycle::UserRecord;
use reqwest::Method;

use super::problem::with_csv_path;
use super::{ApiClient, not_available};
use crate::api::{BatchView, NewBatch, UserPage};
use crate::cli::admin::{BatchCommand, BatchCreateArgs};
use crate::commands::batch::{self, Command, Transitioned};
use crate::error::CliError;

/// The most users one page of `/batches/{name}/users` may hold.
const PAGE: &str = "1000";

pub async fn run(command: &BatchCommand, api: &ApiClient) -> Result<(), CliError> {
    match command {
        BatchCommand::Create(args) => create(args, api).await,
        BatchCommand::Start(args) => lifecycle(api, &args.name, Command::Start, &[]).await,
        BatchCommand::Stop(args) => lifecycle(api, &args.name, Command::Stop, &[]).await,
        BatchCommand::Resume(args) => lifecycle(api, &args.name, Command::Resume, &[]).await,
        BatchCommand::SyncNow(args) => lifecycle(api, &args.name, Command::SyncNow, &[]).await,
        BatchCommand::Complete(args) => {
            let force = [("force", if args.force { "true" } else { "false" })];
            lifecycle(api, &args.name, Command::Complete, &force).await
        }
        BatchCommand::Remove(args) => {
            api.delete(&["batches", &args.name]).await?;
            let removed = Transitioned::Removed(args.name.clone());
            batch::print_transitioned(&removed, Command::Remove);
            Ok(())
        }
        BatchCommand::List(args) => {
            let views: Vec<BatchView> = api.get(&["batches"]).await?;
            let batches: Vec<_> = views.into_iter().map(|view| view.batch).collect();
            batch::print_list(&batches, args.json);
            Ok(())
        }
        BatchCommand::Status(args) => {
            let view: BatchView = api.get(&["batches", &args.name]).await?;
            let users = users(api, &args.name).await?;
            batch::print_status(&view.batch, &users, args.json);
            Ok(())
        }
        BatchCommand::AddUsers(_) => Err(not_available(
            "batch add-users",
            "run it without --api where the service's state is",
        )),
    }
}

/// The CSV goes up as text; the service checks it (and answers every wrong line).
async fn create(args: &BatchCreateArgs, api: &ApiClient) -> Result<(), CliError> {
    let csv = std::fs::read_to_string(&args.csv)
        .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", args.csv.display())))?;
    let rules = &args.rules;
    let new = NewBatch {
        name: args.name.clone(),
        source_endpoint: args.endpoint.clone(),
        target_endpoint: args.target_endpoint.clone(),
        csv,
        start_after: args.start_after.clone(),
        autostart: args.autostart,
        complete_after: args.complete_after.clone(),
        mirror_deletions: rules.mirror_deletions,
        include_folders: rules.include_folders.clone(),
        exclude_folders: rules.exclude_folders.clone(),
        received_after: rules.received_after,
        max_message_size: Some(rules.max_message_size),
        target_mx: args.target_mx.clone(),
        notify: args.notify.clone(),
        incremental_interval: Some(
            humantime::format_duration(args.incremental_interval).to_string(),
        ),
        completion_window: Some(humantime::format_duration(args.completion_window).to_string()),
    };
    let view: BatchView = api
        .post(&["batches"], &new)
        .await
        .map_err(|e| with_csv_path(e, &args.csv))?;
    batch::print_created(&view.batch, view.counts.total);
    Ok(())
}

/// `POST /batches/{name}/{command}` with `query`; printed as the local command prints it.
async fn lifecycle(
    api: &ApiClient,
    name: &str,
    command: Command,
    query: &[(&str, &str)],
) -> Result<(), CliError> {
    let route = command.to_string();
    let request = api
        .request(Method::POST, &["batches", name, &route])
        .query(query);
    let view: BatchView = api.json(request).await?;
    batch::print_transitioned(&Transitioned::To(Box::new(view.batch)), command);
    Ok(())
}

/// Every user of batch `name`, page after page.
async fn users(api: &ApiClient, name: &str) -> Result<Vec<UserRecord>, CliError> {
    let mut users = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = api
            .request(Method::GET, &["batches", name, "users"])
            .query(&[("limit", PAGE)]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page: UserPage = api.json(request).await?;
        users.extend(page.users);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(users),
        }
    }
}
