//! The command line (clap). This is the contract users and scripts rely on; see README.md.
//!
//! - [`args`]: argument groups several commands flatten in (fleet, state dir, copy rules,
//!   admin logins), written once.
//! - [`run`]: the long-running commands' arguments (`migrate`, `coordinator`, `worker`, `run`).
//! - [`admin`]: the admin commands' arguments (`endpoint`, `batch`, `report`, `verify`, `dns`).

pub mod admin;
pub mod args;
pub mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::Settings;
use admin::{BatchCommand, DnsCommand, EndpointCommand, ReportCommand, VerifyArgs};
use run::{MigrateArgs, RunArgs, ServeArgs, ServiceArgs, WorkerArgs};

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
            Command::Serve(args) => (&args.service.fleet, None),
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
