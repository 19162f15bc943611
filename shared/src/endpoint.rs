//! Where a mailbox server is and how to log in to it.
//!
//! Endpoints are written as URLs (`imaps://mail.example.com:993`) so a command line or a config
//! file names one in a single value; credentials never go into the URL, since URLs end up in
//! logs, reports and shell history. Admin logins follow the formats of Microsoft's IMAP migration
//! service (ARCHITECTURE.md, "What a user does"), so one admin password migrates every user.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    None,
    Ssl,
    StartTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminFormat {
    Exchange,
    Dovecot,
    Mirapoint,
    Courier,
    Cyrus,
}

const ADMIN_FORMATS: [(&str, AdminFormat); 5] = [
    ("exchange", AdminFormat::Exchange),
    ("dovecot", AdminFormat::Dovecot),
    ("mirapoint", AdminFormat::Mirapoint),
    ("courier", AdminFormat::Courier),
    ("cyrus", AdminFormat::Cyrus),
];

impl FromStr for AdminFormat {
    type Err = EndpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ADMIN_FORMATS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
            .map(|(_, format)| *format)
            .ok_or_else(|| {
                let names: Vec<_> = ADMIN_FORMATS.iter().map(|(n, _)| *n).collect();
                EndpointError(format!(
                    "unknown admin login format '{text}' (expected one of: {})",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for AdminFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = ADMIN_FORMATS
            .iter()
            .find(|(_, v)| v == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

impl AdminFormat {
    /// Courier/Oracle admins reach a user's mail through a folder root given per CSV row.
    pub fn needs_user_root(&self) -> bool {
        *self == AdminFormat::Courier
    }

    /// The login an admin uses on behalf of `user` (ARCHITECTURE.md, "Admin login formats").
    pub fn login(&self, admin: &str, user: &str) -> LoginMethod {
        let login = |user: String| LoginMethod::Login { user };
        match self {
            AdminFormat::Exchange => login(format!("{admin}/{user}")),
            AdminFormat::Dovecot => login(format!("{user}*{admin}")),
            AdminFormat::Mirapoint => login(format!("#{user}#{admin}#")),
            AdminFormat::Courier => login(admin.to_owned()),
            AdminFormat::Cyrus => LoginMethod::SaslPlain {
                authzid: user.to_owned(),
                authcid: admin.to_owned(),
            },
        }
    }
}

/// An admin login; its password lives in the credential store, never here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminLogin {
    pub user: String,
    pub format: AdminFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Skip certificate verification; only when the endpoint explicitly says so.
    pub accept_untrusted_certs: bool,
    pub admin: Option<AdminLogin>,
    /// Password (the CSV's or the admin's) or an OAuth2 bearer token; records written before
    /// OAuth2 existed load as password endpoints.
    #[serde(default, skip_serializing_if = "Authentication::is_password")]
    pub authentication: Authentication,
}

/// How mailfleet proves who it is to an endpoint.
///
/// Exchange Online accepts only OAuth2 tokens over IMAP, and Google Workspace service accounts
/// log in the same way, so an endpoint either uses passwords (LOGIN, SASL PLAIN, the admin
/// formats) or `AUTHENTICATE XOAUTH2`/`OAUTHBEARER` with a token from an identity provider.
/// Only non-secret settings live here; a client secret or private key is sealed in the
/// credential store under [`crate::credentials::CredentialId::oauth2`], like a password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Authentication {
    #[default]
    Password,
    OAuth2(OAuth2),
}

impl Authentication {
    pub fn is_password(&self) -> bool {
        *self == Authentication::Password
    }
}

/// Where tokens come from and how they are presented to the IMAP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2 {
    pub provider: TokenProviderKind,
    #[serde(default)]
    pub mechanism: SaslMechanism,
    /// Overrides the provider's token endpoint (national clouds such as
    /// `login.microsoftonline.us`; tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// Overrides the provider's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The identity provider. Its secret (client secret, certificate key, service-account key) is
/// in the credential store, never in this value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum TokenProviderKind {
    /// Microsoft Entra ID, client-credentials grant: one app-only token for every mailbox.
    Microsoft {
        tenant: String,
        client_id: String,
        /// The sealed secret is a client secret, or a PEM with the certificate and its key.
        credential: MicrosoftCredential,
    },
    /// A Google service account with domain-wide delegation: one token per mailbox. The sealed
    /// secret is the service account's JSON key file.
    Google,
    /// A bearer token some other tool keeps fresh in this file, read at each login.
    TokenFile { path: std::path::PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MicrosoftCredential {
    Secret,
    Certificate,
}

/// How `endpoint list` and `show` name the provider: which identity service, and for Microsoft
/// the tenant, the app and the kind of secret (never the secret).
impl fmt::Display for TokenProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenProviderKind::Microsoft {
                tenant,
                client_id,
                credential,
            } => {
                let credential = match credential {
                    MicrosoftCredential::Secret => "a client secret",
                    MicrosoftCredential::Certificate => "a certificate",
                };
                write!(
                    f,
                    "Microsoft Entra ID tenant {tenant}, app {client_id}, with {credential}"
                )
            }
            TokenProviderKind::Google => f.write_str("Google service account"),
            TokenProviderKind::TokenFile { path } => write!(f, "token file {}", path.display()),
        }
    }
}

/// Which SASL mechanism carries the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaslMechanism {
    /// XOAUTH2 (what Exchange Online and Gmail document), OAUTHBEARER when the server offers
    /// only that.
    #[default]
    Auto,
    Xoauth2,
    /// RFC 7628.
    OAuthBearer,
}

impl OAuth2 {
    /// Whether the provider's secret is in the credential store (a token file needs none).
    pub fn needs_sealed_secret(&self) -> bool {
        !matches!(self.provider, TokenProviderKind::TokenFile { .. })
    }

    /// Settings that cannot work, named before anything starts.
    pub fn check(&self) -> Result<(), EndpointError> {
        let bad = |why: &str| Err(EndpointError(format!("OAuth2: {why}")));
        match &self.provider {
            TokenProviderKind::Microsoft { tenant, .. } if tenant.trim().is_empty() => {
                return bad("Microsoft needs the tenant (its id or domain)");
            }
            TokenProviderKind::Microsoft { client_id, .. } if client_id.trim().is_empty() => {
                return bad("Microsoft needs the app's client id");
            }
            TokenProviderKind::TokenFile { path } if path.as_os_str().is_empty() => {
                return bad("a token file needs its path");
            }
            _ => {}
        }
        match self.token_url.as_deref().map(url::Url::parse) {
            Some(Ok(url)) if !matches!(url.scheme(), "https" | "http") => {
                bad(&format!("token URL {url} is not an http(s) URL"))
            }
            Some(Err(e)) => bad(&format!("token URL: {e}")),
            _ => Ok(()),
        }
    }
}

/// How to authenticate: LOGIN, or SASL PLAIN with an authorization identity (Cyrus proxy auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMethod {
    Login { user: String },
    SaslPlain { authzid: String, authcid: String },
}

impl LoginMethod {
    /// Who is logging in, for logs and error messages (never a password).
    pub fn display_user(&self) -> String {
        match self {
            LoginMethod::Login { user } => user.clone(),
            LoginMethod::SaslPlain { authzid, authcid } => format!("{authcid} (as {authzid})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

const SCHEMES: [(&str, Security, u16); 3] = [
    ("imap", Security::None, 143),
    ("imap+starttls", Security::StartTls, 143),
    ("imaps", Security::Ssl, 993),
];

impl Endpoint {
    /// Parses `imap://host:port`, `imap+starttls://host:port` or `imaps://host:port`, with an
    /// optional `?accept_untrusted_certs=true`.
    pub fn from_url(text: &str) -> Result<Self, EndpointError> {
        let shown = without_credentials(text);
        let bad = |why: &str| EndpointError(format!("invalid endpoint URL '{shown}': {why}"));
        let url = url::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
        let (_, security, default_port) = SCHEMES
            .iter()
            .find(|(scheme, _, _)| *scheme == url.scheme())
            .ok_or_else(|| bad("the scheme must be imap://, imap+starttls:// or imaps://"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials do not belong in a URL; use the CSV or the admin options",
            ));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(bad("a server URL has no path"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let mut accept_untrusted_certs = false;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "accept_untrusted_certs" | "insecure" => {
                    accept_untrusted_certs = parse_bool(&value)
                        .ok_or_else(|| bad(&format!("{key} must be true or false")))?;
                }
                other => return Err(bad(&format!("unknown parameter '{other}'"))),
            }
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port: url.port().unwrap_or(*default_port),
            security: *security,
            accept_untrusted_certs,
            admin: None,
            authentication: Authentication::Password,
        })
    }

    /// The canonical URL of the endpoint, without secrets.
    pub fn url(&self) -> String {
        let scheme = SCHEMES
            .iter()
            .find(|(_, s, _)| *s == self.security)
            .map_or("imap", |(n, _, _)| n);
        let query = if self.accept_untrusted_certs {
            "?accept_untrusted_certs=true"
        } else {
            ""
        };
        format!("{scheme}://{}:{}{query}", self.host, self.port)
    }

    /// The login for `login_name` (source: the CSV's UserName; target: its EmailAddress).
    pub fn login_for(&self, login_name: &str) -> LoginMethod {
        match &self.admin {
            Some(admin) => admin.format.login(&admin.user, login_name),
            None => LoginMethod::Login {
                user: login_name.to_owned(),
            },
        }
    }

    pub fn uses_admin_password(&self) -> bool {
        self.admin.is_some() && self.oauth2().is_none()
    }

    /// An endpoint logs in with passwords (its admin's, or the CSV's) or with OAuth2 tokens,
    /// never both; and its OAuth2 settings must be usable.
    pub fn check_authentication(&self) -> Result<(), EndpointError> {
        match (&self.authentication, &self.admin) {
            (Authentication::OAuth2(_), Some(_)) => Err(EndpointError(format!(
                "{}: an OAuth2 endpoint has no admin login (the token names each mailbox)",
                self.url()
            ))),
            (Authentication::OAuth2(oauth2), None) => oauth2.check(),
            (Authentication::Password, _) => Ok(()),
        }
    }

    /// The OAuth2 settings, when this endpoint logs in with tokens.
    pub fn oauth2(&self) -> Option<&OAuth2> {
        match &self.authentication {
            Authentication::OAuth2(oauth2) => Some(oauth2),
            Authentication::Password => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// `imap://user:pass@host` → `imap://***@host`: a URL in an error message must not leak a password.
fn without_credentials(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &text[..scheme_end + 3], &text[at..])
        }
        _ => text.to_owned(),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_named_in_words() {
        let microsoft = TokenProviderKind::Microsoft {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "11111111-2222".into(),
            credential: MicrosoftCredential::Certificate,
        };
        assert_eq!(
            microsoft.to_string(),
            "Microsoft Entra ID tenant contoso.onmicrosoft.com, app 11111111-2222, with a \
             certificate"
        );
        assert_eq!(
            TokenProviderKind::Google.to_string(),
            "Google service account"
        );
    }

    #[test]
    fn schemes_and_default_ports() {
        let cases = [
            ("imap://mail.example.com", Security::None, 143),
            ("imap+starttls://mail.example.com", Security::StartTls, 143),
            ("imaps://mail.example.com", Security::Ssl, 993),
            ("imaps://mail.example.com:1993/", Security::Ssl, 1993),
        ];
        for (url, security, port) in cases {
            let endpoint = Endpoint::from_url(url).unwrap();
            assert_eq!(
                (endpoint.security, endpoint.port),
                (security, port),
                "{url}"
            );
            assert!(!endpoint.accept_untrusted_certs);
        }
    }

    #[test]
    fn ipv6_and_untrusted_flag_round_trip() {
        let endpoint = Endpoint::from_url("imaps://[::1]:993?accept_untrusted_certs=true").unwrap();
        assert_eq!(endpoint.host, "[::1]");
        assert!(endpoint.accept_untrusted_certs);
        assert_eq!(
            endpoint.url(),
            "imaps://[::1]:993?accept_untrusted_certs=true"
        );
        assert!(
            Endpoint::from_url("imaps://h?insecure=true")
                .unwrap()
                .accept_untrusted_certs
        );
    }

    #[test]
    fn rejections_name_the_url_and_the_problem() {
        for (url, why) in [
            ("http://mail.example.com", "scheme"),
            ("imap://alice:secret@mail.example.com", "credentials"),
            ("imap://mail.example.com/INBOX", "path"),
            ("imap://mail.example.com?tls=1", "unknown parameter"),
            ("imap://mail.example.com?insecure=maybe", "true or false"),
            ("not a url", "invalid endpoint URL"),
        ] {
            let error = Endpoint::from_url(url).unwrap_err().to_string();
            assert!(error.contains(why), "{url}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn admin_login_formats() {
        let login = |format: AdminFormat, admin: &str| {
            let mut endpoint = Endpoint::from_url("imap://h").unwrap();
            endpoint.admin = Some(AdminLogin {
                user: admin.into(),
                format,
            });
            endpoint.login_for("alice")
        };
        let plain = |user: &str| LoginMethod::Login { user: user.into() };
        assert_eq!(
            login(AdminFormat::Exchange, "CONTOSO/admin"),
            plain("CONTOSO/admin/alice")
        );
        assert_eq!(login(AdminFormat::Dovecot, "admin"), plain("alice*admin"));
        assert_eq!(
            login(AdminFormat::Mirapoint, "admin"),
            plain("#alice#admin#")
        );
        assert_eq!(login(AdminFormat::Courier, "admin"), plain("admin"));
        assert_eq!(
            login(AdminFormat::Cyrus, "cyrus"),
            LoginMethod::SaslPlain {
                authzid: "alice".into(),
                authcid: "cyrus".into()
            }
        );
        assert_eq!(
            Endpoint::from_url("imap://h").unwrap().login_for("alice"),
            plain("alice")
        );
        assert!(AdminFormat::Courier.needs_user_root());
    }

    #[test]
    fn endpoints_stored_before_oauth2_load_as_password_endpoints() {
        let old = r#"{"host":"h","port":993,"security":"ssl","accept_untrusted_certs":false,
            "admin":null}"#;
        let endpoint: Endpoint = serde_json::from_str(old).unwrap();
        assert_eq!(endpoint.authentication, Authentication::Password);
        assert!(
            !serde_json::to_string(&endpoint)
                .unwrap()
                .contains("authentication")
        );
    }

    #[test]
    fn oauth2_settings_round_trip_without_secrets() {
        let mut endpoint = Endpoint::from_url("imaps://outlook.office365.com").unwrap();
        endpoint.authentication = Authentication::OAuth2(OAuth2 {
            provider: TokenProviderKind::Microsoft {
                tenant: "contoso.onmicrosoft.com".into(),
                client_id: "app-id".into(),
                credential: MicrosoftCredential::Certificate,
            },
            mechanism: SaslMechanism::Auto,
            token_url: None,
            scope: None,
        });
        let json = serde_json::to_string(&endpoint).unwrap();
        assert_eq!(serde_json::from_str::<Endpoint>(&json).unwrap(), endpoint);
        assert!(
            json.contains(r#""kind":"oauth2""#) && json.contains("microsoft"),
            "{json}"
        );
        let oauth2 = endpoint.oauth2().unwrap();
        assert!(oauth2.needs_sealed_secret());
        assert_eq!(endpoint.check_authentication(), Ok(()));
    }

    #[test]
    fn unusable_oauth2_settings_are_named() {
        let endpoint = |provider: TokenProviderKind, token_url: Option<&str>| {
            let mut endpoint = Endpoint::from_url("imaps://outlook.office365.com").unwrap();
            endpoint.authentication = Authentication::OAuth2(OAuth2 {
                provider,
                mechanism: SaslMechanism::Auto,
                token_url: token_url.map(str::to_owned),
                scope: None,
            });
            endpoint
        };
        let microsoft = |tenant: &str| TokenProviderKind::Microsoft {
            tenant: tenant.into(),
            client_id: "app".into(),
            credential: MicrosoftCredential::Secret,
        };
        let mut with_admin = endpoint(TokenProviderKind::Google, None);
        with_admin.admin = Some(AdminLogin {
            user: "admin".into(),
            format: AdminFormat::Exchange,
        });
        for (endpoint, why) in [
            (endpoint(microsoft(" "), None), "tenant"),
            (
                endpoint(microsoft("contoso"), Some("not a url")),
                "token URL",
            ),
            (
                endpoint(microsoft("contoso"), Some("ftp://h/token")),
                "http(s)",
            ),
            (with_admin, "no admin login"),
        ] {
            let error = endpoint.check_authentication().unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn admin_format_names() {
        assert_eq!(
            "Dovecot".parse::<AdminFormat>().unwrap(),
            AdminFormat::Dovecot
        );
        assert_eq!(AdminFormat::Cyrus.to_string(), "cyrus");
        let error = "zimbra".parse::<AdminFormat>().unwrap_err().to_string();
        assert!(
            error.contains("zimbra") && error.contains("exchange, dovecot"),
            "{error}"
        );
    }
}
