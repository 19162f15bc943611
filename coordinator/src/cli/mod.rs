//! The command line (clap). This is the contract users and scripts rely on; see README.md.
//!
//! - [`args`]: argument groups several commands flatten in (fleet, state dir, copy rules,
//!   admin logins), written once.
//! - [`run`]: the long-running commands' arguments (`migrate`, `coordinator`, `worker`, `run`).
//! - [`admin`]: the admin commands' arguments (`endpoint`, `batch`, `report`, `verify`, `dns`).
//! - [`tenancy`]: the provider's commands' arguments (`tenant`, `token`).

pub mod admin;
pub mod args;
pub mod run;
pub mod tenancy;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::Settings;
use admin::{BatchCommand, DnsCommand, EndpointCommand, ReportCommand, VerifyArgs};
use run::{MigrateArgs, RunArgs, ServeArgs, ServiceArgs, WorkerArgs};
use tenancy::{TenantCommand, TokenCommand};

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
    /// The tenant whose endpoints, batches and reports the endpoint, batch, report and verify
    /// commands work on (default: `default`); the tenant of `token create` and `token list`.
    /// (`--as-tenant`, because `endpoint create --tenant` is an OAuth2 directory's tenant.)
    #[arg(
        id = "as_tenant",
        long = "as-tenant",
        global = true,
        env = "MAILFLEET_TENANT"
    )]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the endpoint, batch, report and verify commands run: on this machine's stores, or on a
/// `mailfleet serve` elsewhere through its HTTP API. The token is never a flag (it would show
/// in `ps`): it comes from MAILFLEET_API_TOKEN only.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Run the endpoint, batch, report and verify commands through the API of the
    /// `mailfleet serve` at this URL (e.g. https://mailfleet.example.net:8443), with the token
    /// in MAILFLEET_API_TOKEN, instead of on the stores here.
    #[arg(long, global = true, env = "MAILFLEET_API")]
    pub api: Option<url::Url>,
    /// With --api: also trust this CA certificate (PEM), e.g. serve's self-signed --tls-cert.
    #[arg(long, global = true, env = "MAILFLEET_API_CA")]
    pub api_ca: Option<PathBuf>,
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
    /// The service of `run` with its HTTP API (/api/v1), dashboard, /metrics and /healthz on
    /// --listen.
    Serve(Box<ServeArgs>),
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
    /// Tenants: the customers of a service, each with its own endpoints, batches and keys.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// API tokens: create (shown once), list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
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
            tenant: self.tenant.clone(),
            ..Settings::default()
        };
        let (fleet, concurrency) = match &self.command {
            Command::Migrate(args) => (&args.run.fleet, None),
            Command::Coordinator(args) => (&args.fleet, None),
            Command::Worker(args) => (&args.fleet, args.concurrency),
            Command::Run(args) => (&args.fleet, None),
            Command::Serve(args) => (&args.service.fleet, None),
            Command::Endpoint { .. }
            | Command::Batch { .. }
            | Command::Report { .. }
            | Command::Verify(_)
            | Command::Dns { .. }
            | Command::Tenant { .. }
            | Command::Token { .. }
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
