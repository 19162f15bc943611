//! How people are shown times, sizes, durations and counts. One place for it, so that the
//! terminal, the CSV and HTML reports (and any later dashboard) say the same thing the same way:
//! `2026-12-02 03:08:13 UTC`, not `03:08:13.614009924+00:00`; `1.5 GB`, not `1610612736`;
//! `1 h 12 min`, not `4320.4`. Machine-readable output (JSON, the CSV's number columns) keeps
//! raw values; these are for reading.

use chrono::{DateTime, Utc};

/// A moment to the second, in UTC: `2026-12-02 03:08:13 UTC`.
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A size in binary units (1 KB = 1,024 bytes, as mail servers and Microsoft's reports count):
/// `512 B`, `13.5 KB`, `12.3 MB`, `1.50 GB`.
pub fn bytes(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let value = bytes as f64;
    match bytes {
        b if b >= 1 << 40 => format!("{:.2} TB", value / KB.powi(4)),
        b if b >= 1 << 30 => format!("{:.2} GB", value / KB.powi(3)),
        b if b >= 1 << 20 => format!("{:.1} MB", value / KB.powi(2)),
        b if b >= 1 << 10 => format!("{:.1} KB", value / KB),
        b => format!("{b} B"),
    }
}

/// A duration in its two largest units: `42 s`, `3 min 5 s`, `1 h 12 min`, `2 d 3 h`; under a
/// second `< 1 s` (`0 s` for nothing at all). Negative or not-a-number durations show as `0 s`.
pub fn duration(seconds: f64) -> String {
    if seconds.is_nan() || seconds <= 0.0 {
        return "0 s".into();
    }
    let whole = seconds.round() as u64;
    if whole == 0 {
        return "< 1 s".into();
    }
    let (days, hours, minutes, secs) = (
        whole / 86_400,
        whole % 86_400 / 3_600,
        whole % 3_600 / 60,
        whole % 60,
    );
    let pair = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match () {
        _ if days > 0 => pair(days, "d", hours, "h"),
        _ if hours > 0 => pair(hours, "h", minutes, "min"),
        _ if minutes > 0 => pair(minutes, "min", secs, "s"),
        _ => format!("{secs} s"),
    }
}

/// A count with thousands separated: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut shown = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            shown.push(',');
        }
        shown.push(digit);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_are_shown_to_the_second_in_utc() {
        let at = Utc.timestamp_opt(1_796_180_893, 614_009_924).unwrap();
        assert_eq!(time(at), "2026-12-02 03:08:13 UTC");
    }

    #[test]
    fn sizes_take_the_largest_unit_that_fits() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(13_824), "13.5 KB");
        assert_eq!(bytes(12_897_485), "12.3 MB");
        assert_eq!(bytes(1_610_612_736), "1.50 GB");
        assert_eq!(bytes(3 << 40), "3.00 TB");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(duration(0.0), "0 s");
        assert_eq!(duration(-3.0), "0 s");
        assert_eq!(duration(f64::NAN), "0 s");
        assert_eq!(duration(0.3), "< 1 s");
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(180.0), "3 min");
        assert_eq!(duration(4_320.4), "1 h 12 min");
        assert_eq!(duration(3_600.0), "1 h");
        assert_eq!(duration(183_600.0), "2 d 3 h");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(12_345), "12,345");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
