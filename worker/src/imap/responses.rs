//! Collecting the untagged responses of one command, at most a bound of them.
//!
//! async-imap hands a command's responses over as a stream and goes on reading as long as the
//! server sends. Collected whole, a server answering without end would take the worker's memory
//! (each response keeps a buffer of at least 4 KiB), and when its responses carry literals no
//! answer timeout stops it either (see [`super::guard`]). Every answer collected in memory has a
//! bound known in advance: the folder limit for LIST; for FETCH, the messages asked for plus
//! [`UNSOLICITED_ROOM`].

use futures_util::{Stream, TryStreamExt};

/// Room for untagged FETCH responses nobody asked for (flag changes another client made),
/// beside those asked for.
pub const UNSOLICITED_ROOM: usize = 1000;

/// Collects `responses`, each as `keep` makes it, up to `max`: `None` when the server sent more.
pub async fn at_most<I, T>(
    mut responses: impl Stream<Item = async_imap::error::Result<I>> + Unpin,
    max: usize,
    mut keep: impl FnMut(I) -> T,
) -> async_imap::error::Result<Option<Vec<T>>> {
    let mut kept = Vec::new();
    while let Some(response) = responses.try_next().await? {
        if kept.len() == max {
            return Ok(None);
        }
        kept.push(keep(response));
    }
    Ok(Some(kept))
}

/// The most FETCH responses an answer about `asked` messages may hold.
pub fn fetch_bound(asked: usize) -> usize {
    asked.saturating_add(UNSOLICITED_ROOM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_over_the_bound_is_cut_off_not_collected() {
        let answer = |n: u32| futures_util::stream::iter((0..n).map(Ok));
        let within = at_most(answer(3), 3, |n| n * 2).await.unwrap();
        assert_eq!(within, Some(vec![0, 2, 4]));
        let endless = futures_util::stream::repeat_with(|| Ok(7u32));
        assert_eq!(at_most(endless, 1000, |n| n).await.unwrap(), None);
    }
}
