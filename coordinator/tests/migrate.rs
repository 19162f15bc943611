//! `mailfleet migrate` end to end between two real Dovecot servers: every folder, byte, flag and
//! date arrives; nothing arrives twice, whether the run is repeated, resumed or started over.

mod common;

use common::{Pair, run, user_result};
use mailfleet_testkit::assert_same_mail;
use mailfleet_testkit::corpus::CorpusSpec;

#[tokio::test]
async fn several_mailboxes_arrive_complete_and_reruns_add_nothing() {
    let pair = Pair::start(&[
        ("full-a@example.com", "pa"),
        ("full-b@example.com", "pb"),
        ("full-c@example.com", "pc"),
    ]);
    let seeded = pair
        .seed_all(&CorpusSpec {
            messages: 80,
            twin_pairs: 2,
            ..Default::default()
        })
        .await;
    let csv = pair.write_csv();

    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    for (i, (user, _)) in pair.users.iter().enumerate() {
        let result = user_result(&json, user);
        assert_eq!(result["status"], "Completed", "{result}");
        assert_eq!(result["items_copied"], seeded[i] as u64, "{result}");
        assert_eq!(result["items_skipped"], 0);
        let folders: Vec<&str> = result["folders"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        for expected in [
            "INBOX",
            "Entwürfe",
            "日本語",
            "Deep/a/b",
            "Projects/Alpha/Specs",
            "Old Mail",
        ] {
            assert!(folders.contains(&expected), "{expected} not in {folders:?}");
        }
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }

    // Same state dir: checkpoints say everything is there.
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(user_result(&json, "full-a@example.com")["items_copied"], 0);
    assert_eq!(
        user_result(&json, "full-a@example.com")["items_synced"],
        seeded[0] as u64
    );

    // A new state dir: only the fingerprints know, and they must be enough (twins included).
    std::fs::remove_dir_all(pair.state_dir()).unwrap();
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    for (i, (user, _)) in pair.users.iter().enumerate() {
        assert_eq!(user_result(&json, user)["items_copied"], 0, "{json}");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
}

#[tokio::test]
async fn new_mail_after_a_run_is_copied_by_the_next_one_and_only_it() {
    let pair = Pair::start(&[("incr@example.com", "pi")]);
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let csv = pair.write_csv();
    assert_eq!(run(&mut pair.migrate_command(&csv, &[])).0, 0);

    let more = CorpusSpec {
        messages: 7,
        seed: 99,
        twin_pairs: 0,
        ..Default::default()
    };
    let added = mailfleet_testkit::seed(pair.source.port(), "incr@example.com", "pi", &more)
        .await
        .unwrap();
    let (code, json, stderr) = run(&mut pair.migrate_command(&csv, &[]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        user_result(&json, "incr@example.com")["items_copied"],
        added as u64
    );
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
