//! How push endpoints are doing: each pusher's own record of successes and failures
//! ([`Tracker`]), written to the store for `GET /v1/plugins/{id}`, and the circuit breaker
//! ([`Breaker`]): an endpoint whose pushes all failed for longer than a threshold is
//! *failing* and gets one probe at a time, spaced out, until one succeeds, instead of
//! every waiting delivery hammering a service that is down.

use chrono::{DateTime, Utc};
use omnigate_schemas::api::{EndpointState, EndpointStatus};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::normalize::time;
use crate::store::{EndpointHealth, PushRecord};

/// The most of an answer kept in `last_error`: enough to recognise it, too little to
/// hold anything the receiver should not have sent.
pub const ERROR_EXCERPT_CHARS: usize = 200;

/// When an endpoint counts as failing, and how often it is probed then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    pub after: Duration,
    pub probe_interval: Duration,
}

impl Breaker {
    pub fn from_settings(settings: &Settings) -> Breaker {
        Breaker {
            after: Duration::from_secs(settings.push_breaker_after_secs),
            probe_interval: Duration::from_millis(settings.push_probe_interval_ms),
        }
    }

    /// Whether `health` is past the threshold at `now`.
    pub fn is_open(&self, health: &EndpointHealth, now: DateTime<Utc>) -> bool {
        health.failing_since.is_some_and(|since| {
            (now - since)
                .to_std()
                .is_ok_and(|failing_for| failing_for >= self.after)
        })
    }
}

/// Every endpoint of a push plugin with its state: the plugin's URL first (even before
/// any push), then installations' own URLs pushes went to.
pub fn statuses(
    push: &PushRecord,
    mut health: Vec<(String, EndpointHealth)>,
    breaker: &Breaker,
    now: DateTime<Utc>,
) -> Vec<EndpointStatus> {
    if !health.iter().any(|(url, _)| *url == push.url) {
        health.insert(0, (push.url.clone(), EndpointHealth::default()));
    } else {
        health.sort_by_key(|(url, _)| *url != push.url);
    }
    health
        .into_iter()
        .map(|(url, h)| EndpointStatus {
            status: if push.paused_at.is_some() {
                EndpointState::Paused
            } else if breaker.is_open(&h, now) {
                EndpointState::Failing
            } else {
                EndpointState::Healthy
            },
            url,
            consecutive_failures: h.consecutive_failures,
            failing_since: h.failing_since.map(time::format),
            last_error: h.last_error,
            last_error_at: h.last_error_at.map(time::format),
            last_success_at: h.last_success_at.map(time::format),
        })
        .collect()
}

/// How often a success is written again (its time) while nothing else changed; a recovery
/// and every failure are written at once.
const REFRESH: Duration = Duration::from_secs(5);

/// One process's record of one endpoint.
#[derive(Debug, Default)]
pub struct Tracker {
    pub health: EndpointHealth,
    written: Option<Instant>,
    /// When the last probe of an open breaker went out.
    probed: Option<Instant>,
}

impl Tracker {
    /// Starts from what the store says (another process may have seen failures).
    pub fn from_store(health: EndpointHealth) -> Tracker {
        Tracker {
            health,
            written: Some(Instant::now()),
            probed: None,
        }
    }

    /// Records a success; true when the store should be told.
    pub fn success(&mut self, now: DateTime<Utc>) -> bool {
        let recovered = self.health.failing_since.is_some();
        self.health.failing_since = None;
        self.health.consecutive_failures = 0;
        self.health.last_success_at = Some(now);
        self.due(recovered)
    }

    /// Records a failure (`error` already short); the store is told of every one (a
    /// failed push costs far more than the write, and operators read the count).
    pub fn failure(&mut self, error: String, now: DateTime<Utc>) -> bool {
        self.health.failing_since.get_or_insert(now);
        self.health.consecutive_failures += 1;
        self.health.last_error = Some(error);
        self.health.last_error_at = Some(now);
        self.due(true)
    }

    fn due(&mut self, changed: bool) -> bool {
        let stale = self.written.is_none_or(|at| at.elapsed() >= REFRESH);
        if changed || stale {
            self.written = Some(Instant::now());
            true
        } else {
            false
        }
    }

    /// With the breaker open, whether a probe may go now (and if so, it is counted as
    /// sent). With it closed, always.
    pub fn may_send(&mut self, breaker: &Breaker, now: DateTime<Utc>) -> bool {
        if !breaker.is_open(&self.health, now) {
            return true;
        }
        if self
            .probed
            .is_some_and(|at| at.elapsed() < breaker.probe_interval)
        {
            return false;
        }
        self.probed = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    const BREAKER: Breaker = Breaker {
        after: Duration::from_secs(60),
        probe_interval: Duration::from_secs(3600),
    };

    #[test]
    fn the_breaker_opens_after_failing_for_the_threshold_and_closes_on_success() {
        let mut tr = Tracker::default();
        assert!(tr.failure("HTTP 500".into(), t(0)), "failures are written");
        assert!(tr.failure("HTTP 500".into(), t(1)));
        assert!(!BREAKER.is_open(&tr.health, t(59)));
        assert!(tr.may_send(&BREAKER, t(59)));
        assert!(BREAKER.is_open(&tr.health, t(60)));
        assert!(tr.may_send(&BREAKER, t(61)), "one probe");
        assert!(
            !tr.may_send(&BREAKER, t(62)),
            "then none until the interval passed"
        );
        assert_eq!(tr.health.consecutive_failures, 2);
        assert!(tr.success(t(70)), "a recovery is written at once");
        assert!(!tr.success(t(71)), "another success waits for the refresh");
        assert!(!BREAKER.is_open(&tr.health, t(70)));
        assert!(tr.may_send(&BREAKER, t(71)));
        assert_eq!(tr.health.last_success_at, Some(t(71)));
        assert_eq!(
            tr.health.last_error.as_deref(),
            Some("HTTP 500"),
            "kept for the record"
        );
    }

    #[test]
    fn statuses_list_the_plugins_url_first_and_say_paused() {
        let push = PushRecord {
            url: "https://a.example/hooks".into(),
            max_in_flight: 10,
            secrets: Vec::new(),
            paused_at: None,
        };
        let failing = EndpointHealth {
            failing_since: Some(t(0)),
            consecutive_failures: 9,
            ..EndpointHealth::default()
        };
        let health = vec![("https://b.example/shop".to_string(), failing)];
        let s = statuses(&push, health.clone(), &BREAKER, t(120));
        assert_eq!(s[0].url, "https://a.example/hooks");
        assert_eq!(s[0].status, EndpointState::Healthy);
        assert_eq!(s[1].status, EndpointState::Failing);
        assert_eq!(s[1].consecutive_failures, 9);
        let paused = PushRecord {
            paused_at: Some(t(0)),
            ..push
        };
        let s = statuses(&paused, health, &BREAKER, t(120));
        assert!(s.iter().all(|e| e.status == EndpointState::Paused));
    }
}
