//! The arguments of the provider's commands (ARCHITECTURE.md, "Tenants"): tenants and API
//! tokens. The tenant of `token create` and `token list` is the global `--tenant`.

use clap::{Args, Subcommand};
use mailfleet_shared::tenancy::Role;

use super::args::{ListArgs, StateArgs};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (names: lowercase letters, digits, '-').
    Create(TenantCreateArgs),
    /// List the tenants with their limits and users.
    List(ListArgs),
    /// Remove a tenant with its endpoints, batches, users, tokens and secret key.
    Remove(TenantNameArgs),
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    pub name: String,
    /// Users of this tenant in a sync at once, across its batches.
    #[arg(long)]
    pub max_concurrent_migrations: Option<usize>,
    /// Users this tenant may have in all its batches together (`batch create` refuses more).
    #[arg(long)]
    pub max_users: Option<usize>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct TenantNameArgs {
    pub name: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token of the tenant named by --tenant, or a provider token; the token is
    /// printed once, on stdout, and only its SHA-256 is kept.
    Create(TokenCreateArgs),
    /// List tokens (never their text): of --tenant if given, else all.
    List(ListArgs),
    /// Revoke a token by its id; it stays listed, revoked.
    Revoke(TokenIdArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// admin | operator | viewer
    #[arg(long, required_unless_present = "provider", value_parser = tenant_role)]
    pub role: Option<Role>,
    /// A provider token: manages tenants and acts in any of them.
    #[arg(long, conflicts_with = "role")]
    pub provider: bool,
    /// What the token is for, shown by `token list`.
    #[arg(long, default_value = "")]
    pub label: String,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct TokenIdArgs {
    pub id: String,
    #[command(flatten)]
    pub state: StateArgs,
}

/// The roles a tenant's token may have (a provider token is `--provider`).
fn tenant_role(text: &str) -> Result<Role, String> {
    match text.parse()? {
        Role::Provider => Err("a provider token is made with --provider".into()),
        role => Ok(role),
    }
}
