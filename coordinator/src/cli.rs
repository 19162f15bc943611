//! The command line (clap). This is the contract users and scripts rely on; see README.md.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::service_cli::{
    BatchCommand, DnsCommand, EndpointCommand, ReportCommand, ServiceArgs, StateArgs, VerifyArgs,
};
use crate::settings::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "mailfleet",
    version,
    about = "Migrate IMAP mailboxes at fleet scale, exactly once"
)]
pub struct Cli {
    /// Settings file (default: ./mailfleet.toml when it exists); see README "Configuration".
    #[arg(long, global = true, env = "MAILFLEET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `mailfleet_worker=debug`
    /// (setting `log`; default: warn).
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Write logs as JSON lines to stderr (setting `log_json`).
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every mailbox of a migration CSV from the source to the target: in this process
    /// on the embedded backends, or on RabbitMQ and Redis with --queue/--checkpoints.
    Migrate(Box<MigrateArgs>),
    /// Plan a migration CSV onto RabbitMQ and collect its reports while `mailfleet worker`
    /// processes elsewhere copy the mail; exits like `migrate` when every user is done.
    Coordinator(Box<RunArgs>),
    /// Run a stateless worker for distributed mode: tasks from RabbitMQ, state in Redis.
    Worker(WorkerArgs),
    /// Print the effective settings (mailfleet.toml < MAILFLEET_* < flags) with secrets hidden,
    /// after the checks a process makes at start; exit 2 when one is invalid.
    Config,
    /// Migration endpoints: create, list, show, test, remove.
    Endpoint {
        #[command(subcommand)]
        command: EndpointCommand,
    },
    /// Migration batches and their lifecycle.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// The service: run every batch's initial, incremental and final syncs when they are due.
    Run(Box<ServiceArgs>),
    /// Reports about a batch.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// DNS checks for the MX switch.
    Dns {
        #[command(subcommand)]
        command: DnsCommand,
    },
    /// Compare source and target of a batch's users now: every message missing on the target
    /// or present twice; exit 1 on any difference.
    Verify(VerifyArgs),
}

impl Command {
    /// How this process names itself in traces.
    pub fn service_name(&self) -> &'static str {
        match self {
            Command::Worker(_) => "mailfleet-worker",
            _ => "mailfleet-coordinator",
        }
    }
}

impl Cli {
    /// The settings given as flags, to be laid over the file and the environment.
    pub fn flag_settings(&self) -> Settings {
        let common = Settings {
            log: self.log.clone(),
            log_json: self.log_json.then_some(true),
            ..Settings::default()
        };
        let (fleet, concurrency) = match &self.command {
            Command::Migrate(args) => (&args.run.fleet, None),
            Command::Coordinator(args) => (&args.fleet, None),
            Command::Worker(args) => (&args.fleet, args.concurrency),
            Command::Run(args) => (&args.fleet, None),
            Command::Endpoint { .. }
            | Command::Batch { .. }
            | Command::Report { .. }
            | Command::Verify(_)
            | Command::Dns { .. }
            | Command::Config => return common,
        };
        Settings {
            queue: fleet.queue.clone(),
            checkpoints: fleet.checkpoints.clone(),
            metrics_listen: fleet.metrics_listen,
            concurrency,
            ..common
        }
    }
}

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
    /// Folders to skip: `#Inbox#`-style well-known names, `Name/*` subtrees, exact `Name/Sub`.
    #[arg(long, value_delimiter = ',')]
    pub exclude_folders: Vec<String>,
    /// Only these folders (same syntax as --exclude-folders).
    #[arg(long, value_delimiter = ',')]
    pub include_folders: Vec<String>,
    /// Messages larger than this many bytes are skipped and reported (default: 35 MB).
    #[arg(long, default_value_t = mailfleet_worker::job::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: u64,
    /// Folders with more messages are copied in parts of this many, one task each, so every
    /// task stays short and a huge folder moves on whichever worker is free.
    #[arg(long, default_value_t = mailfleet_shared::job_spec::DEFAULT_FOLDER_PART_MESSAGES)]
    pub folder_part_messages: usize,
    /// Copy only messages received on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub received_after: Option<chrono::NaiveDate>,
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
    /// Log in as this user (repeatable). Without --source-admin the password comes from
    /// MAILFLEET_USER_PASSWORD.
    #[arg(long = "user")]
    pub users: Vec<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
