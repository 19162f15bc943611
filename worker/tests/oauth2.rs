//! OAuth2 logins against a real Dovecot that validates tokens at the testkit's identity-provider
//! stand-in (Entra ID's client-credentials grant, Google's JWT-bearer grant, a token file).
//!
//! Each test logs in through [`Job::open`], as a folder task does, and proves which mailbox it
//! reached by listing a folder only that mailbox has (made beforehand with its password).

mod common;

use std::time::Duration;

use common::{APP, CLIENT_SECRET, SERVICE_ACCOUNT, Setup, TENANT, microsoft, open_mailbox};
use mailfleet_shared::endpoint::{MicrosoftCredential, SaslMechanism, TokenProviderKind};
use mailfleet_testkit::TokenAudience;
use mailfleet_testkit::identity::TestKey;
use mailfleet_worker::error::WorkerError;

#[tokio::test]
async fn microsoft_client_secret_one_app_token_for_every_mailbox_xoauth2_and_oauthbearer() {
    let mailboxes = ["alice@contoso.com", "bob@contoso.com"];
    let setup = Setup::with_app_secret(&mailboxes).await;

    let job = setup.app_job(SaslMechanism::Auto, CLIENT_SECRET).await;
    for mailbox in mailboxes {
        open_mailbox(&job, mailbox).await.unwrap();
    }
    assert_eq!(
        setup.idp.token_requests(),
        1,
        "one app-only token serves both mailboxes"
    );
    assert!(
        setup.logged("method=XOAUTH2").await,
        "{}",
        setup.dovecot_log()
    );

    let forced = setup
        .app_job(SaslMechanism::OAuthBearer, CLIENT_SECRET)
        .await;
    open_mailbox(&forced, "alice@contoso.com").await.unwrap();
    assert!(
        setup.logged("method=OAUTHBEARER").await,
        "{}",
        setup.dovecot_log()
    );
}

#[tokio::test]
async fn without_sasl_ir_the_token_answers_the_first_challenge() {
    // Dovecot's pre-login capabilities without SASL-IR (the login mechanisms are still added).
    let settings = "imap_capability = IMAP4rev1 LITERAL+ ID ENABLE IDLE";
    let mailboxes = ["mallory@example.org"];
    let setup = Setup::start_configured(TokenAudience::Mailbox, &mailboxes, settings).await;
    let capabilities = setup.pre_login_capabilities();
    assert!(
        !capabilities.contains("SASL-IR") && capabilities.contains("AUTH=XOAUTH2"),
        "{capabilities}"
    );
    let path = setup.dir.path().join("token");
    std::fs::write(&path, setup.idp.issue_token("mallory@example.org")).unwrap();
    for mechanism in [SaslMechanism::Xoauth2, SaslMechanism::OAuthBearer] {
        let file = TokenProviderKind::TokenFile { path: path.clone() };
        let job = setup.job(file, mechanism, None).await;
        open_mailbox(&job, "mallory@example.org").await.unwrap();
    }
}

#[tokio::test]
async fn auto_takes_oauthbearer_when_the_server_offers_only_that() {
    let settings = "auth_mechanisms = plain login oauthbearer";
    let mailboxes = ["niaj@example.org"];
    let setup = Setup::start_configured(TokenAudience::Mailbox, &mailboxes, settings).await;
    assert!(!setup.pre_login_capabilities().contains("AUTH=XOAUTH2"));
    let path = setup.dir.path().join("token");
    std::fs::write(&path, setup.idp.issue_token("niaj@example.org")).unwrap();
    let file = TokenProviderKind::TokenFile { path };
    let job = setup.job(file, SaslMechanism::Auto, None).await;
    open_mailbox(&job, "niaj@example.org").await.unwrap();
    assert!(
        setup.logged("method=OAUTHBEARER").await,
        "{}",
        setup.dovecot_log()
    );
}

#[tokio::test]
async fn microsoft_certificate_client_assertion() {
    let setup = Setup::start(TokenAudience::Domain, &["carol@contoso.com"]).await;
    let key = TestKey::generate(setup.dir.path()).unwrap();
    setup.idp.register_app_certificate(APP, &key, "contoso.com");

    let pem = key.certificate_with_key();
    let job = setup
        .job(
            microsoft(MicrosoftCredential::Certificate),
            SaslMechanism::Auto,
            Some(&pem),
        )
        .await;
    open_mailbox(&job, "carol@contoso.com").await.unwrap();

    // A certificate Entra ID does not know for the app: refused with its AADSTS code.
    let elsewhere = tempfile::tempdir_in(setup.dir.path()).unwrap();
    let other = TestKey::generate(elsewhere.path()).unwrap();
    let job = setup
        .job(
            microsoft(MicrosoftCredential::Certificate),
            SaslMechanism::Auto,
            Some(&other.certificate_with_key()),
        )
        .await;
    let error = open_mailbox(&job, "carol@contoso.com").await.unwrap_err();
    assert!(error.to_string().contains("AADSTS700027"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn google_service_account_gets_a_token_per_mailbox_and_only_for_delegated_ones() {
    let mailboxes = ["dave@example.org", "erin@example.org"];
    let setup = Setup::start(
        TokenAudience::Mailbox,
        &["dave@example.org", "erin@example.org", "frank@example.org"],
    )
    .await;
    let key = TestKey::generate(setup.dir.path()).unwrap();
    setup
        .idp
        .register_service_account(SERVICE_ACCOUNT, &key, &mailboxes);
    let key_file = key.service_account_json(SERVICE_ACCOUNT, &setup.idp.google_token_url());

    let job = setup
        .job(
            TokenProviderKind::Google,
            SaslMechanism::Auto,
            Some(&key_file),
        )
        .await;
    for mailbox in mailboxes {
        open_mailbox(&job, mailbox).await.unwrap();
        open_mailbox(&job, mailbox).await.unwrap();
    }
    assert_eq!(
        setup.idp.token_requests(),
        2,
        "one token per mailbox, reused"
    );

    let error = open_mailbox(&job, "frank@example.org").await.unwrap_err();
    assert!(
        matches!(error, WorkerError::TokenRefused { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("frank@example.org")
            && text.contains("invalid_grant: Invalid email or User ID"),
        "{text}"
    );
}

#[tokio::test]
async fn token_file_is_read_at_each_login() {
    let setup = Setup::start(TokenAudience::Mailbox, &["grace@example.org"]).await;
    let path = setup.dir.path().join("token");
    std::fs::write(&path, setup.idp.issue_token("grace@example.org") + "\n").unwrap();
    let job = setup
        .job(
            TokenProviderKind::TokenFile { path: path.clone() },
            SaslMechanism::Auto,
            None,
        )
        .await;
    open_mailbox(&job, "grace@example.org").await.unwrap();

    // Another tool renews the file after a revocation: the next login reads the new token.
    setup.idp.revoke_all();
    std::fs::write(&path, setup.idp.issue_token("grace@example.org")).unwrap();
    open_mailbox(&job, "grace@example.org").await.unwrap();
}

#[tokio::test]
async fn a_wrong_client_secret_fails_at_once_with_entra_ids_words() {
    let setup = Setup::with_app_secret(&["heidi@contoso.com"]).await;
    let job = setup
        .app_job(SaslMechanism::Auto, "the-secret-id-not-its-value")
        .await;

    let error = open_mailbox(&job, "heidi@contoso.com").await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, WorkerError::TokenRefused { .. }),
        "{error:?}"
    );
    assert!(
        !error.is_transient(),
        "an identity provider's refusal is not retried"
    );
    assert!(
        text.contains("invalid_client: AADSTS7000215: Invalid client secret provided."),
        "{text}"
    );
    assert!(text.contains(TENANT) && text.contains(APP), "{text}");
    assert!(
        !text.contains("the-secret-id-not-its-value")
            && !format!("{error:?}").contains("the-secret-id")
    );
    // The next user of the batch fails with the same words without asking again.
    let again = open_mailbox(&job, "heidi@contoso.com").await.unwrap_err();
    assert_eq!(again.to_string(), text);
    assert_eq!(setup.idp.token_requests(), 1);
    assert!(
        !setup.dovecot_log().contains("method=XOAUTH2"),
        "no IMAP login was tried"
    );
}

#[tokio::test]
async fn an_identity_provider_outage_is_transient_and_not_remembered() {
    let setup = Setup::with_app_secret(&["peggy@contoso.com"]).await;
    let job = setup.app_job(SaslMechanism::Auto, CLIENT_SECRET).await;
    setup.idp.set_unavailable(true);
    let error = open_mailbox(&job, "peggy@contoso.com").await.unwrap_err();
    assert!(
        matches!(error, WorkerError::TokenUnavailable { .. }),
        "{error:?}"
    );
    assert!(
        error.is_transient(),
        "retried with backoff like a throttling server"
    );
    assert!(error.to_string().contains("AADSTS90033"), "{error}");

    setup.idp.set_unavailable(false);
    open_mailbox(&job, "peggy@contoso.com").await.unwrap();
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_then_the_login_fails() {
    let setup = Setup::with_app_secret(&["ivan@contoso.com"]).await;
    let job = setup.app_job(SaslMechanism::Auto, CLIENT_SECRET).await;
    open_mailbox(&job, "ivan@contoso.com").await.unwrap();

    setup.idp.revoke_all();
    open_mailbox(&job, "ivan@contoso.com").await.unwrap();
    assert_eq!(
        setup.idp.token_requests(),
        2,
        "the refused token was replaced once"
    );

    // A token file that keeps a revoked token: refused, read again, refused again: final.
    let path = setup.dir.path().join("stale-token");
    std::fs::write(&path, setup.idp.issue_token("ivan@contoso.com")).unwrap();
    setup.idp.revoke_all();
    let stale = setup
        .job(
            TokenProviderKind::TokenFile { path },
            SaslMechanism::OAuthBearer,
            None,
        )
        .await;
    let error = open_mailbox(&stale, "ivan@contoso.com").await.unwrap_err();
    assert!(
        matches!(error, WorkerError::LoginRejected { .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert!(
        error
            .to_string()
            .contains("ivan@contoso.com via OAUTHBEARER"),
        "{error}"
    );
    // Dovecot's RFC 7628 error challenge was answered (%x01) and is quoted in the error.
    assert!(
        error.to_string().contains(r#"{"status":"invalid_token"}"#),
        "{error}"
    );
}

#[tokio::test]
async fn mailboxes_the_app_may_not_open_fail_without_a_token_fetch_each() {
    // The app's tokens serve contoso.com; Dovecot refuses them for fabrikam.com, as Exchange
    // refuses a mailbox the app has no permission on: the same NO as for a revoked token.
    let mailboxes = [
        "olga@contoso.com",
        "oscar@fabrikam.com",
        "otto@fabrikam.com",
    ];
    let setup = Setup::with_app_secret(&mailboxes).await;
    let job = setup.app_job(SaslMechanism::Auto, CLIENT_SECRET).await;
    open_mailbox(&job, "olga@contoso.com").await.unwrap();
    for mailbox in ["oscar@fabrikam.com", "otto@fabrikam.com"] {
        let error = open_mailbox(&job, mailbox).await.unwrap_err();
        assert!(
            matches!(error, WorkerError::LoginRejected { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(mailbox), "{error}");
    }
    assert_eq!(
        setup.idp.token_requests(),
        2,
        "one replacement, then no more"
    );
    open_mailbox(&job, "olga@contoso.com").await.unwrap();
}

#[tokio::test]
async fn an_expiring_token_is_renewed_before_it_expires() {
    let setup = Setup::with_app_secret(&["judy@contoso.com"]).await;
    setup.idp.set_token_lifetime(Duration::from_secs(2));
    let job = setup.app_job(SaslMechanism::Auto, CLIENT_SECRET).await;
    open_mailbox(&job, "judy@contoso.com").await.unwrap();
    // Past the token's lifetime: the cache renews it rather than offering an expired one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    open_mailbox(&job, "judy@contoso.com").await.unwrap();
    assert_eq!(setup.idp.token_requests(), 2);
    assert!(
        !setup.dovecot_log().contains("auth failed"),
        "{}",
        setup.dovecot_log()
    );
}
