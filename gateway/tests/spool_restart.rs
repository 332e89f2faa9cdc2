//! The gateway process killed (SIGKILL) while its spool holds deliveries: the real
//! `omnigate serve` binary, on a `redis-server` of the test's own. Redis dies, the gateway
//! spools and answers 202, then is killed before it can drain; Redis comes back, the
//! gateway is started again on the same spool directory, killed again while it drains, and
//! started once more: every delivery is in the log once — and a further restart drains
//! nothing twice.

use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "drill-admin-token-0c1d";
const SECRET: &str = "shpss_restart_drill_0123456789";
/// A test key (base64 of 32 fixed bytes), never a real one.
const SEALING_KEY: &str = "dGVzdC1vbmx5LXNlYWxpbmcta2V5LW9tbmlnYXRlLTE=";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "omnigate-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Kills its process with SIGKILL when dropped, so a failing test leaves nothing running.
struct Proc(Child);

impl Proc {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis(port: u16, dir: &Path) -> Proc {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--dir", dir.to_str().unwrap(), "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (scripts/test.sh installs it)");
    wait_for_port(port);
    Proc(child)
}

/// Its log goes to `<spool dir>.log`, to read when the test fails.
fn gateway(port: u16, redis_port: u16, spool: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spool.with_extension("log"))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_omnigate"))
        .arg("serve")
        .env("OMNIGATE_BIND", format!("127.0.0.1:{port}"))
        .env(
            "OMNIGATE_REDIS_URL",
            format!("redis://127.0.0.1:{redis_port}"),
        )
        .env("OMNIGATE_REDIS_PREFIX", "drill")
        .env("OMNIGATE_ADMIN_TOKEN", ADMIN)
        .env("OMNIGATE_SECRET_KEY", SEALING_KEY)
        .env("OMNIGATE_SPOOL_DIR", spool)
        .env("OMNIGATE_STORE_TIMEOUT_MS", "500")
        .env("OMNIGATE_WORKERS", "1")
        .env("OMNIGATE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the omnigate binary");
    wait_for_port(port);
    Proc(child)
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn order(n: u64) -> (Vec<(String, String)>, Vec<u8>) {
    let at = chrono::Utc::now().to_rfc3339();
    let body = format!(
        r##"{{"id":{},"name":"#{n}","created_at":"{at}","updated_at":"{at}","currency":"EUR","total_price":"9.90","financial_status":"pending","line_items":[]}}"##,
        9_000_000 + n
    )
    .into_bytes();
    let headers = vec![
        ("X-Shopify-Topic".to_string(), "orders/create".to_string()),
        (
            "X-Shopify-Hmac-Sha256".to_string(),
            omnigate::sign::body_hmac_base64(SECRET, &body),
        ),
        ("Content-Type".to_string(), "application/json".to_string()),
    ];
    (headers, body)
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn deliver(&self, source: &str, n: u64) -> (u16, Value) {
        let (headers, body) = order(n);
        let mut req = self
            .http
            .post(format!("{}/v1/webhooks/{source}", self.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// The order numbers of the tenant's `order.created` events, in log order.
    async fn orders(&self) -> Vec<u64> {
        let page = self
            .get("/v1/tenants/restart-shop/events?type=order.created&limit=1000")
            .await;
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let subject = e["subject"].as_str().unwrap();
                subject.rsplit('/').next().unwrap().parse::<u64>().unwrap() - 9_000_000
            })
            .collect()
    }

    async fn until_drained(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self.get("/readyz").await;
            if ready["status"] == "ready" {
                return ready;
            }
            assert!(Instant::now() < deadline, "never drained: {ready}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_with_a_full_spool_drains_it_after_restart_once() {
    let (redis_port, port) = (free_port(), free_port());
    let (redis_dir, spool) = (temp_dir("drill-redis"), temp_dir("drill-spool"));
    let mut redis_proc = redis(redis_port, &redis_dir);
    let mut gw = gateway(port, redis_port, &spool);
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let created = client
        .http
        .post(format!("{}/v1/sources", client.base))
        .bearer_auth(ADMIN)
        .json(&json!({"tenant": "restart-shop", "provider": "shopify", "secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let source = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(client.deliver(&source, 0).await.0, 202);

    redis_proc.kill();
    // Eight senders at once: the spool writes what arrives together in one fsync.
    const SPOOLED: u64 = 400;
    let senders: Vec<_> = (0..8)
        .map(|k| {
            let (http, base, source) = (client.http.clone(), client.base.clone(), source.clone());
            tokio::spawn(async move {
                let c = Client { http, base };
                let mut answers = Vec::new();
                for n in (1..=SPOOLED).filter(|n| n % 8 == k) {
                    answers.push(c.deliver(&source, n).await);
                }
                answers
            })
        })
        .collect();
    for s in senders {
        for (status, answer) in s.await.unwrap() {
            assert_eq!((status, &answer), (202, &json!({"spooled": true})));
        }
    }
    // Killed with the deliveries in its spool, before Redis is back to drain them.
    gw.kill();

    let _redis_proc = redis(redis_port, &redis_dir);
    let mut gw = gateway(port, redis_port, &spool);
    // Killed again while it drains (if it is not done before we look).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client.get("/readyz").await;
        let left = ready["spool"]["records"].as_u64().unwrap_or(SPOOLED);
        if left < SPOOLED || Instant::now() > deadline {
            eprintln!("killing the gateway with {left} of {SPOOLED} deliveries still spooled");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.kill();

    let gw = gateway(port, redis_port, &spool);
    let ready = client.until_drained().await;
    assert_eq!(ready["spool"]["records"], 0);
    let orders = client.orders().await;
    let mut sorted = orders.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..=SPOOLED).collect::<Vec<_>>(),
        "every acknowledged order, once"
    );

    // And once more: a restart finds nothing left to drain.
    drop(gw);
    let _gw = gateway(port, redis_port, &spool);
    client.until_drained().await;
    assert_eq!(client.orders().await.len() as u64, SPOOLED + 1);
    let _ = std::fs::remove_dir_all(&redis_dir);
    let _ = std::fs::remove_dir_all(&spool);
    let _ = std::fs::remove_file(spool.with_extension("log"));
}
