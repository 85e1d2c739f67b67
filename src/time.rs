//! The clock and the one time format. Times are kept as microseconds since
//! the Unix epoch in both stores, so filters on `meta.created` and
//! `meta.lastModified` compare numbers the same way everywhere, and are
//! shown as RFC 3339.

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Formats microseconds since the epoch as RFC 3339 (`meta.created`, …),
/// to the microsecond, so a time read back into a filter compares exactly.
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An RFC 3339 time as microseconds since the epoch.
pub fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_microsecond_in_utc() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_micros(1_234_567), "1970-01-01T00:00:01.234567Z");
    }
}
