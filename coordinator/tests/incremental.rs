//! Incremental passes mirror what users did on the source between runs (flags, moves, and with
//! `--mirror-deletions` deletions), on real Dovecot servers through the real binary: after a
//! re-run the target is the source, nothing twice, and what happened only on the target stays.

mod common;

use common::fleet::Fleet;
use common::{Pair, run, user_result};
use futures_util::TryStreamExt;
use mailfleet_testkit::client::{self, Session};
use mailfleet_testkit::{
    MailboxSnapshot, NewMessage, StartOptions, append_all, assert_same_mail, connect_login,
};
use serde_json::Value;

const ARCHIVE: &str = "Archive/2019";

/// Dovecot advertising what it offers but MOVE (RFC 6851).
const NO_MOVE: &str = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE \
                       NAMESPACE UIDPLUS CHILDREN SPECIAL-USE MULTIAPPEND UNSELECT \
                       CONDSTORE LITERAL+";

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
    store_set(session, &uid.to_string(), change).await;
}

/// `UID STORE set change` on the selected folder.
async fn store_set(session: &mut Session, set: &str, change: &str) {
    let _: Vec<_> = session
        .uid_store(set, change)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
}

async fn expunge(session: &mut Session) {
    client::expunge(session).await.unwrap();
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
    expunge(&mut session).await;
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
    carries_what_users_did(Pair::start(&[(user, "pm")]), None).await;
}

/// Against a target that does not offer MOVE (RFC 6851), moves are UID COPY, `\Deleted` and
/// UID EXPUNGE (UIDPLUS): the same outcome.
#[tokio::test]
async fn without_move_on_the_target_a_move_is_copy_and_uid_expunge() {
    let user = ("mirror-nomove@example.com", "pn");
    let target = StartOptions::users(&[user]).with_config(NO_MOVE);
    let pair = Pair::from_servers(StartOptions::users(&[user]), target, &[user]);
    carries_what_users_did(pair, None).await;
}

/// The same passes through RabbitMQ and a worker, with checkpoints and maps of copies in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_passes_carry_what_users_did_the_same_way() {
    let fleet = Fleet::new("mirror");
    let user = "mirror-dist@example.com";
    carries_what_users_did(Pair::start(&[(user, "pm")]), Some(&fleet)).await;
    let keys = fleet.redis().await.keys().await.unwrap();
    assert!(keys.iter().any(|k| k.contains(":uidmaps:")), "{keys:?}");
    fleet.clean_up().await;
}

/// Initial run; the user's changes on both sides; a re-run carries them; an idle re-run does
/// nothing; a --mirror-deletions run removes the copy of what was deleted.
async fn carries_what_users_did(pair: Pair, fleet: Option<&Fleet>) {
    let user = pair.users[0].0.as_str();
    seed(&pair).await;
    let csv = pair.write_csv();
    let migrate = |extra: &[&str]| {
        let mut command = pair.migrate_command(&csv, extra);
        if let Some(fleet) = fleet {
            fleet.configure(&mut command);
        }
        command
    };
    let (code, _, stderr) = run(&mut migrate(&[]));
    assert_eq!(code, 0, "{stderr}");
    let before = pair.source_snapshot(0).await;
    assert_same_mail(&before, &pair.target_snapshot(0).await, str::to_owned);

    change_the_source(&pair).await;
    change_the_target(&pair).await;
    let (code, json, stderr) = run(&mut migrate(&[]));
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
    let (code, json, stderr) = run(&mut migrate(&[]));
    assert_eq!(code, 0, "{stderr}");
    let result = user_result(&json, user);
    for field in ["items_copied", "moved", "flags_updated", "deleted"] {
        assert_eq!(count(result, field), 0, "{field}: {result}");
    }
    assert_same_mail(&target, &pair.target_snapshot(0).await, str::to_owned);

    // With --mirror-deletions the copy of m07 goes; the target's own message stays. m10,
    // answered meanwhile, is found by CHANGEDSINCE (Dovecot offers CONDSTORE).
    let (login, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    store(&mut session, "m10", "+FLAGS (\\Answered)").await;
    session.logout().await.unwrap();
    let (code, json, stderr) = run(&mut migrate(&["--mirror-deletions"]));
    assert_eq!(code, 0, "{stderr}");
    let result = user_result(&json, user);
    assert_eq!(count(result, "deleted"), 1, "{result}");
    assert_eq!(count(result, "flags_updated"), 1, "{result}");
    let source = pair.source_snapshot(0).await;
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

/// A day of a user's work on the source: of INBOX's messages (ascending UIDs), 60 are
/// moved to Archive/2019, 30 deleted, 60 flagged; the moved ones are then marked read there.
/// Returns how many INBOX loses.
async fn busy_day_on_the_source(pair: &Pair) -> u32 {
    let (user, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), user, password)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    let mut uids: Vec<u32> = session
        .uid_search("ALL")
        .await
        .unwrap()
        .into_iter()
        .collect();
    uids.sort_unstable();
    let set = |part: &[u32]| {
        part.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let (moved, rest) = uids.split_at(60);
    let (deleted, rest) = rest.split_at(30);
    let flagged = &rest[..60];
    for (uids, change) in [
        (flagged, "+FLAGS (\\Flagged)"),
        (deleted, "+FLAGS (\\Deleted)"),
    ] {
        store_set(&mut session, &set(uids), change).await;
    }
    expunge(&mut session).await;
    session.uid_mv(set(moved), ARCHIVE).await.unwrap();
    session.select(ARCHIVE).await.unwrap();
    store_set(&mut session, "1:*", "+FLAGS (\\Seen)").await;
    session.logout().await.unwrap();
    90
}

#[tokio::test]
async fn kill_9_during_passes_that_move_and_delete_then_a_rerun_is_exact() {
    kill_9_during_passes(Pair::start(&[("mirror-kill@example.com", "pk")])).await;
}

/// The same against a target without MOVE: a kill can fall between UID COPY and UID EXPUNGE.
#[tokio::test]
async fn kill_9_during_passes_that_copy_and_expunge_for_moves_then_a_rerun_is_exact() {
    let user = ("mirror-kill-nomove@example.com", "pk");
    let pair = Pair::from_servers(
        StartOptions::users(&[user]),
        StartOptions::users(&[user]).with_config(NO_MOVE),
        &[user],
    );
    kill_9_during_passes(pair).await;
}

async fn kill_9_during_passes(pair: Pair) {
    use rand::Rng;
    let (login, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    let inbox: Vec<NewMessage> = (1..=600)
        .map(|i| message(&format!("k{i:03}"), &[]))
        .collect();
    append_all(&mut session, "INBOX", &inbox).await.unwrap();
    append_all(&mut session, ARCHIVE, &[message("a1", &[])])
        .await
        .unwrap();
    session.logout().await.unwrap();
    let csv = pair.write_csv();
    const DELETIONS: [&str; 1] = ["--mirror-deletions"];
    assert_eq!(run(&mut pair.migrate_command(&csv, &DELETIONS)).0, 0);
    let mut target = connect_login(pair.target.port(), login, password)
        .await
        .unwrap();
    append_all(&mut target, "INBOX", &[message("target-only", &[])])
        .await
        .unwrap();

    let mut killed = 0;
    for round in 0..4 {
        let inbox = target.status("INBOX", "(MESSAGES)").await.unwrap().exists;
        let archive = target.status(ARCHIVE, "(MESSAGES)").await.unwrap().exists;
        let leaving = busy_day_on_the_source(&pair).await;
        // Killed once the target's INBOX has lost some of what leaves it (after a MOVE or an
        // EXPUNGE), or, every other round, once Archive/2019 has gained (after a MOVE or a
        // COPY, before its EXPUNGE): before or after the maps and the destination's copy.
        let fall_to = inbox - rand::rng().random_range(1..=leaving);
        let rise_to = archive + 1;
        let watch_archive = round % 2 == 1;
        if watch_archive {
            eprintln!("round {round}: killing when Archive/2019 reaches {rise_to}");
        } else {
            eprintln!("round {round}: killing when INBOX falls to {fall_to}");
        }
        let mut child = common::Running::new(
            pair.migrate_command(&csv, &DELETIONS)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        loop {
            if child.has_exited() {
                break;
            }
            let hit = if watch_archive {
                target.status(ARCHIVE, "(MESSAGES)").await.unwrap().exists >= rise_to
            } else {
                target.status("INBOX", "(MESSAGES)").await.unwrap().exists <= fall_to
            };
            if hit {
                child.kill();
                killed += 1;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    target.logout().await.unwrap();
    assert!(
        killed > 0,
        "every pass finished before its kill; the test proved nothing"
    );

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &DELETIONS));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let source = pair.source_snapshot(0).await;
    let target = pair.target_snapshot(0).await;
    let mut expected = source.clone();
    expected.folders.get_mut("INBOX").unwrap().messages.extend(
        target.folders["INBOX"]
            .messages
            .iter()
            .filter(|m| m.bytes.windows(11).any(|w| w == b"target-only"))
            .cloned(),
    );
    assert_same_mail(&expected, &target, str::to_owned);
}

#[tokio::test]
async fn a_folder_renamed_on_the_source_is_renamed_on_the_target_with_its_subfolder() {
    let user = "mirror-rename@example.com";
    let pair = Pair::start(&[(user, "pr")]);
    let (login, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    let projects: Vec<NewMessage> = (1..=5).map(|i| message(&format!("p{i}"), &[])).collect();
    append_all(&mut session, "Projects", &projects)
        .await
        .unwrap();
    append_all(
        &mut session,
        "Projects/Specs",
        &[message("s1", &["\\Seen"])],
    )
    .await
    .unwrap();
    append_all(&mut session, "INBOX", &[message("i1", &[])])
        .await
        .unwrap();
    let csv = pair.write_csv();
    assert_eq!(run(&mut pair.migrate_command(&csv, &[])).0, 0);

    session.rename("Projects", "Work").await.unwrap();
    session.select("Work").await.unwrap();
    store(&mut session, "p2", "+FLAGS (\\Flagged)").await;
    append_all(&mut session, "Work", &[message("p6", &[])])
        .await
        .unwrap();
    session.logout().await.unwrap();

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user);
    assert_eq!(count(result, "renamed_folders"), 1, "{result}");
    assert_eq!(count(result, "items_copied"), 1, "only p6: {result}");
    assert_eq!(count(result, "flags_updated"), 1, "p2: {result}");
    let target = pair.target_snapshot(0).await;
    assert!(
        !target.folders.contains_key("Projects"),
        "{:?}",
        target.folders.keys()
    );
    assert_same_mail(&pair.source_snapshot(0).await, &target, str::to_owned);
}

/// The service's incremental pass does the same for a batch created with --mirror-deletions,
/// and its users report counts it.
#[tokio::test]
async fn the_services_incremental_pass_mirrors_a_batch_with_mirror_deletions() {
    use common::service::{ServiceCli, batch_state, html_report_row, user as user_status};
    let user = "mirror-svc@example.com";
    let pair = Pair::start(&[(user, "ps")]);
    seed(&pair).await;
    let csv = pair.write_csv();
    let service = ServiceCli::new(pair.state_dir());
    service.create_endpoints(&pair);
    service.create_batch("wave-1", &csv, &["--autostart", "--mirror-deletions"]);
    let running = service.start(&["--workers", "2"], &pair.dir.path().join("service.log"));
    service
        .wait_for("wave-1", "the initial sync", |s| batch_state(s) == "Synced")
        .await;
    let before = pair.source_snapshot(0).await;

    change_the_source(&pair).await;
    change_the_target(&pair).await;
    service.ok(&["batch", "sync-now", "wave-1"]);
    let status = service
        .wait_for("wave-1", "the incremental sync", |s| {
            user_status(s, user)["state"] == "IncrementalSynced"
        })
        .await;
    running.terminate();
    let record = user_status(&status, user);
    assert_eq!(record["moved_total"], 4, "{record}");
    assert_eq!(record["deleted_total"], 1, "{record}");
    assert_eq!(record["flags_updated_total"], 4, "{record}");
    let report: Value =
        serde_json::from_str(&service.ok(&["report", "users", "wave-1", "--format", "json"]))
            .unwrap();
    assert_eq!(report["users"][0]["moved"], 4, "{report}");
    assert_eq!(report["users"][0]["deleted"], 1, "{report}");
    let html = service.ok(&["report", "users", "wave-1", "--format", "html"]);
    let row = html_report_row(&html, user);
    for (column, expected) in [
        ("Flags updated", "4"),
        ("Moved", "4"),
        ("Folders renamed", "0"),
        ("Deleted", "1"),
        ("Deleted on the source, kept", "0"),
        ("Status", "IncrementalSynced"),
    ] {
        assert_eq!(row[column], expected, "{column}: {html}");
    }
    let synced_at = &row["Last successful sync"];
    assert!(
        synced_at.len() == "2026-12-02 03:08:13 UTC".len() && synced_at.ends_with(" UTC"),
        "a time to the second: {synced_at}"
    );
    for took in [&row["Initial sync"], &row["Last incremental sync"]] {
        assert!(took.ends_with(" s") || took.ends_with(" min"), "{took}");
    }
    assert!(row["Copied"].ends_with(" KB"), "{}", row["Copied"]);
    assert!(html.contains("No errors: no user failed."), "{html}");
    assert!(html.contains("No skipped items."), "{html}");

    // verify reads both sides now: exact; the target-only message counted; m09's flag, set on
    // the target only, kept by the pass and told apart, not a fault.
    let verified: Value =
        serde_json::from_str(&service.ok(&["verify", "wave-1", "--json"])).unwrap();
    let checked = &verified["users"][0];
    assert_eq!(checked["exact"], true, "{verified}");
    assert_eq!(checked["target_only"], 1, "{verified}");
    let differ = checked["flags_differ"].as_array().unwrap();
    assert_eq!(differ.len(), 1, "{verified}");
    assert_eq!(differ[0]["message"]["subject"], "m09", "{verified}");
    assert_eq!(
        differ[0]["source_flags"],
        serde_json::json!([]),
        "{verified}"
    );
    assert_eq!(
        differ[0]["target_flags"],
        serde_json::json!(["\\Flagged"]),
        "{verified}"
    );

    let source = pair.source_snapshot(0).await;
    let target = pair.target_snapshot(0).await;
    assert_same_mail(
        &expected_target(&source, &before, &target, &[]),
        &target,
        str::to_owned,
    );
}

/// `UID COPY` of `subject` from the selected folder into `to`: on the source, the first half of
/// a move (what a pass sees when the move happens while it runs).
async fn copy_to(session: &mut Session, subject: &str, to: &str) {
    let uid = uid_of(session, subject).await;
    session.uid_copy(uid.to_string(), to).await.unwrap();
}

/// `subject` deleted from the selected folder: the second half of a move.
async fn remove(session: &mut Session, subject: &str) {
    store(session, subject, "+FLAGS (\\Deleted)").await;
    expunge(session).await;
}

/// Moves on the source that a pass saw only half of: the message already in its new folder
/// and still in its old one, as when a user moves it between the mirror's reading of the old
/// folder and the copy of the new one. m06 is moved during the initial pass, m05 during the
/// first incremental pass. Each following pass leaves one copy where the source has it, without
/// --mirror-deletions, and calls it a move.
#[tokio::test]
async fn a_move_a_pass_saw_half_of_is_settled_by_the_next_pass_without_a_duplicate() {
    let user = "mirror-half@example.com";
    let pair = Pair::start(&[(user, "ph")]);
    seed(&pair).await;
    let csv = pair.write_csv();
    let (login, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    session.select("INBOX").await.unwrap();
    copy_to(&mut session, "m06", ARCHIVE).await;
    let (code, _, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );

    remove(&mut session, "m06").await;
    copy_to(&mut session, "m05", ARCHIVE).await;
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user);
    assert_eq!(count(result, "moved"), 1, "m06: {result}");
    assert_eq!(count(result, "items_copied"), 1, "m05's new half: {result}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );

    remove(&mut session, "m05").await;
    session.logout().await.unwrap();
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user);
    assert_eq!(count(result, "moved"), 1, "m05: {result}");
    assert_eq!(count(result, "items_copied"), 0, "{result}");
    assert!(
        result["deleted_on_source_kept"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{result}"
    );
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}

/// A folder "renamed" by creating another, copying everything into it and deleting the old
/// one has a new UIDVALIDITY, but the same messages: the target's folder is renamed, nothing is
/// copied twice.
#[tokio::test]
async fn a_folder_recreated_under_another_name_with_the_same_messages_is_renamed_on_the_target() {
    let user = "mirror-recreate@example.com";
    let pair = Pair::start(&[(user, "pq")]);
    let (login, password) = &pair.users[0];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    let projects: Vec<NewMessage> = (1..=4)
        .map(|i| message(&format!("q{i}"), if i == 2 { &["\\Seen"] } else { &[] }))
        .collect();
    append_all(&mut session, "Projects", &projects)
        .await
        .unwrap();
    append_all(&mut session, "INBOX", &[message("i1", &[])])
        .await
        .unwrap();
    let csv = pair.write_csv();
    assert_eq!(run(&mut pair.migrate_command(&csv, &[])).0, 0);

    session.create("Work").await.unwrap();
    session.select("Projects").await.unwrap();
    session.uid_copy("1:*", "Work").await.unwrap();
    session.close().await.unwrap();
    session.delete("Projects").await.unwrap();
    session.logout().await.unwrap();

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user);
    assert_eq!(count(result, "renamed_folders"), 1, "{result}");
    assert_eq!(count(result, "items_copied"), 0, "{result}");
    let target = pair.target_snapshot(0).await;
    assert!(
        !target.folders.contains_key("Projects"),
        "{:?}",
        target.folders.keys()
    );
    assert_same_mail(&pair.source_snapshot(0).await, &target, str::to_owned);
}

/// The benchmark's day (`loadtest bench single`) on its corpus: 1,000 messages over the
/// corpus's folders, a first pass, an idle re-run, then about 1 % of the messages flagged,
/// moved to the next folder (chains of moves, the last folder's into the first) or joined by new
/// mail, and one more pass: the target is the source, message for message, nothing twice.
#[tokio::test]
async fn a_pass_after_a_day_of_one_percent_changes_leaves_the_target_exactly_the_source() {
    let user = ("mirror-day@example.com", "pd");
    let pair = Pair::start(&[user]);
    pair.seed_all(&mailfleet_testkit::corpus::CorpusSpec {
        messages: 1_000,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    for pass in ["initial", "idle re-run"] {
        let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
        assert_eq!(code, 0, "{pass}: {stderr}\n{json}");
    }
    let changes = mailfleet_testkit::user_changes::change_one_percent(pair.source.port(), user, 0)
        .await
        .unwrap();
    assert!(
        changes.moved > 0 && changes.flagged > 0 && changes.added > 0,
        "{changes:?}"
    );
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user.0);
    assert_eq!(count(result, "moved"), changes.moved as u64, "{result}");
    assert_eq!(
        count(result, "items_copied"),
        changes.added as u64,
        "{result}"
    );
    assert_eq!(
        result["deleted_on_source_kept"],
        serde_json::json!([]),
        "{result}"
    );
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
