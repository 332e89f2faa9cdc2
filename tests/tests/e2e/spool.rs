//! Fault drills with the local spool: Redis killed under a steady load, and Redis paused past
//! the store's timeout. Senders must never hear 5xx for a verified delivery, and every
//! delivery answered 2xx must be in the log exactly once when the spool has drained.
//! (The gateway process itself killed with a non-empty spool: `gateway/tests/spool_restart.rs`,
//! which runs the real binary.)

use chrono::{DateTime, Utc};
use omnigate::clock::Clock;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, RedisProcess, redis_store_at};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) const SECRET: &str = "shpss_spool_drill_0123456789";

pub(crate) fn spool_dir() -> PathBuf {
    std::env::temp_dir().join(format!("omnigate-spool-{}", uuid::Uuid::new_v4().simple()))
}

/// Shopify `orders/create` for order `n`, placed at `at`, signed.
pub(crate) fn order(n: u64, at: DateTime<Utc>) -> (Vec<(String, String)>, Vec<u8>) {
    let body = format!(
        r##"{{"id":{},"name":"#{n}","created_at":"{}","updated_at":"{}","currency":"EUR","total_price":"12.50","financial_status":"pending","line_items":[]}}"##,
        8_000_000 + n,
        at.to_rfc3339(),
        at.to_rfc3339(),
    )
    .into_bytes();
    let headers = vec![
        ("X-Shopify-Topic".to_string(), "orders/create".to_string()),
        (
            "X-Shopify-Hmac-Sha256".to_string(),
            omnigate::sign::body_hmac_base64(SECRET, &body),
        ),
        ("X-Shopify-Event-Id".to_string(), format!("evt-drill-{n}")),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    (headers, body)
}

async fn start(redis: &RedisProcess, dir: &std::path::Path) -> (Gateway, String) {
    start_on(
        redis_store_at(&redis.url(), Retention::default()).await,
        dir,
    )
    .await
}

/// A gateway with a spool in `dir` on `store`, and a Shopify source of "drill-shop".
pub(crate) async fn start_on(
    store: Arc<dyn omnigate::store::Store>,
    dir: &std::path::Path,
) -> (Gateway, String) {
    let now = Utc::now();
    let dir = dir.to_path_buf();
    let gw = Gateway::start_with(store, now, move |s| {
        s.spool_dir = Some(dir);
        s.webhook_rate = 0;
    })
    .await;
    let source = gw
        .create_source(json!({"tenant": "drill-shop", "provider": "shopify", "secret": SECRET}))
        .await;
    (gw, source.id)
}

/// Four senders post orders `0..total` as fast as they are answered; once a third are
/// answered, `fault` runs (the senders go on meanwhile). Every answer, by order number.
pub(crate) async fn load_with_fault<F, Fut>(
    gw: Arc<Gateway>,
    source: &str,
    total: u64,
    fault: F,
) -> Vec<(u64, StatusCode, Value)>
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let next = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (gw, source, next, answered) = (
                gw.clone(),
                source.to_string(),
                next.clone(),
                answered.clone(),
            );
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= total {
                        return answers;
                    }
                    let (headers, body) = order(n, gw.clock.now());
                    let res = gw.deliver(&source, &headers, &body).await;
                    let status = res.status();
                    let answer: Value = res.json().await.unwrap_or(Value::Null);
                    answers.push((n, status, answer));
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    while answered.load(Ordering::SeqCst) < total / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fault(answered.load(Ordering::SeqCst)).await;
    let mut answers = Vec::new();
    for s in senders {
        answers.extend(s.await.unwrap());
    }
    assert_eq!(answers.len() as u64, total);
    answers
}

/// Asserts every delivery was answered 202 (written or spooled, never refused); how many
/// were spooled.
pub(crate) fn all_accepted(answers: &[(u64, StatusCode, Value)]) -> usize {
    let refused: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status != StatusCode::ACCEPTED)
        .collect();
    assert!(refused.is_empty(), "answered other than 202: {refused:?}");
    answers
        .iter()
        .filter(|(_, _, a)| a["spooled"] == true)
        .count()
}

/// After a drill: every one of orders `0..total` (all answered 2xx) is in the log once.
pub(crate) async fn assert_each_order_once(gw: &Gateway, total: u64) {
    let seen = orders_in_log(gw).await;
    let missing: Vec<u64> = (0..total).filter(|n| !seen.contains_key(n)).collect();
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the log: {missing:?}"
    );
    assert!(twice.is_empty(), "written more than once: {twice:?}");
}

/// Waits until `/readyz` says the store answers and the spool is empty.
pub(crate) async fn until_drained(gw: &Gateway) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready: Value = gw.readyz().await;
        if ready["status"] == "ready" {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "the spool never drained: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every order number in the tenant's log, with how many `order.created` events each has.
pub(crate) async fn orders_in_log(gw: &Gateway) -> BTreeMap<u64, usize> {
    let mut seen = BTreeMap::new();
    for e in gw.tenant_events("drill-shop", Some("order.created")).await {
        let id = e["subject"]
            .as_str()
            .and_then(|s| s.rsplit('/').next())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("an order subject: {e}"));
        *seen.entry(id - 8_000_000).or_insert(0) += 1;
    }
    seen
}

pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_refuses_nothing_and_loses_nothing() {
    let mut redis = RedisProcess::start();
    let dir = spool_dir();
    let (gw, source) = start(&redis, &dir).await;
    let gw = Arc::new(gw);

    // A third of the way in, Redis dies for a moment and comes back on its append-only file.
    const TOTAL: u64 = 600;
    let mut killed_at = 0;
    // Borrowed: the fault's future must not take (and so drop, killing) the server.
    let redis = &mut redis;
    let answers = load_with_fault(gw.clone(), &source, TOTAL, |answered| {
        killed_at = answered;
        redis.kill();
        async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            redis.restart();
        }
    })
    .await;
    let spooled = all_accepted(&answers);
    assert!(
        spooled > 0,
        "Redis was down from delivery {killed_at} on, yet nothing was spooled"
    );

    let ready = until_drained(&gw).await;
    assert_eq!(ready["spool"]["records"], 0);
    assert_each_order_once(&gw, TOTAL).await;

    let metrics = gw.metrics().await;
    assert_eq!(
        metric(&metrics, "omnigate_spool_drained_total"),
        spooled as f64
    );
    assert_eq!(metric(&metrics, "omnigate_spool_records"), 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_past_the_timeout_spools_and_a_write_that_landed_late_is_not_doubled() {
    let redis = RedisProcess::start();
    let dir = spool_dir();
    let (gw, source) = start(&redis, &dir).await;
    let (h, b) = order(0, gw.clock.now());
    assert_eq!(
        gw.deliver(&source, &h, &b).await.status(),
        StatusCode::ACCEPTED
    );

    // Every client's commands wait for 3.5 s: longer than the store's 2 s timeout. The
    // first delivery's append is sent and then given up on; it lands when the pause ends.
    let paused = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "CLIENT",
            "PAUSE",
            "3500",
            "ALL",
        ])
        .output()
        .unwrap();
    assert!(paused.status.success());
    let mut answers = Vec::new();
    for n in 1..=5 {
        let (h, b) = order(n, gw.clock.now());
        let res = gw.deliver(&source, &h, &b).await;
        answers.push((res.status(), res.json::<Value>().await.unwrap()));
    }
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["spooled"], true, "{answer}");
    }
    // (`/metrics` asks nothing of the store, so it answers during the pause.)
    let metrics = gw.metrics().await;
    assert_eq!(metric(&metrics, "omnigate_spool_records"), 5.0);

    until_drained(&gw).await;
    let seen = orders_in_log(&gw).await;
    assert_eq!(
        seen,
        (0..=5).map(|n| (n, 1)).collect::<BTreeMap<_, _>>(),
        "each order once"
    );
    // Sent again by the shop after all: a duplicate, as for any delivery.
    let (h, b) = order(3, gw.clock.now());
    let again = gw.deliver(&source, &h, &b).await;
    assert_eq!(again.status(), StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_known_sources_are_spooled_and_unknown_ones_still_refused() {
    let mut redis = RedisProcess::start();
    let dir = spool_dir();
    let (gw, source) = start(&redis, &dir).await;
    let (h, b) = order(0, gw.clock.now());
    assert_eq!(
        gw.deliver(&source, &h, &b).await.status(),
        StatusCode::ACCEPTED
    );
    redis.kill();

    // Never looked up by this process: the store cannot say whether it exists.
    let unknown = gw
        .deliver("src_0000000000000000", &order(1, gw.clock.now()).0, b"{}")
        .await;
    assert_eq!(unknown.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Looked up before the outage, so its configuration is cached and stays usable,
    // however old, while the store cannot be asked.
    let (h, b) = order(1, gw.clock.now());
    let res = gw.deliver(&source, &h, &b).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"spooled": true}));

    // Only verified deliveries are spooled: a forged one is refused as ever.
    let (mut h, b) = order(2, gw.clock.now());
    h[1].1 = omnigate::sign::body_hmac_base64("not the secret", &b);
    assert_eq!(
        gw.deliver(&source, &h, &b).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let degraded: Value = gw.readyz().await;
    assert_eq!(
        degraded,
        json!({"status": "degraded", "store": "unreachable",
               "spool": {"records": 1, "bytes": degraded["spool"]["bytes"], "oldest_received_at": degraded["spool"]["oldest_received_at"]}}),
    );
    assert!(degraded["spool"]["bytes"].as_u64().unwrap() > b.len() as u64);

    redis.restart();
    until_drained(&gw).await;
    assert_eq!(
        orders_in_log(&gw).await,
        BTreeMap::from([(0, 1), (1, 1)]),
        "the spooled order, once; the forged one nowhere"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record Redis answers but refuses (here: the partition's log is a key of the wrong
/// type) is spooled, tried a few times, then kept in quarantine with the reason, so it does
/// not hold back the records behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_delivery_the_store_keeps_refusing_ends_in_quarantine() {
    let (store, prefix) = omnigate_tests::redis_store_with_prefix(Retention::default()).await;
    let dir = spool_dir();
    let (gw, source) = start_on(store, &dir).await;
    let partition = omnigate::store::partition_of("drill-shop", 16);
    let client = redis::Client::open(omnigate_tests::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET")
        .arg(format!("{prefix}:log:{{{partition}}}"))
        .arg("not a stream")
        .query_async(&mut conn)
        .await
        .unwrap();

    let (h, b) = order(7, gw.clock.now());
    let res = gw.deliver(&source, &h, &b).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"spooled": true}));

    until_drained(&gw).await;
    let page = gw.admin_json("/v1/quarantine").await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    let reason = entries[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("keeps refusing") && reason.contains("WRONGTYPE"),
        "{reason}"
    );
    let metrics = gw.metrics().await;
    assert_eq!(metric(&metrics, "omnigate_spool_records"), 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}
