//! Bringing flag changes made on the source to mailfleet's copies on the target.
//!
//! Three flag sets meet for each copy: what the source has now, what the target has now, and
//! what both had when they were last synced (the map of copies, `shared::uid_map`). The source
//! wins for what changed on the source since; a change made only on the target is kept:
//!
//! ```text
//! target_new = (target_now − removed_on_source) ∪ added_on_source
//! added_on_source = source_now − last_synced;  removed_on_source = last_synced − source_now
//! ```
//!
//! Writes are `UID STORE <set> FLAGS.SILENT (<flags>)` with copies grouped by their new flag set,
//! so a thousand messages marked read cost one command. Only flags the target can store go in
//! (`imap/flags.rs`: no `\Recent`, keywords only where PERMANENTFLAGS allow). Setting a computed
//! value, not adding or removing, makes a repeat after a crash write the same thing again.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::TryStreamExt;

use crate::error::WorkerError;
use crate::imap::ImapConnection;
use crate::imap::flags::{AppendFlags, PermanentFlags};
use crate::uid_set::uid_set;

/// The flags a copy should have now, or `None` when the target copy already has them.
pub fn merged_flags(
    source_now: &[String],
    last_synced: &[String],
    target_now: &[String],
) -> Option<Vec<String>> {
    let source_now = normalised(source_now);
    let last_synced = normalised(last_synced);
    let target_now = normalised(target_now);
    let merged: BTreeSet<String> = target_now
        .iter()
        .filter(|flag| source_now.contains(*flag) || !last_synced.contains(*flag))
        .chain(source_now.difference(&last_synced))
        .cloned()
        .collect();
    (merged != target_now).then(|| merged.into_iter().collect())
}

/// A flag set compared as a set: `\Recent` (session state) left out.
pub fn normalised(flags: &[String]) -> BTreeSet<String> {
    flags
        .iter()
        .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect()
}

/// Of `flags`, those the target stores, sorted: what a copy is given, and what the map keeps as
/// last synced (a keyword the target cannot store would otherwise look changed every pass).
pub fn storable(flags: &[String], permanent: &PermanentFlags) -> Vec<String> {
    let mut kept = AppendFlags::select(flags, permanent).kept;
    kept.sort();
    kept
}

/// Sets each target UID's flags to the given set, one `UID STORE … FLAGS.SILENT` per distinct
/// set, on the selected (read-write) target folder. Returns how many copies were written.
pub async fn store_flags(
    target: &mut ImapConnection,
    permanent: &PermanentFlags,
    wanted: &BTreeMap<u32, Vec<String>>,
) -> Result<u64, WorkerError> {
    let mut by_set: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for (&uid, flags) in wanted {
        by_set
            .entry(storable(flags, permanent))
            .or_default()
            .push(uid);
    }
    for (flags, uids) in &by_set {
        let command = format!("FLAGS.SILENT ({})", flags.join(" "));
        let set = uid_set(uids);
        target
            .run("UID STORE", |s| async move {
                s.uid_store(set, command)
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
        target.discard_unsolicited();
    }
    Ok(wanted.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn a_change_on_the_source_wins() {
        assert_eq!(
            merged_flags(&flags(&["\\Seen", "\\Flagged"]), &[], &[]),
            Some(flags(&["\\Flagged", "\\Seen"]))
        );
        assert_eq!(
            merged_flags(&[], &flags(&["\\Seen"]), &flags(&["\\Seen"])),
            Some(vec![]),
            "marked unread on the source"
        );
    }

    #[test]
    fn a_change_made_only_on_the_target_is_kept() {
        assert_eq!(
            merged_flags(
                &flags(&["\\Seen"]),
                &flags(&["\\Seen"]),
                &flags(&["\\Seen", "$Work"])
            ),
            None
        );
        assert_eq!(
            merged_flags(
                &flags(&["\\Seen", "\\Flagged"]),
                &flags(&["\\Seen"]),
                &flags(&["\\Answered"])
            ),
            Some(flags(&["\\Answered", "\\Flagged"])),
            "the source added \\Flagged; the target had removed \\Seen and answered"
        );
    }

    #[test]
    fn recent_is_never_compared_or_written() {
        assert_eq!(
            merged_flags(&flags(&["\\Recent"]), &[], &flags(&["\\Recent"])),
            None
        );
        let permanent = PermanentFlags::default();
        assert_eq!(
            storable(&flags(&["\\Recent", "\\Seen", "$Junk"]), &permanent),
            flags(&["\\Seen"]),
            "no keyword where PERMANENTFLAGS lists none"
        );
    }
}
