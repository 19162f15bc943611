//! The m365 target profile against testkit's Exchange Online personality (`ExchangeFront` in
//! front of a real Dovecot): keywords Exchange cannot keep, `\Flagged` it drops from APPEND,
//! `$MDNSent`, its reserved `Files`, `/` inside a name and names equal but for case. Every
//! message arrives once,
//! `\Flagged` is right, and each rule applied is a warning in the `--json` report; a re-run
//! copies nothing. A full mailbox and one that is "authenticated but not connected" fail the
//! user with words a person can act on. Exchange's disconnect at a session's tenth error is
//! met and recovered from, a long folder throttled time and again goes on while it moves, and a
//! copy left without `\Flagged` (a crash between its APPEND and the STORE) is flagged by the
//! next pass.

mod common;

use common::{Pair, mailfleet, run, user_result};
use futures_util::TryStreamExt;
use mailfleet_testkit::exchange_front::{Condition, ExchangeFront, TOO_BIG};
use mailfleet_testkit::{
    Layout, NewMessage, StartOptions, append_all, assert_same_mail, connect_login,
};
use serde_json::Value;

const USER: (&str, &str) = ("alice@exprofile.test", "exprofile-pw");

fn message(subject: &str, flags: &[&str]) -> NewMessage {
    NewMessage {
        bytes: format!(
            "Message-ID: <{subject}@exchange-profile.test>\r\nDate: Tue, 1 Mar 2022 10:00:00 \
             +0000\r\nFrom: sender@example.com\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
        )
        .into_bytes(),
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        internal_date: chrono::DateTime::parse_from_rfc3339("2022-03-01T10:00:00+00:00").unwrap(),
    }
}

/// The source uses `.` as its separator (Cyrus-like).
async fn seed(pair: &Pair) {
    let mut session = connect_login(pair.source.port(), USER.0, USER.1)
        .await
        .unwrap();
    let inbox = [
        message("flagged", &["\\Seen", "\\Flagged"]),
        message("mdn", &["\\Seen", "$MDNSent"]),
        message("keyword", &["ProjectX"]),
        message("plain", &[]),
    ];
    append_all(&mut session, "INBOX", &inbox).await.unwrap();
    append_all(
        &mut session,
        "INBOX.Files",
        &[message("in-files", &["\\Flagged"])],
    )
    .await
    .unwrap();
    append_all(
        &mut session,
        "INBOX.Work",
        &[message("in-work", &["\\Answered"])],
    )
    .await
    .unwrap();
    session.logout().await.unwrap();
}

fn migrate(pair: &Pair, front: &ExchangeFront) -> (i32, Value, String) {
    migrate_as(pair, front, "m365")
}

fn migrate_as(pair: &Pair, front: &ExchangeFront, profile: &str) -> (i32, Value, String) {
    migrate_with(pair, front, profile, &[])
}

/// [`migrate_as`] with `settings` as `MAILFLEET_*` variables.
fn migrate_with(
    pair: &Pair,
    front: &ExchangeFront,
    profile: &str,
    settings: &[(&str, &str)],
) -> (i32, Value, String) {
    let csv = pair.write_csv();
    let mut command = mailfleet();
    command
        .args(["migrate", "--json", "--csv"])
        .arg(&csv)
        .args(["--source", &pair.source.url(), "--target", &front.url()])
        .args(["--target-profile", profile, "--state-dir"])
        .arg(pair.state_dir())
        .envs(settings.iter().copied());
    // The front runs on this runtime's other thread while this one waits.
    tokio::task::block_in_place(|| run(&mut command))
}

/// Subject → sorted flags of every message in `folder` on the target (read past the front).
async fn target_folder(pair: &Pair, folder: &str) -> Vec<(String, Vec<String>)> {
    let snapshot = pair.target_snapshot(0).await;
    let Some(found) = snapshot.folder(folder) else {
        panic!(
            "no folder {folder} on the target: {:?}",
            snapshot.folders.keys()
        );
    };
    let mut messages: Vec<(String, Vec<String>)> = found
        .messages
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m.bytes);
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap()
                .to_owned();
            (subject, m.flags.clone())
        })
        .collect();
    messages.sort();
    messages
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn reasons(result: &Value) -> Vec<String> {
    result["warnings"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|w| w["reason"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_profile_keeps_every_message_and_reports_each_rule_it_applied() {
    let (pair, front) = pair_and_front(Condition::Healthy).await;

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["status"], "CompletedWithWarnings", "{result}");
    assert_eq!(result["items_copied"], 6, "{result}");
    assert_eq!(result["items_skipped"], 0, "{result}");
    // \Flagged was set right after APPEND, so the copy map's flag sync found nothing to fix.
    assert_eq!(result["flags_updated"], 0, "{result}");

    assert_eq!(
        target_folder(&pair, "INBOX").await,
        vec![
            ("flagged".to_owned(), strings(&["\\Flagged", "\\Seen"])),
            ("keyword".to_owned(), vec![]),
            ("mdn".to_owned(), strings(&["\\Seen"])),
            ("plain".to_owned(), vec![]),
        ]
    );
    assert_eq!(
        target_folder(&pair, "Files (migrated)").await,
        vec![("in-files".to_owned(), strings(&["\\Flagged"]))]
    );
    assert_eq!(
        target_folder(&pair, "Work").await,
        vec![("in-work".to_owned(), strings(&["\\Answered"]))]
    );

    let reasons = reasons(result);
    let has = |words: &[&str]| reasons.iter().any(|r| words.iter().all(|w| r.contains(w)));
    assert!(has(&["keyword ProjectX", "PERMANENTFLAGS"]), "{reasons:?}");
    assert!(has(&["keyword $MDNSent", "category"]), "{reasons:?}");
    assert!(
        has(&["Files", "Files (migrated)", "reserves"]),
        "{reasons:?}"
    );
    assert!(!reasons.iter().any(|r| r.contains("Work")), "{reasons:?}");
    assert!(
        !reasons.iter().any(|r| r.contains("Flagged")),
        "{reasons:?}"
    );

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let again = user_result(&json, USER.0);
    assert_eq!(again["items_copied"], 0, "{again}");
    assert_eq!(again["items_synced"], 6, "{again}");
    assert_eq!(pair.target_snapshot(0).await.message_count(), 6);
}

/// A source seeded as [`seed`] does, and the front in `condition` before the target.
async fn pair_and_front(condition: Condition) -> (Pair, ExchangeFront) {
    let pair = Pair::from_servers(
        StartOptions::users(&[USER]).with_layout(Layout::CyrusLike),
        StartOptions::users(&[USER]),
        &[USER],
    );
    seed(&pair).await;
    let front = front_before_target(&pair, condition).await;
    (pair, front)
}

/// Appends `messages` to the source's INBOX.
async fn source_inbox(pair: &Pair, messages: &[NewMessage]) {
    let mut session = connect_login(pair.source.port(), USER.0, USER.1)
        .await
        .unwrap();
    append_all(&mut session, "INBOX", messages).await.unwrap();
    session.logout().await.unwrap();
}

/// The front in `condition` before `pair`'s target.
async fn front_before_target(pair: &Pair, condition: Condition) -> ExchangeFront {
    let upstream = ([127, 0, 0, 1], pair.target.port()).into();
    ExchangeFront::start_with(upstream, condition)
        .await
        .unwrap()
}

/// Two plain Dovecot servers with [`USER`] on each.
fn plain_pair() -> Pair {
    Pair::from_servers(
        StartOptions::users(&[USER]),
        StartOptions::users(&[USER]),
        &[USER],
    )
}

fn only_error(result: &Value) -> String {
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{result}");
    errors[0].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_target_mailbox_fails_the_user_at_once_as_quota_exceeded() {
    let (pair, front) = pair_and_front(Condition::FullAfterAppends(2)).await;
    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 1, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["status"], "Failed", "{result}");
    // Each folder that met the full mailbox says so (folders are copied side by side).
    let errors = result["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{result}");
    for error in errors {
        let error = error.as_str().unwrap();
        assert!(
            error.contains("mailbox quota exceeded on the target"),
            "{error}"
        );
        assert!(error.contains("Server Unavailable. 15"), "{error}");
    }
    // Not a skip per message: the refusal fails the user; what went in is there once, and the
    // failed user's result counts it.
    assert_eq!(result["items_skipped"], 0, "{result}");
    assert_eq!(pair.target_snapshot(0).await.message_count(), 2);
    assert_eq!(result["items_synced"], 2, "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_but_not_connected_is_retried_then_names_the_likely_causes() {
    let (pair, front) = pair_and_front(Condition::NotConnected).await;
    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 1, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["status"], "Failed", "{result}");
    let error = only_error(result);
    for words in [
        "User is authenticated but not connected",
        "FullAccess",
        "IMAP is disabled",
        "tried 3 times",
    ] {
        assert!(error.contains(words), "{words}: {error}");
    }
    assert_eq!(pair.target_snapshot(0).await.message_count(), 0);
}

/// The control: without the profile the front refuses `Files` as Exchange does (the folder is
/// skipped), and `\Flagged`, dropped at APPEND, comes back only through the copy map's flag
/// sync after the folder is copied (counted as a flag update), not at APPEND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_profile_loses_files_on_the_exchange_personality() {
    let (pair, front) = pair_and_front(Condition::Healthy).await;
    let (code, json, stderr) = migrate_as(&pair, &front, "generic");
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    let skipped = result["skipped"].to_string();
    assert!(skipped.contains("Folder name is reserved"), "{result}");
    assert_eq!(result["items_copied"], 5, "{result}");
    assert_eq!(result["flags_updated"], 1, "{result}");
    let inbox = target_folder(&pair, "INBOX").await;
    assert_eq!(
        inbox[0],
        ("flagged".to_owned(), strings(&["\\Flagged", "\\Seen"])),
        "{result}"
    );
}

/// Exchange cannot hold `/` inside a name and takes `work` for `Work`: under m365 `Plans/2024`
/// lands as `Plans-2024`, and `work` (with its subfolder) as `work (2)` beside `Work` — each
/// message in its own folder once, each rename a warning; a re-run copies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m365_renames_slashes_and_names_equal_but_for_case_without_losing_mail() {
    // Names kept in Dovecot's index, so a level may hold `/` (its fs layout refuses it).
    let source = StartOptions::users(&[USER])
        .with_layout(Layout::CyrusLike)
        .with_config("mail_location = sdbox:~/box:LAYOUT=index");
    let pair = Pair::from_servers(source, StartOptions::users(&[USER]), &[USER]);
    let mut session = connect_login(pair.source.port(), USER.0, USER.1)
        .await
        .unwrap();
    let folders = [
        ("INBOX.Plans/2024", "Plans-2024", "plans"),
        ("INBOX.Work", "Work", "upper"),
        ("INBOX.work", "work (2)", "lower"),
        ("INBOX.work.Notes", "work (2)/Notes", "notes"),
    ];
    for (source, _, subject) in folders {
        let messages = [message(subject, &["\\Seen"])];
        append_all(&mut session, source, &messages).await.unwrap();
    }
    session.logout().await.unwrap();
    let front = front_before_target(&pair, Condition::Healthy).await;

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["items_copied"], 4, "{result}");
    for (_, target, subject) in folders {
        assert_eq!(
            target_folder(&pair, target).await,
            vec![(subject.to_owned(), strings(&["\\Seen"]))],
            "{target}"
        );
    }
    let reasons = reasons(result);
    let has = |words: &[&str]| reasons.iter().any(|r| words.iter().all(|w| r.contains(w)));
    assert!(has(&["Plans/2024", "Plans-2024", "'/'"]), "{reasons:?}");
    assert!(
        has(&["work renamed to work (2)", "case-insensitive"]),
        "{reasons:?}"
    );
    assert!(
        has(&["work/Notes renamed to work (2)/Notes"]),
        "{reasons:?}"
    );

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(user_result(&json, USER.0)["items_copied"], 0, "{json}");
    assert_eq!(pair.target_snapshot(0).await.message_count(), 4);
}

/// The front's size limit in the tests below: the padded messages are over it.
const SIZE_LIMIT: usize = 2048;

/// A message with `\Seen`, padded past [`SIZE_LIMIT`] when `oversized`.
fn sized_message(subject: &str, oversized: bool) -> NewMessage {
    let mut message = message(subject, &["\\Seen"]);
    if oversized {
        message.bytes.extend(b"x".repeat(SIZE_LIMIT));
        message.bytes.extend(b"\r\n");
    }
    message
}

/// Exchange ends a session at its tenth error. Twelve messages over the target's size limit
/// among twenty-four it takes, in one folder: the tenth refusal ends the session with a BYE,
/// mailfleet reconnects and resumes from its checkpoint without offering the refused messages
/// again (so the limit is met once), every other message arrives once, and each refused one is
/// a skipped item naming the target's words; the user completes with warnings, exit status 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenth_refused_append_ends_the_session_and_the_folder_resumes_without_them() {
    let pair = plain_pair();
    let oversized = |i: usize| i % 3 == 2;
    let messages: Vec<NewMessage> = (0..36)
        .map(|i| sized_message(&format!("m{i:02}"), oversized(i)))
        .collect();
    source_inbox(&pair, &messages).await;
    let front = front_before_target(&pair, Condition::SizeLimit(SIZE_LIMIT)).await;

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["status"], "CompletedWithWarnings", "{result}");
    assert_eq!(result["items_skipped"], 12, "{result}");
    assert_eq!(
        front.error_limit_hits(),
        1,
        "the tenth refusal ended one session, and only one: {result}"
    );
    let refused_words = TOO_BIG.trim_start_matches("NO ");
    let mut skipped: Vec<String> = result["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let reason = item["reason"].as_str().unwrap();
            assert!(reason.contains("target refused the message"), "{item}");
            assert!(reason.contains(refused_words), "{item}");
            item["subject"].as_str().unwrap().to_owned()
        })
        .collect();
    skipped.sort();
    let expected: Vec<String> = (0..36)
        .filter(|&i| oversized(i))
        .map(|i| format!("m{i:02}"))
        .collect();
    assert_eq!(skipped, expected);

    // Every message the target takes is there exactly once, with its flags and date.
    let mut taken = pair.source_snapshot(0).await;
    for folder in taken.folders.values_mut() {
        folder.messages.retain(|m| m.bytes.len() <= SIZE_LIMIT);
    }
    assert_same_mail(&taken, &pair.target_snapshot(0).await, str::to_owned);

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(user_result(&json, USER.0)["items_copied"], 0, "{json}");
    assert_same_mail(&taken, &pair.target_snapshot(0).await, str::to_owned);
}

/// Exchange throttles a long folder again and again while it moves on. Each throttle is waited
/// out, and the folder's attempts are counted from its last checkpoint: twenty throttles in one
/// folder, more than a stuck folder's attempts in the discovery's small-folder copy and then
/// in its own task (7 retries each), still end with every message there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_throttled_more_often_than_its_attempts_goes_on_while_it_moves() {
    let pair = plain_pair();
    // Messages of about 200 KB in batches of 1 MiB: a checkpoint every five, a throttle every
    // sixth APPEND.
    let line = format!("{}\r\n", "x".repeat(76));
    let messages: Vec<NewMessage> = (0..100)
        .map(|i| {
            let mut message = message(&format!("long-{i:03}"), &["\\Seen"]);
            message.bytes.extend(line.repeat(2_600).into_bytes());
            message
        })
        .collect();
    source_inbox(&pair, &messages).await;
    let front = front_before_target(&pair, Condition::ThrottleEveryAppends(6)).await;

    let settings = [("MAILFLEET_TASK_BUFFER_MB", "1")];
    let (code, json, stderr) = migrate_with(&pair, &front, "m365", &settings);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["status"], "Completed", "{result}");
    assert!(
        front.throttle_replies() > 16,
        "throttled {} times: no more than a stuck folder's attempts",
        front.throttle_replies()
    );
    assert!(!stderr.contains("small folder left"), "{stderr}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}

/// Subject → sorted flags of every message in the target's INBOX.
async fn target_inbox(pair: &Pair) -> Vec<(String, Vec<String>)> {
    target_folder(pair, "INBOX").await
}

/// A crash between a copy's APPEND (which loses `\Flagged` on Exchange) and the profile's
/// `UID STORE` leaves the copy unflagged, and no checkpoint or map knows of it. Made here
/// without a kill: after a first run, a new flagged source message is APPENDed through the
/// front with the same bytes, as the crashed attempt would have; the next run finds it present
/// and flags it. A message the user flagged on the target only stays flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_left_unflagged_by_a_crash_is_flagged_by_the_next_run() {
    let pair = plain_pair();
    let mut source = connect_login(pair.source.port(), USER.0, USER.1)
        .await
        .unwrap();
    let first = [
        message("flagged", &["\\Seen", "\\Flagged"]),
        message("flagged-on-target", &["\\Seen"]),
    ];
    append_all(&mut source, "INBOX", &first).await.unwrap();
    let front = front_before_target(&pair, Condition::Healthy).await;
    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");

    // The user flags a copy on the target; a new flagged message arrives on the source, and
    // its copy reaches the target as the crash left it: through the front, \Flagged dropped.
    let mut target = connect_login(front.port(), USER.0, USER.1).await.unwrap();
    target.select("INBOX").await.unwrap();
    // UID 2: the first run appended in source order.
    target
        .uid_store("2", "+FLAGS.SILENT (\\Flagged)")
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let arrived = [message("crashed-before-store", &["\\Seen", "\\Flagged"])];
    append_all(&mut source, "INBOX", &arrived).await.unwrap();
    append_all(&mut target, "INBOX", &arrived).await.unwrap();
    target.logout().await.unwrap();
    source.logout().await.unwrap();
    assert_eq!(
        target_inbox(&pair).await[0],
        ("crashed-before-store".to_owned(), strings(&["\\Seen"])),
        "the copy as the crash left it"
    );

    let (code, json, stderr) = migrate(&pair, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["items_copied"], 0, "{result}");
    let flagged_and_seen = strings(&["\\Flagged", "\\Seen"]);
    assert_eq!(
        target_inbox(&pair).await,
        vec![
            ("crashed-before-store".to_owned(), flagged_and_seen.clone()),
            ("flagged".to_owned(), flagged_and_seen.clone()),
            ("flagged-on-target".to_owned(), flagged_and_seen),
        ],
        "{result}"
    );
}
