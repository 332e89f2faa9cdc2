//! A plugin on the SDK that measures how long an event takes from the gateway receiving its
//! webhook (`received_at`, stamped by the gateway on the same machine) to the plugin's
//! handler holding it: pulled through the SDK runtime, or (`--push ADDR`) pushed by the
//! gateway to the SDK's push server. `scripts/bench.sh` starts it, sends webhooks with `wrk`,
//! and reads one `PROBE` line per burst of events (a burst ends when none came for
//! `--gap-ms`): how many, the handler latency p50/p99/max, and the rate they were handled
//! at.

use chrono::{DateTime, Utc};
use clap::Parser;
use hdrhistogram::Histogram;
use omnigate_schemas::api::{
    CreateInstallation, CreatePlugin, Delivery as Mode, DeliveryMode, Scope,
};
use omnigate_sdk::push::Server;
use omnigate_sdk::{Client, Delivery, Handler, HandlerResult, Runtime};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// Events handled before measuring starts.
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Bursts to measure before stopping (0: until no event came for `--idle-secs`).
    #[arg(long, default_value_t = 1)]
    bursts: u32,
    /// A burst ends when no event came for this long.
    #[arg(long, default_value_t = 1_000)]
    gap_ms: u64,
    /// Be a push plugin: serve pushes on this address (the gateway must allow private
    /// push URLs).
    #[arg(long)]
    push: Option<std::net::SocketAddr>,
    /// Most pushes in flight per gateway process (push only).
    #[arg(long, default_value_t = 100)]
    max_in_flight: u32,
    /// File created once the plugin is registered and receiving.
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
    /// Print what was measured and stop when no event came for this long.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
}

/// The events of one burst.
struct Burst {
    latency_us: Histogram<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Event ids handled, to tell redeliveries (at least once) from events.
    ids: std::collections::HashSet<String>,
    again: u64,
}

struct Probe {
    burst: Mutex<Burst>,
    seen: AtomicU64,
    warmup: u64,
}

#[async_trait::async_trait]
impl Handler for Probe {
    async fn handle(&self, d: &Delivery, _: &Client) -> HandlerResult {
        let now = Utc::now();
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.warmup {
            let received: DateTime<Utc> = d.event.received_at.parse()?;
            let us = (now - received).num_microseconds().unwrap_or(0).max(0) as u64;
            let mut b = self.burst.lock().unwrap_or_else(|p| p.into_inner());
            if !b.ids.insert(d.event.id.clone()) {
                b.again += 1;
                return Ok(());
            }
            b.latency_us.record(us.max(1)).ok();
            let at = Instant::now();
            b.first.get_or_insert(at);
            b.last = Some(at);
        }
        Ok(())
    }
}

impl Probe {
    /// The burst's figures once it is over (nothing for `gap`), and a fresh burst.
    fn take_if_over(&self, gap: Duration) -> Option<String> {
        let mut b = self.burst.lock().unwrap_or_else(|p| p.into_inner());
        let (first, last) = (b.first?, b.last?);
        if last.elapsed() < gap {
            return None;
        }
        let h = &b.latency_us;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let secs = (last - first).as_secs_f64().max(1e-3);
        let line = format!(
            "PROBE events={} redelivered={} per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            h.len(),
            b.again,
            h.len() as f64 / secs,
            ms(0.5),
            ms(0.99),
            h.max() as f64 / 1000.0
        );
        b.latency_us.reset();
        b.first = None;
        b.last = None;
        b.again = 0;
        Some(line)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let admin = Client::builder(&args.gateway, &args.admin_token).build()?;
    let listener = args.push.map(std::net::TcpListener::bind).transpose()?;
    let delivery = match &listener {
        Some(l) => Some(Mode {
            mode: DeliveryMode::Push,
            url: Some(format!("http://{}/", l.local_addr()?)),
            max_in_flight: Some(args.max_in_flight),
        }),
        None => None,
    };
    let plugin = admin
        .admin()
        .register_plugin(&CreatePlugin {
            name: "latency probe".into(),
            event_types: vec!["order.created".into()],
            publishes: vec![],
            delivery,
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
        burst: Mutex::new(Burst {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            first: None,
            last: None,
            ids: Default::default(),
            again: 0,
        }),
        seen: Default::default(),
        warmup: args.warmup,
    });
    // Pulled or pushed, the same handler.
    let mut pulling = None;
    let mut serving = None;
    match listener {
        Some(listener) => {
            let secret = plugin
                .signing_secret
                .ok_or("a push registration answers with a signing secret")?;
            let verifier = omnigate_sdk::push::Verifier::new(&[secret])?;
            serving = Some(
                Server::new(client, verifier, probe.clone())
                    .concurrency(args.max_in_flight as usize)
                    .serve(listener)?,
            );
        }
        None => {
            pulling = Some(
                Runtime::new(client, probe.clone())
                    .concurrency(64)
                    .batch(100)
                    .spawn(),
            );
        }
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, &plugin.plugin.id)?;
    }
    let gap = Duration::from_millis(args.gap_ms);
    let idle = Duration::from_secs(args.idle_secs);
    let (mut printed, mut last_seen, mut quiet_since) = (0, 0, Instant::now());
    while args.bursts == 0 || printed < args.bursts {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(line) = probe.take_if_over(gap) {
            println!("{line}");
            printed += 1;
        }
        let seen = probe.seen.load(Ordering::Relaxed);
        if seen != last_seen {
            (last_seen, quiet_since) = (seen, Instant::now());
        } else if quiet_since.elapsed() > idle {
            if let Some(line) = probe.take_if_over(Duration::ZERO) {
                println!("{line}");
            }
            eprintln!("no event for {idle:?} after {seen} events; stopping");
            break;
        }
    }
    if let Some(running) = pulling {
        running.stop().await?;
    }
    if let Some(serving) = serving {
        serving.stop().await;
    }
    Ok(())
}
