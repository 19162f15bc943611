//! Two services on one PostgreSQL `state` (ARCHITECTURE.md, "Leadership"): the first schedules,
//! the second stands by. `kill -9` of the leader in the middle of a pass: the standby takes
//! over, resumes the pass from the checkpoints (shared in Redis) and the target ends exactly
//! the source. The services' logs show that no pass ran in both at once: the standby started
//! its only pass after it took the lock, which the leader held until it died.

mod common;

use common::Pair;
use common::fleet::{Fleet, KEY};
use common::service::{ServiceCli, TARGET_ENDPOINT, batch_state};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::postgres::TestDatabase;

const USERS: [(&str, &str); 3] = [
    ("fo-a@example.com", "fo-pw-a"),
    ("fo-b@example.com", "fo-pw-b"),
    ("fo-c@example.com", "fo-pw-c"),
];

fn log_text(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_is_killed_mid_pass() {
    let pair = Pair::start(&USERS);
    pair.seed_all(&CorpusSpec {
        messages: 300,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    let database = TestDatabase::create().await;
    // Checkpoints and sealed passwords in Redis: both services read what the other wrote.
    let fleet = Fleet::new("failover");
    let on_machine = |dir: &str| {
        ServiceCli::new(pair.dir.path().join(dir))
            .with_env("MAILFLEET_STATE", database.url())
            .with_env("MAILFLEET_CHECKPOINTS", fleet.checkpoints_url())
            .with_env("MAILFLEET_SECRET_KEY", KEY)
            .with_env("MAILFLEET_LOG", "warn,mailfleet::service=info")
    };
    let (first, second) = (on_machine("machine-1"), on_machine("machine-2"));
    // One user at a time, so the kill lands with users still to copy.
    first.ok(&[
        "endpoint",
        "create",
        common::service::SOURCE_ENDPOINT,
        "--server",
        &pair.source.url(),
        "--max-concurrent-migrations",
        "1",
    ]);
    first.ok(&[
        "endpoint",
        "create",
        TARGET_ENDPOINT,
        "--server",
        &pair.target.url(),
    ]);
    first.create_batch("fo-wave", &csv, &["--autostart"]);

    let (leader_log, standby_log) = (
        pair.dir.path().join("leader.log"),
        pair.dir.path().join("standby.log"),
    );
    let leader = first.start(&["--workers", "2"], &leader_log);
    // The leader is scheduling before the standby starts, so the roles are known.
    first
        .wait_for("fo-wave", "the pass started", |s| {
            batch_state(s) == "Syncing"
        })
        .await;
    let standby = second.start(&["--workers", "2"], &standby_log);
    let status = first
        .wait_for("fo-wave", "a first user synced", |s| {
            s["users"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["state"] == "Synced")
        })
        .await;
    leader.kill();
    let synced_before_kill = status["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["state"] == "Synced")
        .count();
    assert!(
        synced_before_kill < USERS.len(),
        "the pass finished before the kill; the test proved nothing"
    );
    let standing_by = log_text(&standby_log);
    assert!(
        standing_by.contains("standing by") && !standing_by.contains("pass started"),
        "the second service waited while the leader lived:\n{standing_by}"
    );

    second
        .wait_for("fo-wave", "Synced after the takeover", |s| {
            batch_state(s) == "Synced"
        })
        .await;
    for i in 0..USERS.len() {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    let took_over = log_text(&standby_log);
    let takeover = took_over
        .find("took over scheduling")
        .unwrap_or_else(|| panic!("no takeover in the standby's log:\n{took_over}"));
    let first_pass = took_over
        .find("pass started")
        .unwrap_or_else(|| panic!("the standby ran no pass:\n{took_over}"));
    assert!(takeover < first_pass, "{took_over}");
    assert_eq!(took_over.matches("pass started").count(), 1, "{took_over}");
    let led = log_text(&leader_log);
    assert!(led.contains("this service is the leader"), "{led}");
    assert_eq!(led.matches("pass started").count(), 1, "{led}");
    standby.terminate();
    fleet.clean_up().await;
}
