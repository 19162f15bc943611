//! Everything a worker needs to know about one migration job (a batch): the two endpoints, the
//! folder rules, the limits, and where checkpoints and credentials live.
//!
//! Tasks name a batch and a user; the job supplies the rest, so queue messages stay free of
//! secrets and small.

use std::sync::Arc;
use std::time::Duration;

use mailfleet_shared::checkpoint::{CheckpointKey, CheckpointStore};
use mailfleet_shared::credentials::{CredentialId, CredentialStore};
use mailfleet_shared::endpoint::{Endpoint, OAuth2, TokenProviderKind};
use mailfleet_shared::folder_filter::FolderFilter;
use mailfleet_shared::messages::MailboxUser;
use mailfleet_shared::server_profile::ServerProfile;

use crate::connection_pool::ConnectionPool;
use crate::error::WorkerError;
use crate::imap::sasl::BearerLogin;
use crate::imap::{Credentials, ImapConnection, ImapLimits, connect_as, connect_with_limits};
use crate::oauth2::BearerTokens;
use crate::retry::RetryPolicy;

/// Exchange Online's default maximum message size.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 35 * 1024 * 1024;

pub struct Job {
    /// Batch name; also the scope of checkpoints and credentials.
    pub batch: String,
    pub source: Endpoint,
    pub target: Endpoint,
    pub filter: FolderFilter,
    /// Larger messages are skipped and reported.
    pub max_message_size: u64,
    /// Folders with more messages are copied in parts of this many, one task each.
    pub folder_part_messages: usize,
    /// Only messages received on or after this day are copied (IMAP `SINCE`).
    pub received_after: Option<chrono::NaiveDate>,
    /// Remove copies of messages deleted on the source (see `mirror`).
    pub mirror_deletions: bool,
    /// The target's personality (ARCHITECTURE.md, "Servers differ").
    pub target_profile: ServerProfile,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub tuning: Tuning,
    pub progress: Arc<dyn Progress>,
    /// Connections finished tasks left for the same user's next ones.
    pub connections: ConnectionPool,
    /// OAuth2 token providers and their cached tokens, for endpoints that log in with tokens.
    pub tokens: BearerTokens,
}

/// Knobs with safe defaults; tests shorten the delays.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Timeouts and bounds on what one server may make a task wait for or hold; the literal
    /// limit is the job's message size limit.
    pub imap: ImapLimits,
    pub retry: RetryPolicy,
    /// At most this many messages' bodies are held in memory at once per folder task...
    pub fetch_batch_messages: usize,
    /// ...and at most this many bytes (one message larger than this is fetched alone).
    pub fetch_batch_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            imap: ImapLimits::default(),
            retry: RetryPolicy::default(),
            fetch_batch_messages: 200,
            fetch_batch_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Live progress for a terminal or metrics; the worker calls it, the CLI draws it.
pub trait Progress: Send + Sync {
    /// Discovery found `messages` messages to look at for `user`.
    fn discovered(&self, _user: &str, _messages: u64) {}
    /// `messages` more messages of `user` are done (copied, found present, or skipped).
    fn advanced(&self, _user: &str, _messages: u64) {}
}

/// Progress that goes nowhere (distributed workers, tests).
pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl Job {
    pub fn endpoint(&self, side: Side) -> &Endpoint {
        match side {
            Side::Source => &self.source,
            Side::Target => &self.target,
        }
    }

    /// Where the checkpoint (and the lease) of `user`'s source folder `source_folder` is kept.
    pub fn checkpoint_key(&self, user: &MailboxUser, source_folder: &str) -> CheckpointKey {
        CheckpointKey {
            scope: self.batch.clone(),
            user: user.email.clone(),
            folder: source_folder.to_owned(),
        }
    }

    /// A logged-in connection to `side` for `user`: one an earlier task of the user left (if it
    /// still answers), else a new login (see [`Job::login`]).
    ///
    /// A connection returned a moment ago is used without asking: discovery hands its
    /// connections from one small folder to the next, and a NOOP for each would be two round
    /// trips per folder. Should the server have closed it in that moment, the first command
    /// fails as a lost connection and the folder's attempt is retried.
    pub async fn open(
        &self,
        side: Side,
        user: &MailboxUser,
    ) -> Result<ImapConnection, WorkerError> {
        const JUST_RETURNED: Duration = Duration::from_millis(500);
        if let Some((mut connection, idle)) = self.connections.take(side, &user.email)
            && (idle < JUST_RETURNED || connection.run("NOOP", |s| s.noop()).await.is_ok())
        {
            connection.discard_unsolicited();
            return Ok(connection);
        }
        self.login(side, user).await
    }

    /// Hands a connection a task is done with to the user's next task. Only for connections
    /// whose last exchange succeeded and that have no mailbox selected.
    pub fn release(&self, side: Side, user: &MailboxUser, connection: ImapConnection) {
        self.connections.put(side, &user.email, connection);
    }

    /// Logs in to `side` for `user` (source: UserName; target: EmailAddress): with an OAuth2
    /// token when the endpoint uses OAuth2, with the admin login format when it has admin
    /// credentials, else as the user with the CSV password.
    async fn login(&self, side: Side, user: &MailboxUser) -> Result<ImapConnection, WorkerError> {
        let endpoint = self.endpoint(side);
        let login_name = match side {
            Side::Source => &user.user_name,
            Side::Target => &user.email,
        };
        if let Some(oauth2) = endpoint.oauth2() {
            return self.login_with_token(side, oauth2, login_name).await;
        }
        let credential = match (side, endpoint.uses_admin_password()) {
            (Side::Source, true) => CredentialId::source_admin(&self.batch),
            (Side::Target, true) => CredentialId::target_admin(&self.batch),
            (_, false) => CredentialId::user(&self.batch, &user.email),
        };
        let password = self.credentials.get(&credential).await?.ok_or_else(|| {
            WorkerError::MissingCredentials(format!(
                "no {} stored for {}",
                credential.name, user.email
            ))
        })?;
        let login = endpoint.login_for(login_name);
        connect_with_limits(self.label(side), endpoint, &login, &password, self.limits()).await
    }

    /// Logs in to `side` as `mailbox` with an OAuth2 token. A token the server refuses (revoked,
    /// expired early) is forgotten and a fresh one tried once; a second refusal is final.
    async fn login_with_token(
        &self,
        side: Side,
        oauth2: &OAuth2,
        mailbox: &str,
    ) -> Result<ImapConnection, WorkerError> {
        let secret = async {
            let id = CredentialId::oauth2(&self.batch, side.name());
            Ok(self.credentials.get(&id).await?)
        };
        let provider = self.tokens.provider(side, oauth2, secret).await?;
        let mut refused_once = false;
        loop {
            let token = self.tokens.token(side, provider.as_ref(), mailbox).await?;
            let bearer = BearerLogin {
                user: mailbox,
                token: &token,
                mechanism: oauth2.mechanism,
            };
            let credentials = Credentials::Bearer(bearer);
            let endpoint = self.endpoint(side);
            match connect_as(self.label(side), endpoint, &credentials, self.limits()).await {
                Err(WorkerError::LoginRejected { reason, .. }) if !refused_once => {
                    tracing::info!(mailbox, side = side.name(), %reason, "token refused, fetching a new one");
                    self.tokens
                        .refused(side, provider.as_ref(), mailbox, &token)
                        .await;
                    refused_once = true;
                }
                Err(WorkerError::LoginRejected {
                    login,
                    server,
                    reason,
                }) if matches!(oauth2.provider, TokenProviderKind::Microsoft { .. }) => {
                    // A fresh app-only token was refused for this mailbox only: Exchange says
                    // no more than "AUTHENTICATE failed", so name what an admin checks.
                    return Err(WorkerError::LoginRejected {
                        login,
                        server,
                        reason: format!(
                            "{reason}; a fresh app-only token was refused for this mailbox: \
                             grant the app FullAccess to it (Add-MailboxPermission \
                             -AccessRights FullAccess for the app's service principal) and \
                             check that the app has IMAP.AccessAsApp"
                        ),
                    });
                }
                outcome => return outcome,
            }
        }
    }

    /// Names `side`'s server in errors: `source imap://mail.example.com:993`.
    fn label(&self, side: Side) -> String {
        format!("{} {}", side.name(), self.endpoint(side).url())
    }

    /// What a server may make this job's tasks wait for or hold; a literal is never larger
    /// than the biggest message the job copies.
    fn limits(&self) -> ImapLimits {
        ImapLimits {
            max_literal_bytes: self.max_message_size,
            ..self.tuning.imap
        }
    }
}
