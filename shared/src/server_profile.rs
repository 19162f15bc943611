//! What a target server will not store, as data: one [`ServerRules`] per [`ServerProfile`].
//!
//! Exchange Online is not Dovecot (ARCHITECTURE.md, "Servers differ"): it refuses some folder
//! names, cannot take `/` inside a name, keeps no custom keywords, turns `$MDNSent` into a
//! category on every message and does not reliably keep `\Flagged` given on APPEND. A
//! migration that meets it unprepared loses those silently; the engine reads the rules here
//! instead of asking "is this Exchange?" in many places, and reports every rule it applies.

use serde::{Deserialize, Serialize};

use crate::endpoint::{Authentication, Endpoint, TokenProviderKind};

/// The target server's personality, stored in the job spec. `Generic` trusts what the server
/// announces (PERMANENTFLAGS, CREATE's answers) and nothing more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerProfile {
    #[default]
    Generic,
    /// Exchange Online (Microsoft 365).
    M365,
}

/// The rules a profile turns on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRules {
    /// Top-level folder names the server refuses to create (compared case-insensitively), and
    /// the name each is created under instead.
    pub reserved_names: &'static [(&'static str, &'static str)],
    /// What replaces the target's hierarchy separator inside a source folder name.
    pub separator_replacement: &'static str,
    /// Keywords never sent, even where PERMANENTFLAGS would take them, with the reason.
    pub withheld_keywords: &'static [(&'static str, &'static str)],
    /// `\Flagged` is set again with `UID STORE` after APPEND, and checked.
    pub store_flagged_after_append: bool,
    /// Folder names equal but for case are one folder on the target: source folders that
    /// would meet there get distinct names (see `FolderMapper::map_all`).
    pub case_insensitive_names: bool,
}

const GENERIC: ServerRules = ServerRules {
    reserved_names: &[],
    separator_replacement: "_",
    withheld_keywords: &[],
    store_flagged_after_append: false,
    case_insensitive_names: false,
};

/// Microsoft's documentation and imapsync's FAQ: `NO Folder name is reserved` for `Files`; `/`
/// cannot appear inside a name; `$MDNSent` shows up as a category on every message; `\Flagged`
/// on APPEND is not kept reliably (imapsync sets it again with STORE); names are
/// case-insensitive (CREATE `work` next to `Work`: "Mailbox already exists").
const M365: ServerRules = ServerRules {
    reserved_names: &[("Files", "Files (migrated)")],
    separator_replacement: "-",
    withheld_keywords: &[(
        "$MDNSent",
        "Exchange Online shows $MDNSent as a category on every message",
    )],
    store_flagged_after_append: true,
    case_insensitive_names: true,
};

impl ServerProfile {
    pub fn rules(self) -> &'static ServerRules {
        match self {
            ServerProfile::Generic => &GENERIC,
            ServerProfile::M365 => &M365,
        }
    }

    /// The profile `auto` chooses for `target`: Exchange Online when the host is Microsoft's
    /// IMAP endpoint or the login goes through Microsoft Entra ID.
    pub fn detect(target: &Endpoint) -> Self {
        let host = target.host.trim_end_matches('.').to_ascii_lowercase();
        let microsoft_login = matches!(
            &target.authentication,
            Authentication::OAuth2(o) if matches!(o.provider, TokenProviderKind::Microsoft { .. })
        );
        if host.ends_with("outlook.office365.com") || microsoft_login {
            ServerProfile::M365
        } else {
            ServerProfile::Generic
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerProfile::Generic => "generic",
            ServerProfile::M365 => "m365",
        }
    }
}

/// `--target-profile`: a profile, or `auto` to detect it from the target endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProfileChoice {
    #[default]
    Auto,
    Fixed(ServerProfile),
}

impl ProfileChoice {
    /// The word `--profile` takes for this choice (`auto`, `generic`, `m365`).
    pub fn name(self) -> &'static str {
        match self {
            ProfileChoice::Auto => "auto",
            ProfileChoice::Fixed(profile) => profile.name(),
        }
    }

    pub fn resolve(self, target: &Endpoint) -> ServerProfile {
        match self {
            ProfileChoice::Auto => ServerProfile::detect(target),
            ProfileChoice::Fixed(profile) => profile,
        }
    }
}

impl std::str::FromStr for ProfileChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(ProfileChoice::Auto),
            "generic" => Ok(ProfileChoice::Fixed(ServerProfile::Generic)),
            "m365" | "exchange" => Ok(ProfileChoice::Fixed(ServerProfile::M365)),
            other => Err(format!(
                "unknown server profile '{other}' (auto, generic or m365)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_chooses_m365_for_microsofts_host_only() {
        let exchange = Endpoint::from_url("imaps://outlook.office365.com:993").unwrap();
        let dovecot = Endpoint::from_url("imaps://mail.example.com:993").unwrap();
        assert_eq!(ServerProfile::detect(&exchange), ServerProfile::M365);
        assert_eq!(ServerProfile::detect(&dovecot), ServerProfile::Generic);
        let fixed: ProfileChoice = "generic".parse().unwrap();
        assert_eq!(fixed.resolve(&exchange), ServerProfile::Generic);
        assert!("exchange2010".parse::<ProfileChoice>().is_err());
    }

    #[test]
    fn specs_written_before_profiles_load_as_generic() {
        let profile: ServerProfile = serde_json::from_str("\"m365\"").unwrap();
        assert_eq!(profile, ServerProfile::M365);
        assert_eq!(ServerProfile::default().rules(), &GENERIC);
    }
}
