//! A plugin on the SDK runtime that measures how long an event takes from the gateway
//! receiving its webhook (`received_at`, stamped by the gateway on the same machine) to the
//! plugin's handler holding it. `scripts/bench.sh` starts it, sends webhooks with `wrk` at a
//! fixed rate, and reads the figures it prints when it has handled `--events` events.

use chrono::{DateTime, Utc};
use clap::Parser;
use hdrhistogram::Histogram;
use omnigate_schemas::api::{CreateInstallation, CreatePlugin, Scope};
use omnigate_sdk::{Client, Delivery, Handler, HandlerResult, Runtime};
use std::sync::Mutex;
use tokio::sync::Notify;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    #[arg(long, env = "OMNIGATE_ADMIN_TOKEN")]
    admin_token: String,
    #[arg(long, default_value = "bench-shop")]
    tenant: String,
    /// Events to measure before printing the figures and stopping.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Events handled before measuring starts.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// File created once the plugin is registered and pulling.
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
    /// Print what was measured and stop when no event came for this long.
    #[arg(long, default_value_t = 10)]
    idle_secs: u64,
}

struct Probe {
    latency_us: Mutex<Histogram<u64>>,
    seen: std::sync::atomic::AtomicU64,
    warmup: u64,
    target: u64,
    done: Notify,
}

#[async_trait::async_trait]
impl Handler for Probe {
    async fn handle(&self, d: &Delivery, _: &Client) -> HandlerResult {
        let now = Utc::now();
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n > self.warmup {
            let received: DateTime<Utc> = d.event.received_at.parse()?;
            let us = (now - received).num_microseconds().unwrap_or(0).max(0) as u64;
            let mut h = self.latency_us.lock().unwrap_or_else(|p| p.into_inner());
            h.record(us.max(1)).ok();
            if h.len() >= self.target {
                self.done.notify_one();
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let admin = Client::builder(&args.gateway, &args.admin_token).build()?;
    let plugin = admin
        .admin()
        .register_plugin(&CreatePlugin {
            name: "latency probe".into(),
            event_types: vec!["order.created".into()],
            publishes: vec![],
            delivery: None,
        })
        .await?;
    admin
        .admin()
        .install(
            &plugin.plugin.id,
            &CreateInstallation {
                tenant: args.tenant.clone(),
                scopes: vec![Scope::EventsRead, Scope::CustomerPii],
                push_url: None,
            },
        )
        .await?;
    let client = Client::builder(&args.gateway, &plugin.api_key).build()?;
    let probe = std::sync::Arc::new(Probe {
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        seen: Default::default(),
        warmup: args.warmup,
        target: args.events,
        done: Notify::new(),
    });
    if let Some(path) = &args.ready_file {
        std::fs::write(path, &plugin.plugin.id)?;
    }
    let runtime = Runtime::new(client, probe.clone())
        .concurrency(64)
        .batch(100);
    let done = probe.clone();
    let idle = std::time::Duration::from_secs(args.idle_secs);
    runtime
        .run_until(async move {
            // Measured enough, or the webhooks stopped coming (fewer than asked for).
            let mut last = 0;
            loop {
                tokio::select! {
                    _ = done.done.notified() => return,
                    _ = tokio::time::sleep(idle) => {
                        let seen = done.seen.load(std::sync::atomic::Ordering::Relaxed);
                        if seen > 0 && seen == last {
                            return;
                        }
                        last = seen;
                    }
                }
            }
        })
        .await?;
    let h = probe.latency_us.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "PROBE events={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        h.len(),
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
    Ok(())
}
