//! Webhook deliveries per source and outcome, for "what did this shop send in the last
//! hour" (`GET /v1/sources`, the console). Counting is in memory, on the request path, a
//! lock and a few additions; every few seconds a worker adds what was counted to the
//! store, so the figures are the sum over every gateway process and survive restarts. A
//! report the store did not take is kept and added to the next one.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{SourceTally, Store, TALLY_MINUTES, Tally};
use crate::telemetry::WebhookOutcome;

const OUTCOMES: usize = WebhookOutcome::ALL.len();

/// What one source was sent since the last report.
#[derive(Debug, Default)]
struct Pending {
    /// Per Unix minute, the count of each outcome (indexed as `WebhookOutcome::ALL`).
    minutes: Vec<(u64, [u64; OUTCOMES])>,
    last_ms: u64,
}

/// The counts of this process not yet reported to the store.
#[derive(Debug, Default)]
pub struct DeliveryTally {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Pending {
    /// Adds `n` deliveries of the outcome at `index` in `minute`, the newest at `ms`.
    fn add(&mut self, minute: u64, index: usize, n: u64, ms: u64) {
        match self.minutes.iter_mut().find(|(m, _)| *m == minute) {
            Some((_, counts)) => counts[index] += n,
            None => {
                let mut counts = [0; OUTCOMES];
                counts[index] = n;
                self.minutes.push((minute, counts));
            }
        }
        self.last_ms = self.last_ms.max(ms);
    }
}

fn unix_ms(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}

/// The Unix minute of `at`.
pub fn minute(at: DateTime<Utc>) -> u64 {
    unix_ms(at) / 60_000
}

impl DeliveryTally {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // Counts only: a panic elsewhere cannot leave them half-written.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one delivery of a known source.
    pub fn count(&self, source_id: &str, outcome: WebhookOutcome, at: DateTime<Utc>) {
        let (ms, minute) = (unix_ms(at), minute(at));
        let index = WebhookOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES - 1);
        let mut pending = self.lock();
        // One lookup; the id is copied only for a source's first delivery since the last
        // report.
        match pending.get_mut(source_id) {
            Some(source) => source.add(minute, index, 1, ms),
            None => {
                let mut source = Pending::default();
                source.add(minute, index, 1, ms);
                pending.insert(source_id.to_string(), source);
            }
        }
    }

    /// Takes what was counted, as reports for the store.
    pub fn take(&self) -> Vec<SourceTally> {
        let pending = std::mem::take(&mut *self.lock());
        pending
            .into_iter()
            .map(|(source_id, p)| SourceTally {
                source_id,
                counts: p
                    .minutes
                    .iter()
                    .flat_map(|(minute, counts)| {
                        WebhookOutcome::ALL
                            .iter()
                            .zip(counts)
                            .filter(|(_, n)| **n > 0)
                            .map(|(o, n)| (*minute, o.as_str(), *n))
                    })
                    .collect(),
                last_ms: p.last_ms,
            })
            .collect()
    }

    /// Puts back reports the store did not take, without what has aged past the hour
    /// (a long outage cannot grow them without bound).
    pub fn restore(&self, reports: Vec<SourceTally>, now: DateTime<Utc>) {
        let oldest = minute(now).saturating_sub(TALLY_MINUTES);
        let mut pending = self.lock();
        for report in reports {
            let source = pending.entry(report.source_id).or_default();
            source.last_ms = source.last_ms.max(report.last_ms);
            for (minute, outcome, n) in report.counts {
                let index = WebhookOutcome::ALL
                    .iter()
                    .position(|o| o.as_str() == outcome);
                if let Some(index) = index.filter(|_| minute >= oldest) {
                    source.add(minute, index, n, 0);
                }
            }
        }
    }

    /// Reports what was counted to `store`, a source at a time; what the store did not
    /// take is kept for the next report. (A write whose answer was lost is counted again
    /// then: the counts are a view, and err on the high side.)
    pub async fn report(&self, store: &dyn Store, now: DateTime<Utc>) -> bool {
        let mut reports = self.take().into_iter();
        while let Some(report) = reports.next() {
            if let Err(e) = store
                .add_tallies(minute(now), std::slice::from_ref(&report))
                .await
            {
                tracing::debug!(error = %e, "delivery counts kept for the next report");
                self.restore(std::iter::once(report).chain(reports).collect(), now);
                return false;
            }
        }
        true
    }
}

/// The last hour of `source_ids`' deliveries, as the API shows them.
pub async fn last_hour(
    store: &dyn Store,
    source_ids: &[String],
    now: DateTime<Utc>,
) -> crate::store::StoreResult<Vec<Tally>> {
    store
        .tallies(source_ids, minute(now).saturating_sub(TALLY_MINUTES - 1))
        .await
}

/// The worker reporting a process's counts.
pub struct TallyHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TallyHandle {
    /// Stops after one last report.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Reports `tally` to `store` every `every`, and once more when stopped.
pub fn spawn(
    tally: Arc<DeliveryTally>,
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::clock::Clock>,
    every: Duration,
) -> TallyHandle {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut failing = false;
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = stopped.changed() => true,
            };
            let reported = tally.report(store.as_ref(), clock.now()).await;
            if reported == failing {
                // Said once per change, not on every report of an outage.
                if reported {
                    tracing::info!("delivery counts reported again");
                } else {
                    tracing::warn!("delivery counts cannot be reported; kept in memory");
                }
                failing = !reported;
            }
            if stopping {
                break;
            }
        }
    });
    TallyHandle { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn counts_are_reported_per_minute_and_outcome_then_cleared() {
        let tally = DeliveryTally::default();
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 5).unwrap();
        tally.count("src_a", WebhookOutcome::Accepted, t);
        tally.count("src_a", WebhookOutcome::Accepted, t);
        tally.count(
            "src_a",
            WebhookOutcome::InvalidSignature,
            t + chrono::Duration::minutes(1),
        );
        tally.count("src_b", WebhookOutcome::Duplicate, t);
        let mut reports = tally.take();
        reports.sort_by(|a, b| a.source_id.cmp(&b.source_id));
        let m = minute(t);
        assert_eq!(
            reports[0].counts,
            vec![(m, "accepted", 2), (m + 1, "invalid_signature", 1)]
        );
        assert_eq!(
            reports[0].last_ms,
            unix_ms(t + chrono::Duration::minutes(1))
        );
        assert_eq!(reports[1].counts, vec![(m, "duplicate", 1)]);
        assert!(tally.take().is_empty(), "a report takes the counts");
    }

    #[test]
    fn a_report_put_back_adds_to_new_counts_and_forgets_what_aged() {
        let tally = DeliveryTally::default();
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 5).unwrap();
        tally.count("src_a", WebhookOutcome::Accepted, t);
        let mut reports = tally.take();
        reports[0].counts.push((minute(t) - 90, "accepted", 7));
        tally.restore(reports, t);
        tally.count("src_a", WebhookOutcome::Accepted, t);
        assert_eq!(tally.take()[0].counts, vec![(minute(t), "accepted", 2)]);
    }
}
