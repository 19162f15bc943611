//! Reading a screen's worth of a batch's users instead of all of them: which users a page of the
//! API's users list holds ([`UserQuery`]), and how many users are in each state
//! ([`StateTally`]). A batch holds up to 50,000 users; the state stores answer both in SQL
//! from their indexes, and [`select`] and [`tally`] say here, over the users in memory, what
//! the answer is (the stores' contract compares them).

use crate::lifecycle::{UserRecord, UserState};

/// What a page is sorted by. Ties are kept in the batch's CSV order (reversed when
/// descending), so pages never overlap or skip a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    #[default]
    Email,
    /// By the state's name.
    State,
    ItemsSynced,
    ItemsSkipped,
}

/// One page of a batch's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Only users in this state.
    pub state: Option<UserState>,
    /// Only users whose address contains this text, ASCII letters in any case (addresses are
    /// compared so everywhere in mailfleet).
    pub contains: Option<String>,
    pub order: UserOrder,
    pub descending: bool,
    /// Where the page starts: after this user of the previous page (the API's cursor).
    pub after: Option<UserCursor>,
    pub limit: usize,
}

/// The place in a selection just after one user: that user's value of the order's key and its
/// CSV position (which breaks ties). A store seeks to it through the order's index, so a page
/// deep in 50,000 users costs what the first one does, where skipping a count of users would
/// walk every user before it; and users written before the place do not shift the pages after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    pub key: SortKey,
    /// The user's place in the batch's CSV order. A store's own numbering: only its order
    /// counts, so a cursor is for the store that made it.
    pub position: u64,
}

/// A user's value of a [`UserOrder`]'s key, ordered as the pages are (text by its bytes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Text(String),
    Count(u64),
}

/// The users of a page, and where the next page starts when the selection goes on after them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub next: Option<UserCursor>,
}

/// The users of a batch in one state, with their items summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTally {
    pub state: UserState,
    pub users: usize,
    pub items_synced: u64,
    pub items_skipped: u64,
}

impl UserOrder {
    /// Whether this order's keys are counts ([`SortKey::Count`]) rather than text.
    pub fn counts(self) -> bool {
        matches!(self, UserOrder::ItemsSynced | UserOrder::ItemsSkipped)
    }

    /// `user`'s value of this order's key.
    pub fn key_of(self, user: &UserRecord) -> SortKey {
        match self {
            UserOrder::Email => SortKey::Text(user.email.clone()),
            UserOrder::State => SortKey::Text(user.state.to_string()),
            UserOrder::ItemsSynced => SortKey::Count(user.items_synced),
            UserOrder::ItemsSkipped => SortKey::Count(user.items_skipped),
        }
    }
}

impl UserQuery {
    /// Whether `user` is in the selection.
    pub fn admits(&self, user: &UserRecord) -> bool {
        self.state.is_none_or(|state| user.state == state)
            && self.contains.as_deref().is_none_or(|text| {
                user.email
                    .to_ascii_lowercase()
                    .contains(&text.to_ascii_lowercase())
            })
    }

    /// Whether the user with `key` at `position` comes after `cursor` in this query's order.
    fn follows(&self, key: &SortKey, position: u64, cursor: &UserCursor) -> bool {
        // Addresses are unique in a batch: the address alone places a user.
        let place = |key, position| match self.order {
            UserOrder::Email => (key, 0),
            _ => (key, position),
        };
        let (mine, theirs) = (place(key, position), place(&cursor.key, cursor.position));
        if self.descending {
            mine < theirs
        } else {
            mine > theirs
        }
    }
}

/// The page `query` selects from `users`, which are in CSV order.
pub fn select(users: Vec<UserRecord>, query: &UserQuery) -> UserPage {
    let mut rows: Vec<(u64, UserRecord)> = (0..)
        .zip(users)
        .filter(|(_, user)| query.admits(user))
        .collect();
    // Ties in CSV order, which `rows` is in.
    rows.sort_by_cached_key(|(position, user)| (query.order.key_of(user), *position));
    if query.descending {
        rows.reverse();
    }
    if let Some(after) = &query.after {
        rows.retain(|(position, user)| query.follows(&query.order.key_of(user), *position, after));
    }
    rows.truncate(query.limit.saturating_add(1));
    page_of(rows, query)
}

/// The page of `rows`, a store's answer to `query`: up to one user more than the page, in the
/// page's order, each with its CSV position. The extra user only tells that more follow.
pub fn page_of(mut rows: Vec<(u64, UserRecord)>, query: &UserQuery) -> UserPage {
    let more = rows.len() > query.limit;
    rows.truncate(query.limit);
    let next = match rows.last() {
        Some((position, user)) if more => Some(UserCursor {
            key: query.order.key_of(user),
            position: *position,
        }),
        _ => None,
    };
    UserPage {
        users: rows.into_iter().map(|(_, user)| user).collect(),
        next,
    }
}

/// Each state some of `users` are in, in the order of [`UserState::ALL`].
pub fn tally(users: &[UserRecord]) -> Vec<StateTally> {
    UserState::ALL
        .iter()
        .filter_map(|&state| {
            let mut tally = StateTally {
                state,
                users: 0,
                items_synced: 0,
                items_skipped: 0,
            };
            for user in users.iter().filter(|u| u.state == state) {
                tally.users += 1;
                tally.items_synced += user.items_synced;
                tally.items_skipped += user.items_skipped;
            }
            (tally.users > 0).then_some(tally)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str, state: UserState, items_synced: u64) -> UserRecord {
        let mut user = UserRecord::queued(email, email, None);
        user.state = state;
        user.items_synced = items_synced;
        user
    }

    fn emails(page: &UserPage) -> Vec<&str> {
        page.users.iter().map(|u| u.email.as_str()).collect()
    }

    #[test]
    fn pages_filter_sort_and_keep_csv_order_among_ties() {
        let users = vec![
            user("c@x.org", UserState::Synced, 5),
            user("A@x.org", UserState::Queued, 0),
            user("b@y.org", UserState::Synced, 5),
            user("d@x.org", UserState::Failed, 1),
        ];
        let query = |order, descending, limit| UserQuery {
            state: None,
            contains: None,
            order,
            descending,
            after: None,
            limit,
        };
        let first = select(users.clone(), &query(UserOrder::Email, false, 2));
        assert_eq!(emails(&first), ["A@x.org", "b@y.org"]);
        let after_first = UserQuery {
            after: first.next,
            ..query(UserOrder::Email, false, 2)
        };
        let second = select(users.clone(), &after_first);
        assert_eq!(emails(&second), ["c@x.org", "d@x.org"]);
        assert_eq!(second.next, None);
        let page = select(users.clone(), &query(UserOrder::ItemsSynced, true, 9));
        assert_eq!(emails(&page), ["b@y.org", "c@x.org", "d@x.org", "A@x.org"]);
        assert_eq!(page.next, None);
        // A tie split between pages: the cursor's position places it.
        let page = select(users.clone(), &query(UserOrder::ItemsSynced, true, 1));
        assert_eq!(emails(&page), ["b@y.org"]);
        let after_tie = UserQuery {
            after: page.next,
            ..query(UserOrder::ItemsSynced, true, 2)
        };
        assert_eq!(
            emails(&select(users.clone(), &after_tie)),
            ["c@x.org", "d@x.org"]
        );
        let page = select(users.clone(), &query(UserOrder::State, false, 9));
        assert_eq!(emails(&page), ["d@x.org", "A@x.org", "c@x.org", "b@y.org"]);
        let synced_at_x = UserQuery {
            state: Some(UserState::Synced),
            contains: Some("@X.".into()),
            ..query(UserOrder::Email, false, 9)
        };
        assert_eq!(emails(&select(users.clone(), &synced_at_x)), ["c@x.org"]);

        let tallies = tally(&users);
        assert_eq!(tallies.len(), 3);
        assert_eq!(
            tallies[1],
            StateTally {
                state: UserState::Synced,
                users: 2,
                items_synced: 10,
                items_skipped: 0
            }
        );
    }
}
