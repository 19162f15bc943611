//! `mailfleet config`: the effective settings (mailfleet.toml < MAILFLEET_* < flags), secrets
//! hidden, after the checks a process makes at start (exit 2 when one fails).

use std::process::ExitCode;

use crate::backends;
use crate::error::CliError;
use crate::settings::Settings;

pub fn run(settings: &Settings) -> Result<ExitCode, CliError> {
    backends::check(settings)?;
    for (key, value) in settings.describe() {
        match value {
            Some(value) => println!("{key} = {value}"),
            None => println!("# {key} (unset)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
