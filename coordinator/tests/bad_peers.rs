//! A bad source server costs one user, bounded in time and memory (FAULTS.md).
//!
//! Each test migrates two users through a scripted source (testkit's `ScriptedServer`): the
//! good user is passed through to a real Dovecot, the bad one meets a misbehaving server. The
//! real `mailfleet migrate` runs with short configured timeouts; the tests assert that it ends,
//! that the bad user fails with an error a person can read (the command, the server, never a
//! byte array), that the process's peak memory stayed bounded, and that the good user's mail is
//! on the target Dovecot.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Pair, Running, user_result};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::scripted_server::{Misbehaviour, ScriptedServer};
use serde_json::Value;

/// The process's peak resident memory may not pass this (a normal run needs a few tens of MiB).
const PEAK_RSS_BOUND_KIB: u64 = 256 * 1024;
/// How long a run may take before the test gives up on it: a hang, not a slow machine.
const HANG: Duration = Duration::from_secs(600);

/// Short timeouts and one retry, so that a misbehaving server fails its user in seconds.
const SHORT_LIMITS: [(&str, &str); 4] = [
    ("MAILFLEET_IMAP_CONNECT_TIMEOUT", "5s"),
    ("MAILFLEET_IMAP_IDLE_TIMEOUT", "3s"),
    ("MAILFLEET_IMAP_COMMAND_TIMEOUT", "6s"),
    ("MAILFLEET_RETRY_ATTEMPTS", "2"),
];

struct Finished {
    code: i32,
    json: Value,
    stderr: String,
    peak_rss_kib: u64,
}

/// Runs `command` to its end, reading its peak memory (VmHWM) while it runs. Its output goes to
/// files, so that a full pipe never stalls it while nobody reads.
fn run_watched(command: &mut Command) -> Finished {
    let outputs = tempfile::tempdir().unwrap();
    let stdout_path = outputs.path().join("stdout");
    let stderr_path = outputs.path().join("stderr");
    let mut child = Running::new(
        command
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let status_file = format!("/proc/{}/status", child.id());
    let started = Instant::now();
    let mut peak_rss_kib = 0;
    while !child.has_exited() {
        assert!(started.elapsed() < HANG, "mailfleet never ended");
        if let Some(kib) = vm_hwm_kib(&status_file) {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait_with_output().status;
    Finished {
        code: status.code().unwrap_or(-1),
        json: serde_json::from_slice(&std::fs::read(&stdout_path).unwrap()).unwrap_or(Value::Null),
        stderr: std::fs::read_to_string(&stderr_path).unwrap(),
        peak_rss_kib,
    }
}

fn vm_hwm_kib(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Migrates `good` (passed through to the source Dovecot) and `bad` (meeting `misbehaviour`)
/// with `env` set; returns the pair, the scripted server's URL and the run's result.
async fn migrate_through(
    good: &str,
    bad: &str,
    misbehaviour: Misbehaviour,
    env: &[(&str, &str)],
) -> (Pair, String, Finished) {
    let pair = Pair::start(&[(good, "good-pw"), (bad, "bad-pw")]);
    // Small mailboxes: the fragmenting link moves about 350 bytes a second.
    pair.seed_all(&CorpusSpec {
        messages: 4,
        twin_pairs: 0,
        folders: vec!["INBOX".into(), "Archive".into()],
        ..Default::default()
    })
    .await;
    let upstream = ([127, 0, 0, 1], pair.source.port()).into();
    let server = ScriptedServer::start(upstream, bad, misbehaviour)
        .await
        .unwrap();
    let csv = pair.write_csv();
    let mut command = pair.migrate_command_from(&server.url(), &csv, &[]);
    command.envs(env.iter().copied());
    // The scripted server runs on this runtime's other thread while this one waits.
    let finished = tokio::task::block_in_place(|| run_watched(&mut command));
    (pair, server.url(), finished)
}

/// The bad user failed with a readable error naming `command` and the scripted server; the
/// good user's mail is all on the target; memory stayed bounded. Returns the bad user's error.
async fn assert_one_user_lost(
    pair: &Pair,
    server: &str,
    finished: &Finished,
    command: &str,
) -> String {
    let (good, bad) = (&pair.users[0].0, &pair.users[1].0);
    assert_eq!(finished.code, 1, "{}\n{}", finished.stderr, finished.json);
    let failed = user_result(&finished.json, bad);
    assert_eq!(failed["status"], "Failed", "{failed}");
    let error = failed["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        error.contains(server),
        "the error names the server: {error}"
    );
    assert!(
        error.contains(command),
        "the error names {command}: {error}"
    );
    for output in [&error, &finished.stderr] {
        assert!(
            !output.contains("[31, ") && !output.contains("input: ["),
            "a byte array reached the user: {output}"
        );
    }
    assert!(error.len() < 1000, "an error a person can read: {error}");
    eprintln!("{bad}: {error}\npeak RSS {} KiB", finished.peak_rss_kib);
    assert!(
        finished.peak_rss_kib > 0 && finished.peak_rss_kib < PEAK_RSS_BOUND_KIB,
        "peak RSS {} KiB",
        finished.peak_rss_kib
    );
    assert_eq!(user_result(&finished.json, good)["status"], "Completed");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_falls_silent_after_login_times_out_for_its_user_only() {
    let (pair, server, finished) = migrate_through(
        "silent-good@example.com",
        "silent-bad@example.com",
        Misbehaviour::Silent,
        &SHORT_LIMITS,
    )
    .await;
    let error = assert_one_user_lost(&pair, &server, &finished, "CAPABILITY").await;
    assert!(
        error.contains("timed out") && error.contains("no answer for 3 s"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_listing_folders_without_end_fails_its_user_at_the_folder_limit() {
    // The default limit (100,000 folders): the point is that memory stays bounded with it.
    let (pair, server, finished) = migrate_through(
        "list-good@example.com",
        "list-bad@example.com",
        Misbehaviour::EndlessList,
        &SHORT_LIMITS,
    )
    .await;
    let error = assert_one_user_lost(&pair, &server, &finished, "LIST").await;
    assert!(error.contains("more than 100000 folders"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_from_a_server_give_a_readable_error() {
    let (pair, server, finished) = migrate_through(
        "junk-good@example.com",
        "junk-bad@example.com",
        Misbehaviour::RandomBytes,
        &SHORT_LIMITS,
    )
    .await;
    let error = assert_one_user_lost(&pair, &server, &finished, "CAPABILITY").await;
    assert!(error.contains("not IMAP: `"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_trickling_its_answer_times_out_rather_than_failing_to_parse() {
    let (pair, server, finished) = migrate_through(
        "trickle-good@example.com",
        "trickle-bad@example.com",
        Misbehaviour::Trickle(Duration::from_secs(2)),
        &SHORT_LIMITS,
    )
    .await;
    let error = assert_one_user_lost(&pair, &server, &finished, "CAPABILITY").await;
    assert!(
        error.contains("the answer was not complete after 6 s"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terabyte_literal_is_refused_before_a_byte_of_it_is_read() {
    let (pair, server, finished) = migrate_through(
        "literal-good@example.com",
        "literal-bad@example.com",
        Misbehaviour::HugeLiteral(1 << 40),
        &SHORT_LIMITS,
    )
    .await;
    let error = assert_one_user_lost(&pair, &server, &finished, "FETCH bodies").await;
    assert!(
        error.contains("a literal of 1099511627776 bytes announced in `* 1 FETCH"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_fragmenting_but_honest_link_still_migrates_exactly() {
    // Answers in 7-byte pieces, 20 ms apart: slow, never silent; default limits.
    let (pair, _, finished) = migrate_through(
        "fragment-good@example.com",
        "fragment-slow@example.com",
        Misbehaviour::Fragmenting {
            piece: 7,
            pause: Duration::from_millis(20),
        },
        &[],
    )
    .await;
    assert_eq!(finished.code, 0, "{}\n{}", finished.stderr, finished.json);
    for user in 0..2 {
        assert_same_mail(
            &pair.source_snapshot(user).await,
            &pair.target_snapshot(user).await,
            str::to_owned,
        );
    }
    assert!(finished.peak_rss_kib < PEAK_RSS_BOUND_KIB);
}
