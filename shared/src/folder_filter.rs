//! The batch's include/exclude folder rules, as Microsoft's batch options write them.
//!
//! `#Inbox#`-style well-known names match a folder by its special use, whatever the server calls
//! it; `Name/*` matches a folder and everything under it; a plain `Projects/2024` matches exactly
//! that folder. Rules see folders after mapping ([`MappedFolder`]), so they mean the same on
//! every server.

use crate::folder_map::{MappedFolder, SpecialUse};

/// The batch's folder rules, as Microsoft's batch options write them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderFilter {
    include: Vec<FolderRule>,
    exclude: Vec<FolderRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FolderRule {
    Special { usage: SpecialUse, subtree: bool },
    Exact(String),
    Subtree(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid folder rule '{rule}': {reason}")]
pub struct FilterError {
    pub rule: String,
    pub reason: String,
}

const WELL_KNOWN_RULES: [(&str, SpecialUse); 6] = [
    ("#Inbox#", SpecialUse::Inbox),
    ("#SentItems#", SpecialUse::Sent),
    ("#Drafts#", SpecialUse::Drafts),
    ("#DeletedItems#", SpecialUse::Trash),
    ("#JunkEmail#", SpecialUse::Junk),
    ("#Archive#", SpecialUse::Archive),
];

impl FolderFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, FilterError> {
        let parse_all = |rules: &[String]| -> Result<Vec<FolderRule>, FilterError> {
            rules
                .iter()
                .map(|r| r.trim())
                .filter(|r| !r.is_empty())
                .map(FolderRule::parse)
                .collect()
        };
        Ok(FolderFilter {
            include: parse_all(include)?,
            exclude: parse_all(exclude)?,
        })
    }

    /// Include rules (when any) must match; exclude rules always win.
    pub fn allows(&self, folder: &MappedFolder) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.matches(folder)))
            && !self.exclude.iter().any(|r| r.matches(folder))
    }
}

impl FolderRule {
    fn parse(rule: &str) -> Result<Self, FilterError> {
        let (name, subtree) = match rule.strip_suffix("/*") {
            Some(name) => (name, true),
            None => (rule, false),
        };
        if name.starts_with('#') {
            let usage = WELL_KNOWN_RULES
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .map(|(_, usage)| *usage)
                .ok_or_else(|| {
                    let known: Vec<_> = WELL_KNOWN_RULES.iter().map(|(n, _)| *n).collect();
                    FilterError {
                        rule: rule.to_owned(),
                        reason: format!(
                            "unknown well-known folder (use one of {})",
                            known.join(", ")
                        ),
                    }
                })?;
            return Ok(FolderRule::Special { usage, subtree });
        }
        let name = name.trim_matches('/').to_owned();
        if name.is_empty() {
            return Err(FilterError {
                rule: rule.to_owned(),
                reason: "no folder name".into(),
            });
        }
        Ok(if subtree {
            FolderRule::Subtree(name)
        } else {
            FolderRule::Exact(name)
        })
    }

    fn matches(&self, folder: &MappedFolder) -> bool {
        let display = &folder.display_name;
        match self {
            FolderRule::Exact(name) => same_path(display, name),
            FolderRule::Subtree(name) => same_path(display, name) || under(display, name),
            FolderRule::Special { usage, subtree } => {
                folder.special_use == Some(*usage)
                    || (*subtree && under(display, usage.default_name()))
            }
        }
    }
}

/// Paths compare exactly, except that INBOX is case-insensitive (RFC 3501 §5.1).
fn same_path(a: &str, b: &str) -> bool {
    let normal = |p: &str| match p.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
        None if p.eq_ignore_ascii_case("INBOX") => "INBOX".to_owned(),
        _ => p.to_owned(),
    };
    normal(a) == normal(b)
}

fn under(path: &str, parent: &str) -> bool {
    path.len() > parent.len() + 1
        && path.as_bytes()[parent.len()] == b'/'
        && same_path(&path[..parent.len()], parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder_map::FolderMapper;
    use crate::folder_map::test_support::{listed, ns};

    #[test]
    fn filters_follow_microsofts_rules() {
        let mapper = FolderMapper::new(ns("", '/'), None, ns("", '/'), &[]);
        let folder = |raw: &str| mapper.map(&listed(raw, '/', &[])).unwrap();
        let rules = |include: &[&str], exclude: &[&str]| {
            let own = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            FolderFilter::new(&own(include), &own(exclude)).unwrap()
        };
        let no_junk = rules(&[], &["#JunkEmail#", "Archive/*", "Projects/Alpha"]);
        assert!(!no_junk.allows(&folder("Spam")));
        assert!(!no_junk.allows(&folder("Archive")));
        assert!(!no_junk.allows(&folder("Archive/2023")));
        assert!(!no_junk.allows(&folder("Projects/Alpha")));
        assert!(no_junk.allows(&folder("Projects/Alpha/Specs")));
        assert!(no_junk.allows(&folder("INBOX")));
        let only_inbox = rules(&["#Inbox#/*"], &["inbox/private"]);
        assert!(only_inbox.allows(&folder("INBOX")));
        assert!(only_inbox.allows(&folder("INBOX/Lists")));
        assert!(!only_inbox.allows(&folder("INBOX/private")));
        assert!(!only_inbox.allows(&folder("Sent")));
        let error = FolderFilter::new(&["#Calendar#".into()], &[]).unwrap_err();
        assert!(error.to_string().contains("#Calendar#"));
    }
}
