//! Opening an authenticated IMAP session to an endpoint: TCP, TLS or STARTTLS, then LOGIN,
//! SASL PLAIN with an authorization identity (Cyrus admins), or an OAuth2 bearer token
//! ([`super::sasl`]).
//!
//! Failures are classified here, at the boundary, into [`WorkerError`]s whose text names the
//! server and login (never the password). Every exchange runs under the [`ImapLimits`] the
//! stream enforces (see [`super::guard`]): no wait is endless.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_imap::types::Capability;
use mailfleet_shared::endpoint::{Endpoint, LoginMethod, Security};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;

use super::guard::ImapLimits;
use super::sasl::{BearerLogin, authenticate_bearer};
use super::stream::ImapStream;
use crate::error::{WorkerError, from_imap, from_io, server_condition};

pub type Session = async_imap::Session<ImapStream>;

/// An authenticated session and what we learned about its server.
pub struct ImapConnection {
    pub session: Session,
    /// The endpoint URL, used in every error message about this server.
    pub server: String,
    /// Upper-cased capability names (`UIDPLUS`, `NAMESPACE`, `SPECIAL-USE`, ...).
    pub capabilities: HashSet<String>,
    /// What this server may make us wait for or hold.
    pub limits: ImapLimits,
}

impl ImapConnection {
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.contains(&name.to_ascii_uppercase())
    }

    /// Runs one IMAP exchange, classifying its errors; `context` names the command in them.
    /// The stream's guard ends an exchange the server stalls or floods.
    pub async fn run<'a, T, F>(
        &'a mut self,
        context: &str,
        exchange: impl FnOnce(&'a mut Session) -> F,
    ) -> Result<T, WorkerError>
    where
        F: Future<Output = async_imap::error::Result<T>> + 'a,
    {
        let server = self.server.clone();
        exchange(&mut self.session)
            .await
            .map_err(|e| from_imap(&server, context, e))
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

    /// The error for an answer that held more than `max` of `what` (see [`super::responses`]).
    pub fn answered_too_many(&self, context: &str, max: usize, what: &str) -> WorkerError {
        WorkerError::Misbehaved {
            server: self.server.clone(),
            context: context.to_owned(),
            reason: format!("more than {max} {what}"),
        }
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

/// Connects and logs in with the default limits and every timeout `timeout` (connection checks).
pub async fn connect(
    label: String,
    endpoint: &Endpoint,
    login: &LoginMethod,
    password: &SecretString,
    timeout: Duration,
) -> Result<ImapConnection, WorkerError> {
    let limits = ImapLimits::with_timeouts(timeout);
    connect_with_limits(label, endpoint, login, password, limits).await
}

/// Connects and logs in. `password` is the admin password when `login` is an admin login.
/// `label` names the server in errors, e.g. `source imap://mail.example.com:993`.
pub async fn connect_with_limits(
    label: String,
    endpoint: &Endpoint,
    login: &LoginMethod,
    password: &SecretString,
    limits: ImapLimits,
) -> Result<ImapConnection, WorkerError> {
    let credentials = Credentials::Password { login, password };
    connect_as(label, endpoint, &credentials, limits).await
}

/// What proves who we are: a password (with the login it belongs to) or a bearer token.
pub enum Credentials<'a> {
    Password {
        login: &'a LoginMethod,
        password: &'a SecretString,
    },
    Bearer(BearerLogin<'a>),
}

/// Connects and logs in with `credentials` under `limits`; see [`connect_with_limits`].
pub async fn connect_as(
    label: String,
    endpoint: &Endpoint,
    credentials: &Credentials<'_>,
    limits: ImapLimits,
) -> Result<ImapConnection, WorkerError> {
    let server = label;
    let stream = tokio::time::timeout(
        limits.connect_timeout,
        open_stream(&server, endpoint, limits),
    )
    .await
    .map_err(|_| connect_timed_out(&server, limits.connect_timeout))??;
    // The login's exchange is bounded by the stream's guard (idle and answer timeouts).
    let session = match credentials {
        Credentials::Password { login, password } => {
            authenticate(stream, &server, login, password).await?
        }
        Credentials::Bearer(bearer) => authenticate_bearer(stream, &server, bearer).await?,
    };
    let mut connection = ImapConnection {
        session,
        server,
        capabilities: HashSet::new(),
        limits,
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

fn connect_timed_out(server: &str, timeout: Duration) -> WorkerError {
    WorkerError::Timeout {
        server: server.to_owned(),
        operation: "connect".into(),
        reason: format!("no connection and greeting within {} s", timeout.as_secs()),
    }
}

/// TCP (+ TLS) up to and including the server greeting, and STARTTLS when asked for.
async fn open_stream(
    server: &str,
    endpoint: &Endpoint,
    limits: ImapLimits,
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
        Security::Ssl => ImapStream::tls(tcp, host, endpoint.accept_untrusted_certs, limits)
            .await
            .map_err(|e| io_error("tls", e))?,
        Security::None | Security::StartTls => ImapStream::plain(tcp, limits),
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
    let tls = ImapStream::tls(tcp, host, endpoint.accept_untrusted_certs, limits)
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
    let greeting = client
        .read_response()
        .await
        .map_err(|e| from_io(server, "greeting", e))?
        .ok_or_else(|| WorkerError::ConnectionLost {
            server: server.to_owned(),
            reason: "closed before greeting".into(),
        })?;
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
        E::No(reason) | E::Bad(reason)
            if let Some(condition) = server_condition(&server, "login", &reason) =>
        {
            condition
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
    let limits = ImapLimits::with_timeouts(timeout);
    match tokio::time::timeout(timeout, open_stream(label, endpoint, limits)).await {
        Ok(result) => result.map(drop),
        Err(_) => Err(connect_timed_out(label, timeout)),
    }
}
