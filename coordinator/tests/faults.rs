//! Crashes and bad networks: `kill -9` at random moments, connections cut mid-transfer and a
//! server that answers "busy". After each, the target holds exactly the source's mail.

mod common;

use std::process::Stdio;

use common::{Pair, Running, run, user_result, wait_for_target_inbox};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::fault_proxy::{Action, FaultProxy};
use rand::Rng;

/// Starts `migrate`, waits until the target's INBOX holds `threshold` messages, then SIGKILLs it.
/// Returns whether the process was still running when killed.
async fn kill_when_inbox_reaches(
    pair: &Pair,
    csv: &std::path::Path,
    extra: &[&str],
    threshold: u32,
) -> bool {
    let mut child = Running::new(
        pair.migrate_command(csv, &[&["--workers", "3"], extra].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let running = wait_for_target_inbox(pair, &mut child, threshold).await;
    if running {
        child.kill(); // SIGKILL: no chance to checkpoint or clean up
    }
    running
}

async fn seeded_big_pair(name: &str) -> (Pair, std::path::PathBuf, u32) {
    let pair = Pair::start(&[(name, "kill-pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 1500,
        twin_pairs: 3,
        ..Default::default()
    })
    .await;
    let inbox = pair
        .source_snapshot(0)
        .await
        .folder("INBOX")
        .unwrap()
        .messages
        .len() as u32;
    let csv = pair.write_csv();
    (pair, csv, inbox)
}

/// INBOX (about 600 messages) is copied in parts of 150, so kills also land between a part's
/// last append and the queuing of the next part.
#[tokio::test]
async fn kill_9_at_random_points_then_rerun_leaves_no_duplicates_and_no_gaps() {
    const PARTS: [&str; 2] = ["--folder-part-messages", "150"];
    let (pair, csv, inbox) = seeded_big_pair("kill@example.com").await;
    let mut killed = 0;
    let mut threshold = 1;
    for _ in 0..3 {
        threshold = rand::rng().random_range(threshold + 1..=threshold + inbox / 4);
        eprintln!("killing at {threshold} INBOX messages");
        if kill_when_inbox_reaches(&pair, &csv, &PARTS, threshold).await {
            killed += 1;
        }
    }
    assert!(
        killed > 0,
        "the migration always finished before the kill; the test proved nothing"
    );
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &PARTS));
    assert_eq!(code, 0, "{stderr}");
    let result = user_result(&json, "kill@example.com");
    assert_eq!(result["status"], "Completed");
    let source = pair.source_snapshot(0).await;
    assert_same_mail(&source, &pair.target_snapshot(0).await, str::to_owned);
    assert_eq!(result["items_synced"], source.message_count() as u64);
}

#[tokio::test]
async fn kill_9_then_rerun_with_the_state_dir_deleted_leaves_no_duplicates() {
    let (pair, csv, inbox) = seeded_big_pair("kill-nostate@example.com").await;
    let threshold = rand::rng().random_range(2..=inbox / 2);
    eprintln!("killing at {threshold} INBOX messages");
    assert!(
        kill_when_inbox_reaches(&pair, &csv, &[], threshold).await,
        "finished before the kill"
    );
    std::fs::remove_dir_all(pair.state_dir()).unwrap();
    let (code, _, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}

// The proxy runs on this runtime while the test blocks on the binary: it needs its own threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_and_busy_greetings_are_retried_to_an_exact_copy() {
    let pair = Pair::start(&[("flaky@example.com", "flaky-pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 120,
        ..Default::default()
    })
    .await;
    let upstream = ([127, 0, 0, 1], pair.source.port()).into();
    // Early connections fail in both ways real networks and busy servers fail; later ones pass.
    // A small mailbox is copied over one connection per side (discovery copies its small
    // folders), so each failure must be what ends a connection: the first cut falls in
    // discovery, the later ones in the middle of the mail: inside a message, and between two
    // FETCH responses (an answer that simply stops, which must not pass for a complete one).
    let proxy = FaultProxy::start(upstream, |n| match n {
        1 | 4 => Action::BusyGreeting,
        2 => Action::CutAfter(8_000),
        3 => Action::CutAfter(400_000),
        5 => Action::CutBeforeFetchResponse(100_000),
        _ => Action::Pass,
    })
    .await
    .unwrap();
    let csv = pair.write_csv();
    let command = pair.migrate_command(&csv, &[]);
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let source_at = args.iter().position(|a| a == "--source").unwrap() + 1;
    let mut command = common::mailfleet();
    command.args(args.iter().enumerate().map(|(i, a)| {
        if i == source_at {
            proxy.url()
        } else {
            a.clone()
        }
    }));
    let (code, json, stderr) = run(&mut command);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert!(
        proxy.connections() > 5,
        "the faults were not all exercised: {} connections",
        proxy.connections()
    );
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
