//! The sender side of `scripts/drill.sh`: posts distinct signed Shopify orders to a gateway
//! from several senders for a while, remembers every answer, waits until the gateway's
//! spool has drained, then reads the tenant's log and prints one line of figures: deliveries
//! sent, answered 2xx (of them spooled), 5xx, failed (no answer: the gateway was down),
//! acknowledged but missing from the log, written twice, and how long the spool took to
//! drain once the store was back. The faults themselves (Redis or the gateway killed, Redis
//! paused) are the script's.

use clap::Parser;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The gateway.
    #[arg(long)]
    url: String,
    #[arg(long, env = "OMNIGATE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// The Shopify source to send to, and its secret.
    #[arg(long)]
    source: String,
    #[arg(long, hide_env_values = true)]
    secret: String,
    /// The source's tenant, whose log is read back.
    #[arg(long)]
    tenant: String,
    #[arg(long, default_value_t = 8)]
    senders: u64,
    /// How long to send.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    /// How long to wait for the spool to drain after sending.
    #[arg(long, default_value_t = 120.0)]
    drain_timeout: f64,
}

/// Order numbers start here, so subjects (`order/<id>`) are easy to tell apart.
const BASE_ID: u64 = 5_000_000_000;

fn order(n: u64, secret: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let at = chrono::Utc::now().to_rfc3339();
    let body = format!(
        r##"{{"id":{},"name":"#{n}","created_at":"{at}","updated_at":"{at}","currency":"EUR","total_price":"19.90","financial_status":"pending","line_items":[]}}"##,
        BASE_ID + n
    )
    .into_bytes();
    let headers = vec![
        ("X-Shopify-Topic".to_string(), "orders/create".to_string()),
        (
            "X-Shopify-Hmac-Sha256".to_string(),
            omnigate::sign::body_hmac_base64(secret, &body),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    (headers, body)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Written,
    Spooled,
    Duplicate,
    ServerError,
    OtherStatus,
    Unanswered,
}

/// What `/readyz` said over time: when the store came back with deliveries spooled, and
/// when the spool was empty again.
#[derive(Default)]
struct Drain {
    back_at: Option<Instant>,
    empty_at: Option<Instant>,
    max_records: u64,
    /// (store reachable, spool not empty), each time it changed.
    seen: Vec<(bool, bool)>,
}

async fn watch_readiness(http: reqwest::Client, url: String, stop: Arc<AtomicBool>) -> Drain {
    let mut d = Drain::default();
    let mut was_down = false;
    while !stop.load(Ordering::Relaxed) {
        let ready: Option<Value> = match http.get(format!("{url}/readyz")).send().await {
            Ok(res) => res.json().await.ok(),
            Err(_) => None,
        };
        let records = ready
            .as_ref()
            .and_then(|r| r["spool"]["records"].as_u64())
            .unwrap_or(0);
        let reachable = ready
            .as_ref()
            .is_some_and(|r| r["status"] == "ready" || r["store"] == "reachable");
        d.max_records = d.max_records.max(records);
        let state = (reachable, records > 0);
        if d.seen.last() != Some(&state) {
            d.seen.push(state);
            if std::env::var_os("DRILL_DEBUG").is_some() {
                eprintln!("readyz: reachable={reachable} records={records}");
            }
        }
        if !reachable {
            was_down = true;
        }
        if reachable && was_down && records > 0 && d.back_at.is_none() {
            d.back_at = Some(Instant::now());
        }
        if d.back_at.is_some() && d.empty_at.is_none() && reachable && records == 0 {
            d.empty_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.senders as usize)
        .build()?;
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_readiness(
        http.clone(),
        args.url.clone(),
        stop_watch.clone(),
    ));

    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let senders: Vec<_> = (0..args.senders)
        .map(|_| {
            let (http, next) = (http.clone(), next.clone());
            let (url, source, secret) =
                (args.url.clone(), args.source.clone(), args.secret.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let (headers, body) = order(n, &secret);
                    let mut req = http.post(format!("{url}/v1/webhooks/{source}")).body(body);
                    for (k, v) in headers {
                        req = req.header(k, v);
                    }
                    let answer = match req.send().await {
                        Err(_) => {
                            // The gateway is down: a real sender would retry later.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Answer::Unanswered
                        }
                        Ok(res) => {
                            let status = res.status().as_u16();
                            let json: Value = res.json().await.unwrap_or(Value::Null);
                            match status {
                                202 if json["spooled"] == true => Answer::Spooled,
                                202 => Answer::Written,
                                200 => Answer::Duplicate,
                                500..=599 => Answer::ServerError,
                                _ => Answer::OtherStatus,
                            }
                        }
                    };
                    answers.push((n, answer));
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for s in senders {
        answers.extend(s.await?);
    }

    // Wait for the gateway to say it is ready with nothing spooled.
    let drain_deadline = Instant::now() + Duration::from_secs_f64(args.drain_timeout);
    let mut ready_at = None;
    loop {
        let ready: Option<Value> = match http.get(format!("{}/readyz", args.url)).send().await {
            Ok(res) => res.json().await.ok(),
            Err(_) => None,
        };
        if ready.as_ref().is_some_and(|r| r["status"] == "ready") {
            ready_at = Some(Instant::now());
            break;
        }
        if Instant::now() > drain_deadline {
            eprintln!("the gateway never became ready: {ready:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_watch.store(true, Ordering::Relaxed);
    let drain = watcher.await?;

    // Read the log back.
    let mut in_log: BTreeMap<u64, u64> = BTreeMap::new();
    let mut after: Option<String> = None;
    for _ in 0..100_000 {
        let mut url = format!(
            "{}/v1/tenants/{}/events?type=order.created&limit=1000",
            args.url, args.tenant
        );
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let res = http.get(url).bearer_auth(&args.admin_token).send().await?;
        if !res.status().is_success() {
            return Err(format!("reading the log back: {}", res.status()).into());
        }
        let page: Value = res.json().await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            if let Some(id) = e["subject"]
                .as_str()
                .and_then(|s| s.rsplit('/').next())
                .and_then(|s| s.parse::<u64>().ok())
            {
                *in_log.entry(id - BASE_ID).or_default() += 1;
            }
        }
        if page["done"] == true {
            break;
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Err("a page neither done nor with a next".into()),
        }
    }

    let count = |a: Answer| answers.iter().filter(|(_, x)| *x == a).count();
    let acknowledged: Vec<u64> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Written | Answer::Spooled | Answer::Duplicate))
        .map(|(n, _)| *n)
        .collect();
    let missing = acknowledged
        .iter()
        .filter(|n| !in_log.contains_key(n))
        .count();
    let twice = in_log.values().filter(|c| **c > 1).count();
    // The watcher may be stopped before it sees the spool empty: the moment this loop saw
    // the gateway ready is as good.
    let drain_s = match (drain.back_at, drain.empty_at.or(ready_at)) {
        (Some(back), Some(empty)) => format!("{:.2}", (empty - back).as_secs_f64()),
        _ => "-".into(),
    };
    println!(
        "sent={} ok2xx={} spooled={} err5xx={} no_answer={} other={} missing={} twice={} max_spooled={} drain_s={}",
        answers.len(),
        acknowledged.len(),
        count(Answer::Spooled),
        count(Answer::ServerError),
        count(Answer::Unanswered),
        count(Answer::OtherStatus),
        missing,
        twice,
        drain.max_records,
        drain_s
    );
    Ok(())
}
