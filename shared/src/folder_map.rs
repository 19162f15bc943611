//! Source folder → target folder, and the batch's include/exclude rules.
//!
//! Servers disagree on almost everything about folder names (ARCHITECTURE.md, "Servers differ"):
//! Cyrus and Courier keep personal folders under `INBOX.`, Dovecot under nothing; separators are
//! `.` or `/`; names are modified UTF-7; the sent folder may be `Sent`, `Sent Items` or `Sent
//! Messages`. A name is therefore mapped through its meaning: decoded path components relative to
//! the personal namespace, with special-use folders landing in the target's own folder of that use.
//!
//! Two source folders of the same special use (`Sent` and `Sent Items`) both land in the target's
//! one sent folder; that merge is intended — a user has one sent folder after the migration.

use std::collections::{BTreeMap, HashMap};

use crate::mutf7;
use crate::server_profile::{ServerProfile, ServerRules};

/// A server's personal namespace (RFC 2342): `prefix` raw as the server writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    pub prefix: String,
    pub separator: Option<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    Inbox,
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
}

const WELL_KNOWN_NAMES: [(&str, SpecialUse); 14] = [
    ("Sent", SpecialUse::Sent),
    ("Sent Items", SpecialUse::Sent),
    ("Sent Messages", SpecialUse::Sent),
    ("Sent Mail", SpecialUse::Sent),
    ("Drafts", SpecialUse::Drafts),
    ("Trash", SpecialUse::Trash),
    ("Deleted Items", SpecialUse::Trash),
    ("Deleted Messages", SpecialUse::Trash),
    ("Junk", SpecialUse::Junk),
    ("Junk E-mail", SpecialUse::Junk),
    ("Junk Email", SpecialUse::Junk),
    ("Spam", SpecialUse::Junk),
    ("Archive", SpecialUse::Archive),
    ("Archives", SpecialUse::Archive),
];

impl SpecialUse {
    /// RFC 6154 LIST attributes.
    pub fn from_attribute(attribute: &str) -> Option<Self> {
        [
            ("\\Sent", SpecialUse::Sent),
            ("\\Drafts", SpecialUse::Drafts),
            ("\\Trash", SpecialUse::Trash),
            ("\\Junk", SpecialUse::Junk),
            ("\\Archive", SpecialUse::Archive),
        ]
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map(|(_, usage)| *usage)
    }

    /// Names servers without SPECIAL-USE give these folders (top level only).
    pub fn from_well_known_name(decoded_leaf: &str) -> Option<Self> {
        WELL_KNOWN_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(decoded_leaf))
            .map(|(_, usage)| *usage)
    }

    pub fn default_name(&self) -> &'static str {
        match self {
            SpecialUse::Inbox => "INBOX",
            SpecialUse::Sent => "Sent",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Trash => "Trash",
            SpecialUse::Junk => "Junk",
            SpecialUse::Archive => "Archive",
        }
    }
}

/// One line of a LIST response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFolder {
    pub raw_name: String,
    pub separator: Option<char>,
    pub attributes: Vec<String>,
}

impl ListedFolder {
    fn has_attribute(&self, wanted: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(wanted))
    }

    fn selectable(&self) -> bool {
        !self.has_attribute("\\Noselect") && !self.has_attribute("\\NonExistent")
    }

    fn attribute_use(&self) -> Option<SpecialUse> {
        self.attributes
            .iter()
            .find_map(|a| SpecialUse::from_attribute(a))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedFolder {
    /// Raw source name; empty for a parent that exists only on the target's side of the map.
    pub source_name: String,
    /// Raw target name, encoded for the target.
    pub target_name: String,
    /// Decoded path joined with `/`, for people.
    pub display_name: String,
    /// Decoded components relative to the personal namespace; INBOX is `"INBOX"`.
    pub path: Vec<String>,
    pub special_use: Option<SpecialUse>,
    /// False for hierarchy-only parents (`\Noselect`, or created only to hold children).
    pub selectable: bool,
    /// Why the target name is not the source name, when the target's rules renamed it
    /// (reserved name, separator inside a name): reported, never silent.
    pub renamed: Option<String>,
}

/// A source folder that is not migrated, with a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSkip {
    pub source_name: String,
    pub display_name: String,
    pub reason: String,
}

pub struct FolderMapper {
    source: Namespace,
    user_root: Option<String>,
    target: Namespace,
    /// The target's own special folders: use → decoded path.
    target_special: BTreeMap<SpecialUse, Vec<String>>,
    rules: &'static ServerRules,
}

impl FolderMapper {
    pub fn new(
        source: Namespace,
        user_root: Option<String>,
        target: Namespace,
        target_folders: &[ListedFolder],
    ) -> Self {
        let mut mapper = FolderMapper {
            source,
            user_root,
            target,
            target_special: BTreeMap::new(),
            rules: ServerProfile::Generic.rules(),
        };
        // Attribute-marked folders win over folders that merely have a well-known name.
        let mut by_name = BTreeMap::new();
        for folder in target_folders {
            let Ok(path) = relative_path(&folder.raw_name, &mapper.target, None) else {
                continue;
            };
            if let Some(usage) = folder.attribute_use() {
                mapper.target_special.entry(usage).or_insert(path);
            } else if let [leaf] = path.as_slice()
                && let Some(usage) = SpecialUse::from_well_known_name(leaf)
            {
                by_name.entry(usage).or_insert(path);
            }
        }
        for (usage, path) in by_name {
            mapper.target_special.entry(usage).or_insert(path);
        }
        mapper
    }

    /// Applies the target's naming rules (reserved names, what replaces its separator).
    pub fn with_rules(mut self, rules: &'static ServerRules) -> Self {
        self.rules = rules;
        self
    }

    pub fn map(&self, folder: &ListedFolder) -> Result<MappedFolder, FolderSkip> {
        let skip = |display: &str, reason: String| FolderSkip {
            source_name: folder.raw_name.clone(),
            display_name: display.to_owned(),
            reason,
        };
        let source_ns = Namespace {
            separator: folder.separator.or(self.source.separator),
            ..self.source.clone()
        };
        let path = relative_path(&folder.raw_name, &source_ns, self.user_root.as_deref())
            .map_err(|reason| skip(&lossy_display(&folder.raw_name), reason))?;
        let display = path.join("/");
        let special_use = if is_inbox(&path) {
            Some(SpecialUse::Inbox)
        } else {
            folder.attribute_use().or_else(|| match path.as_slice() {
                [leaf] => SpecialUse::from_well_known_name(leaf),
                _ => None,
            })
        };
        let target_path = match special_use {
            Some(SpecialUse::Inbox) | None => path.clone(),
            Some(usage) => self
                .target_special
                .get(&usage)
                .cloned()
                .unwrap_or_else(|| vec![usage.default_name().to_owned()]),
        };
        let target_name = self
            .target_name(&target_path)
            .map_err(|reason| skip(&display, reason))?;
        let renamed = self.rename_reason(&target_path);
        Ok(MappedFolder {
            source_name: folder.raw_name.clone(),
            target_name,
            display_name: target_path.join("/"),
            path: target_path,
            special_use,
            selectable: folder.selectable(),
            renamed,
        })
    }

    /// Maps every folder and adds the parents the target hierarchy needs, parents before
    /// children, INBOX first.
    pub fn map_all(&self, folders: &[ListedFolder]) -> (Vec<MappedFolder>, Vec<FolderSkip>) {
        let mut mapped = Vec::new();
        let mut skipped = Vec::new();
        for folder in folders {
            match self.map(folder) {
                Ok(m) => mapped.push(m),
                Err(skip) => skipped.push(skip),
            }
        }
        if self.rules.case_insensitive_names {
            self.separate_names_equal_but_for_case(&mut mapped);
        }
        let mut parents = Vec::new();
        for folder in &mapped {
            for depth in 1..folder.path.len() {
                let parent = &folder.path[..depth];
                let known = mapped
                    .iter()
                    .chain(&parents)
                    .any(|m: &MappedFolder| m.path == parent);
                if !known && let Ok(target_name) = self.target_name(parent) {
                    parents.push(MappedFolder {
                        source_name: String::new(),
                        target_name,
                        display_name: parent.join("/"),
                        path: parent.to_vec(),
                        special_use: None,
                        selectable: false,
                        renamed: None,
                    });
                }
            }
        }
        mapped.extend(parents);
        mapped.sort_by(|a, b| {
            (!is_inbox(&a.path[..1]), &a.path).cmp(&(!is_inbox(&b.path[..1]), &b.path))
        });
        (mapped, skipped)
    }

    /// Encodes a decoded path for the target: its separator, its prefix, modified UTF-7.
    fn target_name(&self, path: &[String]) -> Result<String, String> {
        let separator = self.target.separator.unwrap_or('/');
        if self.target.separator.is_none() && path.len() > 1 {
            return Err(format!(
                "the target has no folder hierarchy, so {} cannot be created",
                path.join("/")
            ));
        }
        let components = self.target_components(path, separator);
        let joined = components.join(&separator.to_string());
        let inbox_prefix = self
            .target
            .prefix
            .eq_ignore_ascii_case(&format!("INBOX{separator}"));
        let prefix = if is_inbox(&path[..1]) && (inbox_prefix || path.len() == 1) {
            ""
        } else {
            self.target.prefix.as_str()
        };
        Ok(format!("{prefix}{}", mutf7::encode(&joined)))
    }
}

impl FolderMapper {
    /// The path's components as the target can hold them: a reserved top-level name replaced,
    /// the target's separator inside a name replaced.
    fn target_components(&self, path: &[String], separator: char) -> Vec<String> {
        path.iter()
            .enumerate()
            .map(|(depth, component)| {
                let reserved = (depth == 0)
                    .then(|| self.reserved_replacement(component))
                    .flatten();
                reserved
                    .unwrap_or(component)
                    .replace(separator, self.rules.separator_replacement)
            })
            .collect()
    }

    /// On a target whose names are case-insensitive, `Work` and `work` would be one folder
    /// (Exchange refuses the second CREATE as existing and fills the first with both). In path
    /// order (so `Work` before `work`, the same on every run over the same folders), a level
    /// that meets an earlier folder's level but for case becomes `work (2)` (the next free
    /// number), its subfolders with it, and the rename is reported. Folders that map to exactly
    /// the same name (two sent folders into the target's one) still merge, as intended.
    fn separate_names_equal_but_for_case(&self, mapped: &mut [MappedFolder]) {
        let separator = self.target.separator.unwrap_or('/');
        let folded = |path: &[String]| -> Vec<String> {
            let components = self.target_components(path, separator);
            components.iter().map(|c| c.to_lowercase()).collect()
        };
        mapped.sort_by(|a, b| a.path.cmp(&b.path));
        // Case-folded target path → the exact path that claimed it.
        let mut claimed: HashMap<Vec<String>, Vec<String>> = HashMap::new();
        for folder in mapped.iter_mut() {
            let mut path: Vec<String> = Vec::new();
            for component in &folder.path {
                let mut candidate = component.clone();
                for number in 2.. {
                    path.push(candidate.clone());
                    let exact = claimed.entry(folded(&path)).or_insert_with(|| path.clone());
                    if *exact == path {
                        break;
                    }
                    path.pop();
                    candidate = format!("{component} ({number})");
                }
            }
            if path == folder.path {
                continue;
            }
            let Ok(target_name) = self.target_name(&path) else {
                continue;
            };
            let rename = format!(
                "folder {} renamed to {} on the target: the target's folder names are \
                 case-insensitive and another folder has this name but for case",
                folder.path.join("/"),
                path.join("/")
            );
            folder.renamed = Some(match folder.renamed.take() {
                Some(earlier) => format!("{earlier}; {rename}"),
                None => rename,
            });
            folder.target_name = target_name;
            folder.display_name = path.join("/");
            folder.path = path;
        }
    }

    fn reserved_replacement(&self, name: &str) -> Option<&'static str> {
        self.rules
            .reserved_names
            .iter()
            .find(|(reserved, _)| reserved.eq_ignore_ascii_case(name))
            .map(|(_, replacement)| *replacement)
    }

    /// Says why `path` lands under another name, or `None` when it keeps its own.
    fn rename_reason(&self, path: &[String]) -> Option<String> {
        let separator = self.target.separator?;
        let components = self.target_components(path, separator);
        if components == path {
            return None;
        }
        let mut why = Vec::new();
        if path
            .first()
            .is_some_and(|top| self.reserved_replacement(top).is_some())
        {
            why.push(format!("the target reserves the name {}", path[0]));
        }
        if path.iter().any(|c| c.contains(separator)) {
            why.push(format!(
                "the target cannot have '{separator}' inside a folder name"
            ));
        }
        Some(format!(
            "folder {} renamed to {} on the target: {}",
            path.join("/"),
            components.join("/"),
            why.join("; ")
        ))
    }
}

fn is_inbox(path: &[String]) -> bool {
    matches!(path.first(), Some(first) if first.eq_ignore_ascii_case("INBOX"))
}

/// Decoded components of `raw` relative to `namespace` (and a Courier-style `user_root`).
fn relative_path(
    raw: &str,
    namespace: &Namespace,
    user_root: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut rest = raw;
    if let Some(root) = user_root {
        let separator = namespace.separator.map(String::from).unwrap_or_default();
        let root = root.strip_suffix(separator.as_str()).unwrap_or(root);
        if rest == root {
            return Ok(vec!["INBOX".to_owned()]);
        }
        rest = rest
            .strip_prefix(root)
            .and_then(|r| r.strip_prefix(separator.as_str()))
            .ok_or_else(|| format!("folder {raw} is outside the user's root {root}"))?;
    } else if rest.eq_ignore_ascii_case("INBOX") {
        return Ok(vec!["INBOX".to_owned()]);
    } else if !namespace.prefix.is_empty() {
        rest = rest.strip_prefix(namespace.prefix.as_str()).unwrap_or(rest);
    }
    let decoded = mutf7::decode(rest).map_err(|e| e.to_string())?;
    let components: Vec<String> = match namespace.separator {
        Some(separator) => decoded.split(separator).map(str::to_owned).collect(),
        None => vec![decoded],
    };
    if components.iter().any(String::is_empty) {
        return Err(format!("folder name {raw} has an empty level"));
    }
    if components[0].eq_ignore_ascii_case("INBOX") {
        let mut components = components;
        components[0] = "INBOX".to_owned();
        return Ok(components);
    }
    Ok(components)
}

fn lossy_display(raw: &str) -> String {
    mutf7::decode(raw).unwrap_or_else(|_| raw.to_owned())
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{ListedFolder, Namespace};

    pub(crate) fn listed(raw: &str, separator: char, attributes: &[&str]) -> ListedFolder {
        ListedFolder {
            raw_name: raw.to_owned(),
            separator: Some(separator),
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub(crate) fn ns(prefix: &str, separator: char) -> Namespace {
        Namespace {
            prefix: prefix.to_owned(),
            separator: Some(separator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{listed, ns};
    use super::*;

    fn target_names(
        mapper: &FolderMapper,
        folders: &[ListedFolder],
    ) -> Vec<(String, String, bool)> {
        let (mapped, skipped) = mapper.map_all(folders);
        assert!(skipped.is_empty(), "{skipped:?}");
        mapped
            .into_iter()
            .map(|m| (m.target_name, m.display_name, m.selectable))
            .collect()
    }

    fn t(target: &str, display: &str, selectable: bool) -> (String, String, bool) {
        (target.to_owned(), display.to_owned(), selectable)
    }

    #[test]
    fn dovecot_to_dovecot_keeps_names_and_adds_missing_parents() {
        let mapper = FolderMapper::new(ns("", '/'), None, ns("", '/'), &[]);
        let folders = [
            listed("Projects/Alpha/Specs", '/', &[]),
            listed("INBOX", '/', &[]),
            listed("Deep", '/', &["\\Noselect", "\\HasChildren"]),
            listed("Deep/a/b", '/', &[]),
            listed("Entw&APw-rfe", '/', &[]),
        ];
        assert_eq!(
            target_names(&mapper, &folders),
            vec![
                t("INBOX", "INBOX", true),
                t("Deep", "Deep", false),
                t("Deep/a", "Deep/a", false),
                t("Deep/a/b", "Deep/a/b", true),
                t("Entw&APw-rfe", "Entwürfe", true),
                t("Projects", "Projects", false),
                t("Projects/Alpha", "Projects/Alpha", false),
                t("Projects/Alpha/Specs", "Projects/Alpha/Specs", true),
            ]
        );
    }

    #[test]
    fn cyrus_source_prefix_is_stripped_for_a_prefixless_target() {
        let mapper = FolderMapper::new(ns("INBOX.", '.'), None, ns("", '/'), &[]);
        let folders = [
            listed("INBOX", '.', &[]),
            listed("INBOX.Sent", '.', &[]),
            listed("INBOX.Projects", '.', &[]),
            listed("INBOX.Projects.2024", '.', &[]),
        ];
        assert_eq!(
            target_names(&mapper, &folders),
            vec![
                t("INBOX", "INBOX", true),
                t("Projects", "Projects", true),
                t("Projects/2024", "Projects/2024", true),
                t("Sent", "Sent", true),
            ]
        );
    }

    #[test]
    fn dovecot_source_to_cyrus_target_gets_the_prefix() {
        let mapper = FolderMapper::new(ns("", '/'), None, ns("INBOX.", '.'), &[]);
        let folders = [
            listed("INBOX", '/', &[]),
            listed("Sent", '/', &["\\Sent"]),
            listed("a/b", '/', &[]),
        ];
        assert_eq!(
            target_names(&mapper, &folders),
            vec![
                t("INBOX", "INBOX", true),
                t("INBOX.Sent", "Sent", true),
                t("INBOX.a", "a", false),
                t("INBOX.a.b", "a/b", true),
            ]
        );
        let inbox_child = mapper.map(&listed("INBOX/Old", '/', &[])).unwrap();
        assert_eq!(inbox_child.target_name, "INBOX.Old");
    }

    #[test]
    fn special_folders_land_in_the_targets_own() {
        let target = [
            listed("Sent Items", '/', &[]),
            listed("Deleted", '/', &["\\Trash"]),
        ];
        let mapper = FolderMapper::new(ns("", '/'), None, ns("", '/'), &target);
        let sent = mapper.map(&listed("Gesendet", '/', &["\\Sent"])).unwrap();
        assert_eq!(
            (sent.target_name.as_str(), sent.special_use),
            ("Sent Items", Some(SpecialUse::Sent))
        );
        let trash = mapper.map(&listed("Trash", '/', &[])).unwrap();
        assert_eq!(trash.target_name, "Deleted");
        let junk = mapper.map(&listed("Spam", '/', &[])).unwrap();
        assert_eq!(junk.target_name, "Junk");
        let nested = mapper.map(&listed("Projects/Sent", '/', &[])).unwrap();
        assert_eq!(
            (nested.target_name.as_str(), nested.special_use),
            ("Projects/Sent", None)
        );
    }

    #[test]
    fn target_separator_inside_a_name_is_replaced_and_bad_names_are_skipped_with_reason() {
        let mapper = FolderMapper::new(ns("", '/'), None, ns("", '.'), &[]);
        let dotted = mapper.map(&listed("v1.2 notes", '/', &[])).unwrap();
        assert_eq!(
            (dotted.target_name.as_str(), dotted.display_name.as_str()),
            ("v1_2 notes", "v1.2 notes")
        );
        let (_, skipped) =
            mapper.map_all(&[listed("a//b", '/', &[]), listed("bad&-x&Zm9v", '/', &[])]);
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].reason.contains("empty level"));
        assert!(skipped[1].reason.contains("modified UTF-7"));
    }

    #[test]
    fn m365_rules_rename_reserved_names_and_separators_and_say_so() {
        let mapper = FolderMapper::new(ns("", '.'), None, ns("", '/'), &[])
            .with_rules(ServerProfile::M365.rules());
        let (mapped, _) = mapper.map_all(&[
            listed("Files", '.', &[]),
            listed("Files.Sub", '.', &[]),
            listed("A/B", '.', &[]),
            listed("Work", '.', &[]),
        ]);
        let names: Vec<(&str, Option<&str>)> = mapped
            .iter()
            .map(|m| (m.target_name.as_str(), m.renamed.as_deref()))
            .collect();
        assert_eq!(names[0].0, "A-B");
        assert!(names[0].1.unwrap().contains("'/' inside a folder name"));
        assert_eq!(names[1].0, "Files (migrated)");
        assert!(names[1].1.unwrap().contains("reserves the name Files"));
        assert_eq!(names[2].0, "Files (migrated)/Sub");
        assert_eq!(names[3], ("Work", None));
    }

    #[test]
    fn m365_rules_give_names_equal_but_for_case_distinct_names() {
        let mapper = FolderMapper::new(ns("", '/'), None, ns("", '/'), &[])
            .with_rules(ServerProfile::M365.rules());
        let (mapped, _) = mapper.map_all(&[
            listed("work", '/', &[]),
            listed("work/Notes", '/', &[]),
            listed("Work", '/', &[]),
            listed("WORK", '/', &[]),
            listed("Sent", '/', &[]),
            listed("Sent Items", '/', &[]),
        ]);
        let names: Vec<(&str, &str, bool)> = mapped
            .iter()
            .map(|m| {
                let renamed = m
                    .renamed
                    .as_deref()
                    .is_some_and(|r| r.contains("case-insensitive"));
                (m.source_name.as_str(), m.target_name.as_str(), renamed)
            })
            .collect();
        assert_eq!(
            names,
            [
                ("Sent", "Sent", false),
                ("Sent Items", "Sent", false),
                ("WORK", "WORK", false),
                ("Work", "Work (2)", true),
                ("work", "work (3)", true),
                ("work/Notes", "work (3)/Notes", true),
            ]
        );
        // Without the rule (generic), each keeps its name.
        let generic = FolderMapper::new(ns("", '/'), None, ns("", '/'), &[]);
        let (mapped, _) = generic.map_all(&[listed("work", '/', &[]), listed("Work", '/', &[])]);
        assert!(mapped.iter().all(|m| m.renamed.is_none()));
    }

    #[test]
    fn courier_user_root_scopes_the_users_folders() {
        let mapper = FolderMapper::new(ns("", '.'), Some("user.alice".into()), ns("", '/'), &[]);
        assert_eq!(
            mapper
                .map(&listed("user.alice", '.', &[]))
                .unwrap()
                .target_name,
            "INBOX"
        );
        assert_eq!(
            mapper
                .map(&listed("user.alice.Work.2024", '.', &[]))
                .unwrap()
                .target_name,
            "Work/2024"
        );
        assert!(
            mapper
                .map(&listed("user.bob.Work", '.', &[]))
                .unwrap_err()
                .reason
                .contains("outside")
        );
    }
}
