//! Logs (tracing; text or JSON lines on stderr) and the Prometheus registry of this process.

use std::io::IsTerminal;

use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::error::CliError;
use crate::settings::Settings;

/// Installs the process's log subscriber; a filter that does not parse is invalid input.
pub fn init_logging(settings: &Settings) -> Result<(), CliError> {
    let filter = settings.log.as_deref().unwrap_or("warn");
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| CliError::Invalid(format!("log filter {filter:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if settings.log_json.unwrap_or(false) {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

/// A registry with the engine's counters (messages, bytes, tasks, retries).
pub fn engine_registry() -> Registry {
    let mut registry = Registry::default();
    mailfleet_worker::metrics::engine().register(&mut registry);
    registry
}
