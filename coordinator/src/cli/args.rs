//! Argument groups more than one command flattens in, so a flag means the same everywhere and
//! its help text is written once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Where a process finds the broker and the store, and where it serves metrics. Each flag may
/// instead come from `mailfleet.toml` or a `MAILFLEET_<SETTING>` variable (see `settings`).
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Run the tasks through RabbitMQ: `rabbitmq://user:pass@host:5672/%2f[?prefix=mailfleet]`
    /// (setting `queue`).
    #[arg(long)]
    pub queue: Option<String>,
    /// Keep checkpoints, sealed credentials and job specs in Redis:
    /// `redis://host:6379[?tenant=default]` (setting `checkpoints`; needs `secret_key`).
    #[arg(long)]
    pub checkpoints: Option<String>,
    /// Serve Prometheus /metrics, /status and /healthz here, e.g. 127.0.0.1:9464
    /// (setting `metrics_listen`).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Where the state store (and, embedded, checkpoints and sealed passwords) lives.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The service's state directory (shared by `mailfleet run` and the admin commands).
    #[arg(long, default_value = "mailfleet-state")]
    pub state_dir: PathBuf,
}

/// What of each mailbox is copied: the folder rules, a date filter and the size limit. A batch
/// stores them; `migrate` uses them for its one run.
#[derive(Debug, Clone, Args)]
pub struct CopyRuleArgs {
    /// Folders to skip: `#Inbox#`-style well-known names, `Name/*` subtrees, exact `Name/Sub`.
    #[arg(long, value_delimiter = ',')]
    pub exclude_folders: Vec<String>,
    /// Only these folders (same syntax as --exclude-folders).
    #[arg(long, value_delimiter = ',')]
    pub include_folders: Vec<String>,
    /// Copy only messages received on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub received_after: Option<chrono::NaiveDate>,
    /// Messages larger than this many bytes are skipped and reported (default: 35 MB).
    #[arg(long, default_value_t = mailfleet_worker::job::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: u64,
    /// Incremental passes also remove from the target mailfleet's copies of messages deleted
    /// on the source since (never mail that arrived on the target by itself). Without it they
    /// are kept and listed in the report.
    #[arg(long)]
    pub mirror_deletions: bool,
}

#[derive(Debug, Args)]
pub struct SourceAdminArgs {
    /// Log in to the source as this admin on behalf of each user (password:
    /// MAILFLEET_SOURCE_ADMIN_PASSWORD).
    #[arg(long = "source-admin", requires = "source_admin_format")]
    pub source_admin: Option<String>,
    /// exchange | dovecot | mirapoint | courier | cyrus
    #[arg(long = "source-admin-format", requires = "source_admin")]
    pub source_admin_format: Option<String>,
}

#[derive(Debug, Args)]
pub struct TargetAdminArgs {
    /// Log in to the target as this admin on behalf of each user (password:
    /// MAILFLEET_TARGET_ADMIN_PASSWORD).
    #[arg(long = "target-admin", requires = "target_admin_format")]
    pub target_admin: Option<String>,
    /// exchange | dovecot | mirapoint | courier | cyrus
    #[arg(long = "target-admin-format", requires = "target_admin")]
    pub target_admin_format: Option<String>,
}

/// A command about one named endpoint or batch.
#[derive(Debug, Args)]
pub struct NamedArgs {
    pub name: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Which identity provider issues an OAuth2 endpoint's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OAuth2Provider {
    /// Microsoft Entra ID (Exchange Online): an app's client-credentials grant.
    Microsoft,
    /// A Google Workspace service account with domain-wide delegation.
    Google,
    /// A bearer token some other tool keeps fresh in a file.
    TokenFile,
}

/// The SASL mechanism that carries the token (default: XOAUTH2, or OAUTHBEARER when the server
/// offers only that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslChoice {
    Xoauth2,
    Oauthbearer,
}

/// What an OAuth2 login needs, whatever the flags are called on one command.
#[derive(Debug, Clone, Default)]
pub struct OAuth2Flags {
    pub provider: Option<OAuth2Provider>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub client_certificate: Option<PathBuf>,
    pub service_account: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub token_url: Option<String>,
    pub scope: Option<String>,
    pub sasl: Option<SaslChoice>,
}

/// One OAuth2 argument group per side, the flags named with `$prefix` (`--target-tenant`):
/// clap has no prefixed flatten, and three hand-written copies would drift apart.
macro_rules! oauth2_args {
    ($name:ident, $side:literal, $oauth2:literal, $tenant:literal, $client_id:literal,
     $certificate:literal, $service_account:literal, $token_file:literal, $token_url:literal,
     $scope:literal, $sasl:literal, $secret_variable:literal) => {
        #[doc = concat!("Logging in to ", $side, " with OAuth2 tokens instead of passwords.")]
        #[derive(Debug, Args)]
        pub struct $name {
            /// Log in with OAuth2 tokens from this identity provider (Exchange Online needs
            /// `microsoft`; Google Workspace `google`).
            #[arg(id = $oauth2, long = $oauth2, value_enum)]
            pub oauth2: Option<OAuth2Provider>,
            /// microsoft: the tenant (its id or domain, e.g. contoso.onmicrosoft.com).
            #[arg(id = $tenant, long = $tenant, requires = $oauth2)]
            pub tenant: Option<String>,
            /// microsoft: the app's client id.
            #[arg(id = $client_id, long = $client_id, requires = $oauth2)]
            pub client_id: Option<String>,
            #[doc = concat!(
                "microsoft: a PEM file with the app's certificate and its private key (a signed ",
                "client assertion); without it the client secret comes from ",
                $secret_variable, "."
            )]
            #[arg(id = $certificate, long = $certificate, requires = $oauth2)]
            pub client_certificate: Option<PathBuf>,
            /// google: the service account's JSON key file.
            #[arg(id = $service_account, long = $service_account, requires = $oauth2)]
            pub service_account: Option<PathBuf>,
            /// token-file: the file holding the bearer token, read at each login.
            #[arg(id = $token_file, long = $token_file, requires = $oauth2)]
            pub token_file: Option<PathBuf>,
            /// The provider's token endpoint instead of the default (national clouds).
            #[arg(id = $token_url, long = $token_url, requires = $oauth2)]
            pub token_url: Option<String>,
            /// The scope asked for instead of the provider's default.
            #[arg(id = $scope, long = $scope, requires = $oauth2)]
            pub scope: Option<String>,
            /// Force the SASL mechanism that carries the token.
            #[arg(id = $sasl, long = $sasl, value_enum, requires = $oauth2)]
            pub sasl: Option<SaslChoice>,
        }

        impl $name {
            /// Where the client secret of `microsoft` without a certificate is read.
            pub const SECRET_VARIABLE: &'static str = $secret_variable;

            pub fn flags(&self) -> OAuth2Flags {
                OAuth2Flags {
                    provider: self.oauth2,
                    tenant: self.tenant.clone(),
                    client_id: self.client_id.clone(),
                    client_certificate: self.client_certificate.clone(),
                    service_account: self.service_account.clone(),
                    token_file: self.token_file.clone(),
                    token_url: self.token_url.clone(),
                    scope: self.scope.clone(),
                    sasl: self.sasl,
                }
            }
        }
    };
}

oauth2_args!(
    SourceOAuth2Args,
    "the source",
    "source-oauth2",
    "source-tenant",
    "source-client-id",
    "source-client-certificate",
    "source-service-account",
    "source-token-file",
    "source-token-url",
    "source-scope",
    "source-sasl",
    "MAILFLEET_SOURCE_CLIENT_SECRET"
);
oauth2_args!(
    TargetOAuth2Args,
    "the target",
    "target-oauth2",
    "target-tenant",
    "target-client-id",
    "target-client-certificate",
    "target-service-account",
    "target-token-file",
    "target-token-url",
    "target-scope",
    "target-sasl",
    "MAILFLEET_TARGET_CLIENT_SECRET"
);
oauth2_args!(
    EndpointOAuth2Args,
    "the endpoint",
    "oauth2",
    "tenant",
    "client-id",
    "client-certificate",
    "service-account",
    "token-file",
    "token-url",
    "scope",
    "sasl",
    "MAILFLEET_CLIENT_SECRET"
);
