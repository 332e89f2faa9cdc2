//! Provider timestamps to RFC 3339 UTC.
//!
//! Accepted: RFC 3339 with any offset; WooCommerce `*_gmt` wall-clock text without a zone
//! (it is UTC); RFC 2822 (BigCommerce v2); Unix seconds. Output keeps sub-second digits
//! only when the input had them.

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Utc};

/// Only years 1–9999 are times: RFC 3339 cannot write others, and arithmetic on a time
/// near chrono's limits (year 262142) overflows. Senders' text is bounded here, once.
fn bounded(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (1..=9999).contains(&t.year()).then_some(t)
}

/// RFC 3339 with an offset or `Z`.
pub fn rfc3339(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .and_then(bounded)
}

/// `2024-11-19T20:47:05` (or with a space), known to be UTC.
pub fn naive_utc(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|n| n.and_utc())
        .and_then(bounded)
}

/// Ukraine's zone (Rozetka's times).
pub const KYIV: chrono_tz::Tz = chrono_tz::Europe::Kyiv;

/// `2019-07-25 11:49:32`, wall-clock time in `zone` (Rozetka writes Kyiv time without
/// saying so). A time the clock skips in spring does not exist: none; one it passes twice
/// in autumn is taken at its first passing.
pub fn naive_in(text: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())?;
    naive
        .and_local_timezone(zone)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .and_then(bounded)
}

/// `Tue, 18 Feb 2025 11:02:23 +0000`.
pub fn rfc2822(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .and_then(bounded)
}

pub fn unix_seconds(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).and_then(bounded)
}

/// Unix time in milliseconds (log positions, delivery counts).
pub fn unix_millis(ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(ms).ok()?).and_then(bounded)
}

/// Unix time in nanoseconds (some event buses stamp this way).
pub fn unix_nanos(nanos: i64) -> Option<DateTime<Utc>> {
    bounded(DateTime::from_timestamp_nanos(nanos))
}

/// Any of the textual forms above.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    rfc3339(text)
        .or_else(|| naive_utc(text))
        .or_else(|| rfc2822(text))
}

/// RFC 3339 UTC with `Z`.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kyiv_wall_clock_follows_summer_time() {
        let kyiv = chrono_tz::Europe::Kyiv;
        assert_eq!(
            naive_in("2019-07-25 11:49:32", kyiv).map(format).as_deref(),
            Some("2019-07-25T08:49:32Z"),
            "summer: UTC+3"
        );
        assert_eq!(
            naive_in("2026-11-30 10:00:00", kyiv).map(format).as_deref(),
            Some("2026-11-30T08:00:00Z"),
            "winter: UTC+2"
        );
        assert_eq!(
            naive_in("2026-03-29 03:30:00", kyiv),
            None,
            "skipped in spring"
        );
        assert_eq!(naive_in("yesterday", kyiv), None);
    }

    #[test]
    fn offsets_become_utc() {
        let t = rfc3339("2025-03-14T11:26:53+02:00").unwrap();
        assert_eq!(format(t), "2025-03-14T09:26:53Z");
    }

    #[test]
    fn naive_gmt_is_utc() {
        assert_eq!(
            format(naive_utc("2024-11-19T20:47:05").unwrap()),
            "2024-11-19T20:47:05Z"
        );
        assert_eq!(
            format(parse("2024-11-19 20:47:05").unwrap()),
            "2024-11-19T20:47:05Z"
        );
    }

    #[test]
    fn rfc2822_and_unix_seconds() {
        assert_eq!(
            format(rfc2822("Tue, 18 Feb 2025 11:02:23 +0000").unwrap()),
            "2025-02-18T11:02:23Z"
        );
        assert_eq!(
            format(unix_seconds(1739876543).unwrap()),
            "2025-02-18T11:02:23Z"
        );
    }

    #[test]
    fn unix_nanoseconds() {
        assert_eq!(
            format(unix_nanos(1_742_457_312_418_277_153).unwrap()),
            "2025-03-20T07:55:12.418277153Z"
        );
    }

    #[test]
    fn sub_seconds_are_kept_when_given() {
        let t = parse("2025-03-20T07:55:12.418277153Z").unwrap();
        assert_eq!(format(t), "2025-03-20T07:55:12.418277153Z");
    }

    #[test]
    fn years_outside_1_to_9999_are_not_times() {
        assert!(parse("+262142-12-31T23:59:59").is_none());
        assert!(parse("Fri, 31 Dec 99999 23:59:59 +0000").is_none());
        assert!(unix_seconds(i64::MAX / 1000).is_none());
        assert!(unix_seconds(253_402_300_800).is_none()); // 10000-01-01
        assert!(parse("9999-12-31T23:59:59Z").is_some());
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(parse("yesterday").is_none());
        assert!(parse("").is_none());
    }
}
