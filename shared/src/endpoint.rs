//! STUB — being written by a helper. API contract below.
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
    pub accept_untrusted_certs: bool,
    pub admin: Option<AdminLogin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMethod {
    Login { user: String },
    SaslPlain { authzid: String, authcid: String },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

impl Endpoint {
    pub fn from_url(_url: &str) -> Result<Self, EndpointError> {
        todo!()
    }
    pub fn login_for(&self, _login_name: &str) -> LoginMethod {
        todo!()
    }
    pub fn uses_admin_password(&self) -> bool {
        self.admin.is_some()
    }
}
