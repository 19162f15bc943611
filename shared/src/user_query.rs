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
    /// Users of the selection skipped before the page (the API's cursor).
    pub offset: usize,
    pub limit: usize,
}

/// The users of a page, and whether the selection goes on after them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub more: bool,
}

/// The users of a batch in one state, with their items summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTally {
    pub state: UserState,
    pub users: usize,
    pub items_synced: u64,
    pub items_skipped: u64,
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
}

/// The page `query` selects from `users`, which are in CSV order.
pub fn select(mut users: Vec<UserRecord>, query: &UserQuery) -> UserPage {
    users.retain(|user| query.admits(user));
    // Stable sorts: ties stay in CSV order.
    match query.order {
        UserOrder::Email => users.sort_by(|a, b| a.email.cmp(&b.email)),
        UserOrder::State => users.sort_by_key(|u| u.state.to_string()),
        UserOrder::ItemsSynced => users.sort_by_key(|u| u.items_synced),
        UserOrder::ItemsSkipped => users.sort_by_key(|u| u.items_skipped),
    }
    if query.descending {
        users.reverse();
    }
    let more = users.len() > query.offset.saturating_add(query.limit);
    let users = users
        .into_iter()
        .skip(query.offset)
        .take(query.limit)
        .collect();
    UserPage { users, more }
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
        let query = |order, descending, offset, limit| UserQuery {
            state: None,
            contains: None,
            order,
            descending,
            offset,
            limit,
        };
        let page = select(users.clone(), &query(UserOrder::Email, false, 1, 2));
        assert_eq!(emails(&page), ["b@y.org", "c@x.org"]);
        assert!(page.more);
        let page = select(users.clone(), &query(UserOrder::ItemsSynced, true, 0, 9));
        assert_eq!(emails(&page), ["b@y.org", "c@x.org", "d@x.org", "A@x.org"]);
        assert!(!page.more);
        let page = select(users.clone(), &query(UserOrder::State, false, 0, 9));
        assert_eq!(emails(&page), ["d@x.org", "A@x.org", "c@x.org", "b@y.org"]);
        let synced_at_x = UserQuery {
            state: Some(UserState::Synced),
            contains: Some("@X.".into()),
            ..query(UserOrder::Email, false, 0, 9)
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
