//! Distributed mode as deployed: `mailfleet coordinator` and separate `mailfleet worker`
//! processes on the real RabbitMQ and Redis. While mail flows, something breaks — workers are
//! `kill -9`ed (and fresh ones join), or every broker connection of the run is closed and the
//! checkpoints are wiped from Redis — and every mailbox still arrives exactly. The processes'
//! `/status` and `/metrics` are read along the way and must tell the same story.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::fleet::{Fleet, free_port};
use common::{Pair, Running, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{assert_same_mail, connect_login};
use rand::Rng;

/// What goes wrong once the first messages have arrived.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Disruption {
    KillAWorker,
    CloseBrokerConnectionsAndWipeCheckpoints,
}

async fn http_get(address: &str, path: &str) -> String {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

/// The value of an OpenMetrics sample line `name{labels} value` (0 when absent).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Mid-run, the coordinator's `/status` lists every user and its `/metrics` counts them by state.
async fn assert_coordinator_shows_the_run(address: &str, users: usize) {
    let status: serde_json::Value =
        serde_json::from_str(&http_get(address, "/status").await).unwrap();
    assert_eq!(
        status["users"].as_array().map(Vec::len),
        Some(users),
        "{status}"
    );
    let metrics = http_get(address, "/metrics").await;
    assert!(metrics.contains("mailfleet_pending_tasks"), "{metrics}");
    let counted: f64 = [
        "Queued",
        "Syncing",
        "Completed",
        "CompletedWithWarnings",
        "Failed",
    ]
    .iter()
    .map(|state| sample(&metrics, &format!("mailfleet_users{{state=\"{state}\"}}")))
    .sum();
    assert_eq!(counted as usize, users, "{metrics}");
    assert_eq!(http_get(address, "/healthz").await, "ok");
}

/// Messages the still-running workers say they appended, from their `/metrics`.
async fn messages_copied_by(workers: &[(Running, u16)]) -> f64 {
    let mut total = 0.0;
    for (_, port) in workers {
        let metrics = http_get(&format!("127.0.0.1:{port}"), "/metrics").await;
        total += sample(&metrics, "mailfleet_messages_copied_total");
    }
    total
}

/// How big the batch is and how often it is disrupted.
struct Scenario {
    test: &'static str,
    users: usize,
    messages_per_user: usize,
    disruption: Disruption,
    /// Target INBOX counts of the first user at which the disruption strikes.
    strike_at: Vec<u32>,
}

async fn migrate_through_a_disrupted_fleet(scenario: Scenario) {
    let test = scenario.test;
    let fleet = Fleet::new(test);
    let users: Vec<(String, String)> = (0..scenario.users)
        .map(|i| (format!("{test}-{i}@example.com"), format!("pw-{i}")))
        .collect();
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let pair = Pair::start(&users);
    pair.seed_all(&CorpusSpec {
        messages: scenario.messages_per_user,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();

    let mut workers = vec![fleet.worker(), fleet.worker(), fleet.worker()];
    let coordinator_http = format!("127.0.0.1:{}", free_port());
    // Small parts, so big folders travel between workers part by part while they are killed.
    let mut coordinator = pair.run_command(
        "coordinator",
        &csv,
        &[
            "--folder-part-messages",
            "40",
            "--metrics-listen",
            &coordinator_http,
        ],
    );
    fleet.configure(&mut coordinator);
    let coordinator = Running::new(
        coordinator
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    let mut session = connect_login(pair.target.port(), users[0].0, users[0].1)
        .await
        .unwrap();
    let mut strikes = scenario.strike_at.iter().peekable();
    for _ in 0..20_000 {
        let Some(&&threshold) = strikes.peek() else {
            break;
        };
        let copied = session
            .status("INBOX", "(MESSAGES)")
            .await
            .map(|m| m.exists)
            .unwrap_or(0);
        if copied >= threshold {
            if strikes.len() == scenario.strike_at.len() {
                assert_coordinator_shows_the_run(&coordinator_http, users.len()).await;
            }
            eprintln!("disrupting at {copied} INBOX messages");
            match scenario.disruption {
                Disruption::KillAWorker => {
                    let (victim, _) = workers.remove(0);
                    victim.kill(); // SIGKILL mid-task
                    workers.push(fleet.worker());
                }
                Disruption::CloseBrokerConnectionsAndWipeCheckpoints => {
                    fleet.close_broker_connections();
                    fleet.wipe_checkpoints().await;
                }
            }
            strikes.next();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let disrupted = strikes.peek().is_none();

    let output = tokio::task::spawn_blocking(move || coordinator.wait_with_output())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let copied_by_survivors = messages_copied_by(&workers).await;
    for (worker, _) in workers {
        worker.terminate();
    }
    assert!(disrupted, "no mail arrived to trigger the disruption");
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{json}");
    assert!(
        copied_by_survivors > 0.0,
        "workers' /metrics count no copied message"
    );
    for (i, (user, _)) in users.iter().enumerate() {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
        let source = pair.source_snapshot(i).await;
        assert_same_mail(&source, &pair.target_snapshot(i).await, str::to_owned);
        assert_eq!(
            user_result(&json, user)["items_synced"],
            source.message_count() as u64,
            "{user}: every part counted once"
        );
    }
    fleet.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_moments_lose_and_duplicate_nothing() {
    // The first user's INBOX holds about 60 of its 150 messages.
    let first = rand::rng().random_range(5..25);
    let second = first + rand::rng().random_range(10..25);
    migrate_through_a_disrupted_fleet(Scenario {
        test: "fleet-kill",
        users: 20,
        messages_per_user: 150,
        disruption: Disruption::KillAWorker,
        strike_at: vec![first, second],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_broker_connections_and_wiped_checkpoints_lose_and_duplicate_nothing() {
    migrate_through_a_disrupted_fleet(Scenario {
        test: "fleet-faults",
        users: 4,
        messages_per_user: 300,
        disruption: Disruption::CloseBrokerConnectionsAndWipeCheckpoints,
        strike_at: vec![20],
    })
    .await;
}
