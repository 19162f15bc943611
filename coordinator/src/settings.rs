//! Process settings shared by `migrate`, `coordinator` and `worker`: where the broker and the
//! store are, the secret key, concurrency, logging and telemetry.
//!
//! Layered with the `config` crate, later layers win: `mailfleet.toml` in the working directory
//! (or the file `--config` names) < `MAILFLEET_*` environment variables < command-line flags.
//! Unknown keys in the file are an error, so a typo never silently falls back to a default.
//! Per-run choices (CSV, endpoints, folder rules) stay on the command line.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use mailfleet_worker::Tuning;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `rabbitmq://user:pass@host:5672/%2f[?prefix=mailfleet]`; unset: in-process queue.
    pub queue: Option<String>,
    /// `redis://host:6379[?tenant=default]`; unset: SQLite in the state dir.
    pub checkpoints: Option<String>,
    /// Where endpoints, batches and users live: `sqlite:DIR`, or `postgres://…` for a fleet
    /// of services sharing them; unset: SQLite in the state dir.
    pub state: Option<String>,
    /// Base64 of 32 random bytes; seals credentials in Redis (every process needs the same).
    pub secret_key: Option<SecretString>,
    /// Tasks a worker process works on at once (also its broker prefetch).
    pub concurrency: Option<usize>,
    /// Message bytes one task holds in memory at once, in MiB (default 16): the bodies of one
    /// fetched batch, waiting to be appended. A worker's in-flight mail is at most
    /// `concurrency` × this; a single message larger than this is fetched alone.
    pub task_buffer_mb: Option<u64>,
    /// Serve Prometheus `/metrics` here, e.g. `0.0.0.0:9464`.
    pub metrics_listen: Option<SocketAddr>,
    /// Export traces over OTLP/HTTP to this collector, e.g. `http://otel-collector:4318`.
    pub otlp_endpoint: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `mailfleet_worker=debug`.
    pub log: Option<String>,
    /// Logs as JSON lines.
    pub log_json: Option<bool>,
    /// Where batch notifications are mailed through: `smtp://host:25`, `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`.
    pub smtp_url: Option<String>,
    /// The From address of notification mail (default `mailfleet@localhost`).
    pub notify_from: Option<String>,
    /// Every batch notification is also POSTed here as JSON.
    pub notify_webhook: Option<String>,
    /// The DNS server for MX checks, e.g. `10.0.0.53:53`; unset: the system's resolvers.
    pub dns_server: Option<SocketAddr>,
    /// After SIGTERM or Ctrl-C, how long running tasks may take to finish (default 25 s);
    /// tasks still running then are cancelled unacked and redelivered.
    pub shutdown_grace_seconds: Option<u64>,
    /// TCP, TLS and greeting of one IMAP connection, e.g. `30s`.
    #[serde(default, deserialize_with = "duration")]
    pub imap_connect_timeout: Option<Duration>,
    /// The longest an IMAP server may stay silent while we wait for it, e.g. `120s`.
    #[serde(default, deserialize_with = "duration")]
    pub imap_idle_timeout: Option<Duration>,
    /// The longest one IMAP answer without literals may take in all, e.g. `5m`.
    #[serde(default, deserialize_with = "duration")]
    pub imap_command_timeout: Option<Duration>,
    /// The longest IMAP response line, in MiB (default 16).
    pub imap_max_line_mb: Option<usize>,
    /// The most folders one LIST may return (default 100000).
    pub imap_max_folders: Option<usize>,
    /// Attempts at an operation that fails transiently, the first included (default 8).
    pub retry_attempts: Option<u32>,
    /// The tenant whose endpoints and batches the admin commands work on (`--tenant`, env
    /// `MAILFLEET_TENANT`); not a key of the file: a choice per command, like a batch name.
    #[serde(skip)]
    pub tenant: Option<String>,
}

/// A duration as humantime text (`90s`, `5m`); from the environment it may come as a number,
/// taken as seconds.
fn duration<'de, D: serde::Deserializer<'de>>(value: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Human(String),
    }
    match Option::<Text>::deserialize(value)? {
        None => Ok(None),
        Some(Text::Seconds(seconds)) => Ok(Some(Duration::from_secs(seconds))),
        Some(Text::Human(text)) => humantime::parse_duration(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}"))),
    }
}

/// The keys above, which are also the environment variables `MAILFLEET_<KEY>`.
pub const KEYS: [&str; 21] = [
    "queue",
    "checkpoints",
    "state",
    "secret_key",
    "concurrency",
    "task_buffer_mb",
    "metrics_listen",
    "otlp_endpoint",
    "log",
    "log_json",
    "smtp_url",
    "notify_from",
    "notify_webhook",
    "dns_server",
    "shutdown_grace_seconds",
    "imap_connect_timeout",
    "imap_idle_timeout",
    "imap_command_timeout",
    "imap_max_line_mb",
    "imap_max_folders",
    "retry_attempts",
];

const ENV_PREFIX: &str = "MAILFLEET";

/// Long enough for a task on a healthy server to finish its batch and checkpoint; short enough
/// to fit inside an orchestrator's own grace period (Kubernetes: 30 s by default).
const DEFAULT_SHUTDOWN_GRACE_SECONDS: u64 = 25;

impl Settings {
    /// Reads `file` (required) or `./mailfleet.toml` (if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, CliError> {
        let file_source = match file {
            Some(path) => File::from(path).format(FileFormat::Toml).required(true),
            None => File::new("mailfleet.toml", FileFormat::Toml).required(false),
        };
        Config::builder()
            .add_source(file_source)
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .source(Some(settings_variables(std::env::vars())))
                    .try_parsing(true),
            )
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| CliError::Invalid(format!("settings: {e}")))
    }

    /// `flags` (what the command line set) over `self`.
    pub fn overridden_by(self, flags: Settings) -> Settings {
        Settings {
            queue: flags.queue.or(self.queue),
            checkpoints: flags.checkpoints.or(self.checkpoints),
            state: flags.state.or(self.state),
            secret_key: flags.secret_key.or(self.secret_key),
            concurrency: flags.concurrency.or(self.concurrency),
            task_buffer_mb: flags.task_buffer_mb.or(self.task_buffer_mb),
            metrics_listen: flags.metrics_listen.or(self.metrics_listen),
            otlp_endpoint: flags.otlp_endpoint.or(self.otlp_endpoint),
            log: flags.log.or(self.log),
            log_json: flags.log_json.or(self.log_json),
            smtp_url: flags.smtp_url.or(self.smtp_url),
            notify_from: flags.notify_from.or(self.notify_from),
            notify_webhook: flags.notify_webhook.or(self.notify_webhook),
            dns_server: flags.dns_server.or(self.dns_server),
            shutdown_grace_seconds: flags.shutdown_grace_seconds.or(self.shutdown_grace_seconds),
            imap_connect_timeout: flags.imap_connect_timeout.or(self.imap_connect_timeout),
            imap_idle_timeout: flags.imap_idle_timeout.or(self.imap_idle_timeout),
            imap_command_timeout: flags.imap_command_timeout.or(self.imap_command_timeout),
            imap_max_line_mb: flags.imap_max_line_mb.or(self.imap_max_line_mb),
            imap_max_folders: flags.imap_max_folders.or(self.imap_max_folders),
            retry_attempts: flags.retry_attempts.or(self.retry_attempts),
            tenant: flags.tenant.or(self.tenant),
        }
    }
}

impl Settings {
    /// The tenant the admin commands work on: `--tenant`, else the default tenant.
    pub fn tenant(&self) -> &str {
        self.tenant
            .as_deref()
            .unwrap_or(mailfleet_shared::tenancy::DEFAULT_TENANT)
    }

    /// How long running tasks may take to finish after a stop is requested.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.shutdown_grace_seconds
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECONDS),
        )
    }

    /// The engine's knobs these settings choose; defaults for the rest.
    pub fn tuning(&self) -> Tuning {
        let mut tuning = Tuning::default();
        if let Some(mib) = self.task_buffer_mb {
            tuning.fetch_batch_bytes = mib.max(1) * 1024 * 1024;
        }
        let imap = &mut tuning.imap;
        imap.connect_timeout = self.imap_connect_timeout.unwrap_or(imap.connect_timeout);
        imap.idle_timeout = self.imap_idle_timeout.unwrap_or(imap.idle_timeout);
        imap.command_timeout = self.imap_command_timeout.unwrap_or(imap.command_timeout);
        if let Some(mib) = self.imap_max_line_mb {
            imap.max_line_bytes = mib.max(1) * 1024 * 1024;
        }
        imap.max_folders = self.imap_max_folders.unwrap_or(imap.max_folders);
        if let Some(attempts) = self.retry_attempts {
            tuning.retry.attempts = attempts.max(1);
        }
        tuning
    }

    /// Every key with its value as TOML, secrets hidden (the key entirely, URL passwords as
    /// `***`), `None` for unset keys: what `mailfleet config` prints.
    pub fn describe(&self) -> Vec<(&'static str, Option<String>)> {
        let quoted = |value: &str| format!("{value:?}");
        let url = |value: &String| quoted(&without_password(value));
        let human = |value: Duration| quoted(&humantime::format_duration(value).to_string());
        vec![
            ("queue", self.queue.as_ref().map(url)),
            ("checkpoints", self.checkpoints.as_ref().map(url)),
            ("state", self.state.as_ref().map(url)),
            (
                "secret_key",
                self.secret_key.as_ref().map(|_| quoted("(hidden)")),
            ),
            ("concurrency", self.concurrency.map(|n| n.to_string())),
            ("task_buffer_mb", self.task_buffer_mb.map(|n| n.to_string())),
            (
                "metrics_listen",
                self.metrics_listen.map(|a| quoted(&a.to_string())),
            ),
            ("otlp_endpoint", self.otlp_endpoint.as_ref().map(url)),
            ("log", self.log.as_deref().map(quoted)),
            ("log_json", self.log_json.map(|b| b.to_string())),
            ("smtp_url", self.smtp_url.as_ref().map(url)),
            ("notify_from", self.notify_from.as_deref().map(quoted)),
            ("notify_webhook", self.notify_webhook.as_ref().map(url)),
            (
                "dns_server",
                self.dns_server.map(|a| quoted(&a.to_string())),
            ),
            (
                "shutdown_grace_seconds",
                self.shutdown_grace_seconds.map(|n| n.to_string()),
            ),
            ("imap_connect_timeout", self.imap_connect_timeout.map(human)),
            ("imap_idle_timeout", self.imap_idle_timeout.map(human)),
            ("imap_command_timeout", self.imap_command_timeout.map(human)),
            (
                "imap_max_line_mb",
                self.imap_max_line_mb.map(|n| n.to_string()),
            ),
            (
                "imap_max_folders",
                self.imap_max_folders.map(|n| n.to_string()),
            ),
            ("retry_attempts", self.retry_attempts.map(|n| n.to_string())),
        ]
    }
}

/// `url` with its password (if any) replaced by `***`; unparsable text is left as it is.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// For processes that only make sense on the distributed backends (`worker`, and
    /// `coordinator`/`run` without local workers): both the broker and the store are named.
    pub fn require_fleet(&self, who: &str) -> Result<(), CliError> {
        if self.queue.is_some() && self.checkpoints.is_some() {
            return Ok(());
        }
        Err(CliError::Invalid(format!(
            "{who} needs the broker and the store: --queue and --checkpoints (or the settings queue and checkpoints, e.g. MAILFLEET_QUEUE and MAILFLEET_CHECKPOINTS)"
        )))
    }
}

/// Only the settings' own variables: other `MAILFLEET_*` variables (admin passwords and the
/// like) are read where they are needed and must not trip the unknown-key check.
fn settings_variables(
    variables: impl Iterator<Item = (String, String)>,
) -> HashMap<String, String> {
    variables
        .filter(|(name, _)| {
            name.strip_prefix(ENV_PREFIX)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|key| KEYS.contains(&key.to_ascii_lowercase().as_str()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_values_are_read_and_unknown_keys_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailfleet.toml");
        std::fs::write(
            &path,
            "queue = \"rabbitmq://broker:5672/%2f\"\nconcurrency = 12\nmetrics_listen = \"127.0.0.1:9464\"\nsecret_key = \"a2V5\"\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(
            settings.queue.as_deref(),
            Some("rabbitmq://broker:5672/%2f")
        );
        assert_eq!(settings.concurrency, Some(12));
        assert_eq!(
            settings.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(settings.secret_key.unwrap().expose_secret(), "a2V5");

        std::fs::write(&path, "queu = \"typo\"\n").unwrap();
        let error = Settings::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("queu"), "{error}");
    }

    #[test]
    fn only_the_settings_own_variables_are_taken_from_the_environment() {
        let variables = [
            ("MAILFLEET_QUEUE", "rabbitmq://x"),
            ("MAILFLEET_SOURCE_ADMIN_PASSWORD", "secret"),
            ("MAILFLEET_CONCURRENCY", "4"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let mut kept: Vec<String> = settings_variables(variables.into_iter())
            .into_keys()
            .collect();
        kept.sort();
        assert_eq!(kept, ["MAILFLEET_CONCURRENCY", "MAILFLEET_QUEUE"]);
    }

    #[test]
    fn described_settings_hide_the_key_and_url_passwords() {
        let settings = Settings {
            queue: Some("rabbitmq://mf:broker-pw@rabbit:5672/%2f".into()),
            secret_key: Some("a2V5".into()),
            ..Default::default()
        };
        let described = format!("{:?}", settings.describe());
        assert!(
            described.contains("rabbitmq://mf:***@rabbit:5672/%2f"),
            "{described}"
        );
        assert!(!described.contains("broker-pw") && !described.contains("a2V5"));
        assert_eq!(settings.describe().len(), KEYS.len());
    }

    #[test]
    fn imap_limits_are_read_as_durations_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailfleet.toml");
        std::fs::write(
            &path,
            "imap_idle_timeout = \"90s\"\nimap_command_timeout = 120\nimap_max_folders = 50\n",
        )
        .unwrap();
        let tuning = Settings::load(Some(&path)).unwrap().tuning();
        assert_eq!(tuning.imap.idle_timeout, Duration::from_secs(90));
        assert_eq!(tuning.imap.command_timeout, Duration::from_secs(120));
        assert_eq!(tuning.imap.max_folders, 50);
        std::fs::write(&path, "imap_idle_timeout = \"soon\"\n").unwrap();
        let error = Settings::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("soon"), "{error}");
    }

    #[test]
    fn flags_win_over_file_and_environment() {
        let file = Settings {
            queue: Some("rabbitmq://file".into()),
            concurrency: Some(2),
            ..Default::default()
        };
        let flags = Settings {
            concurrency: Some(9),
            ..Default::default()
        };
        let merged = file.overridden_by(flags);
        assert_eq!(
            (merged.queue.as_deref(), merged.concurrency),
            (Some("rabbitmq://file"), Some(9))
        );
    }
}
