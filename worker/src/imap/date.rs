//! INTERNALDATE as APPEND wants it: `"03-May-2024 10:00:00 +0200"` (RFC 3501 date-time).
//!
//! Dates arrive parsed (servers may space-pad the day, ` 3-May-2024`; async-imap parses that) and
//! leave formatted with the original UTC offset, so the target shows the same received time.

use chrono::{DateTime, FixedOffset};

pub fn append_date(date: &DateTime<FixedOffset>) -> String {
    format!("\"{}\"", date.format("%d-%b-%Y %H:%M:%S %z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_two_digit_day_english_month_and_offset() {
        let date = DateTime::parse_from_rfc3339("2024-05-03T10:00:00+02:00").unwrap();
        assert_eq!(append_date(&date), "\"03-May-2024 10:00:00 +0200\"");
    }
}
