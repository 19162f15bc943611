//! Shared set-up for the end-to-end tests: two real Dovecot servers with the same users, a
//! seeded source, a migration CSV, and the real `mailfleet` binary.

#![allow(dead_code)] // each test file uses a different part

pub mod api;
pub mod fleet;
pub mod service;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{DovecotServer, Layout, MailboxSnapshot, StartOptions, seed, snapshot};
use serde_json::Value;

pub const ADMIN: (&str, &str) = ("admin", "master-secret-9");

pub struct Pair {
    pub source: DovecotServer,
    pub target: DovecotServer,
    pub users: Vec<(String, String)>,
    pub dir: tempfile::TempDir,
}

impl Pair {
    /// Source and target with the same `users` (login, password), each test its own names.
    pub fn start(users: &[(&str, &str)]) -> Self {
        Self::start_with_layout(users, Layout::Default)
    }

    pub fn start_with_layout(users: &[(&str, &str)], source_layout: Layout) -> Self {
        let options = StartOptions::users(users).with_master(ADMIN.0, ADMIN.1);
        Self::from_servers(options.clone().with_layout(source_layout), options, users)
    }

    /// Servers with their own options; `users` are the CSV's (login, password) pairs.
    pub fn from_servers(
        source: StartOptions,
        target: StartOptions,
        users: &[(&str, &str)],
    ) -> Self {
        Pair {
            source: DovecotServer::start(source).unwrap(),
            target: DovecotServer::start(target).unwrap(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Seeds every user's source mailbox (a different corpus per user); returns the counts.
    pub async fn seed_all(&self, spec: &CorpusSpec) -> Vec<usize> {
        let mut counts = Vec::new();
        for (i, (user, password)) in self.users.iter().enumerate() {
            let spec = CorpusSpec {
                seed: spec.seed + i as u64,
                ..spec.clone()
            };
            counts.push(
                seed(self.source.port(), user, password, &spec)
                    .await
                    .unwrap(),
            );
        }
        counts
    }

    /// `EmailAddress,UserName,Password` for every user (source login = target address).
    pub fn write_csv(&self) -> PathBuf {
        let mut csv = String::from("EmailAddress,UserName,Password\n");
        for (user, password) in &self.users {
            csv.push_str(&format!("{user},{user},{password}\n"));
        }
        let path = self.dir.path().join("users.csv");
        std::fs::write(&path, csv).unwrap();
        path
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `mailfleet migrate --csv … --source … --target … --state-dir … --json` plus `extra`.
    pub fn migrate_command(&self, csv: &Path, extra: &[&str]) -> Command {
        self.run_command("migrate", csv, extra)
    }

    /// `mailfleet SUBCOMMAND --json --csv … --source … --target … --state-dir …` plus `extra`,
    /// for the subcommands that run a CSV (`migrate`, `coordinator`).
    pub fn run_command(&self, subcommand: &str, csv: &Path, extra: &[&str]) -> Command {
        self.run_command_from(&self.source.url(), subcommand, csv, extra)
    }

    /// `migrate` as [`Pair::migrate_command`] does, but reading the source through `source_url`
    /// (a proxy or a scripted server in front of the source).
    pub fn migrate_command_from(&self, source_url: &str, csv: &Path, extra: &[&str]) -> Command {
        self.run_command_from(source_url, "migrate", csv, extra)
    }

    /// `migrate` as [`Pair::migrate_command`] does, but between `source_url` and `target_url`
    /// (proxies or scripted servers in front of either server).
    pub fn migrate_command_between(
        &self,
        source_url: &str,
        target_url: &str,
        csv: &Path,
        extra: &[&str],
    ) -> Command {
        self.command_between(source_url, target_url, "migrate", csv, extra)
    }

    fn run_command_from(
        &self,
        source_url: &str,
        subcommand: &str,
        csv: &Path,
        extra: &[&str],
    ) -> Command {
        self.command_between(source_url, &self.target.url(), subcommand, csv, extra)
    }

    fn command_between(
        &self,
        source_url: &str,
        target_url: &str,
        subcommand: &str,
        csv: &Path,
        extra: &[&str],
    ) -> Command {
        let mut command = mailfleet();
        command
            .args([subcommand, "--json", "--csv"])
            .arg(csv)
            .args([
                "--source",
                source_url,
                "--target",
                target_url,
                "--state-dir",
            ])
            .arg(self.state_dir())
            .args(extra);
        command
    }

    pub async fn source_snapshot(&self, user: usize) -> MailboxSnapshot {
        let (login, password) = &self.users[user];
        snapshot(self.source.port(), login, password).await.unwrap()
    }

    /// The source as the Dovecot master user sees it (when CSV passwords are not the source's).
    pub async fn source_snapshot_as_admin(&self, user: usize) -> MailboxSnapshot {
        let login = format!("{}*{}", self.users[user].0, ADMIN.0);
        snapshot(self.source.port(), &login, ADMIN.1).await.unwrap()
    }

    pub async fn target_snapshot(&self, user: usize) -> MailboxSnapshot {
        let (login, password) = &self.users[user];
        snapshot(self.target.port(), login, password).await.unwrap()
    }
}

/// The binary under test. `MAILFLEET_TEST_LOG=info` shows its logs live while debugging a test.
pub fn mailfleet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailfleet"));
    match std::env::var("MAILFLEET_TEST_LOG") {
        Ok(level) => command
            .env("MAILFLEET_LOG", level)
            .stderr(std::process::Stdio::inherit()),
        Err(_) => command.env("MAILFLEET_LOG", "warn"),
    };
    command
}

/// Runs the command; returns (exit code, parsed `--json` stdout or Null, stderr).
pub fn run(command: &mut Command) -> (i32, Value, String) {
    let output: Output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// Waits until the target's INBOX of the pair's first user holds `threshold` messages while
/// `run` copies; returns whether `run` was still running then (false: it ended first).
pub async fn wait_for_target_inbox(pair: &Pair, run: &mut Running, threshold: u32) -> bool {
    let (user, password) = &pair.users[0];
    let mut session = mailfleet_testkit::connect_login(pair.target.port(), user, password)
        .await
        .unwrap();
    loop {
        if run.has_exited() {
            return false;
        }
        let count = session
            .status("INBOX", "(MESSAGES)")
            .await
            .map(|m| m.exists)
            .unwrap_or(0);
        if count >= threshold {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The `users[]` entry for `email` in a `--json` document.
pub fn user_result<'a>(json: &'a Value, email: &str) -> &'a Value {
    json["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["email"] == email))
        .unwrap_or_else(|| panic!("no result for {email} in {json}"))
}

/// A child process that is killed and reaped when dropped, so a test that fails half-way
/// leaves no mailfleet process running (it would keep redeclaring its queues).
pub struct Running(Option<std::process::Child>);

impl Running {
    pub fn new(child: std::process::Child) -> Self {
        Running(Some(child))
    }

    fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("a running process")
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// Whether it has exited by itself.
    pub fn has_exited(&mut self) -> bool {
        self.child().try_wait().unwrap().is_some()
    }

    /// SIGTERM (mailfleet stops gracefully), then waits.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status();
        self.child().wait().unwrap()
    }

    /// SIGTERM, then waits up to `bound` for the graceful stop; past it the process is killed
    /// and the test fails, so a stop that hangs never hangs the suite.
    pub fn terminate_within(mut self, bound: std::time::Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + bound;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child().try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("still running {bound:?} after SIGTERM");
    }

    /// SIGKILL mid-work, then reaps it.
    pub fn kill(mut self) {
        let _ = self.child().kill();
        let _ = self.child().wait();
    }

    /// Waits for it to exit by itself, with its captured output.
    pub fn wait_with_output(mut self) -> Output {
        self.0
            .take()
            .expect("a running process")
            .wait_with_output()
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
