//! Client secrets, private keys and tokens never reach a log line, at any level (`--log trace`
//! included), nor `Debug` output, along every OAuth2 path: app-only and per-mailbox tokens,
//! XOAUTH2 and OAUTHBEARER, a refused secret, a revoked token replaced.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{CLIENT_SECRET, SERVICE_ACCOUNT, Setup, open_mailbox};
use mailfleet_shared::endpoint::{SaslMechanism, TokenProviderKind};
use mailfleet_testkit::identity::TestKey;
use tracing_subscriber::util::SubscriberInitExt;

/// Everything written to the log, as the CLI's subscriber would print it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn no_secret_reaches_a_trace_level_log_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Like the CLI's `.init()`: also routes the `log` crate's records (async-imap's) here.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .unwrap();
    log::debug!("records of the log crate reach the capture");
    assert!(log::STATIC_MAX_LEVEL <= log::LevelFilter::Debug);

    let mailboxes = ["kim@contoso.com", "lou@contoso.com"];
    let setup = Setup::with_app_secret(&mailboxes).await;
    let job = setup.app_job(SaslMechanism::Auto, CLIENT_SECRET).await;
    open_mailbox(&job, "kim@contoso.com").await.unwrap();
    setup.idp.revoke_all();
    open_mailbox(&job, "kim@contoso.com").await.unwrap();
    let bearer = setup
        .app_job(SaslMechanism::OAuthBearer, CLIENT_SECRET)
        .await;
    open_mailbox(&bearer, "lou@contoso.com").await.unwrap();
    let wrong_secret = "wrong-secret-also-never-logged";
    let refused = setup.app_job(SaslMechanism::Auto, wrong_secret).await;
    let error = open_mailbox(&refused, "kim@contoso.com").await.unwrap_err();

    let key = TestKey::generate(setup.dir.path()).unwrap();
    setup
        .idp
        .register_service_account(SERVICE_ACCOUNT, &key, &mailboxes[..1]);
    let key_file = key.service_account_json(SERVICE_ACCOUNT, &setup.idp.google_token_url());
    let google = setup
        .job(
            TokenProviderKind::Google,
            SaslMechanism::Auto,
            Some(&key_file),
        )
        .await;
    open_mailbox(&google, "kim@contoso.com").await.unwrap();

    let logs = captured.text();
    assert!(
        logs.contains("records of the log crate reach the capture"),
        "{logs}"
    );
    assert!(logs.contains("token refused, fetching a new one"), "{logs}");
    let key_line = key.key_pem.lines().nth(1).unwrap().to_owned();
    let mut secrets = vec![CLIENT_SECRET.to_owned(), wrong_secret.to_owned(), key_line];
    for token in setup.idp.issued_tokens() {
        for mailbox in mailboxes {
            secrets.push(BASE64.encode(format!("user={mailbox}\x01auth=Bearer {token}\x01\x01")));
            secrets.push(BASE64.encode(format!("n,a={mailbox},\x01auth=Bearer {token}\x01\x01")));
        }
        secrets.push(token);
    }
    assert!(secrets.len() > 10, "tokens were issued");
    let debug = format!("{error:?} {:?} {:?}", job.target, google.target);
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the log");
        assert!(
            !debug.contains(secret.as_str()),
            "a secret reached Debug output: {debug}"
        );
    }
    assert!(!error.to_string().contains(wrong_secret));
}
