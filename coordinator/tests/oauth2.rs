//! `mailfleet migrate` into a target that accepts only OAuth2 tokens, as Exchange Online does:
//! a real Dovecot whose oauth2 passdb checks every token with the testkit's identity-provider
//! stand-in (Entra ID's client-credentials grant; one app-only token serves every mailbox of
//! the tenant's domain). The CLI takes the provider's settings as flags and the client secret
//! from the environment; the secret and the tokens appear in no output.

mod common;

use common::service::{SOURCE_ENDPOINT, ServiceCli, TARGET_ENDPOINT, batch_state};
use std::path::Path;
use std::process::Stdio;

use common::{ADMIN, Pair, Running, mailfleet, run, user_result, wait_for_target_inbox};
use mailfleet_testkit::corpus::CorpusSpec;
use mailfleet_testkit::exchange_front::{
    AppOnlyLogins, Condition, ExchangeFront, THROTTLE_BACKOFF_MS,
};
use mailfleet_testkit::identity::{IdentityProvider, TestKey};
use mailfleet_testkit::{
    MailboxSnapshot, StartOptions, TokenAudience, assert_same_mail, connect_login,
};
use serde_json::Value;

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

/// The service's way in: an OAuth2 target endpoint (its secret sealed with it), a batch
/// between it and a password source, `mailfleet run` — the users reach Synced, every message
/// on the target, the secret nowhere in the state dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_into_an_oauth2_endpoint_syncs() {
    let idp = IdentityProvider::start().await.unwrap();
    let pair = oauth2_pair(&idp, &[("dee@contoso.com", "Dee-Pw-4")]).await;
    let csv = pair.write_csv();
    let service = ServiceCli::new(pair.state_dir()).with_env("MAILFLEET_CLIENT_SECRET", SECRET);
    service.ok(&[
        "endpoint",
        "create",
        SOURCE_ENDPOINT,
        "--server",
        &pair.source.url(),
    ]);
    let token_url = idp.microsoft_token_url(TENANT);
    let created = service.ok(&[
        "endpoint",
        "create",
        TARGET_ENDPOINT,
        "--server",
        &pair.target.url(),
        "--oauth2",
        "microsoft",
        "--tenant",
        TENANT,
        "--client-id",
        APP,
        "--token-url",
        &token_url,
    ]);
    assert!(created.contains("OAuth2"), "{created}");
    service.create_batch("m365-wave", &csv, &["--autostart"]);
    let logs = tempfile::tempdir().unwrap();
    let running = service.start(&[], &logs.path().join("service.log"));
    let status = service
        .wait_for("m365-wave", "the initial sync", |s| {
            batch_state(s) == "Synced"
        })
        .await;
    drop(running);
    assert_eq!(status["users"][0]["state"], "Synced", "{status}");
    assert_same_mail(
        &pair.source_snapshot(0).await,
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
    for entry in std::fs::read_dir(pair.state_dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "the client secret in the state dir"
        );
    }
}

/// Source and target Dovecot with passwords (the target also with Dovecot's master user, which
/// the Exchange front logs in as), the source seeded with a few folders.
async fn exchange_pair(users: &[(&str, &str)], messages: usize) -> Pair {
    let target = StartOptions::users(users).with_master(ADMIN.0, ADMIN.1);
    let pair = Pair::from_servers(StartOptions::users(users), target, users);
    pair.seed_all(&CorpusSpec {
        messages,
        folders: ["INBOX", "Sent", "Archive/2023"]
            .map(str::to_owned)
            .to_vec(),
        ..Default::default()
    })
    .await;
    pair
}

/// The Exchange front before `pair`'s target, taking `idp`'s app-only tokens.
async fn exchange_front(
    pair: &Pair,
    idp: &IdentityProvider,
    condition: Condition,
) -> ExchangeFront {
    let logins = AppOnlyLogins {
        tokens: idp.checker(),
        master: (ADMIN.0.to_owned(), ADMIN.1.to_owned()),
    };
    let upstream = ([127, 0, 0, 1], pair.target.port()).into();
    ExchangeFront::start_app_only(upstream, condition, logins)
        .await
        .unwrap()
}

/// How the app proves itself to Entra ID.
enum Credential<'a> {
    /// [`SECRET`], from the environment.
    Secret,
    /// A certificate with its key in this PEM file (`--target-client-certificate`); no secret
    /// in the environment.
    Certificate(&'a Path),
}

/// `mailfleet migrate --target-oauth2 microsoft` into `front` (profile `auto`: m365).
fn migrate_into_exchange(
    pair: &Pair,
    idp: &IdentityProvider,
    front: &ExchangeFront,
) -> (i32, Value, String) {
    migrate_into_exchange_with(pair, idp, front, Credential::Secret)
}

fn migrate_into_exchange_with(
    pair: &Pair,
    idp: &IdentityProvider,
    front: &ExchangeFront,
    credential: Credential,
) -> (i32, Value, String) {
    let mut command = exchange_command_with(pair, idp, front, credential);
    // The front and the identity provider run on this runtime's other thread meanwhile.
    tokio::task::block_in_place(|| run(&mut command))
}

fn exchange_command(
    pair: &Pair,
    idp: &IdentityProvider,
    front: &ExchangeFront,
) -> std::process::Command {
    exchange_command_with(pair, idp, front, Credential::Secret)
}

fn exchange_command_with(
    pair: &Pair,
    idp: &IdentityProvider,
    front: &ExchangeFront,
    credential: Credential,
) -> std::process::Command {
    let csv = pair.write_csv();
    let mut command = mailfleet();
    command
        .args(["migrate", "--json", "--csv"])
        .arg(&csv)
        .args(["--source", &pair.source.url(), "--target", &front.url()])
        .args(oauth2_flags(idp))
        .arg("--state-dir")
        .arg(pair.state_dir());
    match credential {
        Credential::Secret => command.env("MAILFLEET_TARGET_CLIENT_SECRET", SECRET),
        Credential::Certificate(pem) => command
            .arg("--target-client-certificate")
            .arg(pem)
            .env_remove("MAILFLEET_TARGET_CLIENT_SECRET"),
    };
    command
}

/// Messages flagged `\Flagged`, over every folder.
fn flagged(snapshot: &MailboxSnapshot) -> usize {
    snapshot
        .folders
        .values()
        .flat_map(|folder| &folder.messages)
        .filter(|message| message.flags.iter().any(|flag| flag == "\\Flagged"))
        .count()
}

/// The source as Exchange keeps it: without the keywords the m365 profile reports and drops.
fn without_keywords(mut snapshot: MailboxSnapshot) -> MailboxSnapshot {
    for folder in snapshot.folders.values_mut() {
        for message in &mut folder.messages {
            message.flags.retain(|flag| flag.starts_with('\\'));
        }
    }
    snapshot
}

/// Exchange's app-only login end to end: the mailbox the app has FullAccess to migrates exactly
/// (through busy-server `BYE`s), the one it lacks FullAccess to fails alone, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_app_only_logins_migrate_granted_mailboxes_and_name_fullaccess_otherwise() {
    let idp = IdentityProvider::start().await.unwrap();
    idp.register_app_secret(APP, SECRET, "contoso.com");
    let (granted, ungranted) = ("eve@contoso.com", "fay@contoso.com");
    idp.grant_full_access(APP, granted);
    let pair = exchange_pair(&[(granted, "Eve-Pw-5"), (ungranted, "Fay-Pw-6")], 30).await;
    let front = exchange_front(&pair, &idp, Condition::BusyEveryAppends(12)).await;
    // Basic authentication is off, as on Exchange Online.
    assert!(
        connect_login(front.port(), granted, "Eve-Pw-5")
            .await
            .is_err()
    );

    let (code, json, stderr) = migrate_into_exchange(&pair, &idp, &front);
    assert_eq!(code, 1, "{stderr}\n{json}");
    let done = user_result(&json, granted);
    assert!(
        done["status"].as_str().unwrap().starts_with("Completed"),
        "{done}"
    );
    assert_same_mail(
        &without_keywords(pair.source_snapshot(0).await),
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
    let failed = user_result(&json, ungranted);
    assert_eq!(failed["status"], "Failed", "{failed}");
    let errors = failed["errors"].to_string();
    assert!(errors.contains("AUTHENTICATE failed"), "{errors}");
    assert!(errors.contains("FullAccess"), "{errors}");
    assert_eq!(pair.target_snapshot(1).await.message_count(), 0);
    // The busy disconnects happened and were waited out (logged as retries).
    assert!(
        stderr.contains("lost: APPEND: server closed it"),
        "{stderr}"
    );
    assert!(!format!("{json}{stderr}").contains(SECRET));
}

/// The tokens expire after the 15th APPEND: the front ends the sessions
/// (`AccessTokenExpired`) and refuses the cached token at the next login; mailfleet fetches a
/// new token once and each folder resumes from its checkpoint — nothing twice, nothing missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_folder_is_refreshed_once_and_the_folder_resumes() {
    let idp = IdentityProvider::start().await.unwrap();
    idp.register_app_secret(APP, SECRET, "contoso.com");
    let user = ("gus@contoso.com", "Gus-Pw-7");
    idp.grant_full_access(APP, user.0);
    let pair = exchange_pair(&[user], 40).await;
    let front = exchange_front(&pair, &idp, Condition::TokensExpireAfterAppends(15)).await;

    let (code, json, stderr) = migrate_into_exchange(&pair, &idp, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    let result = user_result(&json, user.0);
    assert!(
        result["status"].as_str().unwrap().starts_with("Completed"),
        "{result}"
    );
    assert_same_mail(
        &without_keywords(pair.source_snapshot(0).await),
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
    assert_eq!(idp.token_requests(), 2, "one token, then one refresh");
}

/// Exchange throttling every 11th APPEND (`NO Request is throttled. Suggested Backoff Time: …`,
/// then `BYE`), two mailboxes, the app proving itself with a certificate: mailfleet waits the
/// suggested backoff, reconnects and resumes — every message once, `\Flagged` set after the
/// APPENDs that lost it, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_throttling_is_waited_out_with_a_certificate_login() {
    let idp = IdentityProvider::start().await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = TestKey::generate(keys.path()).unwrap();
    idp.register_app_certificate(APP, &key, "contoso.com");
    let pem = keys.path().join("app.pem");
    std::fs::write(&pem, key.certificate_with_key()).unwrap();
    let users = [
        ("ida@contoso.com", "Ida-Pw-11"),
        ("kit@contoso.com", "Kit-Pw-12"),
    ];
    for (user, _) in users {
        idp.grant_full_access(APP, user);
    }
    let pair = exchange_pair(&users, 40).await;
    let front = exchange_front(&pair, &idp, Condition::ThrottleEveryAppends(11)).await;

    let (code, json, stderr) =
        migrate_into_exchange_with(&pair, &idp, &front, Credential::Certificate(&pem));
    assert_eq!(code, 0, "{stderr}\n{json}");
    let mut source_flagged = 0;
    for (i, (user, _)) in users.iter().enumerate() {
        let result = user_result(&json, user);
        assert!(
            result["status"].as_str().unwrap().starts_with("Completed"),
            "{result}"
        );
        let (source, target) = (pair.source_snapshot(i).await, pair.target_snapshot(i).await);
        assert_eq!(flagged(&target), flagged(&source), "{user}: \\Flagged");
        source_flagged += flagged(&source);
        assert_same_mail(&without_keywords(source), &target, str::to_owned);
    }
    assert!(
        source_flagged > 0,
        "no \\Flagged message: the test proved nothing for it"
    );
    assert!(front.throttle_replies() >= 1, "the front never throttled");
    // Each throttle was logged as a retry after the server's suggested backoff.
    assert!(stderr.contains("is throttling:"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Suggested Backoff Time: {THROTTLE_BACKOFF_MS} milliseconds"
        )),
        "{stderr}"
    );
    assert!(!format!("{json}{stderr}").contains(&key.key_pem));
}

/// `kill -9` while copying into the Exchange front with an app-only token, then a re-run: the
/// target holds every message once (a fresh process, a fresh token, the checkpoints on disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_oauth2_migration_then_rerun_leaves_the_target_exact() {
    let idp = IdentityProvider::start().await.unwrap();
    idp.register_app_secret(APP, SECRET, "contoso.com");
    let user = ("hal@contoso.com", "Hal-Pw-8");
    idp.grant_full_access(APP, user.0);
    let target = StartOptions::users(&[user]).with_master(ADMIN.0, ADMIN.1);
    let pair = Pair::from_servers(StartOptions::users(&[user]), target, &[user]);
    pair.seed_all(&CorpusSpec {
        messages: 150,
        folders: vec!["INBOX".to_owned()],
        ..Default::default()
    })
    .await;
    let front = exchange_front(&pair, &idp, Condition::Healthy).await;

    let mut child = Running::new(
        exchange_command(&pair, &idp, &front)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let running = wait_for_target_inbox(&pair, &mut child, 40).await;
    assert!(
        running,
        "the migration finished before the kill; the test proved nothing"
    );
    child.kill(); // SIGKILL: no chance to checkpoint or clean up

    let (code, json, stderr) = migrate_into_exchange(&pair, &idp, &front);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_same_mail(
        &without_keywords(pair.source_snapshot(0).await),
        &pair.target_snapshot(0).await,
        str::to_owned,
    );
}

const SERVICE_ACCOUNT: &str = "migrator@mailfleet-test.iam.gserviceaccount.com";

/// Google Workspace on both sides: a service account with domain-wide delegation, a JWT-bearer
/// grant per mailbox and side, real Dovecot checking each token by introspection (a token
/// names exactly one mailbox). Source logins use UserName, target logins EmailAddress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_service_accounts_on_both_sides_migrate_every_mailbox() {
    let idp = IdentityProvider::start().await.unwrap();
    let users = [
        ("ivy@example.org", "Ivy-Pw-9"),
        ("jon@example.org", "Jon-Pw-10"),
    ];
    let keys = tempfile::tempdir().unwrap();
    let key = TestKey::generate(keys.path()).unwrap();
    idp.register_service_account(SERVICE_ACCOUNT, &key, &users.map(|(u, _)| u));
    let key_file = keys.path().join("service-account.json");
    std::fs::write(
        &key_file,
        key.service_account_json(SERVICE_ACCOUNT, &idp.google_token_url()),
    )
    .unwrap();
    let google = || {
        StartOptions::users(&users)
            .with_oauth2(&idp.introspection_url(), TokenAudience::Mailbox)
            .with_config("auth_failure_delay = 0")
    };
    let pair = Pair::from_servers(google(), google(), &users);
    pair.seed_all(&CorpusSpec {
        messages: 25,
        folders: ["INBOX", "Sent", "Archive/2023"]
            .map(str::to_owned)
            .to_vec(),
        ..Default::default()
    })
    .await;

    let csv = pair.write_csv();
    let key_file = key_file.to_str().unwrap();
    let flags = [
        "--source-oauth2",
        "google",
        "--source-service-account",
        key_file,
        "--target-oauth2",
        "google",
        "--target-service-account",
        key_file,
    ];
    let mut command = pair.migrate_command(&csv, &flags);
    let (code, json, stderr) = tokio::task::block_in_place(|| run(&mut command));
    assert_eq!(code, 0, "{stderr}\n{json}");
    for (i, (user, _)) in pair.users.iter().enumerate() {
        assert_eq!(user_result(&json, user)["status"], "Completed", "{json}");
        assert_same_mail(
            &pair.source_snapshot(i).await,
            &pair.target_snapshot(i).await,
            str::to_owned,
        );
    }
    assert_eq!(idp.token_requests(), 4, "one token per mailbox and side");
    let shown = format!("{json}{stderr}");
    for token in idp.issued_tokens() {
        assert!(!shown.contains(&token), "a token was shown");
    }
}
