//! TLS to the source: certificates are verified unless the endpoint says otherwise, and both
//! implicit TLS (imaps) and STARTTLS carry a migration.

mod common;

use common::{ADMIN, Pair, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::{StartOptions, assert_same_mail};

fn tls_pair(user: (&str, &str)) -> Pair {
    let options = StartOptions::users(&[user]).with_master(ADMIN.0, ADMIN.1);
    Pair::from_servers(options.clone().with_tls(), options, &[user])
}

/// `migrate` with the source replaced by `source_url`.
fn migrate_from(pair: &Pair, source_url: &str) -> (i32, serde_json::Value, String) {
    run(&mut pair.migrate_command_from(source_url, &pair.write_csv(), &[]))
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_the_endpoint_accepts_it() {
    let pair = tls_pair(("tls@example.com", "tls-pw"));
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let imaps = format!("imaps://127.0.0.1:{}", pair.source.tls_port().unwrap());

    let (code, json, stderr) = migrate_from(&pair, &imaps);
    assert_eq!(code, 1, "{stderr}\n{json}");
    let error = user_result(&json, "tls@example.com")["errors"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("tls") && error.to_lowercase().contains("certificate"),
        "{error}"
    );

    let (code, json, stderr) = migrate_from(&pair, &format!("{imaps}?accept_untrusted_certs=true"));
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}

#[tokio::test]
async fn starttls_carries_a_migration() {
    let pair = tls_pair(("starttls@example.com", "st-pw"));
    pair.seed_all(&CorpusSpec {
        messages: 20,
        ..Default::default()
    })
    .await;
    let url = format!(
        "imap+starttls://127.0.0.1:{}?accept_untrusted_certs=true",
        pair.source.port()
    );
    let (code, json, stderr) = migrate_from(&pair, &url);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}
