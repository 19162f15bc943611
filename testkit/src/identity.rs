//! A stand-in for Microsoft Entra ID's and Google's OAuth2 token endpoints on loopback, with an
//! RFC 7662 introspection endpoint through which a real Dovecot (`passdb { driver = oauth2 }`,
//! see [`crate::StartOptions::with_oauth2`]) validates the tokens it issued.
//!
//! No real identity provider can be reached from a test, so this one reproduces what mailfleet
//! depends on:
//! - **Microsoft client-credentials grant** at `/{tenant}/oauth2/v2.0/token`: `client_id`,
//!   `scope` (must end in `/.default`, as Entra ID requires for this grant),
//!   `grant_type=client_credentials`, and either `client_secret` or a client assertion
//!   (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`): an RS256
//!   JWT whose `x5t` header is the SHA-1 thumbprint of the registered certificate, signature
//!   verified with its key, `aud` the token URL, `iss` = `sub` = the client id, `exp` in the
//!   future. Errors are shaped like Entra ID's: `error`, `error_description` starting with the
//!   AADSTS code and followed by `\r\nTrace ID: …` lines, `error_codes`; a wrong secret is
//!   HTTP 401 `invalid_client` / `AADSTS7000215: Invalid client secret provided. …`, an unknown
//!   app 400 `unauthorized_client` / `AADSTS700016`, a bad assertion 401 `invalid_client` /
//!   `AADSTS7000274` or `AADSTS700027`, a scope without `/.default` 400 `invalid_scope` /
//!   `AADSTS1002012`. One app-only token serves every mailbox of the app's domain.
//! - **Google's JWT-bearer grant** (RFC 7523) at `/token`: `assertion` signed RS256 with the
//!   service account's key, `iss` the account's `client_email`, `aud` the token URL, `exp` in
//!   the future and at most an hour after `iat`, `scope` containing `https://mail.google.com/`,
//!   `sub` the mailbox; the token is good for that mailbox only. Errors as Google words them:
//!   400 `invalid_grant` / `Invalid email or User ID` for a mailbox the account may not act as,
//!   `Invalid JWT Signature.`, `Invalid JWT: Token must be a short-lived token …`.
//! - Tokens expire after [`IdentityProvider::set_token_lifetime`] (`expires_in` says so), and
//!   [`IdentityProvider::revoke_all`] revokes every token issued so far, like an admin
//!   revoking sessions. [`IdentityProvider::set_unavailable`] makes both token endpoints
//!   answer HTTP 503 `temporarily_unavailable` / `AADSTS90033`, as Entra ID does in an outage.
//!
//! What it does not reproduce: tokens are opaque random strings (Entra ID's are JWTs; clients
//! must treat both as opaque), no throttling of the token endpoint, no tenant discovery or
//! national-cloud hosts, no consent model; mailbox permissions are "the app's domain" for
//! introspection, a FullAccess grant list for [`TokenChecker`] (testkit's Exchange front), and
//! "the mailboxes a service account may act as"; no `x5t#S256`/PS256. Introspection answers an
//! inactive token with `"active": false` *and* the token's username (empty for an unknown
//! token), because Dovecot 2.3 reports a response without its username attribute as a
//! temporary failure rather than a refused login.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use rand::Rng as _;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

/// An RSA key pair and a self-signed certificate for it, made with the openssl command.
#[derive(Clone)]
pub struct TestKey {
    /// PKCS#8 `PRIVATE KEY` PEM.
    pub key_pem: String,
    pub certificate_pem: String,
}

impl TestKey {
    /// A fresh 2048-bit key and certificate (files under `dir`).
    pub fn generate(dir: &Path) -> std::io::Result<Self> {
        let (key, cert) = (dir.join("oauth2-key.pem"), dir.join("oauth2-cert.pem"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=mailfleet-test-app"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other("openssl could not make a test key"));
        }
        Ok(TestKey {
            key_pem: std::fs::read_to_string(key)?,
            certificate_pem: std::fs::read_to_string(cert)?,
        })
    }

    /// The certificate followed by its key: what an admin exports for a certificate credential.
    pub fn certificate_with_key(&self) -> String {
        format!("{}{}", self.certificate_pem, self.key_pem)
    }

    /// A Google service-account JSON key file for `client_email` with this key.
    pub fn service_account_json(&self, client_email: &str, token_uri: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "mailfleet-test",
            "private_key_id": "test-key-1",
            "private_key": self.key_pem,
            "client_email": client_email,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        })
        .to_string()
    }

    fn public_key(&self) -> Vec<u8> {
        let der = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("test key PEM");
        let PrivateKeyDer::Pkcs8(der) = der else {
            panic!("openssl writes PKCS#8 keys")
        };
        let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("an RSA key");
        use ring::signature::KeyPair as _;
        pair.public_key().as_ref().to_vec()
    }

    fn thumbprint(&self) -> String {
        let der = CertificateDer::from_pem_slice(self.certificate_pem.as_bytes()).expect("cert");
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
        BASE64URL.encode(digest.as_ref())
    }
}

/// The identity provider; stops when dropped.
pub struct IdentityProvider {
    address: SocketAddr,
    state: Arc<Mutex<Registry>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Default)]
struct Registry {
    /// Client id → the app.
    apps: HashMap<String, App>,
    /// `client_email` → the service account.
    service_accounts: HashMap<String, ServiceAccount>,
    tokens: HashMap<String, Issued>,
    lifetime: Option<Duration>,
    unavailable: bool,
    token_requests: usize,
    /// The address, for the `aud` claims.
    base_url: String,
    /// (client id, mailbox): Exchange's `Add-MailboxPermission -AccessRights FullAccess` for
    /// the app's service principal; only [`TokenChecker::app_may_open`] looks at it.
    full_access: HashSet<(String, String)>,
}

struct App {
    secret: Option<String>,
    /// (x5t thumbprint, RSAPublicKey DER)
    certificate: Option<(String, Vec<u8>)>,
    /// App-only tokens serve every mailbox of this domain.
    domain: String,
}

struct ServiceAccount {
    public_key: Vec<u8>,
    mailboxes: HashSet<String>,
}

struct Issued {
    /// What introspection reports as `username`.
    username: String,
    /// The Entra ID app an app-only token was issued to.
    client_id: Option<String>,
    expires: Instant,
    revoked: bool,
}

impl IdentityProvider {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(Registry {
            base_url: format!("http://{address}"),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(microsoft_token))
            .route("/token", post(google_token))
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(IdentityProvider {
            address,
            state,
            server,
        })
    }

    pub fn microsoft_token_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.address)
    }

    pub fn google_token_url(&self) -> String {
        format!("http://{}/token", self.address)
    }

    /// RFC 7662: POST `token=…`, answers `active` and `username`.
    pub fn introspection_url(&self) -> String {
        format!("http://{}/introspect", self.address)
    }

    /// An Entra ID app with a client secret; its tokens serve the mailboxes of `domain`.
    pub fn register_app_secret(&self, client_id: &str, secret: &str, domain: &str) {
        self.registry().apps.insert(
            client_id.to_owned(),
            App {
                secret: Some(secret.to_owned()),
                certificate: None,
                domain: domain.to_owned(),
            },
        );
    }

    /// An Entra ID app with a certificate credential.
    pub fn register_app_certificate(&self, client_id: &str, key: &TestKey, domain: &str) {
        self.registry().apps.insert(
            client_id.to_owned(),
            App {
                secret: None,
                certificate: Some((key.thumbprint(), key.public_key())),
                domain: domain.to_owned(),
            },
        );
    }

    /// A Google service account allowed (domain-wide delegation) to act as `mailboxes`.
    pub fn register_service_account(&self, client_email: &str, key: &TestKey, mailboxes: &[&str]) {
        self.registry().service_accounts.insert(
            client_email.to_owned(),
            ServiceAccount {
                public_key: key.public_key(),
                mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
            },
        );
    }

    /// `expires_in` of tokens issued from now on (default: an hour, as both providers do).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.registry().lifetime = Some(lifetime);
    }

    /// While `true`, token requests are answered 503 (an outage).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.registry().unavailable = unavailable;
    }

    /// Revokes every token issued so far.
    pub fn revoke_all(&self) {
        for issued in self.registry().tokens.values_mut() {
            issued.revoked = true;
        }
    }

    /// Exchange's FullAccess for app `client_id` on `mailbox` (see [`TokenChecker`]).
    pub fn grant_full_access(&self, client_id: &str, mailbox: &str) {
        let grant = (client_id.to_owned(), mailbox.to_owned());
        self.registry().full_access.insert(grant);
    }

    /// What a resource server in the same process (testkit's Exchange front) asks about tokens.
    pub fn checker(&self) -> TokenChecker {
        TokenChecker {
            state: self.state.clone(),
        }
    }

    /// Issues a token for `username` directly, as another tool would have fetched it.
    pub fn issue_token(&self, username: &str) -> String {
        issue(&mut self.registry(), username, None)["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every token issued so far (to check that none reached a log).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.registry().tokens.keys().cloned().collect()
    }

    /// Token requests answered so far, granted or refused.
    pub fn token_requests(&self) -> usize {
        self.registry().token_requests
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The provider's view of its tokens for a resource server running in the test's process: what
/// Exchange Online asks Entra ID (is the token live, may its app open this mailbox) without
/// introspection over HTTP.
#[derive(Clone)]
pub struct TokenChecker {
    state: Arc<Mutex<Registry>>,
}

impl TokenChecker {
    /// Whether `token` is issued, unexpired and unrevoked.
    pub fn is_live(&self, token: &str) -> bool {
        let registry = self.registry();
        registry
            .tokens
            .get(token)
            .is_some_and(|t| !t.revoked && Instant::now() < t.expires)
    }

    /// Whether `token` is a live app-only token whose app was granted FullAccess to `mailbox`
    /// ([`IdentityProvider::grant_full_access`]).
    pub fn app_may_open(&self, token: &str, mailbox: &str) -> bool {
        let registry = self.registry();
        let app = match registry.tokens.get(token) {
            Some(issued) if !issued.revoked && Instant::now() < issued.expires => {
                issued.client_id.clone()
            }
            _ => None,
        };
        app.is_some_and(|app| registry.full_access.contains(&(app, mailbox.to_owned())))
    }

    /// Every token issued so far expires now (as their lifetime running out would).
    pub fn expire_all(&self) {
        let now = Instant::now();
        for issued in self.registry().tokens.values_mut() {
            issued.expires = issued.expires.min(now);
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Shared = State<Arc<Mutex<Registry>>>;

fn issue(registry: &mut Registry, username: &str, client_id: Option<&str>) -> Value {
    let lifetime = registry.lifetime.unwrap_or(Duration::from_secs(3600));
    let token: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    registry.tokens.insert(
        token.clone(),
        Issued {
            username: username.to_owned(),
            client_id: client_id.map(str::to_owned),
            expires: Instant::now() + lifetime,
            revoked: false,
        },
    );
    json!({
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": token,
    })
}

/// An Entra ID error: the AADSTS text, then the trace lines Entra ID appends.
fn entra_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let description = format!(
        "AADSTS{code}: {text}\r\nTrace ID: 00000000-0000-0000-0000-000000000000\r\n\
         Correlation ID: 00000000-0000-0000-0000-000000000000\r\nTimestamp: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ")
    );
    let body = json!({
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

/// Counts a token request; the outage answer while the provider is unavailable.
fn counted_request(registry: &mut Registry) -> Option<Response> {
    registry.token_requests += 1;
    registry.unavailable.then(|| {
        let text = "A transient error has occurred. Please try again.";
        let status = StatusCode::SERVICE_UNAVAILABLE;
        entra_error(status, "temporarily_unavailable", 90033, text)
    })
}

fn google_error(error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn microsoft_token(
    State(state): Shared,
    UrlPath(tenant): UrlPath<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut registry = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(outage) = counted_request(&mut registry) {
        return outage;
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        let text = "The request body must contain the following parameter: 'grant_type'.";
        return entra_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, text);
    }
    if !field("scope").ends_with("/.default") {
        let text = format!(
            "The provided value for scope {} is not valid. Client credential flows must have \
             a scope value with /.default suffixed to the resource identifier \
             (application ID URI).",
            field("scope")
        );
        return entra_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, &text);
    }
    let client_id = field("client_id");
    let Some(app) = registry.apps.get(client_id) else {
        let text = format!(
            "Application with identifier '{client_id}' was not found in the directory \
             '{tenant}'."
        );
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &text,
        );
    };
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", registry.base_url);
    let proven = if let Some(secret) = form.get("client_secret") {
        if app.secret.as_deref() != Some(secret.as_str()) {
            let text = format!(
                "Invalid client secret provided. Ensure the secret being sent in the request \
                 is the client secret value, not the client secret ID, for a secret added to \
                 app '{client_id}'."
            );
            return entra_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, &text);
        }
        true
    } else {
        let assertion = field("client_assertion");
        let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        match (
            &app.certificate,
            field("client_assertion_type") == jwt_bearer,
        ) {
            (Some((thumbprint, public_key)), true) => {
                match verify_jwt(assertion, public_key, Some(thumbprint)) {
                    Err(JwtRefusal::UnknownKey) => {
                        let text = "Client assertion failed signature validation.";
                        return entra_error(
                            StatusCode::UNAUTHORIZED,
                            "invalid_client",
                            700027,
                            text,
                        );
                    }
                    Err(JwtRefusal::Signature) => {
                        let text =
                            "Key was found, but use of the key to verify the signature failed.";
                        return entra_error(
                            StatusCode::UNAUTHORIZED,
                            "invalid_client",
                            7000274,
                            text,
                        );
                    }
                    Ok(claims) => {
                        claims["aud"] == token_url.as_str()
                            && claims["iss"] == client_id
                            && claims["sub"] == client_id
                            && claims["jti"].is_string()
                            && claims["exp"]
                                .as_u64()
                                .is_some_and(|exp| exp > now_seconds())
                    }
                }
            }
            _ => false,
        }
    };
    if !proven {
        let text = "The client assertion is not valid (audience, issuer, subject or expiry).";
        return entra_error(StatusCode::UNAUTHORIZED, "invalid_client", 700023, text);
    }
    let username = format!("{client_id}@{}", app.domain);
    Json(issue(&mut registry, &username, Some(client_id))).into_response()
}

async fn google_token(State(state): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut registry = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(outage) = counted_request(&mut registry) {
        return outage;
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return google_error("unsupported_grant_type", "Invalid grant_type: ");
    }
    let assertion = field("assertion");
    let Some(issuer) = jwt_claims_unverified(assertion)
        .and_then(|claims| claims["iss"].as_str().map(str::to_owned))
    else {
        return google_error("invalid_request", "Invalid JWT.");
    };
    let Some(account) = registry.service_accounts.get(&issuer) else {
        return google_error("invalid_grant", "Invalid grant: account not found");
    };
    let Ok(claims) = verify_jwt(assertion, &account.public_key, None) else {
        return google_error("invalid_grant", "Invalid JWT Signature.");
    };
    let token_url = format!("{}/token", registry.base_url);
    let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
    let now = now_seconds();
    if !matches!((iat, exp), (Some(iat), Some(exp)) if exp > now && exp - iat <= 3600) {
        return google_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
             timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    if claims["aud"] != token_url.as_str() {
        return google_error("invalid_grant", "Invalid JWT: Failed audience check.");
    }
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == "https://mail.google.com/") {
        return google_error(
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not \
             authorized for any of the scopes requested.",
        );
    }
    let subject = claims["sub"].as_str().unwrap_or_default().to_owned();
    if !account.mailboxes.contains(&subject) {
        return google_error("invalid_grant", "Invalid email or User ID");
    }
    Json(issue(&mut registry, &subject, None)).into_response()
}

async fn introspect(State(state): Shared, Form(form): Form<HashMap<String, String>>) -> Response {
    let registry = state.lock().unwrap_or_else(|e| e.into_inner());
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let body = match registry.tokens.get(token) {
        Some(issued) if !issued.revoked && Instant::now() < issued.expires => {
            json!({ "active": true, "username": issued.username })
        }
        Some(issued) => json!({ "active": false, "username": issued.username }),
        None => json!({ "active": false, "username": "" }),
    };
    Json(body).into_response()
}

enum JwtRefusal {
    /// The `x5t` names no registered certificate.
    UnknownKey,
    Signature,
}

/// Checks an RS256 JWT's signature (and `x5t`, when a thumbprint is registered); its claims.
fn verify_jwt(jwt: &str, public_key: &[u8], thumbprint: Option<&str>) -> Result<Value, JwtRefusal> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(JwtRefusal::Signature);
    };
    let header = decode_json(header).ok_or(JwtRefusal::Signature)?;
    if header["alg"] != "RS256" {
        return Err(JwtRefusal::Signature);
    }
    if let Some(thumbprint) = thumbprint
        && header["x5t"] != thumbprint
    {
        return Err(JwtRefusal::UnknownKey);
    }
    let signature = BASE64URL
        .decode(signature)
        .map_err(|_| JwtRefusal::Signature)?;
    let signed = &jwt[..jwt.rfind('.').unwrap_or(0)];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| JwtRefusal::Signature)?;
    decode_json(claims).ok_or(JwtRefusal::Signature)
}

fn jwt_claims_unverified(jwt: &str) -> Option<Value> {
    decode_json(jwt.split('.').nth(1)?)
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&BASE64URL.decode(part).ok()?).ok()
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
