//! Opening an authenticated IMAP session to an endpoint: TCP, TLS or STARTTLS, then LOGIN,
//! SASL PLAIN with an authorization identity (Cyrus admins), or an OAuth2 bearer token
//! ([`super::sasl`]).
//!
//! Failures are classified here, at the boundary, into [`WorkerError`]s whose text names the
//! server and login (never the password).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_imap::types::Capability;
use mailfleet_shared::endpoint::{Endpoint, LoginMethod, Security};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;

use super::sasl::{BearerLogin, authenticate_bearer};
use super::stream::ImapStream;
use crate::error::{WorkerError, from_imap, looks_throttled};

pub type Session = async_imap::Session<ImapStream>;

/// An authenticated session and what we learned about its server.
pub struct ImapConnection {
    pub session: Session,
    /// The endpoint URL, used in every error message about this server.
    pub server: String,
    /// Upper-cased capability names (`UIDPLUS`, `NAMESPACE`, `SPECIAL-USE`, ...).
    pub capabilities: HashSet<String>,
    /// How long one command may take before the connection is considered dead.
    pub command_timeout: Duration,
}

impl ImapConnection {
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.contains(&name.to_ascii_uppercase())
    }

    /// Runs one IMAP exchange under the command timeout, classifying its errors.
    pub async fn run<'a, T, F>(
        &'a mut self,
        context: &str,
        exchange: impl FnOnce(&'a mut Session) -> F,
    ) -> Result<T, WorkerError>
    where
        F: Future<Output = async_imap::error::Result<T>> + 'a,
    {
        let server = self.server.clone();
        let timeout = self.command_timeout;
        match tokio::time::timeout(timeout, exchange(&mut self.session)).await {
            Ok(result) => result.map_err(|e| from_imap(&server, context, e)),
            Err(_) => Err(WorkerError::Timeout {
                server,
                operation: context.to_owned(),
                seconds: timeout.as_secs(),
            }),
        }
    }

    /// Confirms that a multi-line answer just read was whole. async-imap ends a FETCH, SEARCH or
    /// LIST stream quietly when the connection drops mid-answer, which would look like "fewer
    /// messages"; the stream under the session knows whether the server closed it, and then
    /// the caller gets an error and retries. (A NOOP used to ask the server instead: one round
    /// trip per answer, three per folder.)
    pub fn confirm_complete(&mut self, context: &str) -> Result<(), WorkerError> {
        if self.session.get_ref().closed_by_server() {
            return Err(WorkerError::ConnectionLost {
                server: self.server.clone(),
                reason: format!("the server closed the connection during {context}"),
            });
        }
        self.discard_unsolicited();
        Ok(())
    }

    /// Drops untagged responses nobody asked for (EXISTS after APPEND and the like), so the
    /// bounded channel async-imap fills never holds stale data.
    pub fn discard_unsolicited(&mut self) {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
    }

    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// Connects and logs in. `password` is the admin password when `login` is an admin login.
/// `label` names the server in errors, e.g. `source imap://mail.example.com:993`.
pub async fn connect(
    label: String,
    endpoint: &Endpoint,
    login: &LoginMethod,
    password: &SecretString,
    command_timeout: Duration,
) -> Result<ImapConnection, WorkerError> {
    let credentials = Credentials::Password { login, password };
    connect_as(label, endpoint, &credentials, command_timeout).await
}

/// What proves who we are: a password (with the login it belongs to) or a bearer token.
pub enum Credentials<'a> {
    Password {
        login: &'a LoginMethod,
        password: &'a SecretString,
    },
    Bearer(BearerLogin<'a>),
}

/// Connects and logs in with `credentials`; see [`connect`].
pub async fn connect_as(
    label: String,
    endpoint: &Endpoint,
    credentials: &Credentials<'_>,
    command_timeout: Duration,
) -> Result<ImapConnection, WorkerError> {
    let server = label;
    let timed = |what: &'static str| {
        let server = server.clone();
        move |_| WorkerError::Timeout {
            server,
            operation: what.into(),
            seconds: command_timeout.as_secs(),
        }
    };
    let stream = tokio::time::timeout(command_timeout, open_stream(&server, endpoint))
        .await
        .map_err(timed("connect"))??;
    let login = async {
        match credentials {
            Credentials::Password { login, password } => {
                authenticate(stream, &server, login, password).await
            }
            Credentials::Bearer(bearer) => authenticate_bearer(stream, &server, bearer).await,
        }
    };
    let session = tokio::time::timeout(command_timeout, login)
        .await
        .map_err(timed("login"))??;
    let mut connection = ImapConnection {
        session,
        server,
        capabilities: HashSet::new(),
        command_timeout,
    };
    let capabilities = connection.run("CAPABILITY", |s| s.capabilities()).await?;
    connection.capabilities = capabilities
        .iter()
        .map(|c| match c {
            Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
            Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
            Capability::Atom(a) => a.to_ascii_uppercase(),
        })
        .collect();
    Ok(connection)
}

/// TCP (+ TLS) up to and including the server greeting, and STARTTLS when asked for.
async fn open_stream(
    server: &str,
    endpoint: &Endpoint,
) -> Result<async_imap::Client<ImapStream>, WorkerError> {
    let io_error = |stage: &str, e: std::io::Error| WorkerError::Connect {
        server: server.to_owned(),
        reason: format!("{stage}: {e}"),
        // Refused/unreachable may be a restart in progress; TLS failures are configuration.
        transient: stage == "tcp",
    };
    let host = endpoint.host.trim_matches(['[', ']']);
    let tcp = TcpStream::connect((host, endpoint.port))
        .await
        .map_err(|e| io_error("tcp", e))?;
    let _ = tcp.set_nodelay(true);
    let stream = match endpoint.security {
        Security::Ssl => ImapStream::tls(tcp, host, endpoint.accept_untrusted_certs)
            .await
            .map_err(|e| io_error("tls", e))?,
        Security::None | Security::StartTls => ImapStream::plain(tcp),
    };
    let mut client = async_imap::Client::new(stream);
    read_greeting(&mut client, server).await?;
    if endpoint.security != Security::StartTls {
        return Ok(client);
    }
    client
        .run_command_and_check_ok("STARTTLS", None)
        .await
        .map_err(|e| from_imap(server, "STARTTLS", e))?;
    let Some(tcp) = client.into_inner().into_plain() else {
        unreachable!("STARTTLS is only sent on plain streams")
    };
    let tls = ImapStream::tls(tcp, host, endpoint.accept_untrusted_certs)
        .await
        .map_err(|e| io_error("tls", e))?;
    // RFC 3501 §6.2.1: no greeting follows the TLS handshake.
    Ok(async_imap::Client::new(tls))
}

async fn read_greeting(
    client: &mut async_imap::Client<ImapStream>,
    server: &str,
) -> Result<(), WorkerError> {
    use async_imap::imap_proto::{Response, Status};
    let lost = |reason: String| WorkerError::ConnectionLost {
        server: server.to_owned(),
        reason,
    };
    let greeting = client
        .read_response()
        .await
        .map_err(|e| lost(format!("reading greeting: {e}")))?
        .ok_or_else(|| lost("closed before greeting".into()))?;
    if let Response::Data {
        status: Status::Bye,
        outcome,
    } = greeting.parsed()
    {
        let reason = outcome.information.as_deref().unwrap_or("BYE").to_owned();
        return Err(WorkerError::Throttled {
            server: server.to_owned(),
            reason,
        });
    }
    Ok(())
}

async fn authenticate(
    client: async_imap::Client<ImapStream>,
    server: &str,
    login: &LoginMethod,
    password: &SecretString,
) -> Result<Session, WorkerError> {
    let result = match login {
        LoginMethod::Login { user } => client.login(user, password.expose_secret()).await,
        LoginMethod::SaslPlain { authzid, authcid } => {
            let plain = SaslPlain {
                authzid,
                authcid,
                password,
            };
            client.authenticate("PLAIN", plain).await
        }
    };
    result.map_err(|(error, _client)| login_error(server, &login.display_user(), error))
}

/// A refused login (`login` as shown in errors), or a throttled or failed connection.
pub(super) fn login_error(
    server: &str,
    login: &str,
    error: async_imap::error::Error,
) -> WorkerError {
    use async_imap::error::Error as E;
    let server = server.to_owned();
    match error {
        E::No(reason) | E::Bad(reason) if looks_throttled(&reason) => {
            WorkerError::Throttled { server, reason }
        }
        E::No(reason) | E::Bad(reason) => WorkerError::LoginRejected {
            login: login.to_owned(),
            server,
            reason,
        },
        other => from_imap(&server, "login", other),
    }
}

/// RFC 4616 PLAIN: `authzid NUL authcid NUL password`, sent as the answer to the first challenge.
struct SaslPlain<'a> {
    authzid: &'a str,
    authcid: &'a str,
    password: &'a SecretString,
}

impl async_imap::Authenticator for SaslPlain<'_> {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        let mut response = Vec::new();
        response.extend_from_slice(self.authzid.as_bytes());
        response.push(0);
        response.extend_from_slice(self.authcid.as_bytes());
        response.push(0);
        response.extend_from_slice(self.password.expose_secret().as_bytes());
        response
    }
}

/// Connects (TCP, TLS, greeting, STARTTLS) without logging in: does the endpoint answer?
pub async fn probe(label: &str, endpoint: &Endpoint, timeout: Duration) -> Result<(), WorkerError> {
    match tokio::time::timeout(timeout, open_stream(label, endpoint)).await {
        Ok(result) => result.map(drop),
        Err(_) => Err(WorkerError::Timeout {
            server: label.to_owned(),
            operation: "connect".into(),
            seconds: timeout.as_secs(),
        }),
    }
}
