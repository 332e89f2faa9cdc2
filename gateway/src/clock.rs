//! Where "now" comes from. Signature windows and `received_at` depend on it, so tests
//! (and replays of recorded traffic) inject a fixed clock.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// A clock at `secs` Unix seconds.
    pub fn at_unix(secs: i64) -> Self {
        Self::new(DateTime::from_timestamp(secs, 0).expect("unix seconds in range"))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sleeps for `how_long` unless `stop` turns first; true when stopped. What the background
/// tasks (router, spool drainer) wait with between tries.
pub async fn pause(
    stop: &mut tokio::sync::watch::Receiver<bool>,
    how_long: std::time::Duration,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => false,
        _ = stop.changed() => true,
    }
}
