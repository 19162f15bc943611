//! The `endpoint`, `batch`, `report` and `verify` commands against a remote `mailfleet serve`
//! (`--api URL`, the token in MAILFLEET_API_TOKEN): the real binary on both sides, real
//! Dovecot servers, nothing but the command line.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Pair;
use common::api::{Service, created_token};
use common::mailfleet;
use mailfleet_testkit::corpus::CorpusSpec;
use serde_json::Value;

/// An admin token of the default tenant, made on the service's machine.
fn admin_token(state_dir: &Path) -> String {
    created_token(state_dir, &["--role", "admin", "--label", "cli"])
}

/// What one command printed and how it exited.
struct Said {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Said {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// `mailfleet --api SERVICE ARGS` with `token` (if any) in MAILFLEET_API_TOKEN; the token is
/// never in what the command printed, whatever happened.
fn remote(service: &Service, token: Option<&str>, args: &[&str]) -> Said {
    let mut command = mailfleet();
    command
        .arg("--api")
        .arg(&service.base)
        .args(args)
        .env_remove("MAILFLEET_API_TOKEN")
        .env_remove("MAILFLEET_TENANT");
    if let Some(token) = token {
        command.env("MAILFLEET_API_TOKEN", token);
    }
    let output = command.output().unwrap();
    let said = Said {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if let Some(token) = token {
        assert!(
            !said.stdout.contains(token) && !said.stderr.contains(token),
            "the token was printed by {args:?}"
        );
    }
    said
}

/// Polls `batch status --json` until the batch is in `state` (the service works on its own
/// time); the status then.
fn wait_for_state(service: &Service, token: Option<&str>, name: &str, state: &str) -> Value {
    for _ in 0..1500 {
        let status = remote(service, token, &["batch", "status", name, "--json"])
            .ok()
            .json();
        if status["batch"]["state"] == state {
            return status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("batch {name} never reached {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_from_a_remote_command_line_and_its_errors_read_as_the_local_ones() {
    let alice = "cli-a@example.com";
    let pair = Pair::start(&[(alice, "cli-pw-a"), ("cli-b@example.com", "cli-pw-b")]);
    let seeded = pair
        .seed_all(&CorpusSpec {
            messages: 12,
            ..Default::default()
        })
        .await;
    let state_dir = pair.state_dir();
    let token = admin_token(&state_dir);
    let service = Service::start(&state_dir, &["--workers", "2"]).await;
    let token = Some(token.as_str());

    // Without a token, or with a wrong one: refused, saying where the token goes.
    let missing = remote(&service, None, &["batch", "list"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("MAILFLEET_API_TOKEN"),
        "{}",
        missing.stderr
    );
    let wrong = "mf_0123456789abcdef_not-the-secret";
    let refused = remote(&service, Some(wrong), &["batch", "list"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("401") && refused.stderr.contains("MAILFLEET_API_TOKEN"),
        "{}",
        refused.stderr
    );

    for (name, url) in [("old", pair.source.url()), ("new", pair.target.url())] {
        let created = remote(
            &service,
            token,
            &["endpoint", "create", name, "--server", &url],
        )
        .ok();
        assert!(
            created
                .stdout
                .starts_with(&format!("endpoint {name} created: ")),
            "{}",
            created.stdout
        );
    }
    let listed = remote(&service, token, &["endpoint", "list", "--json"])
        .ok()
        .json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["new", "old"], "{listed}");
    let tested = remote(&service, token, &["endpoint", "test", "--endpoint", "old"]).ok();
    assert!(tested.stdout.starts_with("ok "), "{}", tested.stdout);
    let elsewhere = remote(
        &service,
        token,
        &["endpoint", "test", "--source", &pair.source.url()],
    );
    assert_eq!(elsewhere.code, 2);
    assert!(
        elsewhere.stderr.contains("not available with --api"),
        "{}",
        elsewhere.stderr
    );

    // A CSV with a wrong row: refused by line, the file named as the local command names it.
    let csv = pair.write_csv();
    let broken = pair.dir.path().join("broken.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text.push_str("not-an-address,x,pw\n");
    std::fs::write(&broken, text).unwrap();
    let create = |csv: &Path| {
        let csv = csv.to_str().unwrap().to_owned();
        let args = [
            "batch",
            "create",
            "wave-1",
            "--endpoint",
            "old",
            "--target-endpoint",
            "new",
            "--csv",
            &csv,
            "--incremental-interval",
            "1h",
            "--completion-window",
            "1s",
        ];
        remote(&service, token, &args)
    };
    let refused = create(&broken);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "{} is not a valid migration CSV",
            broken.display()
        )) && refused.stderr.contains("line 4"),
        "{}",
        refused.stderr
    );
    let none = remote(&service, token, &["batch", "status", "wave-1"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("wave-1"), "{}", none.stderr);

    let created = create(&csv).ok();
    assert!(
        created
            .stdout
            .starts_with("batch wave-1 created with 2 users"),
        "{}",
        created.stdout
    );
    let started = remote(&service, token, &["batch", "start", "wave-1"]).ok();
    assert_eq!(started.stdout.trim(), "batch wave-1 is Starting");
    let again = remote(&service, token, &["batch", "start", "wave-1"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("cannot start"), "{}", again.stderr);

    let synced = wait_for_state(&service, token, "wave-1", "Synced");
    assert_eq!(synced["users"].as_array().unwrap().len(), 2, "{synced}");

    // The report as JSON on stdout, as CSV into a file.
    let report = remote(
        &service,
        token,
        &["report", "users", "wave-1", "--format", "json"],
    )
    .ok()
    .json();
    let users = report["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "{report}");
    for ((email, _), seeded) in pair.users.iter().zip(&seeded) {
        let user = users.iter().find(|u| u["email"] == *email).unwrap();
        assert_eq!(user["status"], "Synced", "{report}");
        assert_eq!(user["items_synced"], *seeded, "{report}");
    }
    let file = pair.dir.path().join("wave-1.csv");
    let file_arg = file.to_str().unwrap();
    remote(
        &service,
        token,
        &["report", "users", "wave-1", "--output", file_arg],
    )
    .ok();
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("EmailAddress,Status")
    );

    let verified = remote(
        &service,
        token,
        &["verify", "wave-1", "--user", alice, "--json"],
    )
    .ok()
    .json();
    let users = verified["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{verified}");
    assert_eq!(users[0]["exact"], true, "{verified}");

    let add = remote(
        &service,
        token,
        &["batch", "add-users", "wave-1", "--csv", file_arg],
    );
    assert_eq!(add.code, 2);
    assert!(
        add.stderr.contains("not available with --api"),
        "{}",
        add.stderr
    );

    // Completed, then removed with its endpoints.
    let completing = remote(&service, token, &["batch", "complete", "wave-1"]).ok();
    assert!(
        completing.stdout.contains("syncing goes on until"),
        "{}",
        completing.stdout
    );
    wait_for_state(&service, token, "wave-1", "Completed");
    let listed = remote(&service, token, &["batch", "list"]).ok();
    assert!(listed.stdout.contains("Completed"), "{}", listed.stdout);
    let removed = remote(&service, token, &["batch", "remove", "wave-1"]).ok();
    assert_eq!(removed.stdout.trim(), "batch wave-1 removed");
    for name in ["old", "new"] {
        remote(&service, token, &["endpoint", "remove", name]).ok();
    }
    let left = remote(&service, token, &["endpoint", "list", "--json"])
        .ok()
        .json();
    assert_eq!(left, Value::Array(Vec::new()));
}
