//! One row of a batch's counts as both SQL stores return it (`GROUP BY state`), and its
//! reading into [`StateTally`]s in the order `user_query::tally` gives them.

use mailfleet_shared::lifecycle::UserState;
use mailfleet_shared::store_error::StoreError;
use mailfleet_shared::user_query::StateTally;

pub(crate) struct TallyRow {
    pub state: String,
    pub users: i64,
    pub items_synced: i64,
    pub items_skipped: i64,
}

impl TallyRow {
    /// The rows as tallies, in the order of [`UserState::ALL`]; a state no version of
    /// mailfleet wrote is a corrupt record.
    pub fn into_tallies(rows: Vec<TallyRow>) -> Result<Vec<StateTally>, StoreError> {
        let mut tallies = rows
            .into_iter()
            .map(|row| {
                let state = UserState::named(&row.state).ok_or_else(|| {
                    StoreError::corrupt(format!("a user record in state {:?}", row.state))
                })?;
                let count = |value: i64| u64::try_from(value).unwrap_or(0);
                Ok(StateTally {
                    state,
                    users: count(row.users) as usize,
                    items_synced: count(row.items_synced),
                    items_skipped: count(row.items_skipped),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tallies.sort_by_key(|tally| UserState::ALL.iter().position(|s| *s == tally.state));
        Ok(tallies)
    }
}
