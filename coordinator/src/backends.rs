//! Choosing the backends of a run, in one place: embedded (in-process queue, SQLite in the
//! state dir) unless `--queue` names a RabbitMQ broker and/or `--checkpoints` a Redis server,
//! and the state store (endpoints, batches, users) in PostgreSQL when the `state` setting
//! names one (`postgres://…`).
//!
//! URLs carry mailfleet's own options as query parameters, removed before the URL reaches the
//! client library: `rabbitmq://host:5672/%2f?prefix=mailfleet` (queue names `{prefix}.tasks`,
//! `.reports`, `.dead`) and `redis://host:6379?tenant=acme` (keys under `mailfleet:acme:`).
//! Distributed stores need the shared secret key (setting `secret_key`, base64 of 32 bytes), so
//! every worker can open the credentials the coordinator sealed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailfleet_shared::checkpoint::CheckpointStore;
use mailfleet_shared::credentials::CredentialStore;
use mailfleet_shared::job_spec::JobSpecStore;
use mailfleet_shared::queue::TaskQueue;
use mailfleet_shared::state::StateStore;
use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::memory_queue::InProcessQueue;
use mailfleet_stores::postgres_state::{self, PostgresStateStore};
use mailfleet_stores::rabbitmq_queue::{DELIVERY_LIMIT, QueueNames, RabbitMqQueue};
use mailfleet_stores::redis_store::RedisStore;
use mailfleet_stores::sqlite::SqliteStore;
use mailfleet_stores::sqlite_state::SqliteStateStore;

use crate::error::CliError;
use crate::settings::Settings;
use secrecy::ExposeSecret;

const QUEUE_SCHEMES: &[&str] = &["rabbitmq", "amqp", "amqps"];
const CHECKPOINT_SCHEMES: &[&str] = &["redis", "rediss"];
const POSTGRES_SCHEMES: &[&str] = &["postgres://", "postgresql://"];

pub struct Backends {
    pub queue: Arc<dyn TaskQueue>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub credentials: Arc<dyn CredentialStore>,
    /// With RabbitMQ: where dead-lettered tasks are read back, to be reported as failures.
    pub dead_letters: Option<Arc<RabbitMqQueue>>,
    /// With Redis: where batches' job specs are shared with stateless workers.
    pub job_specs: Option<Arc<dyn JobSpecStore>>,
    /// Embedded mode: held for the run, so two runs never share a state dir.
    pub state_dir_lock: Option<std::fs::File>,
}

/// The backends `settings` name (`queue`, `checkpoints`, `secret_key`); embedded ones in
/// `state_dir` where they name none.
pub async fn open(
    settings: &Settings,
    state_dir: &Path,
    prefetch: usize,
) -> Result<Backends, CliError> {
    let queue_url = settings.queue.as_deref();
    let checkpoints_url = settings.checkpoints.as_deref();
    let mut state_dir_lock = None;
    let (checkpoints, credentials, specs): (Arc<dyn CheckpointStore>, Arc<dyn CredentialStore>, _) =
        match checkpoints_url {
            None => {
                let lock = lock_state_dir(state_dir)?;
                let store = Arc::new(open_sqlite(state_dir)?);
                // This run owns the state dir: leases of a killed earlier run are stale.
                store.clear_leases().await?;
                state_dir_lock = Some(lock);
                (store.clone(), store, None)
            }
            Some(url) => {
                let store = open_redis(settings, url).await?;
                let specs: Arc<dyn JobSpecStore> = store.clone();
                (store.clone(), store, Some(specs))
            }
        };
    let (queue, dead_letters): (Arc<dyn TaskQueue>, _) = match queue_url {
        None => (Arc::new(InProcessQueue::new()), None),
        Some(url) => {
            let (url, prefix) = take_parameter(url, "--queue", "prefix", QUEUE_SCHEMES)?;
            let url = url.replacen("rabbitmq://", "amqp://", 1);
            let names = QueueNames::with_prefix(prefix.as_deref().unwrap_or("mailfleet"));
            let prefetch = u16::try_from(prefetch.max(1)).unwrap_or(u16::MAX);
            let broker =
                Arc::new(RabbitMqQueue::connect(&url, names, DELIVERY_LIMIT, prefetch).await?);
            (broker.clone() as Arc<dyn TaskQueue>, Some(broker))
        }
    };
    Ok(Backends {
        queue,
        checkpoints,
        credentials,
        dead_letters,
        job_specs: specs,
        state_dir_lock,
    })
}

/// What the `endpoint`, `batch` and `report` commands work on: the state store in the state
/// dir and the credential store the settings name (no queue, no lock: the service may be
/// running on the same state dir).
pub struct AdminStores {
    pub state: Arc<dyn StateStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub checkpoints: Arc<dyn CheckpointStore>,
}

pub async fn open_admin(settings: &Settings, state_dir: &Path) -> Result<AdminStores, CliError> {
    let state_store = open_state(settings, state_dir).await?;
    let (credentials, checkpoints): (Arc<dyn CredentialStore>, Arc<dyn CheckpointStore>) =
        match settings.checkpoints.as_deref() {
            None => {
                let store = Arc::new(open_sqlite(state_dir)?);
                (store.clone(), store)
            }
            Some(url) => {
                let store = open_redis(settings, url).await?;
                (store.clone(), store)
            }
        };
    Ok(AdminStores {
        state: state_store,
        credentials,
        checkpoints,
    })
}

/// The state store (endpoints, batches, users) the `state` setting names: `sqlite:DIR`,
/// `postgres://…`, or (unset) SQLite in `state_dir`.
pub async fn open_state(
    settings: &Settings,
    state_dir: &Path,
) -> Result<Arc<dyn StateStore>, CliError> {
    Ok(match state_location(settings, state_dir)? {
        StateLocation::Sqlite(dir) => Arc::new(SqliteStateStore::open(&dir).map_err(state)?),
        StateLocation::Postgres(url) => {
            Arc::new(PostgresStateStore::connect(url).await.map_err(state)?)
        }
    })
}

// TEMPORARY until wt-tenancy's `ControlStore on SQLite` is merged (then its open_control).
pub async fn open_control(
    _settings: &Settings,
    _state_dir: &Path,
) -> Result<Arc<dyn mailfleet_shared::tenancy::ControlStore>, CliError> {
    Err(CliError::Invalid("no ControlStore yet".into()))
}

/// What keeps a second `mailfleet run` off the batches this one schedules, beyond the state
/// dir's `run.lock` (which the caller holds): the lock of a `sqlite:DIR` elsewhere, or
/// PostgreSQL's advisory lock — services on other machines share the database, not the dir.
pub enum SchedulerLock {
    StateDir(std::fs::File),
    Postgres(postgres_state::SchedulerLock),
}

pub async fn lock_scheduler(
    settings: &Settings,
    state_dir: &Path,
) -> Result<Option<SchedulerLock>, CliError> {
    match state_location(settings, state_dir)? {
        StateLocation::Sqlite(dir) if dir == state_dir => Ok(None),
        StateLocation::Sqlite(dir) => Ok(Some(SchedulerLock::StateDir(lock_state_dir(&dir)?))),
        StateLocation::Postgres(url) => {
            match postgres_state::SchedulerLock::try_take(url)
                .await
                .map_err(state)?
            {
                Some(lock) => Ok(Some(SchedulerLock::Postgres(lock))),
                None => Err(CliError::Invalid(
                    "the state database is in use by another mailfleet run".into(),
                )),
            }
        }
    }
}

enum StateLocation<'a> {
    Sqlite(PathBuf),
    Postgres(&'a str),
}

fn state_location<'a>(
    settings: &'a Settings,
    state_dir: &Path,
) -> Result<StateLocation<'a>, CliError> {
    let Some(setting) = settings.state.as_deref() else {
        return Ok(StateLocation::Sqlite(state_dir.to_owned()));
    };
    if let Some(dir) = setting
        .strip_prefix("sqlite:")
        .filter(|dir| !dir.is_empty())
    {
        return Ok(StateLocation::Sqlite(PathBuf::from(dir)));
    }
    if POSTGRES_SCHEMES
        .iter()
        .any(|scheme| setting.starts_with(scheme))
    {
        return Ok(StateLocation::Postgres(setting));
    }
    Err(CliError::Invalid(
        "state: use sqlite:DIR or postgres://user:password@host:5432/database".into(),
    ))
}

fn open_sqlite(state_dir: &Path) -> Result<SqliteStore, CliError> {
    let secrets =
        SecretBox::load_or_create_key_file(&state_dir.join("secret.key")).map_err(state)?;
    SqliteStore::open(state_dir, secrets).map_err(state)
}

async fn open_redis(settings: &Settings, url: &str) -> Result<Arc<RedisStore>, CliError> {
    let (url, tenant) = take_parameter(url, "--checkpoints", "tenant", CHECKPOINT_SCHEMES)?;
    let tenant = tenant.as_deref().unwrap_or("default");
    let store = RedisStore::connect(&url, tenant, secret_key(settings)?).await?;
    Ok(Arc::new(store))
}

/// The checks `open` makes before connecting (URL schemes, the key), for `mailfleet config`.
pub fn check(settings: &Settings) -> Result<(), CliError> {
    state_location(settings, Path::new("."))?;
    if let Some(url) = &settings.queue {
        take_parameter(url, "queue", "prefix", QUEUE_SCHEMES)?;
    }
    if let Some(url) = &settings.checkpoints {
        take_parameter(url, "checkpoints", "tenant", CHECKPOINT_SCHEMES)?;
        secret_key(settings)?;
    } else if settings.secret_key.is_some() {
        secret_key(settings)?;
    }
    Ok(())
}

/// An exclusive lock on `state_dir/run.lock`, released when the process ends (even by kill -9).
pub fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, CliError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| CliError::failed(state_dir.display().to_string(), e))?;
    let path = state_dir.join("run.lock");
    let file = std::fs::File::create(&path)
        .map_err(|e| CliError::failed(path.display().to_string(), e))?;
    file.try_lock().map_err(|_| {
        CliError::Invalid(format!(
            "{} is in use by another mailfleet run",
            state_dir.display()
        ))
    })?;
    Ok(file)
}

fn state(error: mailfleet_stores::StoresError) -> CliError {
    CliError::failed("state store", error)
}

/// The distributed key: the same on every process, so it cannot be a local file.
fn secret_key(settings: &Settings) -> Result<SecretBox, CliError> {
    let key = settings.secret_key.as_ref().ok_or_else(|| {
        CliError::Invalid(
            "distributed stores need the secret key: MAILFLEET_SECRET_KEY or `secret_key` in mailfleet.toml (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"
                .into(),
        )
    })?;
    SecretBox::from_base64(key.expose_secret())
        .map_err(|e| CliError::Invalid(format!("secret_key: {e}")))
}

/// Checks the scheme, removes mailfleet's `name` parameter from `url` and returns its value.
fn take_parameter(
    url: &str,
    flag: &str,
    name: &str,
    schemes: &[&str],
) -> Result<(String, Option<String>), CliError> {
    let mut parsed = url::Url::parse(url).map_err(|e| CliError::Invalid(format!("{flag}: {e}")))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(CliError::Invalid(format!(
            "{flag}: the URL must start with {}://",
            schemes.join("://, ")
        )));
    }
    let mut value = None;
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == name {
                value = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_setting_names_sqlite_or_postgres() {
        let with = |state: Option<&str>| Settings {
            state: state.map(str::to_owned),
            ..Default::default()
        };
        let dir = Path::new("state-dir");
        let sqlite_in = |settings: &Settings| match state_location(settings, dir) {
            Ok(StateLocation::Sqlite(path)) => Some(path),
            _ => None,
        };
        assert_eq!(sqlite_in(&with(None)), Some(dir.to_owned()));
        assert_eq!(
            sqlite_in(&with(Some("sqlite:/var/lib/mf"))),
            Some(PathBuf::from("/var/lib/mf"))
        );
        let postgres = with(Some("postgresql://mf:pw@db/mailfleet"));
        assert!(matches!(
            state_location(&postgres, dir),
            Ok(StateLocation::Postgres("postgresql://mf:pw@db/mailfleet"))
        ));
        for bad in ["mysql://mf:s3cret@db/x", "sqlite:", "/var/lib/mf"] {
            let Err(error) = state_location(&with(Some(bad)), dir) else {
                panic!("{bad} accepted");
            };
            let error = error.to_string();
            assert!(error.contains("sqlite:DIR or postgres://"), "{error}");
            assert!(
                !error.contains("s3cret"),
                "the URL's password is not echoed"
            );
        }
    }

    #[test]
    fn mailfleet_parameters_are_taken_out_of_the_url() {
        let (url, prefix) = take_parameter(
            "rabbitmq://u:p@h:5672/%2f?prefix=acme&heartbeat=10",
            "--queue",
            "prefix",
            &["rabbitmq"],
        )
        .unwrap();
        assert_eq!(
            (url.as_str(), prefix.as_deref()),
            ("rabbitmq://u:p@h:5672/%2f?heartbeat=10", Some("acme"))
        );
        let (url, tenant) = take_parameter(
            "redis://127.0.0.1:6379",
            "--checkpoints",
            "tenant",
            &["redis"],
        )
        .unwrap();
        assert_eq!((url.as_str(), tenant), ("redis://127.0.0.1:6379", None));
        assert!(take_parameter("http://x", "--queue", "prefix", &["rabbitmq", "amqp"]).is_err());
    }
}
