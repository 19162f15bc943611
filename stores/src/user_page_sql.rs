//! The one query behind a page of a batch's users ([`UserQuery`]), for SQLite and PostgreSQL:
//! filters and order on the `state`, `items_synced` and `items_skipped` columns (generated from
//! the record, and indexed), so a page of 50 costs an index walk and 50 records decoded, not
//! the batch's 50,000. Ties go by CSV position, as `user_query::select` keeps them.

use mailfleet_shared::user_query::{UserOrder, UserQuery};

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

    /// Whether `column` with its ASCII letters lowered contains the (lowered) `text`.
    fn contains_ascii_lowered(self, column: &str, text: &str) -> String {
        match self {
            // SQLite's lower() folds ASCII letters only.
            Dialect::Sqlite => format!("instr(lower({column}), {text}) > 0"),
            Dialect::Postgres => format!(
                "strpos(translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', \
                 'abcdefghijklmnopqrstuvwxyz'), {text}) > 0"
            ),
        }
    }
}

/// `SELECT {record} FROM batch_users …` for `query`, one row more than the page to tell
/// whether more follow, and the values to bind after the tenant and the batch.
///
/// On PostgreSQL the page is chosen by address first and its records read after (a deferred
/// join): with `OFFSET` it computes the select list of every row it skips, and building each
/// record (`record || jsonb_build_object(…)`) for the 25,000 rows before a middle page took
/// 300 ms at the 99th percentile, 53 ms after (`loadtest bench api --state postgres`).
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
    let in_batch = format!(
        "tenant = {} AND batch = {}",
        dialect.placeholder(1),
        dialect.placeholder(2)
    );
    let mut selection = in_batch.clone();
    if let Some(state) = query.state {
        selection += &format!(" AND state = {}", next(Bind::Text(state.to_string())));
    }
    if let Some(text) = &query.contains {
        let text = next(Bind::Text(text.to_ascii_lowercase()));
        selection += &format!(" AND {}", dialect.contains_ascii_lowered("email", &text));
    }
    let direction = if query.descending { " DESC" } else { "" };
    let key = match query.order {
        UserOrder::Email => dialect.bytewise("email"),
        UserOrder::State => dialect.bytewise("state"),
        UserOrder::ItemsSynced => "items_synced".to_owned(),
        UserOrder::ItemsSkipped => "items_skipped".to_owned(),
    };
    let mut order = format!("{key}{direction}");
    if query.order != UserOrder::Email {
        order += &format!(", position{direction}");
    }
    let limit = next(Bind::Integer(clamped(query.limit.saturating_add(1))));
    let offset = next(Bind::Integer(clamped(query.offset)));
    let sql = match dialect {
        // SQLite steps over skipped rows without building their records, and planned the
        // deferred join badly (the items order went from 5 to 140 ms): one query.
        Dialect::Sqlite => format!(
            "SELECT {record} FROM batch_users WHERE {selection} \
             ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        ),
        Dialect::Postgres => format!(
            "SELECT {record} FROM batch_users WHERE {in_batch} AND email IN (\
                 SELECT email FROM batch_users WHERE {selection} \
                 ORDER BY {order} LIMIT {limit} OFFSET {offset}) \
             ORDER BY {order}"
        ),
    };
    (sql, binds)
}

fn clamped(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
