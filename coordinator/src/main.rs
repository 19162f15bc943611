//! The `mailfleet` binary: parse the command line, load the settings, set up logging, run the
//! command, exit with a status scripts can rely on (0 done, 1 some users failed, 2 invalid
//! input, 130 stopped by a signal), here or through a service's API (`--api`). Everything
//! else lives in the library (`lib.rs`).

use std::process::ExitCode;

use clap::Parser;
use mailfleet::cli::Cli;
use mailfleet::commands;
use mailfleet::hardening;
use mailfleet::observe::telemetry;
use mailfleet::remote::{self, ApiClient};
use mailfleet::settings::Settings;

fn main() -> ExitCode {
    // Before any password, key or token is read (the environment, the CSV, the state).
    if let Err(error) = hardening::forbid_memory_dumps() {
        eprintln!("mailfleet: warning: cannot make the process non-dumpable: {error}");
    }
    let cli = Cli::parse();
    let started = Settings::load(cli.config.as_deref())
        .map(|settings| settings.overridden_by(cli.flag_settings()))
        .and_then(|settings| {
            let guard = telemetry::init(&settings, cli.command.service_name())?;
            Ok((settings, guard))
        });
    // Dropped last, after the runtime: flushes the traces of the whole run.
    let (settings, _telemetry) = match started {
        Ok(started) => started,
        Err(error) => {
            eprintln!("mailfleet: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mailfleet: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // The one place a command chooses where it runs: a service's API (--api), or here.
    let outcome = runtime.block_on(async {
        match ApiClient::from_args(&cli.remote, settings.tenant.as_deref())? {
            Some(api) => remote::run(&cli.command, &api).await,
            None => commands::dispatch(&cli.command, &settings).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mailfleet: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
