//! `mailfleet tenant …`: the provider's customers (ARCHITECTURE.md, "Tenants").

use chrono::Utc;
use mailfleet_shared::tenancy::{CLI_ACTOR, TenantRecord};
use serde::Serialize;

use super::print_json;
use crate::backends::open_provider;
use crate::cli::args::ListArgs;
use crate::cli::tenancy::{TenantCommand, TenantCreateArgs, TenantNameArgs};
use crate::error::CliError;
use crate::settings::Settings;
use crate::tenants;

pub async fn run(command: &TenantCommand, settings: &Settings) -> Result<(), CliError> {
    match command {
        TenantCommand::Create(args) => create(args, settings).await,
        TenantCommand::List(args) => list(args, settings).await,
        TenantCommand::Remove(args) => remove(args, settings).await,
    }
}

async fn create(args: &TenantCreateArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_provider(settings, &args.state.state_dir).await?;
    let record = TenantRecord {
        name: args.name.clone(),
        max_concurrent_migrations: args.max_concurrent_migrations,
        max_users: args.max_users,
        created_at: Utc::now(),
    };
    tenants::create_tenant(stores.control.as_ref(), &stores.keys, &record, CLI_ACTOR).await?;
    println!("tenant {} created", record.name);
    Ok(())
}

/// A tenant as `tenant list --json` prints it.
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    tenant: TenantRecord,
    users: usize,
}

async fn list(args: &ListArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_provider(settings, &args.state.state_dir).await?;
    let mut listed = Vec::new();
    for tenant in stores.control.tenants().await? {
        let users = tenants::user_count(stores.control.as_ref(), &tenant.name).await?;
        listed.push(Listed { tenant, users });
    }
    if args.json {
        print_json(&listed);
        return Ok(());
    }
    let limit = |value: Option<usize>| value.map_or("-".to_owned(), |n| n.to_string());
    for Listed { tenant, users } in &listed {
        println!(
            "{}  users {}/{}  max concurrent migrations {}",
            tenant.name,
            users,
            limit(tenant.max_users),
            limit(tenant.max_concurrent_migrations)
        );
    }
    Ok(())
}

async fn remove(args: &TenantNameArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_provider(settings, &args.state.state_dir).await?;
    tenants::remove_tenant(&stores, &args.name, CLI_ACTOR).await?;
    println!("tenant {} removed", args.name);
    Ok(())
}
