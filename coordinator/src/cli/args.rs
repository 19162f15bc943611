//! Argument groups more than one command flattens in, so a flag means the same everywhere and
//! its help text is written once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Where a process finds the broker and the store, and where it serves metrics. Each flag may
/// instead come from `mailfleet.toml` or a `MAILFLEET_<SETTING>` variable (see `settings`).
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Run the tasks through RabbitMQ: `rabbitmq://user:pass@host:5672/%2f[?prefix=mailfleet]`
    /// (setting `queue`).
    #[arg(long)]
    pub queue: Option<String>,
    /// Keep checkpoints, sealed credentials and job specs in Redis:
    /// `redis://host:6379[?tenant=default]` (setting `checkpoints`; needs `secret_key`).
    #[arg(long)]
    pub checkpoints: Option<String>,
    /// Serve Prometheus /metrics, /status and /healthz here, e.g. 127.0.0.1:9464
    /// (setting `metrics_listen`).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Where the state store (and, embedded, checkpoints and sealed passwords) lives.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The service's state directory (shared by `mailfleet run` and the admin commands).
    #[arg(long, default_value = "mailfleet-state")]
    pub state_dir: PathBuf,
}

/// What of each mailbox is copied: the folder rules, a date filter and the size limit. A batch
/// stores them; `migrate` uses them for its one run.
#[derive(Debug, Args)]
pub struct CopyRuleArgs {
    /// Folders to skip: `#Inbox#`-style well-known names, `Name/*` subtrees, exact `Name/Sub`.
    #[arg(long, value_delimiter = ',')]
    pub exclude_folders: Vec<String>,
    /// Only these folders (same syntax as --exclude-folders).
    #[arg(long, value_delimiter = ',')]
    pub include_folders: Vec<String>,
    /// Copy only messages received on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub received_after: Option<chrono::NaiveDate>,
    /// Messages larger than this many bytes are skipped and reported (default: 35 MB).
    #[arg(long, default_value_t = mailfleet_worker::job::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: u64,
    /// Incremental passes also remove from the target mailfleet's copies of messages deleted
    /// on the source since (never mail that arrived on the target by itself). Without it they
    /// are kept and listed in the report.
    #[arg(long)]
    pub mirror_deletions: bool,
}

#[derive(Debug, Args)]
pub struct SourceAdminArgs {
    /// Log in to the source as this admin on behalf of each user (password:
    /// MAILFLEET_SOURCE_ADMIN_PASSWORD).
    #[arg(long = "source-admin", requires = "source_admin_format")]
    pub source_admin: Option<String>,
    /// exchange | dovecot | mirapoint | courier | cyrus
    #[arg(long = "source-admin-format", requires = "source_admin")]
    pub source_admin_format: Option<String>,
}

#[derive(Debug, Args)]
pub struct TargetAdminArgs {
    /// Log in to the target as this admin on behalf of each user (password:
    /// MAILFLEET_TARGET_ADMIN_PASSWORD).
    #[arg(long = "target-admin", requires = "target_admin_format")]
    pub target_admin: Option<String>,
    /// exchange | dovecot | mirapoint | courier | cyrus
    #[arg(long = "target-admin-format", requires = "target_admin")]
    pub target_admin_format: Option<String>,
}

/// A command about one named endpoint or batch.
#[derive(Debug, Args)]
pub struct NamedArgs {
    pub name: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}
