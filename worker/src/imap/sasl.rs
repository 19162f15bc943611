//! Logging in with an OAuth2 bearer token: `AUTHENTICATE XOAUTH2` (what Exchange Online and
//! Gmail document) or `AUTHENTICATE OAUTHBEARER` (RFC 7628).
//!
//! The mechanism follows the server's pre-login capabilities: XOAUTH2 unless the server offers
//! only OAUTHBEARER, or whichever the endpoint forces. With SASL-IR (RFC 4959) the token goes
//! in the command line itself, one round trip; without it, as the answer to the server's first
//! empty challenge. When the server refuses a token it sends an error challenge (a JSON status)
//! and waits: XOAUTH2 clients answer with an empty line, OAUTHBEARER clients with `%x01`
//! (RFC 7628 §3.2.3); then the tagged NO follows.
//!
//! The token is in a [`SecretString`] until the moment it is encoded for the wire. async-imap
//! writes every command line, base64 SASL answers included, to its `trace` log; that level is
//! compiled out of the `log` crate for the whole build (see the worker's Cargo.toml).

use std::collections::HashSet;

use async_imap::imap_proto::{Capability, Response, Status};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mailfleet_shared::endpoint::SaslMechanism;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncWriteExt;

use super::connect::{Session, login_error};
use super::stream::ImapStream;
use crate::error::{WorkerError, from_imap};

/// Who logs in (the mailbox, `user=`) and the token that proves it.
pub struct BearerLogin<'a> {
    pub user: &'a str,
    pub token: &'a SecretString,
    pub mechanism: SaslMechanism,
}

/// The two mechanisms that carry a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BearerMechanism {
    Xoauth2,
    OAuthBearer,
}

impl BearerMechanism {
    /// `auto`: XOAUTH2 unless the server advertises OAUTHBEARER and not XOAUTH2.
    fn choose(setting: SaslMechanism, capabilities: &HashSet<String>) -> Self {
        let offers = |name: &str| capabilities.contains(&format!("AUTH={name}"));
        match setting {
            SaslMechanism::Xoauth2 => BearerMechanism::Xoauth2,
            SaslMechanism::OAuthBearer => BearerMechanism::OAuthBearer,
            SaslMechanism::Auto if offers("OAUTHBEARER") && !offers("XOAUTH2") => {
                BearerMechanism::OAuthBearer
            }
            SaslMechanism::Auto => BearerMechanism::Xoauth2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BearerMechanism::Xoauth2 => "XOAUTH2",
            BearerMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The client's first (and only) message.
    fn initial_response(self, user: &str, token: &SecretString) -> SecretString {
        let token = token.expose_secret();
        let message = match self {
            BearerMechanism::Xoauth2 => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
            // GS2 header "n,a=user," (no channel binding, authorization identity), RFC 7628 §3.1.
            BearerMechanism::OAuthBearer => {
                format!("n,a={},\x01auth=Bearer {token}\x01\x01", gs2_escape(user))
            }
        };
        SecretString::from(message)
    }

    /// What a client answers to the server's error challenge, so that the NO follows.
    fn error_acknowledgement(self) -> &'static [u8] {
        match self {
            BearerMechanism::Xoauth2 => b"",
            BearerMechanism::OAuthBearer => b"\x01",
        }
    }
}

/// RFC 5801 §4: `,` and `=` in a GS2 authorization identity are written `=2C` and `=3D`.
fn gs2_escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Logs in with `login`'s token. A refused token is [`WorkerError::LoginRejected`], with the
/// server's error challenge in the reason.
pub(super) async fn authenticate_bearer(
    mut client: async_imap::Client<ImapStream>,
    server: &str,
    login: &BearerLogin<'_>,
) -> Result<Session, WorkerError> {
    let capabilities = pre_login_capabilities(&mut client, server).await?;
    let mechanism = BearerMechanism::choose(login.mechanism, &capabilities);
    let payload = mechanism.initial_response(login.user, login.token);
    let mut exchange = BearerExchange {
        mechanism,
        payload: None,
        error_challenge: None,
    };
    let command = if capabilities.contains("SASL-IR") {
        SecretString::from(format!(
            "{} {}",
            mechanism.name(),
            BASE64.encode(payload.expose_secret())
        ))
    } else {
        exchange.payload = Some(payload);
        SecretString::from(mechanism.name())
    };
    let result = client
        .authenticate(command.expose_secret(), &mut exchange)
        .await;
    result.map_err(|(error, _client)| {
        let shown = format!("{} via {}", login.user, mechanism.name());
        match (login_error(server, &shown, error), exchange.error_challenge) {
            (
                WorkerError::LoginRejected {
                    login,
                    server,
                    reason,
                },
                Some(challenge),
            ) => WorkerError::LoginRejected {
                login,
                server,
                reason: format!("{reason} (server's error challenge: {challenge})"),
            },
            (other, _) => other,
        }
    })
}

/// Answers the server's challenges: the payload to the first when it was not sent with the
/// command (no SASL-IR), the error acknowledgement to any later one.
struct BearerExchange {
    mechanism: BearerMechanism,
    payload: Option<SecretString>,
    /// The server's error challenge (a JSON status such as `{"status":"invalid_token"}`).
    error_challenge: Option<String>,
}

impl async_imap::Authenticator for &mut BearerExchange {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        if let Some(payload) = self.payload.take() {
            return payload.expose_secret().as_bytes().to_vec();
        }
        self.error_challenge = Some(String::from_utf8_lossy(challenge).into_owned());
        self.mechanism.error_acknowledgement().to_vec()
    }
}

/// The server's capabilities before login (AUTH=… and SASL-IR), upper-cased. Asked for with a
/// CAPABILITY command: Exchange Online's greeting carries none, and after STARTTLS there is no
/// greeting at all.
async fn pre_login_capabilities(
    client: &mut async_imap::Client<ImapStream>,
    server: &str,
) -> Result<HashSet<String>, WorkerError> {
    const TAG: &str = "cap0";
    let lost = |e: std::io::Error| from_imap(server, "CAPABILITY", e.into());
    let stream = client.get_mut();
    stream
        .write_all(format!("{TAG} CAPABILITY\r\n").as_bytes())
        .await
        .map_err(lost)?;
    stream.flush().await.map_err(lost)?;
    let mut capabilities = HashSet::new();
    loop {
        let response = client.read_response().await.map_err(lost)?.ok_or_else(|| {
            from_imap(
                server,
                "CAPABILITY",
                async_imap::error::Error::ConnectionLost,
            )
        })?;
        match response.parsed() {
            Response::Capabilities(list) => {
                capabilities.extend(list.iter().map(|c| match c {
                    Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                    Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                    Capability::Atom(a) => a.to_ascii_uppercase(),
                }));
            }
            Response::Done {
                tag,
                status,
                outcome,
            } if tag.0 == TAG => {
                if *status != Status::Ok {
                    let reason = outcome.information.as_deref().unwrap_or("").to_owned();
                    return Err(from_imap(
                        server,
                        "CAPABILITY",
                        async_imap::error::Error::No(reason),
                    ));
                }
                return Ok(capabilities);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capabilities(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn xoauth2_unless_the_server_offers_only_oauthbearer_or_a_setting_forces_it() {
        let both = capabilities(&["AUTH=XOAUTH2", "AUTH=OAUTHBEARER"]);
        let bearer_only = capabilities(&["AUTH=OAUTHBEARER", "AUTH=PLAIN"]);
        let choose = BearerMechanism::choose;
        assert_eq!(choose(SaslMechanism::Auto, &both), BearerMechanism::Xoauth2);
        assert_eq!(
            choose(SaslMechanism::Auto, &bearer_only),
            BearerMechanism::OAuthBearer
        );
        assert_eq!(
            choose(SaslMechanism::Auto, &capabilities(&[])),
            BearerMechanism::Xoauth2
        );
        assert_eq!(
            choose(SaslMechanism::OAuthBearer, &both),
            BearerMechanism::OAuthBearer
        );
        assert_eq!(
            choose(SaslMechanism::Xoauth2, &bearer_only),
            BearerMechanism::Xoauth2
        );
    }

    #[test]
    fn initial_responses_follow_google_and_rfc_7628() {
        let token = SecretString::from("ya29.token");
        let xoauth2 = BearerMechanism::Xoauth2.initial_response("a@example.com", &token);
        assert_eq!(
            xoauth2.expose_secret(),
            "user=a@example.com\x01auth=Bearer ya29.token\x01\x01"
        );
        let bearer = BearerMechanism::OAuthBearer.initial_response("a,b=c@example.com", &token);
        assert_eq!(
            bearer.expose_secret(),
            "n,a=a=2Cb=3Dc@example.com,\x01auth=Bearer ya29.token\x01\x01"
        );
    }

    #[test]
    fn without_sasl_ir_the_payload_answers_the_first_challenge_then_errors_are_acknowledged() {
        use async_imap::Authenticator as _;
        let mut exchange = BearerExchange {
            mechanism: BearerMechanism::OAuthBearer,
            payload: Some(SecretString::from("payload")),
            error_challenge: None,
        };
        let mut answer = |challenge: &[u8]| (&mut exchange).process(challenge);
        assert_eq!(answer(b""), b"payload");
        assert_eq!(answer(br#"{"status":"invalid_token"}"#), b"\x01");
        assert_eq!(
            exchange.error_challenge.as_deref(),
            Some(r#"{"status":"invalid_token"}"#)
        );
    }
}
