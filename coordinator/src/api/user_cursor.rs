//! The users list's `next_cursor`: where the next page starts, as the store's place after the
//! page's last user (its sort key and CSV position, `user_query::UserCursor`), written as
//! URL-safe base64 so it passes through a query string unescaped. It names the sort it was
//! made for: a cursor from one order is refused by another, whose keys it cannot place.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailfleet_shared::user_query::{SortKey, UserCursor};

use crate::error::CliError;

/// The cursor after `place` in the list sorted by `sort` (the request's `sort`, `-` included).
pub fn encode(sort: &str, place: &UserCursor) -> String {
    let key = match &place.key {
        SortKey::Text(text) => text.clone(),
        SortKey::Count(count) => count.to_string(),
    };
    URL_SAFE_NO_PAD.encode(format!("{sort}:{}:{key}", place.position))
}

/// The place `cursor` stands for, if it was made for `sort`; `counted` says whether that
/// sort's keys are counts.
pub fn decode(cursor: &str, sort: &str, counted: bool) -> Result<UserCursor, CliError> {
    let foreign = || CliError::Invalid(format!("cursor {cursor:?} is not one of ours"));
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(foreign)?;
    let mut parts = text.splitn(3, ':');
    let (Some(made_for), Some(position), Some(key)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(foreign());
    };
    if made_for != sort {
        return Err(CliError::Invalid(format!(
            "cursor {cursor:?} is for sort {made_for:?}, not {sort:?}: start again without it"
        )));
    }
    let position = position.parse().map_err(|_| foreign())?;
    let key = if counted {
        SortKey::Count(key.parse().map_err(|_| foreign())?)
    } else {
        SortKey::Text(key.to_owned())
    };
    Ok(UserCursor { key, position })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_its_place_and_its_sort() {
        let place = UserCursor {
            key: SortKey::Text("ann:x@example.org".into()),
            position: 41,
        };
        let cursor = encode("-email", &place);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode(&cursor, "-email", false).unwrap(), place);
        let error = decode(&cursor, "email", false).unwrap_err().to_string();
        assert!(error.contains("is for sort \"-email\""), "{error}");

        let counted = UserCursor {
            key: SortKey::Count(7),
            position: 3,
        };
        let cursor = encode("items_synced", &counted);
        assert_eq!(decode(&cursor, "items_synced", true).unwrap(), counted);
        for foreign in ["50", "", "%%", &encode("items_synced", &place)] {
            assert!(decode(foreign, "items_synced", true).is_err(), "{foreign}");
        }
    }
}
