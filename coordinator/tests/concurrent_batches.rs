//! Passes of different batches run at once (ARCHITECTURE.md, "Many batches at once"), sharing
//! their endpoint's limit: two batches on one source endpoint allowing 2 users at once both
//! reach Synced; the service's `/status` shows that endpoint never had more than 2 users in
//! sync (its peak, counted by the admission slots, not sampled), and every mailbox is exact.
//!
//! Which batch's user gets a slot that frees is decided without a clock or I/O, so its fairness
//! (a batch arriving while another holds every slot is served next) is proved by the unit tests
//! in `coordinator/src/run/slots.rs`; here, when each pass begins is up to the scheduler, and an
//! order of completion would only measure how busy the machine was.

mod common;

use common::Pair;
use common::fleet::free_port;
use common::service::{SOURCE_ENDPOINT, ServiceCli, TARGET_ENDPOINT, batch_state};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use serde_json::Value;

const BIG: [(&str, &str); 3] = [
    ("cb-a1@example.com", "cb-pw-1"),
    ("cb-a2@example.com", "cb-pw-2"),
    ("cb-a3@example.com", "cb-pw-3"),
];
const SMALL: (&str, &str) = ("cb-b1@example.com", "cb-pw-4");

fn csv(pair: &Pair, name: &str, users: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = String::from("EmailAddress,UserName,Password\n");
    for (user, password) in users {
        text.push_str(&format!("{user},{user},{password}\n"));
    }
    let path = pair.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_share_one_endpoints_limit_and_both_complete() {
    let pair = Pair::start(&[BIG[0], BIG[1], BIG[2], SMALL]);
    pair.seed_all(&CorpusSpec {
        messages: 120,
        ..Default::default()
    })
    .await;
    let service = ServiceCli::new(pair.state_dir());
    service.ok(&[
        "endpoint",
        "create",
        SOURCE_ENDPOINT,
        "--server",
        &pair.source.url(),
        "--max-concurrent-migrations",
        "2",
    ]);
    service.ok(&[
        "endpoint",
        "create",
        TARGET_ENDPOINT,
        "--server",
        &pair.target.url(),
    ]);
    service.create_batch("wave-a", &csv(&pair, "a.csv", &BIG), &["--autostart"]);
    service.create_batch("wave-b", &csv(&pair, "b.csv", &[SMALL]), &["--autostart"]);

    let status_address = format!("127.0.0.1:{}", free_port());
    let running = service.start(
        &["--workers", "4", "--metrics-listen", &status_address],
        &pair.dir.path().join("service.log"),
    );
    service
        .wait_for("wave-a", "Synced", |s| batch_state(s) == "Synced")
        .await;
    service
        .wait_for("wave-b", "Synced", |s| batch_state(s) == "Synced")
        .await;

    let board: Value = reqwest::get(format!("http://{status_address}/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = board["admission"]
        .as_array()
        .unwrap()
        .iter()
        .find(|limit| limit["kind"] == "migrations" && limit["endpoint"] == SOURCE_ENDPOINT)
        .unwrap_or_else(|| panic!("no admission entry for {SOURCE_ENDPOINT}: {board}"));
    assert_eq!(endpoint["max"], 2, "{endpoint}");
    assert_eq!(
        endpoint["peak"], 2,
        "never more than the endpoint's 2 users in sync, across both batches: {endpoint}"
    );
    assert_eq!(endpoint["in_sync"], 0, "{endpoint}");
    assert_eq!(board["users"].as_array().unwrap().len(), 4, "{board}");
    running.terminate();
    for i in 0..4 {
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
}
