//! What one sender or one plugin may cost this process: token buckets per source (webhooks)
//! and per plugin key (API calls), a stricter one for replays (each can multiply an inbox),
//! and a cap on a plugin's concurrent long-polls. Over a limit the answer is 429 with
//! `Retry-After`, so a noisy shop or a runaway plugin slows itself down, never the others.
//!
//! Limits are per gateway process: with N processes behind a balancer a sender gets up to N
//! times the rate, which bounds the cost per process, the thing that can run out.

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use crate::config::Settings;
use crate::error::{Error, Result};

type Keyed =
    RateLimiter<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock>;

/// A token bucket per key; `None` when the limit is off (rate 0).
struct Bucket {
    limiter: Option<Keyed>,
    what: &'static str,
}

impl Bucket {
    fn new(what: &'static str, quota: Option<Quota>) -> Self {
        Bucket {
            limiter: quota.map(RateLimiter::keyed),
            what,
        }
    }

    fn check(&self, key: &str) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // Keys are ids of known sources and authenticated plugins: bounded by what the
        // operator created, and forgotten once their bucket is full again.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&key.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Error::RateLimited {
                what: self.what,
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}

fn per_second(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst.max(rate.get())).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

fn per_minute(rate: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    Some(Quota::per_minute(rate))
}

/// The limits of one gateway process.
pub struct Limits {
    webhooks: Bucket,
    plugin_calls: Bucket,
    replays: Bucket,
    pulls_per_plugin: usize,
    pulls: Arc<Mutex<HashMap<String, usize>>>,
}

impl Limits {
    pub fn new(settings: &Settings) -> Self {
        Limits {
            webhooks: Bucket::new(
                "webhooks for this source",
                per_second(settings.webhook_rate, settings.webhook_burst),
            ),
            plugin_calls: Bucket::new(
                "API calls for this plugin",
                per_second(settings.plugin_rate, settings.plugin_burst),
            ),
            replays: Bucket::new(
                "replays for this plugin",
                per_minute(settings.replays_per_minute),
            ),
            pulls_per_plugin: settings.pulls_per_plugin,
            pulls: Arc::default(),
        }
    }

    /// One webhook for `source_id`.
    pub fn webhook(&self, source_id: &str) -> Result<()> {
        self.webhooks.check(source_id)
    }

    /// One API call by `plugin_id`.
    pub fn plugin_call(&self, plugin_id: &str) -> Result<()> {
        self.plugin_calls.check(plugin_id)
    }

    /// One replay (of dead letters or of the log) by `plugin_id`.
    pub fn replay(&self, plugin_id: &str) -> Result<()> {
        self.replays.check(plugin_id)
    }

    /// A long-poll slot for `plugin_id`, held until the guard drops; refused beyond the
    /// per-plugin limit (0 = no limit).
    pub fn pull_slot(&self, plugin_id: &str) -> Result<PullSlot> {
        let mut pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        let open = pulls.entry(plugin_id.to_string()).or_default();
        if self.pulls_per_plugin > 0 && *open >= self.pulls_per_plugin {
            return Err(Error::RateLimited {
                what: "concurrent pulls for this plugin",
                retry_after_secs: 1,
            });
        }
        *open += 1;
        Ok(PullSlot {
            plugin_id: plugin_id.to_string(),
            pulls: self.pulls.clone(),
        })
    }
}

/// An open long-poll; see [`Limits::pull_slot`].
pub struct PullSlot {
    plugin_id: String,
    pulls: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for PullSlot {
    fn drop(&mut self) {
        let mut pulls = self.pulls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = pulls.get_mut(&self.plugin_id) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                pulls.remove(&self.plugin_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tweak: impl FnOnce(&mut Settings)) -> Limits {
        let mut s = Settings::default();
        tweak(&mut s);
        Limits::new(&s)
    }

    #[test]
    fn a_source_over_its_rate_is_told_when_to_retry_and_others_are_not_affected() {
        let l = limits(|s| {
            s.webhook_rate = 2;
            s.webhook_burst = 3;
        });
        for _ in 0..3 {
            l.webhook("src_a").unwrap();
        }
        match l.webhook("src_a") {
            Err(Error::RateLimited {
                retry_after_secs, ..
            }) => assert!(retry_after_secs >= 1),
            other => panic!("expected a 429, got {other:?}"),
        }
        l.webhook("src_b").unwrap();
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let l = limits(|s| {
            s.webhook_rate = 0;
            s.pulls_per_plugin = 0;
        });
        for _ in 0..10_000 {
            l.webhook("src_a").unwrap();
        }
        let slots: Vec<_> = (0..100).map(|_| l.pull_slot("plg").unwrap()).collect();
        assert_eq!(slots.len(), 100);
    }

    #[test]
    fn replays_are_few_per_minute() {
        let l = limits(|s| s.replays_per_minute = 2);
        l.replay("plg_a").unwrap();
        l.replay("plg_a").unwrap();
        assert!(matches!(l.replay("plg_a"), Err(Error::RateLimited { .. })));
        l.replay("plg_b").unwrap();
    }

    #[test]
    fn pull_slots_are_given_back() {
        let l = limits(|s| s.pulls_per_plugin = 2);
        let a = l.pull_slot("plg").unwrap();
        let _b = l.pull_slot("plg").unwrap();
        assert!(l.pull_slot("plg").is_err());
        l.pull_slot("other").unwrap();
        drop(a);
        l.pull_slot("plg").unwrap();
    }
}
