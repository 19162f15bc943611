//! Flags for APPEND, written exactly as RFC 3501 spells a flag list.
//!
//! Strict servers (Cyrus) answer `BAD Invalid flag` to a doubled space or to `\Recent`, which the
//! RFC forbids in APPEND; Dovecot tolerates both, so tests against Dovecot alone would not notice.
//! Keywords survive only where the target can store them permanently (PERMANENTFLAGS), and only
//! when they are valid atoms; a server profile may withhold more (Exchange Online turns
//! `$MDNSent` into a category on every message).

use async_imap::types::Flag;
use mailfleet_shared::server_profile::ServerRules;

/// The system flags a client may set (RFC 3501 §2.3.2, without `\Recent`).
const SETTABLE_SYSTEM_FLAGS: [&str; 5] =
    ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

/// What a target folder lets us store permanently, from its `PERMANENTFLAGS`.
#[derive(Debug, Clone, Default)]
pub struct PermanentFlags {
    /// `\*` present (or PERMANENTFLAGS absent, which RFC 3501 says means "all").
    pub any_keyword: bool,
    pub listed: Vec<String>,
    /// Keywords the target's profile says never to send, with the reason.
    pub withheld: &'static [(&'static str, &'static str)],
}

impl PermanentFlags {
    pub fn from_mailbox(flags: &[Flag<'_>]) -> Self {
        if flags.is_empty() {
            return PermanentFlags {
                any_keyword: true,
                ..PermanentFlags::default()
            };
        }
        PermanentFlags {
            any_keyword: flags.iter().any(|f| matches!(f, Flag::MayCreate)),
            listed: flags.iter().map(flag_text).collect(),
            withheld: &[],
        }
    }

    /// Also never sends the keywords `rules` withhold.
    pub fn withholding(mut self, rules: &ServerRules) -> Self {
        self.withheld = rules.withheld_keywords;
        self
    }

    fn allows_keyword(&self, keyword: &str) -> bool {
        self.withheld_reason(keyword).is_none()
            && (self.any_keyword || self.listed.iter().any(|f| f.eq_ignore_ascii_case(keyword)))
    }

    /// Why `keyword` does not reach the target, in words for the report.
    pub fn refusal_reason(&self, keyword: &str) -> String {
        match self.withheld_reason(keyword) {
            Some(reason) => format!("keyword {keyword} not carried: {reason}"),
            None => format!(
                "keyword {keyword} not kept: the target cannot store it (not in its PERMANENTFLAGS)"
            ),
        }
    }

    fn withheld_reason(&self, keyword: &str) -> Option<&'static str> {
        self.withheld
            .iter()
            .find(|(withheld, _)| withheld.eq_ignore_ascii_case(keyword))
            .map(|(_, reason)| *reason)
    }
}

pub fn flag_text(flag: &Flag<'_>) -> String {
    match flag {
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::Recent => "\\Recent".into(),
        Flag::MayCreate => "\\*".into(),
        Flag::Custom(name) => name.to_string(),
    }
}

/// The flags of a source message that can be set on the target, and the keywords that cannot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppendFlags {
    pub kept: Vec<String>,
    pub dropped: Vec<String>,
}

impl AppendFlags {
    pub fn select(source_flags: &[String], target: &PermanentFlags) -> Self {
        let mut result = AppendFlags::default();
        for flag in source_flags {
            if let Some(system) = SETTABLE_SYSTEM_FLAGS
                .iter()
                .find(|s| s.eq_ignore_ascii_case(flag))
            {
                push_unique(&mut result.kept, system);
            } else if flag.eq_ignore_ascii_case("\\Recent") {
                // Session state, not message state: never sent (RFC 3501 §6.3.11).
            } else if is_atom(flag) && !flag.starts_with('\\') && target.allows_keyword(flag) {
                push_unique(&mut result.kept, flag);
            } else {
                push_unique(&mut result.dropped, flag);
            }
        }
        result
    }

    /// `(\Seen $Label1)` with single spaces, or `None` for no flags (the argument is optional).
    pub fn to_imap_list(&self) -> Option<String> {
        (!self.kept.is_empty()).then(|| format!("({})", self.kept.join(" ")))
    }
}

fn push_unique(list: &mut Vec<String>, flag: &str) {
    if !list.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
        list.push(flag.to_owned());
    }
}

/// RFC 3501 atom: one or more CHARs except atom-specials `( ) { SP CTL % * " \ ]`.
fn is_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_control() && !b"(){ %*\"\\]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(flags: &[&str]) -> Vec<String> {
        flags.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recent_is_never_sent_and_list_has_single_spaces() {
        let all = PermanentFlags {
            any_keyword: true,
            ..PermanentFlags::default()
        };
        let flags = AppendFlags::select(
            &strings(&["\\Recent", "\\Seen", "$Label1", "\\Flagged"]),
            &all,
        );
        assert_eq!(flags.to_imap_list().unwrap(), "(\\Seen $Label1 \\Flagged)");
        assert!(flags.dropped.is_empty());
    }

    #[test]
    fn keywords_the_target_cannot_keep_are_dropped_and_named() {
        let fixed = PermanentFlags {
            any_keyword: false,
            listed: strings(&["\\Seen", "$Forwarded"]),
            withheld: &[],
        };
        let flags = AppendFlags::select(&strings(&["\\Seen", "ProjectX", "$forwarded"]), &fixed);
        assert_eq!(flags.kept, strings(&["\\Seen", "$forwarded"]));
        assert_eq!(flags.dropped, strings(&["ProjectX"]));
    }

    #[test]
    fn a_profile_withholds_keywords_the_server_would_take() {
        let exchange = PermanentFlags {
            any_keyword: true,
            ..PermanentFlags::default()
        }
        .withholding(mailfleet_shared::server_profile::ServerProfile::M365.rules());
        let flags = AppendFlags::select(&strings(&["\\Seen", "$MDNSent", "$Label1"]), &exchange);
        assert_eq!(flags.kept, strings(&["\\Seen", "$Label1"]));
        assert_eq!(flags.dropped, strings(&["$MDNSent"]));
        assert!(exchange.refusal_reason("$mdnsent").contains("category"));
    }

    #[test]
    fn invalid_atoms_and_unknown_system_flags_are_dropped() {
        let all = PermanentFlags {
            any_keyword: true,
            ..PermanentFlags::default()
        };
        let flags = AppendFlags::select(&strings(&["bad flag", "a]b", "\\Unknown"]), &all);
        assert!(flags.kept.is_empty());
        assert_eq!(flags.to_imap_list(), None);
        assert_eq!(flags.dropped.len(), 3);
    }
}
