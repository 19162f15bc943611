//! The one query behind a page of a batch's users ([`UserQuery`]), for SQLite and PostgreSQL:
//! filters and order on the `state`, `items_synced` and `items_skipped` columns (generated from
//! the record, and indexed), so a page of 50 costs an index walk and 50 records decoded, not
//! the batch's 50,000. Ties go by CSV position, as `user_query::select` keeps them. A page
//! starts at its cursor by seeking the order's index to the cursor's key (keyset paging): no
//! user before it is read, however deep the page.

use mailfleet_shared::user_query::{SortKey, UserOrder, UserQuery};

#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to the query, in placeholder order after the tenant (1) and the batch (2).
pub(crate) enum Bind {
    Text(String),
    Integer(i64),
}

impl Dialect {
    fn placeholder(self, number: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{number}"),
            Dialect::Postgres => format!("${number}"),
        }
    }

    /// Text ordered by its bytes, as Rust orders strings.
    fn bytewise(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_owned(),
            Dialect::Postgres => format!("{column} COLLATE \"C\""),
        }
    }

    /// Whether the address with its ASCII letters lowered contains the (lowered) `text`,
    /// bound by `bind`.
    fn address_contains(self, text: &str, bind: impl FnOnce(Bind) -> String) -> String {
        match self {
            // SQLite's lower() folds ASCII letters only.
            Dialect::Sqlite => format!(
                "instr(lower(email), {}) > 0",
                bind(Bind::Text(text.to_owned()))
            ),
            // The address's ASCII-lowered column and its trigram index (migration 0005).
            Dialect::Postgres => format!(
                "address_folded LIKE {}",
                bind(Bind::Text(format!("%{}%", like_escaped(text))))
            ),
        }
    }
}

/// `text` matched literally by LIKE, whose default escape character is the backslash.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `SELECT position, {record} FROM batch_users …` for `query`, one row more than the page to
/// tell whether more follow, and the values to bind after the tenant and the batch.
pub(crate) fn user_page_sql(
    dialect: Dialect,
    record: &str,
    query: &UserQuery,
) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut next = |bind: Bind| {
        binds.push(bind);
        dialect.placeholder(binds.len() + 2)
    };
    let mut selection = format!(
        "tenant = {} AND batch = {}",
        dialect.placeholder(1),
        dialect.placeholder(2)
    );
    if let Some(state) = query.state {
        selection += &format!(" AND state = {}", next(Bind::Text(state.to_string())));
    }
    if let Some(text) = &query.contains {
        let text = text.to_ascii_lowercase();
        selection += &format!(" AND {}", dialect.address_contains(&text, &mut next));
    }
    let key = match query.order {
        UserOrder::Email => dialect.bytewise("email"),
        UserOrder::State => dialect.bytewise("state"),
        UserOrder::ItemsSynced => "items_synced".to_owned(),
        UserOrder::ItemsSkipped => "items_skipped".to_owned(),
    };
    if let Some(after) = &query.after {
        let beyond = if query.descending { "<" } else { ">" };
        let after_key = next(match &after.key {
            SortKey::Text(text) => Bind::Text(text.clone()),
            SortKey::Count(count) => Bind::Integer(clamped(*count)),
        });
        selection += &match query.order {
            // Addresses are unique in a batch.
            UserOrder::Email => format!(" AND {key} {beyond} {after_key}"),
            // A row value, which both databases compare through the (key, position) index.
            _ => format!(
                " AND ({key}, position) {beyond} ({after_key}, {})",
                next(Bind::Integer(clamped(after.position)))
            ),
        };
    }
    let direction = if query.descending { " DESC" } else { "" };
    let mut order = format!("{key}{direction}");
    if query.order != UserOrder::Email {
        order += &format!(", position{direction}");
    }
    let limit = next(Bind::Integer(clamped(query.limit.saturating_add(1))));
    let sql = format!(
        "SELECT position, {record} FROM batch_users WHERE {selection} ORDER BY {order} LIMIT {limit}"
    );
    (sql, binds)
}

fn clamped<T: TryInto<i64>>(value: T) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::like_escaped;

    #[test]
    fn like_patterns_match_their_text_literally() {
        assert_eq!(like_escaped("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(like_escaped("user042@"), "user042@");
    }
}
