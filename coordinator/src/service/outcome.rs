//! What a finished pass means for each user's record: its state, counts and timings.

use chrono::Utc;
use mailfleet_shared::lifecycle::{PassKind, UserRecord};

use crate::run::{UserResult, UserStatus};

/// A user added to a batch after its initial sync gets its own initial sync in the next pass.
pub fn user_pass_kind(user: &UserRecord, kind: PassKind) -> PassKind {
    if kind == PassKind::Incremental && user.initial_sync_seconds.is_none() {
        PassKind::Initial
    } else {
        kind
    }
}

/// The user's record after a pass: counts as of this pass, copies added up over all passes.
pub fn record_outcome(
    user: &mut UserRecord,
    result: &UserResult,
    kind: PassKind,
    now: chrono::DateTime<Utc>,
) {
    let failed = result.status == UserStatus::Failed;
    let warned = result.items_skipped > 0 || !result.warnings.is_empty();
    user.state = kind.user_outcome(failed, warned);
    user.items_synced = result.items_synced;
    user.items_skipped = result.items_skipped;
    user.items_copied_total += result.items_copied;
    user.bytes_copied_total += result.bytes_copied;
    user.skipped = result.skipped.clone();
    user.flags_updated_total += result.flags_updated;
    user.moved_total += result.moved;
    user.renamed_folders_total += result.renamed_folders;
    user.deleted_total += result.deleted;
    user.deleted_on_source_kept = result.deleted_on_source_kept.clone();
    user.warnings = result.warnings.clone();
    user.errors = result.errors.clone();
    if !failed {
        user.last_successful_sync = Some(now);
    }
    match kind {
        PassKind::Initial => user.initial_sync_seconds = result.seconds,
        PassKind::Incremental | PassKind::Final => {
            user.last_incremental_sync_seconds = result.seconds;
        }
    }
}
