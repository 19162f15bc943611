//! The migration service driven as an administrator drives it: `mailfleet endpoint|batch|…`
//! commands on one state dir, `mailfleet run` in the background, a batch's status polled until
//! the service has done what the test waits for.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{Pair, Running, mailfleet};

/// Names of the endpoints [`ServiceCli::create_endpoints`] makes.
pub const SOURCE_ENDPOINT: &str = "old-imap";
pub const TARGET_ENDPOINT: &str = "new-imap";

pub struct ServiceCli {
    state_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl ServiceCli {
    pub fn new(state_dir: PathBuf) -> Self {
        ServiceCli {
            state_dir,
            env: Vec::new(),
        }
    }

    /// Every command (the service included) gets this environment variable.
    pub fn with_env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = mailfleet();
        command.args(args).arg("--state-dir").arg(&self.state_dir);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// `mailfleet ARGS --state-dir DIR`, run to the end.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "mailfleet {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The error text of a command that must be refused as invalid (exit 2).
    pub fn refused(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "mailfleet {} was accepted",
            args.join(" ")
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Endpoints for the pair's source and target servers.
    pub fn create_endpoints(&self, pair: &Pair) {
        self.ok(&[
            "endpoint",
            "create",
            SOURCE_ENDPOINT,
            "--server",
            &pair.source.url(),
        ]);
        self.ok(&[
            "endpoint",
            "create",
            TARGET_ENDPOINT,
            "--server",
            &pair.target.url(),
        ]);
    }

    /// The `batch create` arguments for `name` from `csv` between the endpoints, plus `extra`.
    pub fn batch_args(name: &str, csv: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "batch",
            "create",
            name,
            "--endpoint",
            SOURCE_ENDPOINT,
            "--target-endpoint",
            TARGET_ENDPOINT,
            "--csv",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(csv.display().to_string());
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    pub fn create_batch(&self, name: &str, csv: &Path, extra: &[&str]) {
        let args = Self::batch_args(name, csv, extra);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// `mailfleet run` polling every 200 ms, with `extra` arguments, its log in `log`.
    pub fn start(&self, extra: &[&str], log: &Path) -> Running {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = self
            .command(&[&["run", "--poll-interval", "200ms"], extra].concat())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Running::new(child)
    }

    /// `batch status BATCH --json`.
    pub fn status(&self, batch: &str) -> Value {
        serde_json::from_str(&self.ok(&["batch", "status", batch, "--json"])).unwrap()
    }

    /// Polls the batch until `done` holds for its status (the service works on its own time).
    pub async fn wait_for(&self, batch: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..1500 {
            let status = self.status(batch);
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "batch {batch} never reached: {what}\n{}",
            self.status(batch)
        );
    }
}

pub fn batch_state(status: &Value) -> &str {
    status["batch"]["state"].as_str().unwrap_or_default()
}

/// A user's entry in a `batch status --json` document.
pub fn user<'a>(status: &'a Value, email: &str) -> &'a Value {
    status["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap_or_else(|| panic!("no user {email} in {status}"))
}

/// A user's line of the HTML report's users table, as heading → cell text.
pub fn html_report_row(html: &str, email: &str) -> std::collections::BTreeMap<String, String> {
    let cells = |row: &str, tag: &str| -> Vec<String> {
        row.split(&format!("</{tag}>"))
            .filter_map(|cell| cell.rsplit_once(&format!("<{tag}")))
            .map(|(_, rest)| rest.split_once('>').map_or("", |(_, text)| text).to_owned())
            .collect()
    };
    let users = html
        .split_once("<h2>Users</h2>")
        .and_then(|(_, rest)| rest.split_once("</table>"))
        .unwrap_or_else(|| panic!("no users table in {html}"))
        .0;
    let headings = cells(users.split("</thead>").next().unwrap(), "th");
    let row = users
        .lines()
        .find(|line| line.starts_with(&format!("<tr><td>{email}</td>")))
        .unwrap_or_else(|| panic!("no row for {email} in {users}"));
    headings.into_iter().zip(cells(row, "td")).collect()
}
