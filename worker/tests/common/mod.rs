//! Shared set-up for the OAuth2 tests: a real Dovecot validating tokens at the testkit's
//! identity-provider stand-in, and jobs whose target logs in with a token provider.

#![allow(dead_code)] // each test file uses a different part

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::endpoint::{
    Authentication, Endpoint, MicrosoftCredential, OAuth2, SaslMechanism, TokenProviderKind,
};
use mailfleet_shared::job_spec::JobSpec;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_stores::crypto::SecretBox;
use mailfleet_stores::sqlite::SqliteStore;
use mailfleet_testkit::identity::IdentityProvider;
use mailfleet_testkit::{DovecotServer, StartOptions, TokenAudience, connect_login};
use mailfleet_worker::error::WorkerError;
use mailfleet_worker::imap::ImapLimits;
use mailfleet_worker::job::Side;
use mailfleet_worker::{Job, NoProgress, Tuning};
use secrecy::SecretString;

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const APP: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "Wq8Q~client-secret-value-never-logged";
pub const SERVICE_ACCOUNT: &str = "mailfleet@project.iam.gserviceaccount.com";

/// Refused logins are answered at once, not after Dovecot's growing anti-brute-force delay
/// (2 s, then up to 15 s per client address): these tests refuse tokens on purpose.
const NO_AUTH_PENALTY: &str = "auth_failure_delay = 0\n\
    service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}";

/// A Dovecot accepting tokens of the stand-in, mailboxes with a folder each only they have.
pub struct Setup {
    pub idp: IdentityProvider,
    pub dovecot: DovecotServer,
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub async fn start(audience: TokenAudience, mailboxes: &[&str]) -> Setup {
        Setup::start_configured(audience, mailboxes, "").await
    }

    /// [`Setup::start`] with Dovecot settings added.
    pub async fn start_configured(
        audience: TokenAudience,
        mailboxes: &[&str],
        settings: &str,
    ) -> Setup {
        let idp = IdentityProvider::start().await.unwrap();
        let users: Vec<(&str, &str)> = mailboxes.iter().map(|m| (*m, "password")).collect();
        let options = StartOptions::users(&users)
            .with_oauth2(&idp.introspection_url(), audience)
            .with_config(NO_AUTH_PENALTY)
            .with_config(settings);
        let dovecot = DovecotServer::start(options).unwrap();
        for mailbox in mailboxes {
            let mut session = connect_login(dovecot.port(), mailbox, "password")
                .await
                .unwrap();
            session.create(own_folder(mailbox)).await.unwrap();
            session.logout().await.unwrap();
        }
        Setup {
            idp,
            dovecot,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A job whose target logs in with `provider`; `secret` is sealed as the provider secret.
    pub async fn job(
        &self,
        provider: TokenProviderKind,
        mechanism: SaslMechanism,
        secret: Option<&str>,
    ) -> Job {
        let token_url = match &provider {
            TokenProviderKind::Microsoft { .. } => Some(self.idp.microsoft_token_url(TENANT)),
            TokenProviderKind::Google => Some(self.idp.google_token_url()),
            TokenProviderKind::TokenFile { .. } => None,
        };
        let mut target = Endpoint::from_url(&self.dovecot.url()).unwrap();
        target.authentication = Authentication::OAuth2(OAuth2 {
            provider,
            mechanism,
            token_url,
            scope: None,
        });
        let state = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        let secrets = SecretBox::from_key_bytes(&[7u8; 32]).unwrap();
        let store = Arc::new(SqliteStore::open(&state, secrets).unwrap());
        let spec = JobSpec {
            batch: "oauth2-test".into(),
            source: Endpoint::from_url(&self.dovecot.url()).unwrap(),
            target,
            include_folders: vec![],
            exclude_folders: vec![],
            max_message_size: 1 << 20,
            folder_part_messages: 100,
            received_after: None,
            mirror_deletions: false,
            target_profile: Default::default(),
        };
        if let Some(secret) = secret {
            let id = CredentialId::oauth2(&spec.batch, "target");
            store.put(&id, &SecretString::from(secret)).await.unwrap();
        }
        let tuning = Tuning {
            imap: ImapLimits::with_timeouts(Duration::from_secs(30)),
            ..Tuning::default()
        };
        Job::from_spec(spec, store.clone(), store, tuning, Arc::new(NoProgress)).unwrap()
    }

    /// A Dovecot for `mailboxes` (of contoso.com) and an Entra ID app with [`CLIENT_SECRET`].
    pub async fn with_app_secret(mailboxes: &[&str]) -> Setup {
        let setup = Setup::start(TokenAudience::Domain, mailboxes).await;
        setup
            .idp
            .register_app_secret(APP, CLIENT_SECRET, "contoso.com");
        setup
    }

    /// A job whose target logs in as the Entra ID app, `secret` sealed as its client secret.
    pub async fn app_job(&self, mechanism: SaslMechanism, secret: &str) -> Job {
        let app = microsoft(MicrosoftCredential::Secret);
        self.job(app, mechanism, Some(secret)).await
    }

    /// The server's answer to CAPABILITY before login.
    pub fn pre_login_capabilities(&self) -> String {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.dovecot.port())).unwrap();
        stream.write_all(b"c1 CAPABILITY\r\n").unwrap();
        let mut lines = BufReader::new(stream).lines().map(Result::unwrap);
        let answer = lines.find(|line| line.starts_with("* CAPABILITY"));
        answer.unwrap_or_default()
    }

    pub fn dovecot_log(&self) -> String {
        std::fs::read_to_string(self.dovecot.base_dir().join("dovecot.log")).unwrap_or_default()
    }

    /// Whether Dovecot's log holds `text`, waiting a little: its log process writes a login's
    /// line after the client already has its answer.
    pub async fn logged(&self, text: &str) -> bool {
        for _ in 0..100 {
            if self.dovecot_log().contains(text) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

pub fn own_folder(mailbox: &str) -> String {
    format!("only-{}", mailbox.split('@').next().unwrap())
}

pub fn user(mailbox: &str) -> MailboxUser {
    MailboxUser {
        email: mailbox.into(),
        user_name: mailbox.into(),
        user_root: None,
    }
}

pub fn microsoft(credential: MicrosoftCredential) -> TokenProviderKind {
    TokenProviderKind::Microsoft {
        tenant: TENANT.into(),
        client_id: APP.into(),
        credential,
    }
}

/// Logs in to the target as `mailbox` and checks that its own folder is there.
pub async fn open_mailbox(job: &Job, mailbox: &str) -> Result<(), WorkerError> {
    let mut connection = job.open(Side::Target, &user(mailbox)).await?;
    let names: Vec<String> = connection
        .run("LIST", |s| async move {
            let list = s.list(Some(""), Some("*")).await?;
            list.map_ok(|name| name.name().to_owned())
                .try_collect()
                .await
        })
        .await?;
    assert!(
        names.contains(&own_folder(mailbox)),
        "{mailbox} sees {names:?}"
    );
    connection.logout().await;
    Ok(())
}
