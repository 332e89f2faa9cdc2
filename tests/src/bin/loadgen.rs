//! Load generator: the full ingest pipeline side by side with a bare handler that only
//! XADDs the body, both on the same Redis and machine, both fed the 3.3 KB Shopify order.
//!
//! ```sh
//! cargo run --release -p omnigate-tests --bin omnigate-loadgen -- \
//!     --redis-url redis://127.0.0.1:6379 --requests 20000 --concurrency 64
//! ```
//! Prints requests per second and latency percentiles for each, and their ratio.

use actix_web::{App, HttpResponse, HttpServer, web};
use hdrhistogram::Histogram;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, fixture_time, payload_fixture, redis_store_at};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The gateway binary runs on mimalloc; measure it the way it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone)]
struct Args {
    redis_url: String,
    requests: usize,
    concurrency: usize,
    workers: usize,
}

fn args() -> Args {
    let mut a = Args {
        redis_url: std::env::var("OMNIGATE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        requests: 20_000,
        concurrency: 64,
        workers: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--redis-url" => a.redis_url = value(),
            "--requests" => a.requests = value().parse().expect("--requests N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "-h" | "--help" => {
                println!(
                    "omnigate-loadgen [--redis-url URL] [--requests N] [--concurrency N] [--workers N]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The baseline: what any webhook receiver must at least do.
async fn bare_xadd(
    conn: web::Data<redis::aio::ConnectionManager>,
    body: web::Bytes,
) -> HttpResponse {
    let mut conn = conn.get_ref().clone();
    let res: redis::RedisResult<String> = redis::cmd("XADD")
        .arg("bench:bare:{0}")
        .arg("MAXLEN")
        .arg("~")
        .arg(100_000)
        .arg("*")
        .arg("body")
        .arg(body.as_ref())
        .query_async(&mut conn)
        .await;
    match res {
        Ok(id) => HttpResponse::Accepted().json(serde_json::json!({ "id": id })),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

struct Report {
    name: &'static str,
    rps: f64,
    hist: Histogram<u64>,
    errors: usize,
}

/// The order id in the fixture body, replaced per request.
const TEMPLATE_ID: &str = "\"id\":5938201746113,";

async fn run(
    name: &'static str,
    url: String,
    headers: Arc<Vec<(String, String)>>,
    body: Arc<Vec<u8>>,
    secret: Arc<String>,
    a: &Args,
    expect: reqwest::StatusCode,
) -> Report {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .unwrap();
    let per_task = a.requests / a.concurrency;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let tasks: Vec<_> = (0..a.concurrency)
        .map(|t| {
            let (client, url, headers, body, run_id, secret) = (
                client.clone(),
                url.clone(),
                headers.clone(),
                body.clone(),
                run_id.clone(),
                secret.clone(),
            );
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let mut errors = 0;
                for i in 0..per_task {
                    // A new order and event id per request: every delivery is new, as in a
                    // shop taking orders, none a duplicate and none racing another.
                    let order_id = 7_000_000_000_000u64 + (t * per_task + i) as u64;
                    let body: &[u8] = &body;
                    let body = String::from_utf8_lossy(body)
                        .replacen(TEMPLATE_ID, &order_id.to_string(), 1)
                        .into_bytes();
                    let mut req = client.post(&url);
                    for (k, v) in headers.iter() {
                        req = req.header(k, v);
                    }
                    req = req
                        .header("X-Shopify-Event-Id", format!("bench-{run_id}-{t}-{i}"))
                        .header(
                            "X-Shopify-Hmac-Sha256",
                            omnigate::sign::body_hmac_base64(&secret, &body),
                        )
                        .body(body);
                    let t0 = Instant::now();
                    match req.send().await {
                        Ok(res) if res.status() == expect => {
                            let _ = res.bytes().await;
                        }
                        _ => errors += 1,
                    }
                    hist.record(t0.elapsed().as_micros().max(1) as u64).unwrap();
                }
                (hist, errors)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await.unwrap();
        hist.add(h).unwrap();
        errors += e;
    }
    let elapsed = started.elapsed();
    Report {
        name,
        rps: (per_task * a.concurrency) as f64 / elapsed.as_secs_f64(),
        hist,
        errors,
    }
}

fn print(r: &Report) {
    println!(
        "{:<22} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   errors {}",
        r.name,
        r.rps,
        r.hist.value_at_quantile(0.50) as f64 / 1000.0,
        r.hist.value_at_quantile(0.99) as f64 / 1000.0,
        r.hist.max() as f64 / 1000.0,
        r.errors
    );
}

#[tokio::main]
async fn main() {
    let a = args();
    let fixture = payload_fixture("shopify/orders-create");
    println!(
        "body {} bytes, {} requests, concurrency {}, {} server workers, redis {}",
        fixture.body.len(),
        a.requests,
        a.concurrency,
        a.workers,
        a.redis_url
    );

    let client = redis::Client::open(a.redis_url.as_str()).expect("redis url");
    let conn = client
        .get_connection_manager()
        .await
        .expect("redis reachable");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bare_addr = listener.local_addr().unwrap();
    let conn_data = web::Data::new(conn);
    let bare = HttpServer::new(move || {
        App::new()
            .app_data(conn_data.clone())
            .route("/bare", web::post().to(bare_xadd))
    })
    .workers(a.workers)
    .listen(listener)
    .unwrap()
    .run();
    let bare_handle = bare.handle();
    tokio::spawn(bare);

    let store = redis_store_at(
        &a.redis_url,
        Retention {
            log_maxlen: 100_000,
            quarantine_maxlen: 1000,
            ..Retention::default()
        },
    )
    .await;
    // The benchmark measures the pipeline, not the per-source rate limit.
    // The gateway's clock at the fixture's time: its signed body is then fresh.
    let gw = Gateway::start_with(store, fixture_time(&fixture), |s| {
        s.workers = Some(a.workers);
        s.webhook_rate = 0;
    })
    .await;
    let source = gw.source_for(&fixture, "loadgen-shop").await;
    let headers: Arc<Vec<(String, String)>> = Arc::new(
        fixture
            .headers
            .as_map()
            .iter()
            .filter(|(k, _)| !["x-shopify-event-id", "x-shopify-hmac-sha256"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let body = Arc::new(fixture.body.clone());
    assert!(
        String::from_utf8_lossy(&body).contains(TEMPLATE_ID),
        "the fixture's order id moved"
    );
    let secret = Arc::new(fixture.secret.clone());

    // Warm both up (connections, allocator, script cache).
    let warm = Args {
        requests: 2000,
        ..a.clone()
    };
    let bare_url = format!("http://{bare_addr}/bare");
    let gw_url = gw.url(&format!("/v1/webhooks/{}", source.id));
    let accepted = reqwest::StatusCode::ACCEPTED;
    for url in [&bare_url, &gw_url] {
        let (h, b, k) = (headers.clone(), body.clone(), secret.clone());
        run("warm-up", url.clone(), h, b, k, &warm, accepted).await;
    }
    let (h, b, k) = (headers.clone(), body.clone(), secret.clone());
    let bare_report = run("bare XADD handler", bare_url, h, b, k, &a, accepted).await;
    let gw_report = run(
        "omnigate ingest",
        gw_url,
        headers,
        body,
        secret,
        &a,
        accepted,
    )
    .await;
    print(&bare_report);
    print(&gw_report);
    println!(
        "ingest / bare = {:.0} %",
        100.0 * gw_report.rps / bare_report.rps
    );
    bare_handle.stop(true).await;
    gw.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
}
