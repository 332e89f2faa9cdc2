//! Logs (tracing, text or JSON), the per-request root span, and Prometheus metrics.

use actix_web::Error as ActixError;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use omnigate_schemas::api::Provider;

/// Installs the global subscriber; `filter` uses EnvFilter syntax.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The path as logs show it: the secret of an unsigned source's webhook URL
/// (`/v1/webhooks/{id}/{secret}`) is a credential, so it is masked.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/v1/webhooks/") {
        Some(rest) if rest.contains('/') => {
            let id = rest.split('/').next().unwrap_or_default();
            std::borrow::Cow::Owned(format!("/v1/webhooks/{id}/***"))
        }
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// One span per request: method, path, client, request id and status, plus the webhook's
/// source, provider and outcome, recorded by the ingest handler. Leaner than
/// tracing-actix-web's own root span, which matches the route a second time (a regex per
/// request: the path is logged instead) and parses the forwarding headers before it knows
/// whether the span is even enabled.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.target = %loggable_path(request.path()),
            http.client_ip = tracing::field::Empty,
            http.user_agent = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            source_id = tracing::field::Empty,
            provider = tracing::field::Empty,
            outcome = tracing::field::Empty
        );
        // Only what a log line will show is worked out (the forwarding headers, for one).
        if !span.is_disabled() {
            if let Some(id) = request.extensions().get::<RequestId>() {
                span.record("request_id", tracing::field::display(id));
            }
            if let Some(ip) = request.connection_info().realip_remote_addr() {
                span.record("http.client_ip", ip);
            }
            if let Some(agent) = request
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
            {
                span.record("http.user_agent", agent);
            }
        }
        span
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, ActixError>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// What became of a webhook delivery: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Accepted,
    Duplicate,
    Quarantined,
    Spooled,
    Handshake,
    SourceNotFound,
    InvalidSignature,
    SenderNotAllowed,
    Stale,
    TooLarge,
    BodyTimeout,
    RateLimited,
    StoreUnavailable,
    QuarantineFull,
    Error,
}

impl WebhookOutcome {
    pub const ALL: [WebhookOutcome; 15] = [
        Self::Accepted,
        Self::Duplicate,
        Self::Quarantined,
        Self::Spooled,
        Self::Handshake,
        Self::SourceNotFound,
        Self::InvalidSignature,
        Self::SenderNotAllowed,
        Self::Stale,
        Self::TooLarge,
        Self::BodyTimeout,
        Self::RateLimited,
        Self::StoreUnavailable,
        Self::QuarantineFull,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Quarantined => "quarantined",
            Self::Spooled => "spooled",
            Self::Handshake => "handshake",
            Self::SourceNotFound => "source_not_found",
            Self::InvalidSignature => "invalid_signature",
            Self::SenderNotAllowed => "sender_not_allowed",
            Self::Stale => "stale",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::RateLimited => "rate_limited",
            Self::StoreUnavailable => "store_unavailable",
            Self::QuarantineFull => "quarantine_full",
            Self::Error => "error",
        }
    }
}

/// The `provider` label's values: every provider, then `unknown` (no source).
fn provider_labels() -> impl Iterator<Item = &'static str> {
    Provider::ALL
        .iter()
        .map(|p| p.as_str())
        .chain(std::iter::once("unknown"))
}

fn provider_index(provider: Option<Provider>) -> usize {
    provider
        .and_then(|p| Provider::ALL.iter().position(|q| *q == p))
        .unwrap_or(Provider::ALL.len())
}

/// The gateway's metrics, in a registry of its own (several gateways can share a process
/// in tests).
pub struct Metrics {
    registry: Registry,
    pub webhooks: IntCounterVec,
    pub ingest_seconds: HistogramVec,
    /// Resolved once: a delivery counts without hashing labels or taking the vector's lock.
    webhook_counters: Vec<IntCounter>,
    ingest_histograms: Vec<Histogram>,
    pub store_errors: IntCounterVec,
    pub log_trimmed: IntCounter,
    /// Appends that found a log over its cap but kept its oldest entries, as the router
    /// had not delivered them.
    pub log_retention_held: IntCounter,
    /// Log entries the router set aside after they kept failing while the store answered.
    pub router_dead_letters: IntCounter,
    pub inbox_trimmed: IntCounterVec,
    pub spool: SpoolMetrics,
    pub push: PushMetrics,
    /// Changes the pollers read from providers and wrote.
    pub poll_changes: IntCounter,
    /// Thin events the enricher settled, by outcome (`enriched`, `skipped`, `retried`,
    /// `waited`, `failed`).
    pub enrichment: IntCounterVec,
}

/// Push delivery: attempts by outcome and how long each took.
pub struct PushMetrics {
    /// Answered 2xx: acknowledged.
    pub delivered: IntCounter,
    /// Failed and scheduled again.
    pub retried: IntCounter,
    /// Failed its last attempt: a dead letter.
    pub dead: IntCounter,
    pub seconds: Histogram,
}

impl PushMetrics {
    fn new() -> (Self, IntCounterVec) {
        let attempts = IntCounterVec::new(
            Opts::new(
                "omnigate_push_attempts_total",
                "Pushes to plugin endpoints by outcome (delivered, retried, dead)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let seconds = Histogram::with_opts(
            HistogramOpts::new(
                "omnigate_push_duration_seconds",
                "Time one push took, from connecting to the answer",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
            ]),
        )
        .expect("valid metric");
        let push = PushMetrics {
            delivered: attempts.with_label_values(&["delivered"]),
            retried: attempts.with_label_values(&["retried"]),
            dead: attempts.with_label_values(&["dead"]),
            seconds,
        };
        (push, attempts)
    }
}

/// The local spool: how much waits, since when, and how fast it drains.
pub struct SpoolMetrics {
    pub records: IntGauge,
    pub bytes: IntGauge,
    pub oldest_age_seconds: Gauge,
    /// Spooled deliveries handed to the pipeline and done with (written, duplicate or
    /// quarantined): its rate is the drain rate.
    pub drained: IntCounter,
    /// Spooled records that could not be read back (damaged on disk): logged with where
    /// their bytes were copied.
    pub unreadable: IntCounter,
}

impl SpoolMetrics {
    fn new() -> Self {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        SpoolMetrics {
            records: gauge(
                "omnigate_spool_records",
                "Verified deliveries in the local spool, not yet written to the store",
            ),
            bytes: gauge(
                "omnigate_spool_bytes",
                "Bytes of spool segment files on disk",
            ),
            oldest_age_seconds: Gauge::new(
                "omnigate_spool_oldest_age_seconds",
                "Age of the oldest delivery waiting in the spool (0 when empty)",
            )
            .expect("valid metric"),
            drained: counter(
                "omnigate_spool_drained_total",
                "Spooled deliveries drained into the store",
            ),
            unreadable: counter(
                "omnigate_spool_unreadable_total",
                "Spooled records that could not be read back",
            ),
        }
    }

    /// Sets the gauges from what the spool holds now.
    pub fn observe(&self, stats: crate::spool::Stats, now: chrono::DateTime<chrono::Utc>) {
        self.unreadable
            .inc_by(stats.unreadable.saturating_sub(self.unreadable.get()));
        self.records.set(stats.records as i64);
        self.bytes.set(stats.bytes as i64);
        let age = match (stats.records, stats.oldest) {
            (0, _) | (_, None) => 0.0,
            (_, Some(at)) => (now - at).num_milliseconds().max(0) as f64 / 1000.0,
        };
        // While the drainer is between records the oldest's time is not known: keep the
        // last age rather than dropping to zero.
        if stats.records == 0 || stats.oldest.is_some() {
            self.oldest_age_seconds.set(age);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let webhooks = IntCounterVec::new(
            Opts::new(
                "omnigate_webhooks_total",
                "Webhook deliveries by provider and outcome",
            ),
            &["provider", "outcome"],
        )
        .expect("valid metric");
        let ingest_seconds = HistogramVec::new(
            HistogramOpts::new(
                "omnigate_ingest_duration_seconds",
                "Time from request start to answer on the webhook endpoint",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            &["provider"],
        )
        .expect("valid metric");
        let store_errors = IntCounterVec::new(
            Opts::new(
                "omnigate_store_errors_total",
                "Store operations that failed",
            ),
            &["operation"],
        )
        .expect("valid metric");
        let log_trimmed = IntCounter::new(
            "omnigate_log_trimmed_total",
            "Old log and quarantine entries removed by retention",
        )
        .expect("valid metric");
        let log_retention_held = IntCounter::new(
            "omnigate_log_retention_held_total",
            "Appends to a log over its cap whose oldest entries were kept because the router \
             has not delivered them",
        )
        .expect("valid metric");
        let router_dead_letters = IntCounter::new(
            "omnigate_router_dead_letters_total",
            "Log entries the router set aside after they kept failing to route",
        )
        .expect("valid metric");
        let inbox_trimmed = IntCounterVec::new(
            Opts::new(
                "omnigate_inbox_trimmed_total",
                "Undelivered inbox entries removed by the inbox cap, per plugin",
            ),
            &["plugin"],
        )
        .expect("valid metric");
        let webhook_counters = provider_labels()
            .flat_map(|p| {
                WebhookOutcome::ALL
                    .iter()
                    .map(|o| webhooks.with_label_values(&[p, o.as_str()]))
                    .collect::<Vec<_>>()
            })
            .collect();
        let ingest_histograms = provider_labels()
            .map(|p| ingest_seconds.with_label_values(&[p]))
            .collect();
        let spool = SpoolMetrics::new();
        let (push, push_attempts) = PushMetrics::new();
        let poll_changes = IntCounter::new(
            "omnigate_poll_changes_total",
            "Changes the pollers read from marketplaces' APIs and wrote",
        )
        .expect("valid metric");
        let enrichment = IntCounterVec::new(
            prometheus::Opts::new(
                "omnigate_enrichment_total",
                "Thin events the enricher settled, by outcome: enriched, skipped (nothing to \
                 read), retried, waited (budget or rate limit), failed (a dead letter)",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(poll_changes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(enrichment.clone()),
            Box::new(push_attempts),
            Box::new(push.seconds.clone()),
            Box::new(inbox_trimmed.clone()),
            Box::new(spool.records.clone()),
            Box::new(spool.bytes.clone()),
            Box::new(spool.oldest_age_seconds.clone()),
            Box::new(spool.drained.clone()),
            Box::new(spool.unreadable.clone()),
            Box::new(webhooks.clone()),
            Box::new(ingest_seconds.clone()),
            Box::new(store_errors.clone()),
            Box::new(log_trimmed.clone()),
            Box::new(log_retention_held.clone()),
            Box::new(router_dead_letters.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            webhooks,
            ingest_seconds,
            webhook_counters,
            ingest_histograms,
            store_errors,
            log_trimmed,
            log_retention_held,
            router_dead_letters,
            inbox_trimmed,
            poll_changes,
            enrichment,
            spool,
            push,
        }
    }

    /// Counts one webhook delivery and the time it took (`provider` is `None` when no
    /// source was found).
    pub fn webhook(&self, provider: Option<Provider>, outcome: WebhookOutcome, seconds: f64) {
        let p = provider_index(provider);
        let o = WebhookOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .expect("every outcome is in ALL");
        self.webhook_counters[p * WebhookOutcome::ALL.len() + o].inc();
        self.ingest_histograms[p].observe(seconds);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_url_secrets_are_masked_in_logs() {
        assert_eq!(
            loggable_path("/v1/webhooks/src_1/s3cret-0123456789abcdef"),
            "/v1/webhooks/src_1/***"
        );
        assert_eq!(loggable_path("/v1/webhooks/src_1"), "/v1/webhooks/src_1");
        assert_eq!(loggable_path("/v1/sources/src_1"), "/v1/sources/src_1");
    }

    #[test]
    fn each_delivery_counts_under_its_provider_and_outcome() {
        let m = Metrics::new();
        m.webhook(Some(Provider::Shopify), WebhookOutcome::Accepted, 0.001);
        m.webhook(Some(Provider::Shopify), WebhookOutcome::Accepted, 0.002);
        m.webhook(Some(Provider::Stripe), WebhookOutcome::Duplicate, 0.001);
        m.webhook(None, WebhookOutcome::SourceNotFound, 0.0001);
        let text = m.render();
        for line in [
            r#"omnigate_webhooks_total{outcome="accepted",provider="shopify"} 2"#,
            r#"omnigate_webhooks_total{outcome="duplicate",provider="stripe"} 1"#,
            r#"omnigate_webhooks_total{outcome="source_not_found",provider="unknown"} 1"#,
            r#"omnigate_webhooks_total{outcome="accepted",provider="stripe"} 0"#,
            r#"omnigate_ingest_duration_seconds_count{provider="shopify"} 2"#,
            r#"omnigate_ingest_duration_seconds_count{provider="unknown"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
