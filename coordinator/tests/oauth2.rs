//! `mailfleet migrate` into a target that accepts only OAuth2 tokens, as Exchange Online does:
//! a real Dovecot whose oauth2 passdb checks every token with the testkit's identity-provider
//! stand-in (Entra ID's client-credentials grant; one app-only token serves every mailbox of
//! the tenant's domain). The CLI takes the provider's settings as flags and the client secret
//! from the environment; the secret and the tokens appear in no output.

mod common;

use common::{Pair, mailfleet, run, user_result};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::identity::IdentityProvider;
use mailfleet_testkit::{StartOptions, TokenAudience, assert_same_mail};

const TENANT: &str = "contoso.onmicrosoft.com";
const APP: &str = "0c6e1f55-7f0a-4b43-9d0f-1a2b3c4d5e6f";
const SECRET: &str = "Xq9~oauth2-client-secret-for-tests";

/// Source Dovecot with passwords; target Dovecot taking tokens of `idp` for contoso.com.
async fn oauth2_pair(idp: &IdentityProvider, users: &[(&str, &str)]) -> Pair {
    idp.register_app_secret(APP, SECRET, "contoso.com");
    let target = StartOptions::users(users)
        .with_oauth2(&idp.introspection_url(), TokenAudience::Domain)
        .with_config("auth_failure_delay = 0");
    let pair = Pair::from_servers(StartOptions::users(users), target, users);
    pair.seed_all(&CorpusSpec {
        messages: 60,
        ..Default::default()
    })
    .await;
    pair
}

fn oauth2_flags(idp: &IdentityProvider) -> Vec<String> {
    [
        "--target-oauth2",
        "microsoft",
        "--target-tenant",
        TENANT,
        "--target-client-id",
        APP,
        "--target-token-url",
        &idp.microsoft_token_url(TENANT),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_into_an_oauth2_target_with_a_client_secret() {
    let idp = IdentityProvider::start().await.unwrap();
    let pair = oauth2_pair(
        &idp,
        &[
            ("ann@contoso.com", "Ann-Pw-1"),
            ("ben@contoso.com", "Ben-Pw-2"),
        ],
    )
    .await;
    let csv = pair.write_csv();
    let flags = oauth2_flags(&idp);
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    flags.extend(["--log", "trace"]);

    let mut command = pair.migrate_command(&csv, &flags);
    let (code, json, stderr) = run(command.env("MAILFLEET_TARGET_CLIENT_SECRET", SECRET));
    assert_eq!(code, 0, "{stderr}\n{json}");
    for (i, (user, _)) in pair.users.iter().enumerate() {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    assert_eq!(
        idp.token_requests(),
        1,
        "one app-only token for both mailboxes"
    );
    let shown = format!("{json}{stderr}");
    assert!(!shown.contains(SECRET), "the client secret was shown");
    for token in idp.issued_tokens() {
        assert!(!shown.contains(&token), "a token was shown");
    }

    // A wrong secret: each user fails at once with the provider's own words.
    let mut command = pair.migrate_command(&csv, &flags);
    command.env("MAILFLEET_TARGET_CLIENT_SECRET", "not-the-secret");
    let (code, json, stderr) = run(&mut command);
    assert_eq!(code, 1, "{stderr}\n{json}");
    let failed = user_result(&json, "ann@contoso.com");
    assert_eq!(failed["status"], "Failed", "{json}");
    assert!(
        failed["errors"].to_string().contains("AADSTS7000215"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_flags_are_checked_before_anything_starts_and_endpoint_test_shows_each_step() {
    let idp = IdentityProvider::start().await.unwrap();
    let pair = oauth2_pair(&idp, &[("cid@contoso.com", "Cid-Pw-3")]).await;
    let csv = pair.write_csv();

    // No client secret and no certificate: invalid input, nothing started.
    let flags = oauth2_flags(&idp);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, _, stderr) = run(pair
        .migrate_command(&csv, &flags)
        .env_remove("MAILFLEET_TARGET_CLIENT_SECRET"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("MAILFLEET_TARGET_CLIENT_SECRET"),
        "{stderr}"
    );

    // endpoint test: the token, then the login, each a line.
    let source_flags: Vec<String> = flags
        .iter()
        .map(|f| f.replace("--target-", "--source-"))
        .collect();
    let output = mailfleet()
        .args([
            "endpoint",
            "test",
            "--source",
            &pair.target.url(),
            "--user",
            "cid@contoso.com",
        ])
        .args(&source_flags)
        .env("MAILFLEET_SOURCE_CLIENT_SECRET", SECRET)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("ok   token from"), "{said}");
    assert!(
        said.contains("ok   OAuth2 login for cid@contoso.com"),
        "{said}"
    );
    assert!(!said.contains(SECRET));
}
