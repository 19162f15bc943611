//! `\Flagged` set again after APPEND, where the target's profile says APPEND does not keep it
//! reliably (Exchange Online; imapsync does the same), then read back and checked: a flag the
//! target still lacks is reported, never assumed (ARCHITECTURE.md, rule 4).

use async_imap::types::Flag;
use futures_util::TryStreamExt;

use crate::copy_map::leave_selected;
use crate::error::WorkerError;
use crate::imap::ImapConnection;
use crate::imap::quote::quotable;
use crate::uid_set::uid_set;

/// Adds `\Flagged` to the copies `uids` of `folder` on the target and returns those that still
/// lack it when read back. Leaves the folder unselected without expunging anything.
pub async fn set_flagged_again(
    target: &mut ImapConnection,
    folder: &str,
    uids: &[u32],
) -> Result<Vec<u32>, WorkerError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let name = quotable(folder)?;
    target.run("SELECT", |s| s.select(name)).await?;
    let set = uid_set(uids);
    let store_set = set.clone();
    target
        .run("UID STORE", |s| async move {
            s.uid_store(store_set, "+FLAGS.SILENT (\\Flagged)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    target.discard_unsolicited();
    let fetched = target
        .run("UID FETCH FLAGS", |s| async move {
            s.uid_fetch(set, "(UID FLAGS)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    let flagged: Vec<u32> = fetched
        .iter()
        .filter(|f| f.flags().any(|flag| matches!(flag, Flag::Flagged)))
        .filter_map(|f| f.uid)
        .collect();
    target.discard_unsolicited();
    leave_selected(target, folder).await?;
    Ok(uids
        .iter()
        .copied()
        .filter(|uid| !flagged.contains(uid))
        .collect())
}
