//! Logs (tracing, text or JSON), the per-request root span, and Prometheus metrics.

use actix_web::Error as ActixError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

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

/// One span per request: tracing-actix-web's fields (request id, route, status) plus the
/// webhook's source, provider and outcome, recorded by the ingest handler.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(
            request,
            source_id = tracing::field::Empty,
            provider = tracing::field::Empty,
            outcome = tracing::field::Empty
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, ActixError>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The gateway's metrics, in a registry of its own (several gateways can share a process
/// in tests).
pub struct Metrics {
    registry: Registry,
    pub webhooks: IntCounterVec,
    pub ingest_seconds: HistogramVec,
    pub store_errors: IntCounterVec,
    pub log_trimmed: IntCounter,
    pub inbox_trimmed: IntCounterVec,
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
        let inbox_trimmed = IntCounterVec::new(
            Opts::new(
                "omnigate_inbox_trimmed_total",
                "Undelivered inbox entries removed by the inbox cap, per plugin",
            ),
            &["plugin"],
        )
        .expect("valid metric");
        for c in [
            Box::new(inbox_trimmed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(webhooks.clone()),
            Box::new(ingest_seconds.clone()),
            Box::new(store_errors.clone()),
            Box::new(log_trimmed.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            webhooks,
            ingest_seconds,
            store_errors,
            log_trimmed,
            inbox_trimmed,
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
