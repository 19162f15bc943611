//! Batch notifications: when the initial sync is done, when users fail, when the batch is
//! completed — mailed to the batch's `--notify` addresses (setting `smtp_url`) and POSTed as
//! JSON to `notify_webhook`. A notification that cannot be delivered is logged; it never stops
//! the migration.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mailfleet_shared::lifecycle::{BatchRecord, UserRecord, UserState};
use serde::Serialize;

use crate::error::CliError;
use crate::settings::Settings;

/// What happened to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    InitialSyncFinished,
    UsersFailed,
    BatchCompleted,
}

/// The JSON a webhook receives; the mail says the same in words.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub event: EventKind,
    pub batch: &'a str,
    pub state: String,
    pub users: usize,
    pub items_synced: u64,
    pub failed_users: Vec<FailedUser<'a>>,
}

#[derive(Debug, Serialize)]
pub struct FailedUser<'a> {
    pub email: &'a str,
    pub errors: &'a [String],
}

impl<'a> Event<'a> {
    pub fn new(event: EventKind, batch: &'a BatchRecord, users: &'a [UserRecord]) -> Self {
        Event {
            event,
            batch: &batch.name,
            state: batch.state.to_string(),
            users: users.len(),
            items_synced: users.iter().map(|u| u.items_synced).sum(),
            failed_users: users
                .iter()
                .filter(|u| matches!(u.state, UserState::Failed | UserState::IncrementalFailed))
                .map(|u| FailedUser {
                    email: &u.email,
                    errors: &u.errors,
                })
                .collect(),
        }
    }

    fn subject(&self) -> String {
        let what = match self.event {
            EventKind::InitialSyncFinished => "initial sync finished",
            EventKind::UsersFailed => "users failed",
            EventKind::BatchCompleted => "completed",
        };
        format!(
            "mailfleet: batch {} {what} ({}, {} users, {} failed)",
            self.batch,
            self.state,
            self.users,
            self.failed_users.len()
        )
    }

    fn body(&self) -> String {
        let mut text = format!(
            "Batch {}: {}\nUsers: {}\nItems synced: {}\n",
            self.batch, self.state, self.users, self.items_synced
        );
        if !self.failed_users.is_empty() {
            text.push_str("\nFailed users:\n");
            for user in &self.failed_users {
                text.push_str(&format!("- {}: {}\n", user.email, user.errors.join("; ")));
            }
        }
        text.push_str("\nDetails: mailfleet report users ");
        text.push_str(self.batch);
        text.push('\n');
        text
    }
}

pub struct Notifier {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
    webhook: Option<String>,
    http: reqwest::Client,
}

impl Notifier {
    /// From the settings `smtp_url`, `notify_from` and `notify_webhook`; checked now, so a bad
    /// value stops the service at start rather than losing notifications later.
    pub fn from_settings(settings: &Settings) -> Result<Self, CliError> {
        let smtp = match &settings.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| CliError::Invalid(format!("smtp_url: {e}")))?
                    .build();
                let from = settings
                    .notify_from
                    .as_deref()
                    .unwrap_or("mailfleet@localhost");
                let from = from
                    .parse()
                    .map_err(|e| CliError::Invalid(format!("notify_from {from:?}: {e}")))?;
                Some((transport, from))
            }
            None => None,
        };
        if let Some(url) = &settings.notify_webhook {
            url::Url::parse(url).map_err(|e| CliError::Invalid(format!("notify_webhook: {e}")))?;
        }
        Ok(Notifier {
            smtp,
            webhook: settings.notify_webhook.clone(),
            http: reqwest::Client::new(),
        })
    }

    pub async fn send(&self, batch: &BatchRecord, event: &Event<'_>) {
        if let Some((transport, from)) = &self.smtp {
            for recipient in &batch.notify {
                if let Err(error) = mail(transport, from, recipient, event).await {
                    tracing::warn!(batch = %batch.name, %recipient, %error, "notification mail not sent");
                }
            }
        }
        if let Some(url) = &self.webhook {
            let sent = self.http.post(url).json(event).send().await;
            match sent.and_then(reqwest::Response::error_for_status) {
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(batch = %batch.name, %error, "notification webhook failed");
                }
            }
        }
    }
}

async fn mail(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    recipient: &str,
    event: &Event<'_>,
) -> Result<(), String> {
    let to: Mailbox = recipient.parse().map_err(|e| format!("{e}"))?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(event.subject())
        .body(event.body())
        .map_err(|e| e.to_string())?;
    transport.send(message).await.map_err(|e| e.to_string())?;
    Ok(())
}
