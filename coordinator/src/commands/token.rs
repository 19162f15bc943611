//! `mailfleet token …`: API tokens (ARCHITECTURE.md, "Tenants"). A token's text is printed
//! once, alone on stdout (for `TOKEN=$(mailfleet token create …)`); the store keeps only its
//! SHA-256.

use mailfleet_shared::tenancy::{CLI_ACTOR, DEFAULT_TENANT, Role};

use super::print_json;
use crate::backends::open_provider;
use crate::cli::args::ListArgs;
use crate::cli::tenancy::{TokenCommand, TokenCreateArgs, TokenIdArgs};
use crate::error::CliError;
use crate::settings::Settings;
use crate::tenants;

pub async fn run(command: &TokenCommand, settings: &Settings) -> Result<(), CliError> {
    match command {
        TokenCommand::Create(args) => create(args, settings).await,
        TokenCommand::List(args) => list(args, settings).await,
        TokenCommand::Revoke(args) => revoke(args, settings).await,
    }
}

async fn create(args: &TokenCreateArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_provider(settings, &args.state.state_dir).await?;
    let (tenant, role) = match args.role {
        Some(role) => (Some(settings.tenant()), role),
        None => (None, Role::Provider),
    };
    let (token, text) = tenants::create_token(
        stores.control.as_ref(),
        tenant,
        role,
        &args.label,
        CLI_ACTOR,
    )
    .await?;
    eprintln!(
        "token {} created ({} of {}); this is the only time it is shown:",
        token.id,
        token.role.as_str(),
        token.tenant.as_deref().unwrap_or("the provider")
    );
    println!("{text}");
    Ok(())
}

async fn list(args: &ListArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_provider(settings, &args.state.state_dir).await?;
    let tokens = stores.control.tokens(settings.tenant.as_deref()).await?;
    if args.json {
        print_json(&tokens);
        return Ok(());
    }
    for token in &tokens {
        println!(
            "{}  {}  {}  created {}{}{}",
            token.id,
            token.tenant.as_deref().unwrap_or("(provider)"),
            token.role.as_str(),
            token.created_at.format("%Y-%m-%d %H:%M:%S"),
            token
                .revoked_at
                .map(|at| format!("  revoked {}", at.format("%Y-%m-%d %H:%M:%S")))
                .unwrap_or_default(),
            if token.label.is_empty() {
                String::new()
            } else {
                format!("  {}", token.label)
            }
        );
    }
    Ok(())
}

async fn revoke(args: &TokenIdArgs, settings: &Settings) -> Result<(), CliError> {
    let stores = open_provider(settings, &args.state.state_dir).await?;
    let token = tenants::revoke_token(stores.control.as_ref(), &args.id, CLI_ACTOR).await?;
    println!(
        "token {} revoked ({})",
        token.id,
        token.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
    );
    Ok(())
}
