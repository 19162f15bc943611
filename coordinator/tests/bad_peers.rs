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

use common::{Pair, Running, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::fault_proxy::{Action, FaultProxy};
use mailfleet_testkit::scripted_server::{HOSTILE_NAMES, Misbehaviour, ScriptedServer};
use mailfleet_testkit::{NewMessage, append_all, assert_same_mail, client, connect_login};
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

/// Two Dovecot servers with `users`, their source mailboxes seeded small (the fragmenting link
/// moves about 350 bytes a second): an INBOX and an Archive.
async fn seeded_pair(users: &[(&str, &str)]) -> Pair {
    let pair = Pair::start(users);
    pair.seed_all(&CorpusSpec {
        messages: 4,
        twin_pairs: 0,
        folders: vec!["INBOX".into(), "Archive".into()],
        ..Default::default()
    })
    .await;
    pair
}

/// Migrates `good` (passed through to the source Dovecot) and `bad` (meeting `misbehaviour`)
/// with `env` set; returns the pair, the scripted server's URL and the run's result.
async fn migrate_through(
    good: &str,
    bad: &str,
    misbehaviour: Misbehaviour,
    env: &[(&str, &str)],
) -> (Pair, String, Finished) {
    let pair = seeded_pair(&[(good, "good-pw"), (bad, "bad-pw")]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_acknowledging_an_append_it_never_stores_is_caught_and_copied_again() {
    // The target's first connection answers its first APPEND (a folder's messages) with OK and
    // drops them; every other command and connection reaches the real target Dovecot.
    let pair = seeded_pair(&[("swallowed@example.com", "pw")]).await;
    let upstream = ([127, 0, 0, 1], pair.target.port()).into();
    let liar = FaultProxy::start(upstream, |n| {
        if n == 1 {
            Action::SwallowAppend(1)
        } else {
            Action::Pass
        }
    })
    .await
    .unwrap();
    let csv = pair.write_csv();
    let mut command = pair.migrate_command_between(&pair.source.url(), &liar.url(), &csv, &[]);
    let finished = tokio::task::block_in_place(|| run_watched(&mut command));
    assert_eq!(finished.code, 0, "{}\n{}", finished.stderr, finished.json);
    let result = user_result(&finished.json, &pair.users[0].0);
    assert_eq!(result["status"], "CompletedWithWarnings", "{result}");
    let warnings = result["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty(), "{result}");
    for warning in warnings {
        assert_eq!(
            warning["reason"],
            "the target answered OK to its APPEND but did not store it; appended again",
            "{warning}"
        );
    }
    eprintln!("{result}");
    // Every message once, the swallowed ones included, and counted once.
    let source = pair.source_snapshot(0).await;
    assert_eq!(result["items_copied"], source.message_count(), "{result}");
    assert_same_mail(&source, &pair.target_snapshot(0).await, str::to_owned);
}

/// One scripted misbehaviour end to end, with [`SHORT_LIMITS`] and `env`: the bad user fails
/// naming `command` and saying `cause`; everything [`assert_one_user_lost`] checks holds.
async fn bad_user_fails(
    name: &str,
    misbehaviour: Misbehaviour,
    env: &[(&str, &str)],
    (command, cause): (&str, &str),
) -> (Pair, Finished, String) {
    let env: Vec<(&str, &str)> = SHORT_LIMITS.iter().chain(env).copied().collect();
    let (pair, server, finished) = migrate_through(
        &format!("{name}-good@example.com"),
        &format!("{name}-bad@example.com"),
        misbehaviour,
        &env,
    )
    .await;
    let error = assert_one_user_lost(&pair, &server, &finished, command).await;
    assert!(error.contains(cause), "{error}");
    (pair, finished, error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_cut_short_then_silence_times_out() {
    bad_user_fails(
        "cutsilent",
        Misbehaviour::UnterminatedLiteral { close: false },
        &[],
        ("FETCH bodies", "no answer for 3 s"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_cut_short_by_a_closed_connection_is_a_lost_connection() {
    bad_user_fails(
        "cutclosed",
        Misbehaviour::UnterminatedLiteral { close: true },
        &[],
        (
            "FETCH bodies",
            "closed the connection in the middle of a response",
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bye_inside_a_literal_is_a_lost_connection_not_a_message() {
    let (pair, _, _) = bad_user_fails(
        "byeliteral",
        Misbehaviour::ByeInLiteral,
        &[],
        (
            "FETCH bodies",
            "closed the connection in the middle of a response",
        ),
    )
    .await;
    // The bytes before the BYE never became a message.
    assert_eq!(pair.target_snapshot(1).await.message_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_line_is_cut_at_the_line_limit() {
    let (_, finished, _) = bad_user_fails(
        "longline",
        Misbehaviour::EndlessLine(100 * 1024 * 1024),
        // 1 MiB: at the default 16 MiB, a debug build's parser (which reads the growing line
        // again at each arrival) meets the 6 s answer timeout first (FAULTS.md).
        &[("MAILFLEET_IMAP_MAX_LINE_MB", "1")],
        (
            "CAPABILITY",
            "a response line longer than 1048576 bytes, starting `* CAPABILITY IMAP4rev1 AAAA",
        ),
    )
    .await;
    // Less than the line: it was never held whole.
    assert!(
        finished.peak_rss_kib < 100 * 1024,
        "{}",
        finished.peak_rss_kib
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_untagged_responses_are_ended_by_the_command_timeout() {
    bad_user_fails(
        "untagged",
        Misbehaviour::EndlessUntagged,
        &[],
        ("EXAMINE", "the answer was not complete after 6 s"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_answers_for_other_uids_are_ignored_and_missing_ones_never_skipped() {
    let (pair, _, _) = bad_user_fails(
        "wronguids",
        Misbehaviour::WrongFetchUids,
        &[],
        ("FETCH", "UIDs 2 of folder INBOX"),
    )
    .await;
    // UID 9 was never asked for: it is not on the target, nor is anything twice.
    let target = pair.target_snapshot(1).await;
    for folder in target.folders.values() {
        for message in &folder.messages {
            let text = String::from_utf8_lossy(&message.bytes);
            assert!(!text.contains("scripted 9"), "{text}");
        }
    }
    assert!(target.message_count() <= 1, "{target:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_with_foreign_or_repeated_tags_are_not_taken_for_ours() {
    let (pair, _, finished) = migrate_through(
        "tags-good@example.com",
        "tags-bad@example.com",
        Misbehaviour::WrongTags,
        &SHORT_LIMITS,
    )
    .await;
    assert_eq!(finished.code, 0, "{}\n{}", finished.stderr, finished.json);
    let bad = user_result(&finished.json, &pair.users[1].0);
    assert_eq!(bad["status"], "Completed", "{bad}");
    assert_eq!(bad["items_copied"], 1, "{bad}");
    // The scripted INBOX's one message, once.
    let target = pair.target_snapshot(1).await;
    assert_eq!(target.folders["INBOX"].messages.len(), 1, "{target:?}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_names_that_look_like_escaping_paths_are_mapped_or_skipped_with_a_reason() {
    let (pair, _, finished) = migrate_through(
        "names-good@example.com",
        "names-bad@example.com",
        Misbehaviour::HostileNames,
        &SHORT_LIMITS,
    )
    .await;
    assert_eq!(finished.code, 0, "{}\n{}", finished.stderr, finished.json);
    let bad = user_result(&finished.json, &pair.users[1].0);
    eprintln!("{bad}");
    assert_eq!(bad["status"], "CompletedWithWarnings", "{bad}");
    // Each name is skipped with a reason: the empty levels by the folder map, `.` and `..` by
    // the target (Dovecot refuses them), `a/../b` because its parent `a/..` was refused.
    let skipped = bad["skipped"].as_array().unwrap();
    for name in HOSTILE_NAMES {
        let skip = skipped
            .iter()
            .find(|s| s["folder"] == name)
            .unwrap_or_else(|| panic!("{name:?} is not reported: {bad}"));
        assert!(!skip["reason"].as_str().unwrap().is_empty(), "{skip}");
    }
    // On the target: INBOX with its message, and the plain parent `a` of `a/../b`; no `.` or
    // `..` level anywhere.
    let target = pair.target_snapshot(1).await;
    let names: Vec<&str> = target.folders.keys().map(String::as_str).collect();
    assert_eq!(names, ["INBOX", "a"]);
    assert_eq!(target.folders["INBOX"].messages.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_that_differs_between_status_and_examine_copies_once() {
    let (pair, _, finished) = migrate_through(
        "validity-good@example.com",
        "validity-bad@example.com",
        Misbehaviour::ShiftingUidValidity,
        &SHORT_LIMITS,
    )
    .await;
    assert_eq!(finished.code, 0, "{}\n{}", finished.stderr, finished.json);
    let bad = user_result(&finished.json, &pair.users[1].0);
    eprintln!("{bad}");
    assert_eq!(bad["status"], "Completed", "{bad}");
    assert_eq!(bad["items_copied"], 1, "{bad}");
    let target = pair.target_snapshot(1).await;
    assert_eq!(target.folders["INBOX"].messages.len(), 1, "{target:?}");
}

/// Deletes UIDs `uids` of `folder` as another client of the mailbox would.
async fn expunge(port: u16, (login, password): (&str, &str), folder: &str, uids: &str) {
    let mut session = connect_login(port, login, password).await.unwrap();
    session.select(folder).await.unwrap();
    client::delete_uids(&mut session, uids).await.unwrap();
    session.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_expunged_while_their_folder_is_copied_are_left_out_and_the_rest_is_exact() {
    let pair = Pair::start(&[("shrinking@example.com", "pw")]);
    pair.seed_all(&CorpusSpec {
        messages: 12,
        twin_pairs: 0,
        folders: vec!["INBOX".into()],
        ..Default::default()
    })
    .await;
    let (user, password) = (pair.users[0].0.clone(), pair.users[0].1.clone());
    // The source's first body FETCH waits at the proxy: the metadata of every message was read,
    // the bodies not yet, when another client expunges three of them.
    let upstream = ([127, 0, 0, 1], pair.source.port()).into();
    let proxy = FaultProxy::start(upstream, |_| Action::HoldCommand("BODY.PEEK[]"))
        .await
        .unwrap();
    let csv = pair.write_csv();
    let mut command = pair.migrate_command_from(&proxy.url(), &csv, &[]);
    let mut running = Running::new(
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    tokio::select! {
        () = proxy.held() => {}
        () = async {
            while !running.has_exited() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } => panic!("mailfleet ended before it fetched a body"),
    }
    let before = pair.source_snapshot(0).await;
    expunge(pair.source.port(), (&user, &password), "INBOX", "2,5,7").await;
    proxy.release();
    let output = tokio::task::block_in_place(|| running.wait_with_output());
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}\n{json}");
    let result = user_result(&json, &user);
    eprintln!("{result}");
    assert_eq!(result["status"], "Completed", "{result}");
    let after = pair.source_snapshot(0).await;
    assert_eq!(after.message_count() + 3, before.message_count());
    assert_eq!(result["items_copied"], after.message_count(), "{result}");
    assert_same_mail(&after, &pair.target_snapshot(0).await, str::to_owned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_made_again_under_a_new_uidvalidity_is_not_copied_twice() {
    let pair = seeded_pair(&[("revalidated@example.com", "pw")]).await;
    let (user, password) = (pair.users[0].0.clone(), pair.users[0].1.clone());
    let csv = pair.write_csv();
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    // Another client deletes Archive on the source and makes it again with the same messages
    // and one more: the folder's checkpoint no longer holds (ARCHITECTURE.md, rule 2).
    let archive = pair.source_snapshot(0).await.folders["Archive"]
        .messages
        .clone();
    let mut messages: Vec<NewMessage> = archive
        .iter()
        .map(|m| NewMessage {
            bytes: m.bytes.clone(),
            flags: m.flags.clone(),
            internal_date: m.internal_date.unwrap(),
        })
        .collect();
    messages.push(NewMessage {
        bytes: b"Message-ID: <after@example.com>\r\nSubject: after\r\n\r\nnew\r\n".to_vec(),
        ..messages[0].clone()
    });
    let mut session = connect_login(pair.source.port(), &user, &password)
        .await
        .unwrap();
    let old = session.status("Archive", "(UIDVALIDITY)").await.unwrap();
    session.delete("Archive").await.unwrap();
    append_all(&mut session, "Archive", &messages)
        .await
        .unwrap();
    let new = session.status("Archive", "(UIDVALIDITY)").await.unwrap();
    let (old, new) = (old.uid_validity.unwrap(), new.uid_validity.unwrap());
    session.logout().await.unwrap();
    assert_ne!(old, new);

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, &user);
    eprintln!("UIDVALIDITY {old} -> {new}: {result}");
    assert_eq!(result["status"], "Completed", "{result}");
    assert_eq!(result["items_copied"], 1, "{result}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
