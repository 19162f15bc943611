//! Broken mail (testkit's `bad_messages`: NUL bytes, bare CR and LF, 8-bit and invalid UTF-8
//! headers, no header/body separator, a 1 MB header line, broken MIME, duplicate or missing
//! Message-IDs and dates, sizes at and over the limit) seeded on a real Dovecot and migrated by
//! the real binary: each message Dovecot stores arrives byte-identical with its flags and
//! INTERNALDATE, except the one over `--max-message-size`, which is skipped and reported; a
//! re-run copies nothing, and `mailfleet verify` finds the two servers agree.

mod common;

use common::service::ServiceCli;
use common::{Pair, run, user_result};
use mailfleet_testkit::bad_messages::bad_messages;
use mailfleet_testkit::{append_all, assert_same_mail, connect_login};

const USER: (&str, &str) = ("broken-mail@example.com", "broken-pw");
/// Above the 1 MB header line, so only `over-size-limit` is over it.
const SIZE_LIMIT: usize = 1_100_000;
/// What Dovecot refuses to store at all (APPEND answers NO), so no migration from it ever
/// meets it: a 0-byte message. Everything else, NUL bytes included, it stores as sent.
const REFUSED_BY_DOVECOT: [&str; 1] = ["empty"];

#[tokio::test]
async fn broken_messages_arrive_byte_identical_or_are_reported() {
    let pair = Pair::start(&[USER]);
    let mut refused = Vec::new();
    for bad in bad_messages(SIZE_LIMIT) {
        // A fresh session each: a refused APPEND must not leave the next one mid-literal.
        let mut session = connect_login(pair.source.port(), USER.0, USER.1)
            .await
            .unwrap();
        if let Err(e) = append_all(&mut session, "INBOX", std::slice::from_ref(&bad.message)).await
        {
            eprintln!("Dovecot refused {}: {e}", bad.name);
            refused.push(bad.name);
        }
        let _ = session.logout().await;
    }
    assert_eq!(
        refused, REFUSED_BY_DOVECOT,
        "what Dovecot refuses to store changed"
    );

    let csv = pair.write_csv();
    let limit = SIZE_LIMIT.to_string();
    let (code, json, stderr) =
        run(&mut pair.migrate_command(&csv, &["--max-message-size", &limit]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, USER.0);
    assert_eq!(result["status"], "CompletedWithWarnings", "{result}");
    assert_eq!(result["items_skipped"], 1, "{result}");
    let skipped = &result["skipped"][0];
    assert!(
        skipped["reason"].as_str().unwrap().contains("larger than"),
        "{skipped}"
    );
    assert_eq!(skipped["size"], SIZE_LIMIT as u64 + 1, "{skipped}");

    let source = pair.source_snapshot(0).await;
    let mut expected = source.clone();
    for folder in expected.folders.values_mut() {
        folder.messages.retain(|m| m.bytes.len() <= SIZE_LIMIT);
    }
    assert_eq!(
        source.message_count() - expected.message_count(),
        1,
        "exactly the one over the limit is left out"
    );
    assert_same_mail(&expected, &pair.target_snapshot(0).await, str::to_owned);

    // A re-run finds every message already there: nothing copied, nothing duplicated.
    let (code, json, stderr) =
        run(&mut pair.migrate_command(&csv, &["--max-message-size", &limit]));
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(user_result(&json, USER.0)["items_copied"], 0, "{json}");
    assert_same_mail(&expected, &pair.target_snapshot(0).await, str::to_owned);

    // `verify`, which works on a batch, compares the two servers the same way.
    let service = ServiceCli::new(pair.dir.path().join("service"));
    service.create_endpoints(&pair);
    service.create_batch("broken", &csv, &["--max-message-size", &limit]);
    let output = service.cli(&["verify", "broken", "--json"]);
    let verified: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("verify: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(output.status.code(), Some(0), "{verified}");
    let user = &verified["users"][0];
    assert_eq!(user["exact"], true, "{user}");
    assert_eq!(user["over_size_limit"], 1, "{user}");
    assert_eq!(
        user["source_messages"],
        user["target_messages"].as_u64().unwrap() + 1
    );
    assert!(user["missing"].as_array().unwrap().is_empty(), "{user}");
    assert!(user["duplicated"].as_array().unwrap().is_empty(), "{user}");
}
