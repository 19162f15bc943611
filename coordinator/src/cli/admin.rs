//! The arguments of the admin commands (ARCHITECTURE.md, "What a user does"): named endpoints,
//! batches and their lifecycle, reports, verification and DNS checks. Every command works on the
//! state store in `--state-dir`; `mailfleet run` on the same dir does the syncing.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::args::{
    CopyRuleArgs, EndpointOAuth2Args, ListArgs, NamedArgs, SourceAdminArgs, SourceOAuth2Args,
    StateArgs,
};

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Store a named migration endpoint (admin password: env MAILFLEET_ADMIN_PASSWORD).
    Create(Box<EndpointCreateArgs>),
    /// List the stored endpoints.
    List(ListArgs),
    /// Show one endpoint.
    Show(NamedArgs),
    /// Connect, report capabilities, and try logins (a stored endpoint or a URL).
    Test(Box<EndpointTestArgs>),
    /// Remove an endpoint no batch uses.
    Remove(NamedArgs),
}

#[derive(Debug, Args)]
pub struct EndpointCreateArgs {
    /// Endpoint name (letters, digits, '-' and '_').
    pub name: String,
    /// imap://host:port, imap+starttls://host:port or imaps://host:port
    /// (`?accept_untrusted_certs=true` to skip certificate verification).
    #[arg(long)]
    pub server: String,
    /// basic (LOGIN / SASL PLAIN). NTLM is not supported.
    #[arg(long, default_value = "basic")]
    pub authentication: String,
    /// Log in as this admin on behalf of each user (password: MAILFLEET_ADMIN_PASSWORD).
    #[arg(long, requires = "admin_format")]
    pub admin: Option<String>,
    /// exchange | dovecot | mirapoint | courier | cyrus
    #[arg(long, requires = "admin")]
    pub admin_format: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub max_concurrent_migrations: usize,
    #[arg(long, default_value_t = 10)]
    pub max_concurrent_incremental_syncs: usize,
    /// auto | generic | m365: the rules batches apply when migrating into this endpoint (see
    /// migrate --target-profile); auto detects Exchange Online from the host or OAuth2 login.
    #[arg(long, default_value = "auto")]
    pub profile: mailfleet_shared::server_profile::ProfileChoice,
    #[command(flatten)]
    pub oauth2: EndpointOAuth2Args,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Create a batch from a migration CSV; it starts at --start-after, at once with
    /// --autostart, or on `batch start`.
    Create(Box<BatchCreateArgs>),
    /// Start a created batch (or resume a stopped one).
    Start(NamedArgs),
    /// Stop syncing (a running pass finishes first).
    Stop(NamedArgs),
    /// Resume a stopped batch.
    Resume(NamedArgs),
    /// MX switched: keep syncing for the completion window, then a final sync, then stop.
    Complete(CompleteArgs),
    /// Remove a batch that is not syncing (created, stopped, completed or failed).
    Remove(NamedArgs),
    /// List batches with their states.
    List(ListArgs),
    /// The batch's state and every user's.
    Status(NamedArgs),
    /// Add the users of another migration CSV to the batch.
    AddUsers(AddUsersArgs),
    /// Run the next incremental sync now instead of at its time.
    SyncNow(NamedArgs),
}

#[derive(Debug, Args)]
pub struct BatchCreateArgs {
    /// Batch name: unique, at most 64 characters, letters, digits, '-' and '_'.
    pub name: String,
    /// The source endpoint (see `endpoint create`).
    #[arg(long)]
    pub endpoint: String,
    /// The target endpoint: without an admin, users log in to it with their CSV password.
    #[arg(long)]
    pub target_endpoint: String,
    /// Migration CSV: header `EmailAddress,UserName,Password` (+ optional `UserRoot`).
    #[arg(long)]
    pub csv: PathBuf,
    #[command(flatten)]
    pub rules: CopyRuleArgs,
    /// Start the initial sync at this time: RFC 3339 (`2026-12-01T22:00:00Z`) or `+DURATION`
    /// from now (`+2h`).
    #[arg(long, conflicts_with = "autostart")]
    pub start_after: Option<String>,
    /// Start the initial sync as soon as the service sees the batch.
    #[arg(long)]
    pub autostart: bool,
    /// Begin completion by itself at this time (same forms as --start-after).
    #[arg(long)]
    pub complete_after: Option<String>,
    /// The target's mail exchanger (e.g. `example-com.mail.protection.outlook.com`):
    /// `batch complete` checks the users' domains point at it.
    #[arg(long)]
    pub target_mx: Option<String>,
    /// Who hears of initial sync done, failures and completion (addresses, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub notify: Vec<String>,
    /// Time between incremental syncs (`24h`; tests use seconds).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub incremental_interval: std::time::Duration,
    /// How long syncing goes on after `batch complete` (`72h`).
    #[arg(long, default_value = "72h", value_parser = humantime::parse_duration)]
    pub completion_window: std::time::Duration,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    pub name: String,
    /// Complete even though a domain's MX does not point at the batch's --target-mx yet.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Show a domain's MX records and their TTL; exit 1 when --expect-mx is not where mail goes.
    Check(DnsCheckArgs),
}

#[derive(Debug, Args)]
pub struct DnsCheckArgs {
    pub domain: String,
    /// The exchanger mail should go to after the switch.
    #[arg(long)]
    pub expect_mx: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddUsersArgs {
    pub name: String,
    #[arg(long)]
    pub csv: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The migration users status report of a batch.
    Users(ReportUsersArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
    Html,
}

impl ReportFormat {
    /// The word `--format` takes (and the API's `format` query).
    pub fn name(self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportUsersArgs {
    pub batch: String,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub batch: String,
    /// Only this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct EndpointTestArgs {
    /// The server to test (same URL forms as `migrate --source`).
    #[arg(
        long,
        required_unless_present = "endpoint",
        conflicts_with = "endpoint"
    )]
    pub source: Option<String>,
    /// A stored endpoint to test instead of --source (its admin login included).
    #[arg(long)]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub source_admin: SourceAdminArgs,
    #[command(flatten)]
    pub source_oauth2: SourceOAuth2Args,
    /// Log in as this user (repeatable). Without --source-admin the password comes from
    /// MAILFLEET_USER_PASSWORD.
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
