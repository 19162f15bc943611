//! Folder names that need care on the wire (quotes, backslashes, spaces at either end, non-BMP
//! characters, long names), and a folder the target cannot create: through the real binary
//! against real Dovecot.

mod common;

use chrono::{FixedOffset, TimeZone};
use common::{Pair, run, user_result};
use mailfleet_shared::mutf7;
use mailfleet_testkit::{NewMessage, StartOptions, append_all, assert_same_mail, connect_login};

/// Display names of the odd folders. Dovecot sends a name with more than four characters to
/// escape as a literal rather than a quoted string, so both forms are covered.
fn odd_folders() -> Vec<String> {
    vec![
        r#"Quoted "name""#.to_owned(),
        r"back\slash".to_owned(),
        r#"many "q"u"o"t"e"s and \\ too"#.to_owned(),
        "  spaced both ends  ".to_owned(),
        "Party 🎉 time 𝄞".to_owned(),
        format!("Long-{}", "x".repeat(195)),
    ]
}

/// Seeds `folders` (display names) on the user's source, two messages each.
async fn seed_folders(pair: &Pair, user: usize, folders: &[String]) {
    let (login, password) = &pair.users[user];
    let mut session = connect_login(pair.source.port(), login, password)
        .await
        .unwrap();
    for (i, folder) in folders.iter().enumerate() {
        let messages: Vec<NewMessage> = (0..2)
            .map(|n| NewMessage {
                bytes: format!(
                    "From: a@example.org\r\nTo: {login}\r\nSubject: folder {i} message {n}\r\nMessage-ID: <f{i}m{n}@names>\r\n\r\nbody {i}/{n}\r\n"
                )
                .into_bytes(),
                flags: vec!["\\Seen".to_owned()],
                internal_date: FixedOffset::east_opt(3600)
                    .unwrap()
                    .with_ymd_and_hms(2024, 3, 1 + i as u32, 12, 0, n)
                    .unwrap(),
            })
            .collect();
        append_all(&mut session, &mutf7::encode(folder), &messages)
            .await
            .unwrap();
    }
    session.logout().await.unwrap();
}

#[tokio::test]
async fn folders_with_quotes_backslashes_spaces_emoji_and_long_names_all_migrate_once() {
    let pair = Pair::start(&[("names@example.com", "names-pw")]);
    let folders = odd_folders();
    seed_folders(&pair, 0, &folders).await;
    let source = pair.source_snapshot(0).await;
    for folder in &folders {
        assert_eq!(
            source
                .folder(&mutf7::encode(folder))
                .map(|f| f.messages.len()),
            Some(2),
            "the source must hold {folder:?}: {:?}",
            source.folders.keys()
        );
    }
    let csv = pair.write_csv();

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, "names@example.com");
    assert_eq!(result["status"], "Completed", "{result}");
    assert_eq!(result["items_copied"], 2 * folders.len() as u64, "{result}");
    let reported: Vec<&str> = result["folders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    for folder in &folders {
        assert!(
            reported.contains(&folder.as_str()),
            "{folder:?} not in {reported:?}"
        );
    }
    let target = pair.target_snapshot(0).await;
    assert_eq!(
        target.folders.keys().collect::<Vec<_>>(),
        source.folders.keys().collect::<Vec<_>>()
    );
    assert_same_mail(&source, &target, str::to_owned);

    // A re-run with a fresh state dir relies on the fingerprints alone: nothing twice.
    std::fs::remove_dir_all(pair.state_dir()).unwrap();
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(
        user_result(&json, "names@example.com")["items_copied"],
        0,
        "{json}"
    );
    assert_same_mail(&source, &pair.target_snapshot(0).await, str::to_owned);
}

#[tokio::test]
async fn a_folder_the_target_cannot_create_is_skipped_and_reported_the_rest_migrates() {
    // The target stores mail in Maildir++, one directory per folder with `.` between levels,
    // under a `/` hierarchy: Dovecot refuses a name with a `.` in it there ("Character not
    // allowed in mailbox name: '.'"), which the source (a directory per level) holds.
    let users = [("refuse@example.com", "refuse-pw")];
    let pair = Pair::from_servers(
        StartOptions::users(&users),
        StartOptions::users(&users).with_config("mail_location = maildir:~/Maildir"),
        &users,
    );
    let refused = "dotted.name".to_owned();
    let folders = vec!["Fine \"one\"".to_owned(), refused.clone()];
    seed_folders(&pair, 0, &folders).await;
    let csv = pair.write_csv();

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, "refuse@example.com");
    assert_eq!(result["status"], "CompletedWithWarnings", "{result}");
    assert_eq!(result["items_copied"], 2, "{result}");
    let skipped = result["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|item| item["folder"] == refused.as_str()
            && item["reason"]
                .as_str()
                .unwrap()
                .contains("refused to create the folder")),
        "{result}"
    );
    let target = pair.target_snapshot(0).await;
    assert_eq!(
        target.folder("Fine \"one\"").map(|f| f.messages.len()),
        Some(2),
        "{:?}",
        target.folders.keys()
    );
    assert!(target.folder(&refused).is_none());
}
