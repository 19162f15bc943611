//! Folder mapping (namespaces, separators, special use) and the include/exclude rules, on
//! folder lists a server could send. The input's first bytes pick the two servers' namespaces;
//! each further line is one listed folder. Properties: every folder is mapped or skipped with a
//! reason, target names are printable modified UTF-7 with the target's separator only between
//! levels, parents come before children with INBOX first, and rules naming a folder select it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfleet_shared::folder_filter::FolderFilter;
use mailfleet_shared::folder_map::{FolderMapper, ListedFolder, MappedFolder, Namespace};
use mailfleet_shared::mutf7;

const SEPARATORS: [Option<char>; 3] = [Some('/'), Some('.'), None];
const ATTRIBUTES: [&[&str]; 6] = [
    &[],
    &["\\Sent"],
    &["\\Noselect"],
    &["\\Trash", "\\HasNoChildren"],
    &["\\junk"],
    &["\\NonExistent"],
];

/// No prefix (Dovecot, Exchange) or `INBOX` and the separator (Cyrus, Courier); or a server
/// without hierarchy.
fn namespace(choice: u8) -> Namespace {
    let separator = SEPARATORS[usize::from(choice) % SEPARATORS.len()];
    let prefix = match separator {
        Some(separator) if choice & 0x80 != 0 => format!("INBOX{separator}"),
        _ => String::new(),
    };
    Namespace { prefix, separator }
}

fuzz_target!(|data: &[u8]| {
    let [source_choice, target_choice, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let source = namespace(*source_choice);
    let target = namespace(*target_choice);
    let folders: Vec<ListedFolder> = text
        .split('\n')
        .enumerate()
        .map(|(i, name)| ListedFolder {
            raw_name: name.to_owned(),
            separator: source.separator,
            attributes: ATTRIBUTES[(i + name.len()) % ATTRIBUTES.len()]
                .iter()
                .map(|a| a.to_string())
                .collect(),
        })
        .collect();
    let mapper = FolderMapper::new(source, None, target.clone(), &folders);
    let (mapped, skipped) = mapper.map_all(&folders);

    for folder in &folders {
        let is_mapped = mapped.iter().any(|m| m.source_name == folder.raw_name);
        let is_skipped = skipped.iter().any(|s| s.source_name == folder.raw_name);
        assert!(
            is_mapped || is_skipped,
            "{:?} neither mapped nor skipped",
            folder.raw_name
        );
    }
    for skip in &skipped {
        assert!(!skip.reason.is_empty());
    }
    let target_separator = target.separator.unwrap_or('/');
    for (index, folder) in mapped.iter().enumerate() {
        assert!(!folder.path.is_empty());
        assert!(folder.path.iter().all(|c| !c.is_empty()));
        assert_eq!(folder.display_name, folder.path.join("/"));
        let name = &folder.target_name;
        assert!(
            name.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "target name {name:?}"
        );
        let decoded = mutf7::decode(name).expect("a target name is modified UTF-7");
        // INBOX and its children are never under a prefix: on an `INBOX.` server they already
        // are what the prefix names.
        let without_prefix = match in_inbox(folder) {
            true => decoded.as_str(),
            false => decoded
                .strip_prefix(target.prefix.as_str())
                .unwrap_or(&decoded),
        };
        let levels: Vec<&str> = match target.separator {
            Some(separator) => without_prefix.split(separator).collect(),
            None => vec![without_prefix],
        };
        // A separator inside a level is written `_`: `a/b` on a `/` target is one level `a_b`.
        let expected: Vec<String> = folder
            .path
            .iter()
            .map(|level| level.replace(target_separator, "_"))
            .collect();
        assert_eq!(
            levels, expected,
            "target name {name:?} for path {:?}",
            folder.path
        );
        if folder.path.len() > 1 {
            let parent = &folder.path[..folder.path.len() - 1];
            assert!(
                mapped[..index].iter().any(|m| m.path == parent),
                "{:?} comes before its parent",
                folder.path
            );
        }
        if in_inbox(folder) {
            assert!(mapped[..index].iter().all(in_inbox), "INBOX is not first");
        }
        check_rules(folder);
    }
});

fn in_inbox(folder: &MappedFolder) -> bool {
    folder.path[0] == "INBOX"
}

/// A rule naming a folder's own display name selects it, and excluding it always wins.
fn check_rules(folder: &MappedFolder) {
    let own = |rules: &[&str]| rules.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    let everything = FolderFilter::new(&[], &[]).unwrap();
    assert!(everything.allows(folder));
    let name = folder.display_name.as_str();
    if name.trim() != name || name.starts_with('#') || name.starts_with('/') || name.ends_with('/')
    {
        return;
    }
    let subtree = format!("{name}/*");
    let first = format!("{}/*", folder.path[0]);
    let rules = [
        (own(&[name]), own(&[]), true),
        (own(&[&subtree]), own(&[]), true),
        (own(&[&first]), own(&[]), true),
        (own(&[]), own(&[name]), false),
        (own(&[&subtree]), own(&[name]), false),
    ];
    for (include, exclude, allowed) in rules {
        if let Ok(filter) = FolderFilter::new(&include, &exclude) {
            if include.iter().chain(&exclude).any(|r| r.trim() != r) {
                continue;
            }
            assert_eq!(
                filter.allows(folder),
                allowed,
                "include {include:?} exclude {exclude:?} on {name:?}"
            );
        }
    }
}
