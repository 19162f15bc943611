//! The state `bench api` measures: two endpoints and one batch of N users made with the real
//! command line (`endpoint create`, `batch create` — timed — and `token create`), then the
//! users' records moved on through the state store as a batch in the middle of its initial
//! sync would have them, so that filters by state find something. The batch is never
//! started: nothing migrates, and the service beside the API changes nothing while it is
//! measured.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, bail};
use mailfleet_shared::lifecycle::{UserRecord, UserState};
use mailfleet_shared::messages::SkippedItem;
use mailfleet_shared::state::StateStore;
use mailfleet_shared::tenancy::{ControlStore, DEFAULT_TENANT};
use mailfleet_stores::postgres_state::PostgresStateStore;
use mailfleet_stores::sqlite_state::SqliteStateStore;
use mailfleet_testkit::postgres::TestDatabase;

use super::super::measured::{self, Measured};

pub const BATCH: &str = "bench-api";
/// Nothing listens there: the batch is never started, so no server is contacted.
const NO_SERVER: &str = "imap://127.0.0.1:9";

/// Where the state store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateKind {
    /// `state.db` in the benchmark's state dir (the default of `mailfleet serve`).
    Sqlite,
    /// A database of its own on the PostgreSQL server `MAILFLEET_TEST_POSTGRES` names
    /// (default postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
    Postgres,
}

/// A state dir (and database) holding the benchmark's batch, and a token to read it with.
pub struct BenchState {
    pub state_dir: PathBuf,
    pub token: String,
    /// `MAILFLEET_STATE` for every `mailfleet` process, when the state is in PostgreSQL.
    state_url: Option<String>,
    pub batch_create: Measured,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

impl BenchState {
    pub async fn create(binary: &Path, kind: StateKind, users: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let database = match kind {
            StateKind::Sqlite => None,
            StateKind::Postgres => Some(TestDatabase::create().await),
        };
        let mut state = BenchState {
            state_dir: dir.path().join("state"),
            token: String::new(),
            state_url: database.as_ref().map(|d| d.url().to_owned()),
            batch_create: Measured {
                seconds: 0.0,
                cpu_seconds: 0.0,
                peak_rss_mib: 0.0,
            },
            _dir: dir,
            _database: database,
        };
        for endpoint in ["source", "target"] {
            state.run(
                binary,
                &["endpoint", "create", endpoint, "--server", NO_SERVER],
            )?;
        }
        let csv = state.state_dir.with_file_name("users.csv");
        write_csv(&csv, users)?;
        eprintln!("batch create of {users} users…");
        let mut create = state.mailfleet(binary);
        create
            .args(["batch", "create", BATCH, "--endpoint", "source"])
            .args(["--target-endpoint", "target", "--csv"])
            .arg(&csv)
            .arg("--state-dir")
            .arg(&state.state_dir)
            .stdout(Stdio::null());
        state.batch_create = measured::run(create, "mailfleet batch create")?;
        state.token = state.token_create(binary)?;
        state.move_users_on().await?;
        Ok(state)
    }

    /// A `mailfleet` command on this state (`--state-dir` is the caller's to add where the
    /// subcommand takes it).
    pub fn mailfleet(&self, binary: &Path) -> Command {
        let mut command = Command::new(binary);
        command.env("MAILFLEET_LOG", "warn");
        if let Some(url) = &self.state_url {
            command.env("MAILFLEET_STATE", url);
        }
        command
    }

    fn run(&self, binary: &Path, args: &[&str]) -> anyhow::Result<()> {
        let output = self
            .mailfleet(binary)
            .args(args)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .output()
            .with_context(|| format!("running mailfleet {}", args.join(" ")))?;
        if !output.status.success() {
            bail!(
                "mailfleet {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// An admin token of the default tenant, as `TOKEN=$(mailfleet token create …)` gets it.
    fn token_create(&self, binary: &Path) -> anyhow::Result<String> {
        let output = self
            .mailfleet(binary)
            .args(["token", "create", "--role", "admin", "--label", "bench-api"])
            .arg("--state-dir")
            .arg(&self.state_dir)
            .stderr(Stdio::null())
            .output()
            .context("running mailfleet token create")?;
        let token = String::from_utf8(output.stdout)?.trim().to_owned();
        if !output.status.success() || !token.starts_with("mf_") {
            bail!("mailfleet token create printed no token");
        }
        Ok(token)
    }

    /// The state store as `mailfleet serve` opens it, in the default tenant.
    async fn state_store(&self) -> anyhow::Result<Arc<dyn StateStore>> {
        let control: Arc<dyn ControlStore> = match &self.state_url {
            None => Arc::new(SqliteStateStore::open(&self.state_dir)?),
            Some(url) => Arc::new(PostgresStateStore::connect(url).await?),
        };
        Ok(control.tenant_state(DEFAULT_TENANT))
    }

    /// Gives the users the states and counts of a batch half way through its initial sync
    /// ([`progress`]), written in the store's own transactions of a few thousand users.
    async fn move_users_on(&self) -> anyhow::Result<()> {
        let store = self.state_store().await?;
        let mut users = store.users(BATCH).await?;
        for (index, user) in users.iter_mut().enumerate() {
            progress(index, user);
        }
        for chunk in users.chunks_mut(5_000) {
            store.put_users(BATCH, chunk).await?;
        }
        Ok(())
    }
}

/// User `index` of the batch: 1 in 100 failed, 6 in 10 synced (one in 7 of them with a
/// skipped item), 1 in 10 syncing, the rest queued.
fn progress(index: usize, user: &mut UserRecord) {
    let items = 200 + (index as u64 * 37) % 5_000;
    match index % 100 {
        0 => {
            user.state = UserState::Failed;
            user.errors = vec!["source login failed: AUTHENTICATIONFAILED".to_owned()];
        }
        i if i % 10 < 6 => {
            user.state = UserState::Synced;
            user.items_synced = items;
            user.items_copied_total = items;
            user.bytes_copied_total = items * 48_000;
            user.initial_sync_seconds = Some(items as f64 / 40.0);
            if index.is_multiple_of(7) {
                user.items_skipped = 1;
                user.skipped = vec![SkippedItem {
                    folder: "INBOX".to_owned(),
                    subject: Some("Quarterly figures".to_owned()),
                    date: Some("2024-03-01".to_owned()),
                    size: Some(60_000_000),
                    reason: "larger than max_message_size".to_owned(),
                }];
            }
        }
        i if i % 10 == 6 => {
            user.state = UserState::Syncing;
            user.items_synced = items / 2;
        }
        _ => {}
    }
}

/// User `index`'s address.
pub fn user(index: usize) -> String {
    format!("user{index:05}@api-bench.example")
}

/// A valid migration CSV of `users` rows with random passwords.
fn write_csv(path: &Path, users: usize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "EmailAddress,UserName,Password")?;
    for index in 0..users {
        let password: u64 = rand::random();
        writeln!(out, "{},{},Pw-{password:016x}", user(index), user(index))?;
    }
    out.flush()?;
    Ok(())
}
