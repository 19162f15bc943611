//! The HTTP side of `--api`: the service's address, the token from the environment, TLS, and
//! each answer turned into what the command prints or the error it exits with.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::{Host, Url};

use super::problem;
use crate::api::auth::TENANT_HEADER;
use crate::cli::RemoteArgs;
use crate::error::CliError;
use crate::input;

/// Where `--api` reads the token: never a flag, which would show in `ps`.
pub const TOKEN_VARIABLE: &str = "MAILFLEET_API_TOKEN";

/// Long enough for a slow network; a call itself (verify reads whole mailboxes) has no bound.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A `mailfleet serve` reached through its API, as one token in one tenant. No `Debug`: it
/// holds the token.
pub struct ApiClient {
    /// The service's root (`https://host:8443/`); routes are under `api/v1/`.
    base: Url,
    token: SecretString,
    /// `--as-tenant`, sent as `Mailfleet-Tenant` (what a provider token acts in).
    tenant: Option<String>,
    http: reqwest::Client,
}

impl ApiClient {
    /// The client `--api` asks for, or `None` without it: the commands then run here.
    pub fn from_args(args: &RemoteArgs, tenant: Option<&str>) -> Result<Option<Self>, CliError> {
        let Some(base) = &args.api else {
            return Ok(None);
        };
        if !matches!(base.scheme(), "https" | "http") {
            return Err(CliError::Invalid(format!(
                "--api {base}: use https://HOST:PORT (or http:// for a service without TLS)"
            )));
        }
        if base.scheme() == "http" && !is_loopback(base) {
            eprintln!(
                "mailfleet: warning: --api {base} is plain HTTP: the token and any password sent \
                 travel unencrypted; give `mailfleet serve` --tls-cert and use https://"
            );
        }
        let token = input::secret_from_environment(TOKEN_VARIABLE).ok_or_else(|| {
            CliError::Invalid(format!(
                "--api needs an API token in {TOKEN_VARIABLE} (from `mailfleet token create`)"
            ))
        })?;
        // Checked here so a request never fails on it; the text itself is never repeated.
        if !token.expose_secret().chars().all(|c| c.is_ascii_graphic()) {
            return Err(CliError::Invalid(format!(
                "{TOKEN_VARIABLE} is not an API token: it holds spaces or characters outside ASCII"
            )));
        }
        Ok(Some(ApiClient {
            base: base.clone(),
            token,
            tenant: tenant.map(str::to_owned),
            http: http_client(args)?,
        }))
    }

    /// The route `path` under `/api/v1`, each segment escaped (names come from users).
    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(["api", "v1"]).extend(path);
        }
        url
    }

    /// A request to `path` with the token (marked sensitive) and the tenant.
    pub fn request(&self, method: Method, path: &[&str]) -> RequestBuilder {
        let request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.token.expose_secret());
        match &self.tenant {
            Some(tenant) => request.header(TENANT_HEADER, tenant),
            None => request,
        }
    }

    /// Sends `request`; a 2xx answer, or the error its problem+json says.
    async fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await.map_err(|e| {
            let url = e
                .url()
                .map_or_else(|| self.base.to_string(), Url::to_string);
            let mut why = causes(&e);
            if why.contains("certificate") {
                why.push_str(" (a self-signed serve certificate is trusted with --api-ca FILE)");
            }
            CliError::failed(format!("calling the API at {url}"), why)
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(problem::to_error(status, &body, &self.base))
    }

    /// The JSON answer of `request`.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        self.answer(request, Response::json::<T>).await
    }

    /// The text answer of `request` (a report).
    pub async fn text(&self, request: RequestBuilder) -> Result<String, CliError> {
        self.answer(request, Response::text).await
    }

    /// The answer of `request`, as `read` reads it from the response.
    async fn answer<T, Read: Future<Output = reqwest::Result<T>>>(
        &self,
        request: RequestBuilder,
        read: impl FnOnce(Response) -> Read,
    ) -> Result<T, CliError> {
        read(self.send(request).await?).await.map_err(|e| {
            CliError::failed(format!("reading the API's answer from {}", self.base), e)
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &[&str]) -> Result<T, CliError> {
        self.json(self.request(Method::GET, path)).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: &impl Serialize,
    ) -> Result<T, CliError> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    /// A DELETE, whose answer (204) has no body.
    pub async fn delete(&self, path: &[&str]) -> Result<(), CliError> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }
}

/// Verified TLS (the system's roots, and `--api-ca` if given); redirects not followed, so the
/// token goes nowhere but `--api`.
fn http_client(args: &RemoteArgs) -> Result<reqwest::Client, CliError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &args.api_ca {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::Invalid(format!("--api-ca {}: {e}", path.display())))?;
        let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            CliError::Invalid(format!(
                "--api-ca {}: not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|e| CliError::failed("setting up the API client", e))
}

/// This machine only: plain HTTP there never crosses a network.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `error` and its causes on one line (reqwest's own message leaves out why: refused, TLS…).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
