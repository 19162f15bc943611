//! Incremental passes mirror what users did on the source between runs (flags, moves, and with
//! `--mirror-deletions` deletions), on real Dovecot servers through the real binary: after a
//! re-run the target is the source, nothing twice, and what happened only on the target stays.

mod common;

use common::{Pair, run, user_result};
use futures_util::TryStreamExt;
use mailfleet_testkit::client::Session;
use mailfleet_testkit::{MailboxSnapshot, NewMessage, append_all, assert_same_mail, connect_login};
use serde_json::Value;

const ARCHIVE: &str = "Archive/2019";

fn message(subject: &str, flags: &[&str]) -> NewMessage {
    NewMessage {
        bytes: format!(
            "Message-ID: <{subject}@incremental.test>\r\nDate: Tue, 1 Mar 2022 10:00:00 +0000\r\n\
             From: sender@example.com\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
        )
        .into_bytes(),
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        internal_date: chrono::DateTime::parse_from_rfc3339("2022-03-01T10:00:00+00:00").unwrap(),
    }
}

/// INBOX m01..m12 (m03 read), Archive/2019 a1..a2.
async fn seed(pair: &Pair) {
    let (user, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), user, password)
        .await
        .unwrap();
    let inbox: Vec<NewMessage> = (1..=12)
        .map(|i| {
            let flags: &[&str] = if i == 3 { &["\\Seen"] } else { &[] };
            message(&format!("m{i:02}"), flags)
        })
        .collect();
    append_all(&mut session, "INBOX", &inbox).await.unwrap();
    append_all(&mut session, "Archive", &[]).await.unwrap();
    append_all(
        &mut session,
        ARCHIVE,
        &[message("a1", &["\\Seen"]), message("a2", &[])],
    )
    .await
    .unwrap();
    session.logout().await.unwrap();
}

async fn uid_of(session: &mut Session, subject: &str) -> u32 {
    let found = session
        .uid_search(format!("HEADER Subject {subject}"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{subject}");
    found.into_iter().next().unwrap()
}

async fn store(session: &mut Session, subject: &str, change: &str) {
    let uid = uid_of(session, subject).await;
    let _: Vec<_> = session
        .uid_store(uid.to_string(), change)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
}

/// What a user does on the source between two passes.
async fn change_the_source(pair: &Pair) {
    let (user, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), user, password)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    store(&mut session, "m01", "+FLAGS (\\Seen \\Flagged)").await;
    store(&mut session, "m02", "+FLAGS (\\Seen $Work)").await;
    store(&mut session, "m03", "-FLAGS (\\Seen)").await;
    for moved in ["m04", "m05", "m06", "m08"] {
        let uid = uid_of(&mut session, moved).await;
        session.uid_mv(uid.to_string(), ARCHIVE).await.unwrap();
    }
    store(&mut session, "m07", "+FLAGS (\\Deleted)").await;
    let _: Vec<_> = session
        .expunge()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    session.select(ARCHIVE).await.unwrap();
    store(&mut session, "m08", "+FLAGS (\\Flagged)").await;
    append_all(&mut session, "INBOX", &[message("m13", &[])])
        .await
        .unwrap();
    session.logout().await.unwrap();
}

/// What the user does on the target meanwhile: flags m09, and mail arrives there by itself.
async fn change_the_target(pair: &Pair) {
    let (user, password) = &pair.users[0];
    let mut session = connect_login(pair.target.port(), user, password)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    store(&mut session, "m09", "+FLAGS (\\Flagged)").await;
    append_all(
        &mut session,
        "INBOX",
        &[message("target-only", &["\\Seen"])],
    )
    .await
    .unwrap();
    session.logout().await.unwrap();
}

/// The source as the target should show it: plus the target's own changes, plus `kept` (source
/// messages, by subject, from `before`) that were deleted on the source and stay.
fn expected_target(
    source: &MailboxSnapshot,
    before: &MailboxSnapshot,
    target: &MailboxSnapshot,
    kept: &[&str],
) -> MailboxSnapshot {
    let subject = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))
            .unwrap_or_default()
    };
    let mut expected = source.clone();
    let inbox = expected.folders.get_mut("INBOX").unwrap();
    for message in &mut inbox.messages {
        if subject(&message.bytes) == "m09" {
            message.flags.push("\\Flagged".into());
            message.flags.sort();
        }
    }
    let extra = before.folders["INBOX"]
        .messages
        .iter()
        .filter(|m| kept.contains(&subject(&m.bytes).as_str()))
        .chain(
            target.folders["INBOX"]
                .messages
                .iter()
                .filter(|m| subject(&m.bytes) == "target-only"),
        );
    inbox.messages.extend(extra.cloned());
    expected
}

fn count(result: &Value, field: &str) -> u64 {
    result[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {result}"))
}

#[tokio::test]
async fn a_rerun_carries_flags_and_moves_keeps_deletions_and_target_changes_then_mirrors_deletions()
{
    let user = "mirror-a@example.com";
    let pair = Pair::start(&[(user, "pm")]);
    seed(&pair).await;
    let csv = pair.write_csv();
    let (code, _, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    let before = pair.source_snapshot(0).await;
    assert_same_mail(&before, &pair.target_snapshot(0).await, str::to_owned);

    change_the_source(&pair).await;
    change_the_target(&pair).await;
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user);
    assert_eq!(result["status"], "Completed", "{result}");
    assert_eq!(
        count(result, "items_copied"),
        1,
        "only m13 is new: {result}"
    );
    assert_eq!(count(result, "moved"), 4, "{result}");
    assert_eq!(
        count(result, "flags_updated"),
        4,
        "m01, m02, m03 and the moved m08: {result}"
    );
    assert_eq!(count(result, "deleted"), 0, "{result}");
    let kept = result["deleted_on_source_kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{result}");
    assert_eq!(kept[0]["subject"], "m07");
    assert_eq!(kept[0]["folder"], "INBOX");
    let source = pair.source_snapshot(0).await;
    let target = pair.target_snapshot(0).await;
    assert_same_mail(
        &expected_target(&source, &before, &target, &["m07"]),
        &target,
        str::to_owned,
    );

    // Nothing changed since: nothing is done again, nothing arrives twice.
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    let result = user_result(&json, user);
    for field in ["items_copied", "moved", "flags_updated", "deleted"] {
        assert_eq!(count(result, field), 0, "{field}: {result}");
    }
    assert_same_mail(&target, &pair.target_snapshot(0).await, str::to_owned);

    // With --mirror-deletions the copy of m07 goes; the target's own message stays.
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &["--mirror-deletions"]));
    assert_eq!(code, 0, "{stderr}");
    let result = user_result(&json, user);
    assert_eq!(count(result, "deleted"), 1, "{result}");
    assert!(
        result["deleted_on_source_kept"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let target = pair.target_snapshot(0).await;
    assert_same_mail(
        &expected_target(&source, &before, &target, &[]),
        &target,
        str::to_owned,
    );
}
