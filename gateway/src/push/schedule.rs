//! When a failed push is tried again: the configured waits (`OMNIGATE_PUSH_RETRY_SCHEDULE`),
//! each jittered so that deliveries failed together do not all come back in one burst, and
//! a receiver's `Retry-After` (on 429 and 503) honoured when it asks for longer.

use rand::Rng;
use std::time::Duration;

use crate::config::RetrySchedule;

/// Most a `Retry-After` may stretch one wait: a receiver cannot park deliveries for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// What comes after failed attempt `attempt` (1 = the first): the wait before the next
/// one, or `None` when it was the last (the delivery is a dead letter).
pub fn next_wait(
    schedule: &RetrySchedule,
    attempt: u64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule
        .0
        .get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    let jittered = jitter(base, rand::rng().random_range(-1.0..=1.0));
    Some(match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
        None => jittered,
    })
}

/// How many attempts a schedule allows: one more than it has waits.
pub fn attempts(schedule: &RetrySchedule) -> u64 {
    schedule.0.len() as u64 + 1
}

/// The longest a delivery can take through every attempt of `schedule` (each wait at its
/// jittered longest): a delivery older than this that was never tried, because its
/// endpoint was failing, is past what the schedule promised and becomes a dead letter.
pub fn span(schedule: &RetrySchedule) -> Duration {
    schedule.0.iter().map(|w| jitter(*w, 1.0)).sum()
}

/// `27h 30m`, `5m`, `330ms`: a span as an operator reads it.
pub fn describe(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = Vec::new();
    if h > 0 {
        out.push(format!("{h}h"));
    }
    if m > 0 {
        out.push(format!("{m}m"));
    }
    if s > 0 && h == 0 {
        out.push(format!("{s}s"));
    }
    out.join(" ")
}

/// `base` moved by `unit` (in -1..=1) times 10 %.
fn jitter(base: Duration, unit: f64) -> Duration {
    base.mul_f64(1.0 + 0.1 * unit.clamp(-1.0, 1.0))
}

/// A `Retry-After` header: delay seconds, or an HTTP date (RFC 9110).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_is_every_wait_at_its_longest() {
        let schedule: RetrySchedule = "5s,5m,30m,2h,5h,10h,10h".parse().unwrap();
        let span = span(&schedule);
        // 27 h 35 m 5 s of waits, plus 10 % jitter at most.
        assert_eq!(span.as_secs(), 109_235);
        assert_eq!(describe(span), "30h 20m");
        assert_eq!(describe(Duration::from_millis(330)), "330ms");
        assert_eq!(describe(Duration::from_secs(65)), "1m 5s");
    }

    use chrono::TimeZone;

    #[test]
    fn waits_follow_the_schedule_within_ten_percent_then_stop() {
        let s: RetrySchedule = "5s,5m".parse().unwrap();
        assert_eq!(attempts(&s), 3);
        for _ in 0..100 {
            let w = next_wait(&s, 1, None).unwrap();
            assert!(w >= Duration::from_millis(4500) && w <= Duration::from_millis(5500));
            let w = next_wait(&s, 2, None).unwrap();
            assert!(w >= Duration::from_secs(270) && w <= Duration::from_secs(330));
        }
        assert_eq!(
            next_wait(&s, 3, None),
            None,
            "the third attempt was the last"
        );
        assert_eq!(next_wait(&s, 0, None), None);
        assert_eq!(
            jitter(Duration::from_secs(10), 1.0),
            Duration::from_secs(11)
        );
        assert_eq!(
            jitter(Duration::from_secs(10), -1.0),
            Duration::from_secs(9)
        );
    }

    #[test]
    fn a_longer_retry_after_is_honoured_up_to_a_cap() {
        let s: RetrySchedule = "5s".parse().unwrap();
        let asked = Some(Duration::from_secs(120));
        assert_eq!(next_wait(&s, 1, asked), Some(Duration::from_secs(120)));
        let shorter = next_wait(&s, 1, Some(Duration::from_secs(1))).unwrap();
        assert!(
            shorter >= Duration::from_millis(4500),
            "never sooner than the schedule"
        );
        let huge = Some(Duration::from_secs(30 * 86_400));
        assert_eq!(next_wait(&s, 1, huge), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = chrono::Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Fri, 14 Mar 2025 09:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Fri, 14 Mar 2025 08:00:00 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
