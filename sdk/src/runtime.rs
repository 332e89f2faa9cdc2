//! The plugin runtime: long-polls the inbox in batches, runs the handler with bounded
//! concurrency (in log order per subject, also across a failure and its retry),
//! acknowledges successes, hands failures back with a growing delay, and on shutdown stops
//! pulling and finishes what is in flight.

use omnigate_schemas::Event;
use omnigate_schemas::api::InboxDelivery;
use omnigate_schemas::events::Data;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::{Client, Error};

/// What a handler may fail with; the delivery comes back later (with the error as the
/// attempt's reason), unless the error is [`Permanent`].
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
/// What a handler returns: `Ok` acknowledges the delivery, `Err` hands it back.
pub type HandlerResult = Result<(), HandlerError>;

/// A failure no retry can fix (the event lacks what the plugin needs, a bug): the runtime
/// moves the delivery to the dead letters at once, with the reason, instead of retrying it.
/// The gateway's permanent refusals ([`Error::is_permanent`], e.g. a 422 from a publish)
/// count as such too.
///
/// ```
/// use omnigate_sdk::{HandlerResult, Permanent};
/// fn check(customer: Option<&str>) -> HandlerResult {
///     let Some(_customer) = customer else {
///         return Err(Permanent::new("the order has no customer to award points to").into());
///     };
///     Ok(())
/// }
/// assert!(check(None).is_err());
/// ```
#[derive(Debug)]
pub struct Permanent(HandlerError);

impl Permanent {
    /// A permanent failure, for `reason`.
    pub fn new(reason: impl Into<HandlerError>) -> Self {
        Permanent(reason.into())
    }
}

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Permanent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Whether no retry can fix `e`.
pub(crate) fn is_permanent(e: &HandlerError) -> bool {
    e.downcast_ref::<Permanent>().is_some()
        || e.downcast_ref::<Error>().is_some_and(Error::is_permanent)
}

/// One event handed to the handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// What the runtime acknowledges for you (pushed: the event id).
    pub receipt: String,
    /// 1 on the first delivery; grows with each redelivery (pushed: `omnigate-attempt`).
    pub attempt: u64,
    /// The canonical (or plugin) event.
    pub event: Event,
}

impl Delivery {
    /// The event's data as its catalog type ([`Data::Pending`] for thin payloads,
    /// [`Data::Other`] for plugin event types).
    pub fn data(&self) -> Result<Data, HandlerError> {
        Ok(Data::parse(&self.event.event_type, &self.event.data)?)
    }

    /// The plugin that published this event, when a plugin did (`None` for events from a
    /// shop's signed webhooks). A plugin namespace belongs to its first registrant, so
    /// this says which plugin stands behind an event such as `loyalty.points.changed`.
    pub fn publisher(&self) -> Option<&str> {
        (self.event.source.provider == "plugin").then_some(self.event.source.id.as_str())
    }
}

impl From<InboxDelivery> for Delivery {
    fn from(d: InboxDelivery) -> Self {
        Delivery {
            receipt: d.receipt,
            attempt: d.attempt,
            event: d.event,
        }
    }
}

/// Your plugin's logic. It must tolerate seeing an event more than once (delivery is at
/// least once): key side effects on `delivery.event.id`.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery; an error hands it back to come again later.
    async fn handle(&self, delivery: &Delivery, client: &Client) -> HandlerResult;
}

/// Share a handler (and the state it keeps) with the rest of your program.
#[async_trait::async_trait]
impl<H: Handler> Handler for Arc<H> {
    async fn handle(&self, delivery: &Delivery, client: &Client) -> HandlerResult {
        (**self).handle(delivery, client).await
    }
}

/// How long a stop waits for a pull under way to answer before dropping it.
const STOP_GRACE: Duration = Duration::from_millis(500);

/// Counts of what the runtime did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Deliveries handled and acknowledged.
    pub handled: u64,
    /// Handler failures (each handed back for a retry).
    pub failed: u64,
    /// Deliveries handed back unhandled, to wait behind an earlier event of their subject
    /// that failed and is coming back.
    pub held: u64,
}

/// Subjects (per shop) whose earlier event failed and is coming back for a retry: later
/// events of the subject are handed back untried to come after it, so an order's
/// `order.paid` is not handled before its `order.created` succeeded, even when
/// `order.created` failed at first; and those handed back go in log order before anything
/// newer of the subject.
#[derive(Default)]
struct Holds(Mutex<HashMap<String, Hold>>);

#[derive(Default)]
struct Hold {
    /// The delivery being retried (its receipt stays the same across redeliveries), its
    /// event id, and when it is due back.
    retrying: Option<(String, String, Instant)>,
    /// Deliveries handed back to wait, by log position: their receipt and when each is due
    /// back.
    waiting: std::collections::BTreeMap<(u64, u64), (String, Instant)>,
}

/// A receipt's place in the log (`<ms>-<seq>`); an unreadable one sorts last.
fn position(receipt: &str) -> (u64, u64) {
    receipt
        .split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .unwrap_or((u64::MAX, u64::MAX))
}

/// Holds are per shop: two shops' `order/1001` are different orders.
fn subject_key(d: &Delivery) -> String {
    format!("{}\u{0}{}", d.event.tenant, d.event.subject)
}

impl Holds {
    /// How long after its due time a delivery may take to come back before it is no longer
    /// waited for (the inbox may have dead-lettered it, or another runtime taken it).
    const PATIENCE: Duration = Duration::from_secs(10);
    /// How long after the delivery it waits behind a held one comes back.
    const AFTER: Duration = Duration::from_millis(500);
    /// Subjects held at most; past it every hold is dropped (their order is no longer
    /// kept, their deliveries are not lost).
    const MAX: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hold>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `d` failed and comes back at `due`: its subject's later deliveries wait for it.
    fn hold(&self, d: &Delivery, due: Instant) {
        let mut holds = self.lock();
        if holds.len() >= Self::MAX {
            holds.clear();
        }
        let hold = holds.entry(subject_key(d)).or_default();
        hold.waiting.remove(&position(&d.receipt));
        hold.retrying = Some((d.receipt.clone(), d.event.id.clone(), due));
    }

    /// `d` succeeded or was given up on: it no longer holds anything up.
    fn release(&self, d: &Delivery) {
        let key = subject_key(d);
        let mut holds = self.lock();
        let Some(hold) = holds.get_mut(&key) else {
            return;
        };
        if hold
            .retrying
            .as_ref()
            .is_some_and(|(r, ..)| *r == d.receipt)
        {
            hold.retrying = None;
        }
        hold.waiting.remove(&position(&d.receipt));
        if hold.retrying.is_none() && hold.waiting.is_empty() {
            holds.remove(&key);
        }
    }

    /// Whether `d` must wait (handed back untried): for how long, and behind which event.
    /// It goes when it is the held delivery itself, or when nothing of its subject is held
    /// and nothing handed back before it is still to come.
    fn wait_for(&self, d: &Delivery, now: Instant) -> Option<(Duration, String)> {
        let key = subject_key(d);
        let mut holds = self.lock();
        let hold = holds.get_mut(&key)?;
        let overdue = |due: Instant| now > due + Self::PATIENCE;
        if hold
            .retrying
            .as_ref()
            .is_some_and(|(_, _, due)| overdue(*due))
        {
            hold.retrying = None;
        }
        hold.waiting.retain(|_, (_, due)| !overdue(*due));
        let me = position(&d.receipt);
        let behind = match &hold.retrying {
            Some((receipt, _, _)) if *receipt == d.receipt => None,
            Some((_, event_id, due)) => Some((*due, event_id.clone())),
            None => hold
                .waiting
                .range(..me)
                .next()
                .map(|(_, (receipt, due))| (*due, format!("the delivery {receipt}"))),
        };
        match behind {
            Some((due, what)) => {
                let back = due.max(now) + Self::AFTER;
                hold.waiting.insert(me, (d.receipt.clone(), back));
                Some((back - now, what))
            }
            None => {
                hold.waiting.remove(&me);
                if hold.retrying.is_none() && hold.waiting.is_empty() {
                    holds.remove(&key);
                }
                None
            }
        }
    }

    /// The next time a held delivery is due back, if one is still to come: a pull should
    /// not wait past it, or it would wait for the long-poll to end.
    fn next_due(&self, now: Instant) -> Option<Instant> {
        self.lock()
            .values()
            .flat_map(|h| {
                h.retrying
                    .iter()
                    .map(|(_, _, due)| *due)
                    .chain(h.waiting.values().map(|(_, due)| *due))
            })
            .filter(|due| *due > now)
            .min()
    }
}

/// Runs a [`Handler`] against the inbox.
pub struct Runtime<H> {
    client: Client,
    handler: Arc<H>,
    concurrency: usize,
    batch: usize,
    wait: Duration,
    backoff: Duration,
    max_backoff: Duration,
}

impl<H: Handler> Runtime<H> {
    /// A runtime for `handler`, pulling with `client` (which holds the plugin's key).
    pub fn new(client: Client, handler: H) -> Self {
        Runtime {
            client,
            handler: Arc::new(handler),
            concurrency: 4,
            batch: 20,
            wait: Duration::from_secs(20),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }

    /// Handlers running at once (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Deliveries taken per pull (default 20, at most 100).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.clamp(1, 100);
        self
    }

    /// Long-poll wait per pull (default 20 s).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Delay before a failed delivery comes back: `backoff * 2^(attempt-1)`, capped at
    /// `max` (defaults 1 s and 5 min).
    pub fn retry_backoff(mut self, backoff: Duration, max: Duration) -> Self {
        self.backoff = backoff;
        self.max_backoff = max;
        self
    }

    /// Runs until SIGINT or SIGTERM, then finishes in-flight work.
    ///
    /// Fails at once when the gateway refuses the plugin's key (401) or the plugin (403),
    /// at start (`GET /v1/me`) or later (a key revoked while running): retrying cannot fix
    /// a credential. Other failures (the gateway unreachable, 5xx) are retried.
    pub async fn run(self) -> Result<RuntimeStats, Error> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs in the background until [`Running::stop`] (or until the [`Running`] is
    /// dropped, which stops it the same way without waiting for it): for a program (or
    /// test) that runs several plugins, or does other work meanwhile. Keep the handle.
    pub fn spawn(self) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until(async {
            let _ = stopped.await;
        }));
        Running { stop, task }
    }

    /// Runs until `shutdown` completes, then finishes in-flight work.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RuntimeStats, Error> {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        // Per subject (`order/123`), handlers run one after another in log order, so an
        // order's `order.paid` never overtakes its `order.created`.
        let mut tails: std::collections::HashMap<String, tokio::sync::oneshot::Receiver<()>> =
            std::collections::HashMap::new();
        let handled = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicU64::new(0));
        let holds = Arc::new(Holds::default());
        tokio::pin!(shutdown);
        let me = self.client.me().await;
        match &me {
            Err(e) if refused_credentials(e) => {
                tracing::error!(error = %e, "the gateway refuses this plugin's key: check OMNIGATE_API_KEY");
                return Err(me.unwrap_err());
            }
            // Unreachable for now: the pulls below retry.
            Err(e) => tracing::warn!(error = %e, "could not ask the gateway who this plugin is"),
            Ok(p) => tracing::info!(plugin_id = %p.id, plugin = %p.name, "plugin authenticated"),
        }
        let (acks, acker) = Acker::start(self.client.clone());
        tracing::info!(concurrency = self.concurrency, "plugin runtime started");
        let mut refused = None;
        loop {
            // Take only as many as can start now, so none waits past its visibility.
            let free = permits.available_permits().clamp(1, self.batch);
            let inbox = self.client.inbox();
            let now = Instant::now();
            let wait = holds
                .next_due(now)
                .map_or(self.wait, |due| (due - now).min(self.wait));
            let pull = inbox.pull(free, wait);
            tokio::pin!(pull);
            // A pull under way when the stop comes gets a moment to answer (deliveries the
            // gateway handed us are then handed straight back); a long-poll still waiting
            // after it is dropped, so a stop takes at most that moment plus the handlers in
            // flight. Anything the gateway handed out in a dropped answer comes back after
            // its visibility timeout, as after a crash.
            let (pulled, stopping) = tokio::select! {
                r = &mut pull => (r, false),
                _ = &mut shutdown => {
                    match tokio::time::timeout(STOP_GRACE, &mut pull).await {
                        Ok(r) => (r, true),
                        Err(_) => (Ok(Vec::new()), true),
                    }
                }
            };
            if stopping {
                if let Ok(deliveries) = pulled
                    && !deliveries.is_empty()
                {
                    let receipts: Vec<String> = deliveries.into_iter().map(|d| d.receipt).collect();
                    if let Err(e) = inbox.nack(&receipts, Duration::ZERO).await {
                        tracing::warn!(error = %e, "could not hand back deliveries at shutdown");
                    }
                }
                break;
            }
            let deliveries = match pulled {
                Ok(d) => d,
                Err(e) if refused_credentials(&e) => {
                    tracing::error!(error = %e, "the gateway refuses this plugin's key; stopping");
                    refused = Some(e);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pull failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            };
            for d in deliveries {
                let permit = permits.clone().acquire_owned().await.expect("never closed");
                if tails.len() > 10_000 {
                    tails.clear();
                }
                let (done, next) = tokio::sync::oneshot::channel::<()>();
                let before =
                    tails.insert(format!("{}\u{0}{}", d.event.tenant, d.event.subject), next);
                let (client, handler) = (self.client.clone(), self.handler.clone());
                let (handled, failed, held) = (handled.clone(), failed.clone(), held.clone());
                let holds = holds.clone();
                let acks = acks.clone();
                let (backoff, max_backoff) = (self.backoff, self.max_backoff);
                tokio::spawn(async move {
                    let _permit = permit;
                    // Signals the next handler of this subject when this one is over.
                    let _done = done;
                    if let Some(before) = before {
                        let _ = before.await;
                    }
                    let d = Delivery::from(d);
                    if let Some((delay, behind)) = holds.wait_for(&d, Instant::now()) {
                        held.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(event_id = %d.event.id, subject = %d.event.subject, %behind, retry_in = ?delay, "held behind an earlier event of its subject");
                        // Untried: this costs the delivery no attempt.
                        let settled = client
                            .inbox()
                            .defer(std::slice::from_ref(&d.receipt), delay)
                            .await;
                        if let Err(e) = settled {
                            tracing::warn!(event_id = %d.event.id, error = %e, "could not hand back a held delivery");
                        }
                        return;
                    }
                    let outcome = handler.handle(&d, &client).await;
                    let settled = match outcome {
                        Ok(()) => {
                            holds.release(&d);
                            handled.fetch_add(1, Ordering::Relaxed);
                            // Acknowledged in batches with the others that finish meanwhile.
                            let _ = acks.send(d.receipt.clone());
                            Ok(0)
                        }
                        Err(e) if is_permanent(&e) => {
                            holds.release(&d);
                            failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(event_id = %d.event.id, attempt = d.attempt, error = %e, "handler failed for good; dead-lettered");
                            client
                                .inbox()
                                .dead_letter(std::slice::from_ref(&d.receipt), &e.to_string())
                                .await
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            let exp = d.attempt.saturating_sub(1).min(20) as u32;
                            let delay = backoff.saturating_mul(2u32.pow(exp)).min(max_backoff);
                            tracing::warn!(event_id = %d.event.id, attempt = d.attempt, error = %e, retry_in = ?delay, "handler failed");
                            // Set before this handler's turn ends, so the next delivery of
                            // the subject (waiting for that turn) sees it.
                            holds.hold(&d, Instant::now() + delay);
                            client
                                .inbox()
                                .nack_because(
                                    std::slice::from_ref(&d.receipt),
                                    delay,
                                    &e.to_string(),
                                )
                                .await
                        }
                    };
                    if let Err(e) = settled {
                        // The gateway will hand it out again after the visibility timeout.
                        tracing::warn!(event_id = %d.event.id, error = %e, "could not settle a delivery");
                    }
                });
            }
        }
        // Graceful stop: wait until every in-flight handler gave its permit back, then until
        // their acknowledgements are sent.
        let _all = permits
            .acquire_many(self.concurrency as u32)
            .await
            .expect("never closed");
        drop(acks);
        let _ = acker.await;
        let stats = RuntimeStats {
            handled: handled.load(Ordering::Relaxed),
            failed: failed.load(Ordering::Relaxed),
            held: held.load(Ordering::Relaxed),
        };
        tracing::info!(
            handled = stats.handled,
            failed = stats.failed,
            held = stats.held,
            "plugin runtime stopped"
        );
        match refused {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

/// A runtime running in the background ([`Runtime::spawn`]); dropping it stops the runtime.
#[must_use = "dropping it stops the runtime"]
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<RuntimeStats, Error>>,
}

impl Running {
    /// Stops it as a SIGTERM would (finishing what is in flight); what it did, or why it
    /// stopped early (a key the gateway refused).
    pub async fn stop(self) -> Result<RuntimeStats, Error> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Cancelled),
        }
    }
}

/// 401 (the key is unknown, revoked or expired) or 403 (the plugin may not do this).
fn refused_credentials(e: &Error) -> bool {
    matches!(
        e,
        Error::Api {
            status: 401 | 403,
            ..
        }
    )
}

/// Sends acknowledgements in batches: each call takes every receipt that finished while the
/// previous one was on its way (up to [`Acker::MAX`]), so a busy plugin makes one call for
/// many deliveries instead of one each, and stays far below its API rate limit.
struct Acker;

impl Acker {
    const MAX: usize = 500;

    fn start(
        client: Client,
    ) -> (
        tokio::sync::mpsc::UnboundedSender<String>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(Self::MAX);
            while rx.recv_many(&mut batch, Self::MAX).await > 0 {
                if let Err(e) = client.inbox().ack(&batch).await {
                    // The gateway hands them out again after the visibility timeout.
                    tracing::warn!(error = %e, receipts = batch.len(), "could not acknowledge deliveries");
                }
                batch.clear();
            }
        });
        (tx, task)
    }
}

pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnigate_schemas::EventSource;

    fn delivery(provider: &str, id: &str) -> Delivery {
        Delivery {
            receipt: "1-0".into(),
            attempt: 1,
            event: Event {
                id: "evt_1".into(),
                event_type: "loyalty.points.changed".into(),
                schema_version: 1,
                tenant: "shop".into(),
                occurred_at: "2025-03-14T09:00:00Z".into(),
                received_at: "2025-03-14T09:00:00Z".into(),
                source: EventSource {
                    id: id.into(),
                    provider: provider.into(),
                    topic: "loyalty.points.changed".into(),
                    delivery_id: None,
                },
                subject: "customer/1".into(),
                data: serde_json::json!({}),
            },
        }
    }

    /// Delivery `n` of the log (receipt `100-n`) with event id `evt_n`, in `tenant`.
    fn nth(n: u64, tenant: &str) -> Delivery {
        let mut d = delivery("shopify", "src_1");
        d.receipt = format!("100-{n}");
        d.event.id = format!("evt_{n}");
        d.event.tenant = tenant.into();
        d
    }

    #[test]
    fn a_subject_is_held_until_its_retry_succeeds_or_is_overdue() {
        let holds = Holds::default();
        let now = Instant::now();
        let (first, later) = (nth(1, "shop"), nth(2, "shop"));
        holds.hold(&first, now + Duration::from_secs(2));
        let (wait, behind) = holds.wait_for(&later, now).unwrap();
        assert_eq!(wait, Duration::from_secs(2) + Holds::AFTER);
        assert_eq!(behind, "evt_1");
        assert!(
            holds.wait_for(&first, now).is_none(),
            "the retry itself goes"
        );
        assert_eq!(holds.next_due(now), Some(now + Duration::from_secs(2)));
        // Another shop's order/1 is another order.
        assert!(holds.wait_for(&nth(7, "other-shop"), now).is_none());
        // A retry that never came back (dead-lettered, taken elsewhere) is not waited for.
        let overdue = now + Duration::from_secs(3) + Holds::PATIENCE;
        assert!(holds.wait_for(&later, overdue).is_none());
    }

    #[test]
    fn what_was_held_goes_before_anything_newer_of_its_subject() {
        let holds = Holds::default();
        let now = Instant::now();
        let (e1, e2, e3) = (nth(1, "shop"), nth(2, "shop"), nth(3, "shop"));
        holds.hold(&e1, now + Duration::from_secs(1));
        assert!(holds.wait_for(&e2, now).is_some(), "held behind e1");
        // e1's retry succeeds; e2 is still on its way back when e3 arrives: e3 waits too.
        assert!(holds.wait_for(&e1, now).is_none());
        holds.release(&e1);
        let (_, behind) = holds.wait_for(&e3, now).expect("e3 must not overtake e2");
        assert_eq!(behind, "the delivery 100-2");
        // e2 comes back and goes; then e3 does.
        assert!(holds.wait_for(&e2, now).is_none());
        holds.release(&e2);
        assert!(holds.wait_for(&e3, now).is_none());
        holds.release(&e3);
        assert!(
            holds.0.lock().unwrap().is_empty(),
            "nothing kept once all went"
        );
    }

    #[test]
    fn the_publisher_of_a_plugin_event_is_named() {
        assert_eq!(delivery("plugin", "plg_1").publisher(), Some("plg_1"));
        assert_eq!(delivery("shopify", "src_1").publisher(), None);
    }
}
