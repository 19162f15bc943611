//! The arguments of the long-running commands: `migrate`, `coordinator`, `worker` and `run`.

use std::path::PathBuf;

use clap::Args;

use super::args::{
    CopyRuleArgs, FleetArgs, SourceAdminArgs, SourceOAuth2Args, StateArgs, TargetAdminArgs,
    TargetOAuth2Args,
};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Tasks (users' discoveries and folders) worked on at once in this process; 0 runs only
    /// the coordinator (plan, collect, report) for `mailfleet worker` processes elsewhere.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
}

/// One migration run: what to copy, from where to where, and how.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Migration CSV: header `EmailAddress,UserName,Password` (+ optional `UserRoot`).
    #[arg(long)]
    pub csv: PathBuf,
    /// Source server: imap://host:port, imap+starttls://host:port or imaps://host:port
    /// (`?accept_untrusted_certs=true` to skip certificate verification).
    #[arg(long)]
    pub source: String,
    /// Target server, same URL forms as --source.
    #[arg(long)]
    pub target: String,
    #[command(flatten)]
    pub source_admin: SourceAdminArgs,
    #[command(flatten)]
    pub target_admin: TargetAdminArgs,
    #[command(flatten)]
    pub source_oauth2: SourceOAuth2Args,
    #[command(flatten)]
    pub target_oauth2: TargetOAuth2Args,
    #[command(flatten)]
    pub rules: CopyRuleArgs,
    /// auto | generic | m365: the target's rules (reserved names, keywords it cannot keep,
    /// `\Flagged` set again after APPEND). auto picks m365 for outlook.office365.com or a
    /// Microsoft OAuth2 login.
    #[arg(long, default_value = "auto")]
    pub target_profile: mailfleet_shared::server_profile::ProfileChoice,
    /// Folders with more messages are copied in parts of this many, one task each, so every
    /// task stays short and a huge folder moves on whichever worker is free.
    #[arg(long, default_value_t = mailfleet_shared::job_spec::DEFAULT_FOLDER_PART_MESSAGES)]
    pub folder_part_messages: usize,
    /// Users migrated at once (the endpoint's max_concurrent_migrations); the next starts when
    /// one finishes.
    #[arg(long, default_value_t = 20)]
    pub max_concurrent_migrations: usize,
    /// Where checkpoints, the encryption key and the state database live; re-use it to resume.
    #[arg(long, default_value = "mailfleet-state")]
    pub state_dir: PathBuf,
    /// Print one JSON document with every user's result on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Tasks worked on at once, also the broker prefetch (setting `concurrency`; default 8).
    #[arg(long)]
    pub concurrency: Option<usize>,
}

/// `mailfleet run`: the scheduler.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Tasks worked on at once in this process; 0 with --queue/--checkpoints leaves the
    /// copying to `mailfleet worker` processes.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// How often the scheduler looks for due work.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub poll_interval: std::time::Duration,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// `mailfleet serve`: the scheduler of `run` plus the HTTP API, the dashboard, `/metrics` and
/// `/healthz` on one address.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Where the API (`/api/v1`), the dashboard (`/`), `/metrics` and `/healthz` listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Requests a minute per API token, after a burst of as many (0: no limit).
    #[arg(long, default_value_t = 600)]
    pub rate_limit: u32,
}
