//! The drainer: writes what the local spool holds into the store, oldest first, through the
//! same pipeline a delivery takes on arrival (as of the time it arrived, without verifying
//! again: it was verified before it was spooled). A delivery whose write had in fact landed
//! before the store's answer was lost is a duplicate by its dedupe mark, never a second
//! event. While the store is still down the drainer waits and tries again, backing off.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use crate::clock::pause;
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

/// Refusals of one record (the store answers, and will not take it) before it is kept in
/// quarantine instead: one such record must not hold back every record after it.
const ATTEMPTS_WHILE_UP: u32 = 5;

/// Spool calls do blocking file I/O: off the async workers.
async fn blocking<T: Send + 'static>(
    spool: &Arc<Spool>,
    call: impl FnOnce(&Spool) -> Result<T, crate::spool::SpoolError> + Send + 'static,
) -> Result<T, crate::spool::SpoolError> {
    let spool = spool.clone();
    tokio::task::spawn_blocking(move || call(&spool))
        .await
        .unwrap_or(Err(crate::spool::SpoolError::Closed))
}

async fn run(state: Arc<AppState>, spool: Arc<Spool>, mut stop: watch::Receiver<bool>) {
    let mut retry = FIRST_RETRY;
    // Outages and refusals of the record at the head of the spool, counted apart: only
    // refusals can make it give way (outages are waited out).
    let (mut outages, mut refusals) = (0u32, 0u32);
    let mut drain: Option<Drain> = None;
    loop {
        if *stop.borrow() {
            let _ = blocking(&spool, Spool::persist).await;
            return;
        }
        state.metrics.spool.observe(spool.stats(), state.now());
        let next = match blocking(&spool, Spool::next).await {
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
            if let Err(e) = blocking(&spool, Spool::persist).await {
                tracing::error!(error = %e, "spool cursor cannot be written");
            }
            if let Some(d) = drain.take() {
                state.metrics.spool.observe(spool.stats(), state.now());
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
        let position = next.next;
        let delivery = match next.delivery {
            Ok(delivery) => delivery,
            Err(e) => {
                spool.count_unreadable();
                tracing::error!(error = %e, "a spooled record cannot be read back; skipped");
                settle(&spool, position).await;
                continue;
            }
        };
        let result = if past_dedupe_window(&state, &delivery) {
            // Its dedupe marks (and those of what it proves) may have expired: written now,
            // it could be a second event. It is kept for an operator to replay instead.
            keep_refused(
                &state,
                &delivery,
                "spooled for longer than the dedupe window (OMNIGATE_DEDUPE_TTL_SECS)",
            )
            .await
        } else {
            drain_one(&state, &delivery).await
        };
        match result {
            Ok(outcome) => {
                // Counted first, so an empty spool means the count is complete.
                state.metrics.spool.drained.inc();
                settle(&spool, position).await;
                spool.note_store_up();
                (retry, outages, refusals) = (FIRST_RETRY, 0, 0);
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
            Err(e @ Error::StoreUnavailable(_)) => {
                // Down, or (with wait_replicas) not yet confirmed by a replica: waited out
                // however long it takes, as no fault of this record. New deliveries
                // meanwhile go straight to the spool.
                outages += 1;
                spool.note_store_down(retry.max(Duration::from_secs(1)));
                // Said at once, then about once a minute (retries reach 5 s apart).
                if outages % 12 == 1 {
                    tracing::warn!(reason = %e, attempts = outages, waiting = spool.stats().records, "store still unavailable; the spool keeps its deliveries");
                }
                if pause(&mut stop, retry).await {
                    return;
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
            Err(e @ (Error::StoreRefused(_) | Error::Contended(_))) => {
                // The store answers, and will not take this record.
                refusals += 1;
                if refusals >= ATTEMPTS_WHILE_UP {
                    tracing::error!(error = %e, source_id = %delivery.source_id, attempts = refusals, "the store answers but keeps refusing a spooled delivery; keeping it in quarantine");
                    let why = format!("the store keeps refusing it: {e}");
                    if keep_refused(&state, &delivery, &why).await.is_ok() {
                        settle(&spool, position).await;
                        (retry, outages, refusals) = (FIRST_RETRY, 0, 0);
                        continue;
                    }
                }
                if pause(&mut stop, retry).await {
                    return;
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
            Err(e) => {
                // The pipeline refuses a delivery it once took: keep it, with why.
                tracing::error!(error = %e, source_id = %delivery.source_id, "a spooled delivery was refused on drain; keeping it in quarantine");
                match keep_refused(&state, &delivery, &e.to_string()).await {
                    Ok(_) => {
                        settle(&spool, position).await;
                        (retry, outages, refusals) = (FIRST_RETRY, 0, 0);
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

/// Moves the drain past a record that was handled.
async fn settle(spool: &Arc<Spool>, position: crate::spool::Position) {
    if let Err(e) = blocking(spool, move |s| s.done(position)).await {
        // The delivery is in the store: at worst it is drained again after a restart, as a
        // duplicate.
        tracing::error!(error = %e, "spool cursor cannot be written");
    }
}

fn past_dedupe_window(state: &AppState, d: &SpooledDelivery) -> bool {
    let age = state.now().signed_duration_since(d.received_at);
    age.num_seconds() > 0 && age.num_seconds() as u64 > state.settings.dedupe_ttl_secs
}

fn origin<'a>(d: &'a SpooledDelivery, shop_locale: Option<&'a str>) -> Origin<'a> {
    Origin {
        source_id: &d.source_id,
        tenant: &d.tenant,
        provider: providers::of(d.provider),
        shop_locale,
    }
}

/// Runs one spooled delivery through the pipeline as of when it arrived (with its source's
/// options as they are now: the spool keeps no copy of them).
pub async fn drain_one(state: &AppState, d: &SpooledDelivery) -> Result<Outcome> {
    let headers: Headers = d.headers.iter().collect();
    let source = state.source(&d.source_id).await?;
    let locale = source.as_ref().and_then(|s| s.options.locale.as_deref());
    pipeline(
        state,
        &origin(d, locale),
        &headers,
        &d.body,
        d.received_at,
        None,
    )
    .await
}

async fn keep_refused(state: &AppState, d: &SpooledDelivery, why: &str) -> Result<Outcome> {
    // Kept as received: nothing is mapped, so the shop's locale plays no part.
    let origin = origin(d, None);
    let headers: Headers = d.headers.iter().collect();
    let parsed = Json::parse(&d.body).ok();
    let identity = identity::identify(origin.provider, &headers, parsed.as_ref(), &d.body);
    let reason = format!("spooled delivery not written when drained: {why}");
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
