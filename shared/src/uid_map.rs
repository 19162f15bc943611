//! Which target message is mailfleet's copy of which source message, per (user, folder), with
//! the flags both had when they were last synced: what an incremental pass needs to carry what
//! users did on the source since (flag changes, moves, deletions) to the right target copies.
//!
//! Stored next to the folder's checkpoint ([`CheckpointStore::load_uid_map`]). Compact: flag
//! sets are stored once each, and consecutive source UIDs whose copies have consecutive target
//! UIDs and the same flags are one run `[source, target, length, flag set]`, so a folder copied
//! in one go costs a few runs per distinct flag combination rather than one entry per message.
//!
//! Only copies mailfleet made or claimed are in the map; a message that arrived on the target by
//! itself never is, so nothing driven by the map can touch it (ARCHITECTURE.md, rule 6).
//!
//! [`CheckpointStore::load_uid_map`]: crate::checkpoint::CheckpointStore::load_uid_map

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One source message and its copy on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedMessage {
    pub source_uid: u32,
    pub target_uid: u32,
    /// Flags as last synced (what the source had and the target was given), sorted.
    pub flags: Vec<String>,
}

/// The stored form; see the module doc. Build it with [`UidMap::new`] and
/// [`UidMap::set_entries`], read it with [`UidMap::entries`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidMap {
    /// The target folder the copies are in (its raw name), so that a folder renamed on the
    /// source can be renamed on the target (the worker's `renames`).
    #[serde(default)]
    pub target_folder: String,
    pub source_uidvalidity: u32,
    pub target_uidvalidity: u32,
    /// Source UIDs up to this one have been matched with their copies (or had none).
    pub source_covered: u32,
    /// Target UIDs up to this one have been looked at.
    pub target_covered: u32,
    /// The source folder's HIGHESTMODSEQ (CONDSTORE, RFC 7162) when flags were last mirrored:
    /// later changes have higher mod-sequences. 0 when unknown (every flag is compared).
    #[serde(default)]
    pub highest_modseq: u64,
    /// The folder's checkpoint when the mirror last looked at it: its last source UID and its
    /// target UID mark. Source messages above the first, and target messages above the second,
    /// arrived since (new mail, or a message moved in on the source, perhaps copied by that very
    /// pass); a message that left another folder since may have gone there (the worker's
    /// `mirror`). 0 before any mirror: everything counts as arrived.
    #[serde(default)]
    pub mirrored_source_uid: u32,
    #[serde(default)]
    pub mirrored_target_uid: u32,
    /// Distinct flag sets, each sorted; runs refer to them by index.
    #[serde(default)]
    flag_sets: Vec<Vec<String>>,
    /// `[first source UID, first target UID, length, flag set index]`, ascending by source UID.
    #[serde(default)]
    runs: Vec<[u32; 4]>,
}

impl UidMap {
    /// An empty map for a folder under these UIDVALIDITYs.
    pub fn new(source_uidvalidity: u32, target_uidvalidity: u32) -> Self {
        UidMap {
            source_uidvalidity,
            target_uidvalidity,
            ..UidMap::default()
        }
    }

    /// Whether the map belongs to the folders as they are now: a new UIDVALIDITY on either side
    /// makes every stored UID meaningless.
    pub fn is_valid_for(&self, source_uidvalidity: u32, target_uidvalidity: u32) -> bool {
        self.source_uidvalidity == source_uidvalidity
            && self.target_uidvalidity == target_uidvalidity
    }

    /// Every mapped message, ascending by source UID.
    pub fn entries(&self) -> Vec<MappedMessage> {
        let mut entries = Vec::new();
        for &[source, target, length, set] in &self.runs {
            let flags = self
                .flag_sets
                .get(set as usize)
                .cloned()
                .unwrap_or_default();
            for offset in 0..length {
                entries.push(MappedMessage {
                    source_uid: source + offset,
                    target_uid: target + offset,
                    flags: flags.clone(),
                });
            }
        }
        entries
    }

    pub fn len(&self) -> usize {
        self.runs.iter().map(|run| run[2] as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Replaces the mapped messages (any order; flags are sorted here).
    pub fn set_entries(&mut self, entries: impl IntoIterator<Item = MappedMessage>) {
        let sorted: BTreeMap<u32, MappedMessage> = entries
            .into_iter()
            .map(|mut entry| {
                entry.flags.sort();
                entry.flags.dedup();
                (entry.source_uid, entry)
            })
            .collect();
        self.flag_sets.clear();
        self.runs.clear();
        for entry in sorted.into_values() {
            let set = match self.flag_sets.iter().position(|s| *s == entry.flags) {
                Some(index) => index,
                None => {
                    self.flag_sets.push(entry.flags);
                    self.flag_sets.len() - 1
                }
            } as u32;
            match self.runs.last_mut() {
                Some(run)
                    if run[3] == set
                        && run[0] + run[2] == entry.source_uid
                        && run[1] + run[2] == entry.target_uid =>
                {
                    run[2] += 1;
                }
                _ => self.runs.push([entry.source_uid, entry.target_uid, 1, set]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source_uid: u32, target_uid: u32, flags: &[&str]) -> MappedMessage {
        MappedMessage {
            source_uid,
            target_uid,
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn consecutive_copies_with_equal_flags_are_one_run() {
        let mut map = UidMap::new(1, 2);
        map.set_entries((1..=1000).map(|uid| entry(uid, uid + 10, &["\\Seen"])));
        assert_eq!(map.runs.len(), 1);
        assert_eq!(map.len(), 1000);
        // A fixed few hundred bytes a folder (its UIDVALIDITYs, marks and mod-sequence), none
        // per message.
        let json = serde_json::to_string(&map).unwrap();
        assert!(json.len() < 256, "{json}");
    }

    #[test]
    fn entries_come_back_as_set_sorted_with_flags_normalised() {
        let mut map = UidMap::new(1, 2);
        let given = vec![
            entry(7, 3, &["\\Seen", "\\Flagged"]),
            entry(2, 1, &[]),
            entry(3, 2, &[]),
            entry(9, 4, &["\\Seen"]),
        ];
        map.set_entries(given);
        assert_eq!(
            map.entries(),
            vec![
                entry(2, 1, &[]),
                entry(3, 2, &[]),
                entry(7, 3, &["\\Flagged", "\\Seen"]),
                entry(9, 4, &["\\Seen"]),
            ]
        );
        assert_eq!(map.runs.len(), 3, "2-3 are one run");
        let round_trip: UidMap =
            serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
        assert_eq!(round_trip, map);
    }

    /// What a map costs per message in the store (BENCHMARKS.md, "Maps of copies"): a
    /// mailbox of 10,000 messages whose flags change every few messages, as read mail,
    /// answered and flagged mail interleave, and the worst case, every message in its own run.
    #[test]
    fn a_map_costs_a_few_bytes_per_message_and_at_most_one_run_each() {
        let per_message = |flags_of: &dyn Fn(u32) -> &'static [&'static str]| {
            let mut map = UidMap::new(1, 2);
            map.set_entries((1..=10_000).map(|uid| entry(uid, uid, flags_of(uid))));
            serde_json::to_string(&map).unwrap().len() as f64 / 10_000.0
        };
        // Every 7th message unread, every 13th answered, every 50th flagged.
        let typical = per_message(&|uid| match (uid % 7, uid % 13, uid % 50) {
            (0, _, _) => &[],
            (_, 0, _) => &["\\Answered", "\\Seen"],
            (_, _, 0) => &["\\Flagged", "\\Seen"],
            _ => &["\\Seen"],
        });
        let worst = per_message(&|uid| if uid % 2 == 0 { &["\\Seen"] } else { &[] });
        eprintln!("map of copies: {typical:.1} bytes a message typical, {worst:.1} worst");
        assert!(typical < 8.0, "{typical}");
        assert!(worst < 24.0, "{worst}");
    }
}
