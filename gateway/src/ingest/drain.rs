//! The drainer: writes what the local spool holds into the store, oldest first, through the
//! same pipeline a delivery takes on arrival (as of the time it arrived, without verifying
//! again: it was verified before it was spooled). A delivery whose write had in fact landed
//! before the store's answer was lost is a duplicate by its dedupe mark, never a second
//! event. While the store is still down the drainer waits and tries again, backing off.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Origin, Outcome, identity, pipeline, quarantine};
use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::json::Json;
use crate::providers;
use crate::spool::{Spool, SpooledDelivery};
use crate::state::AppState;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// How often a long drain logs how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Stops the drainer (between two deliveries).
pub struct DrainHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DrainHandle {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the drainer when the gateway has a spool.
pub fn spawn(state: Arc<AppState>) -> Option<DrainHandle> {
    let spool = state.spool.clone()?;
    let (stop, watch) = watch::channel(false);
    let task = tokio::spawn(run(state, spool, watch));
    Some(DrainHandle { stop, task })
}

/// One drain, from the first record after an idle spool to the spool being empty again.
struct Drain {
    started: Instant,
    drained: u64,
    logged: Instant,
}

async fn run(state: Arc<AppState>, spool: Arc<Spool>, mut stop: watch::Receiver<bool>) {
    let mut retry = FIRST_RETRY;
    let mut drain: Option<Drain> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        state.metrics.spool.observe(spool.stats(), state.now());
        let next = match spool.next() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "spool cannot be read; retrying");
                if pause(&mut stop, LAST_RETRY).await {
                    return;
                }
                continue;
            }
        };
        let Some(next) = next else {
            if let Some(d) = drain.take() {
                tracing::info!(
                    drained = d.drained,
                    seconds = d.started.elapsed().as_secs_f64(),
                    "spool drained: every spooled delivery is in the store"
                );
            }
            tokio::select! {
                _ = spool.written() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        let d = drain.get_or_insert_with(|| {
            tracing::info!(
                waiting = spool.stats().records,
                "draining the spool into the store"
            );
            Drain {
                started: Instant::now(),
                drained: 0,
                logged: Instant::now(),
            }
        });
        let delivery = match next.delivery {
            Ok(delivery) => delivery,
            Err(e) => {
                state.metrics.spool.unreadable.inc();
                tracing::error!(error = %e, "a spooled record cannot be read back; skipped");
                if let Err(e) = spool.done(next.next) {
                    tracing::error!(error = %e, "spool cursor cannot be written");
                }
                continue;
            }
        };
        match drain_one(&state, &delivery).await {
            Ok(outcome) => {
                if let Err(e) = spool.done(next.next) {
                    // The delivery is in the store: at worst it is drained again after a
                    // restart, as a duplicate.
                    tracing::error!(error = %e, "spool cursor cannot be written");
                }
                spool.note_store_up();
                state.metrics.spool.drained.inc();
                retry = FIRST_RETRY;
                d.drained += 1;
                tracing::debug!(source_id = %delivery.source_id, outcome = outcome.label().as_str(), "spooled delivery drained");
                if d.logged.elapsed() >= PROGRESS_EVERY {
                    d.logged = Instant::now();
                    let rate = d.drained as f64 / d.started.elapsed().as_secs_f64().max(0.001);
                    tracing::info!(
                        drained = d.drained,
                        waiting = spool.stats().records,
                        per_second = rate.round(),
                        "draining the spool"
                    );
                }
            }
            Err(Error::StoreUnavailable(why)) => {
                if retry == FIRST_RETRY {
                    tracing::warn!(reason = %why, waiting = spool.stats().records, "store still unavailable; the spool keeps its deliveries");
                }
                spool.note_store_down(retry);
                if pause(&mut stop, retry).await {
                    return;
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
            Err(e) => {
                // The pipeline refuses a delivery it once took: keep it, with why.
                tracing::error!(error = %e, source_id = %delivery.source_id, "a spooled delivery was refused on drain; keeping it in quarantine");
                match keep_refused(&state, &delivery, &e).await {
                    Ok(_) => {
                        if let Err(e) = spool.done(next.next) {
                            tracing::error!(error = %e, "spool cursor cannot be written");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot quarantine the refused delivery yet");
                        if pause(&mut stop, retry).await {
                            return;
                        }
                        retry = (retry * 2).min(LAST_RETRY);
                    }
                }
            }
        }
    }
}

/// Sleeps unless stopped first; true when stopped.
async fn pause(stop: &mut watch::Receiver<bool>, how_long: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => false,
        _ = stop.changed() => true,
    }
}

fn origin(d: &SpooledDelivery) -> Origin<'_> {
    Origin {
        source_id: &d.source_id,
        tenant: &d.tenant,
        provider: providers::of(d.provider),
    }
}

/// Runs one spooled delivery through the pipeline as of when it arrived.
pub async fn drain_one(state: &AppState, d: &SpooledDelivery) -> Result<Outcome> {
    let headers: Headers = d.headers.iter().collect();
    pipeline(state, &origin(d), &headers, &d.body, d.received_at, None).await
}

async fn keep_refused(state: &AppState, d: &SpooledDelivery, why: &Error) -> Result<Outcome> {
    let origin = origin(d);
    let headers: Headers = d.headers.iter().collect();
    let parsed = Json::parse(&d.body).ok();
    let identity = identity::identify(origin.provider, &headers, parsed.as_ref(), &d.body);
    let reason = format!("spooled delivery refused when drained: {why}");
    quarantine(
        state,
        &origin,
        &headers,
        &d.body,
        &identity,
        d.received_at,
        state.settings.dedupe_ttl(),
        &reason,
    )
    .await
}
