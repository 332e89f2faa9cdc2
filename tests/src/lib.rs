//! Helpers for the end-to-end tests: a real gateway in this process, talking HTTP on a
//! free port to a real `redis-server` (`OMNIGATE_TEST_REDIS_URL`, set by scripts/test.sh),
//! and `redis-server` processes of the tests' own for outage tests.

pub mod browser;

use chrono::{DateTime, Utc};
use omnigate::clock::{Clock, FixedClock};
use omnigate::config::Settings;
use omnigate::fixtures::PayloadFixture;
use omnigate::store::sealed::Sealer;
use omnigate::store::{MemoryStore, RedisOptions, RedisStore, Retention, Store};
use omnigate_schemas::api::SourceView;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub use omnigate::fixtures::{load_payload_fixtures, payload_fixture};

/// The Redis the suite runs against. scripts/test.sh starts one and sets this.
pub fn redis_url() -> String {
    std::env::var("OMNIGATE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "OMNIGATE_TEST_REDIS_URL is not set: run the suite with scripts/test.sh, which \
             starts a redis-server for it (or point the variable at a disposable Redis)"
        )
    })
}

/// A key prefix no other test uses, so tests share one server without seeing each other.
pub fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// The key every test store seals source secrets with (base64 of 32 fixed bytes: a test
/// key, never a real one), so every end-to-end test runs with encryption at rest on.
pub const TEST_SECRET_KEY: &str = "dGVzdC1vbmx5LXNlYWxpbmcta2V5LW9tbmlnYXRlLTE=";

/// The sealer of [`TEST_SECRET_KEY`].
pub fn test_sealer() -> Arc<Sealer> {
    Arc::new(Sealer::new(TEST_SECRET_KEY, &[] as &[&str]).expect("test key"))
}

/// A Redis store on the test server under a fresh prefix.
pub async fn redis_store(retention: Retention) -> Arc<dyn Store> {
    redis_store_at(&redis_url(), retention).await
}

/// A Redis store on the test server under a fresh prefix, with that prefix (for tests that
/// read the raw keys).
pub async fn redis_store_with_prefix(retention: Retention) -> (Arc<dyn Store>, String) {
    let prefix = unique_prefix();
    let store = redis_store_with(&redis_url(), &prefix, retention, Some(test_sealer())).await;
    (Arc::new(store), prefix)
}

pub async fn redis_store_at(url: &str, retention: Retention) -> Arc<dyn Store> {
    let store = redis_store_with(url, &unique_prefix(), retention, Some(test_sealer())).await;
    Arc::new(store)
}

/// A Redis store with every option chosen by the test (`sealer: None` is the insecure
/// plaintext mode).
pub async fn redis_store_with(
    url: &str,
    prefix: &str,
    retention: Retention,
    sealer: Option<Arc<Sealer>>,
) -> RedisStore {
    RedisStore::connect(
        url,
        RedisOptions {
            prefix: prefix.to_string(),
            retention,
            timeout: Duration::from_secs(2),
            sealer,
            blocking_pool: omnigate::store::DEFAULT_BLOCKING_POOL,
            wait_replicas: 0,
        },
    )
    .await
    .expect("connect to redis")
}

pub fn memory_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(Retention::default()))
}

/// A registered plugin: its id and API key.
pub struct Plugin {
    pub id: String,
    pub key: String,
}

pub const ADMIN_TOKEN: &str = "test-admin-token-6f1c";

/// A gateway serving HTTP on 127.0.0.1 in this process.
pub struct Gateway {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<FixedClock>,
    pub store: Arc<dyn Store>,
    server: omnigate::startup::Stopper,
}

impl Gateway {
    /// Starts a gateway on `store` with its clock at `now`.
    pub async fn start(store: Arc<dyn Store>, now: DateTime<Utc>) -> Gateway {
        Self::start_with(store, now, |_| {}).await
    }

    pub async fn start_with(
        store: Arc<dyn Store>,
        now: DateTime<Utc>,
        tweak: impl FnOnce(&mut Settings),
    ) -> Gateway {
        let mut settings = Settings {
            admin_token: Some(ADMIN_TOKEN.into()),
            workers: Some(2),
            ..Settings::default()
        };
        tweak(&mut settings);
        let clock = Arc::new(FixedClock::new(now));
        let running = omnigate::startup::Gateway::with_store(
            settings,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
        )
        .expect("gateway")
        .serve(TcpListener::bind("127.0.0.1:0").unwrap())
        .expect("server");
        let base = format!("http://{}", running.addr());
        let server = running.spawn();
        Gateway {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            clock,
            store,
            server,
        }
    }

    /// Stops as a killed process would: its pollers give nothing back (takeover tests).
    pub async fn crash(self) {
        self.server.crash().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// The JSON body of an admin `GET`.
    pub async fn admin_json(&self, path: &str) -> Value {
        let res = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        res.json().await.unwrap()
    }

    /// Registers a plugin (`body` as for `POST /v1/plugins`); panics unless 201.
    pub async fn register_plugin(&self, body: Value) -> Plugin {
        let res = self
            .admin(reqwest::Method::POST, "/v1/plugins")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let created: Value = res.json().await.unwrap();
        Plugin {
            id: created["id"].as_str().unwrap().into(),
            key: created["api_key"].as_str().unwrap().into(),
        }
    }

    /// Installs `p` in `tenant` with `scopes`; panics unless 201.
    pub async fn install(&self, p: &Plugin, tenant: &str, scopes: Value) {
        let res = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/plugins/{}/installations", p.id),
            )
            .json(&json!({"tenant": tenant, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    /// `POST path` with `p`'s key; the status and the JSON answer (`null` if none).
    pub async fn plugin_call(&self, p: &Plugin, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(self.url(path))
            .bearer_auth(&p.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Connects a source; panics unless 201.
    pub async fn create_source(&self, body: Value) -> SourceView {
        let res = self
            .admin(reqwest::Method::POST, "/v1/sources")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        res.json().await.unwrap()
    }

    /// A source for a fixture's provider and secret, on `tenant`.
    pub async fn source_for(&self, fixture: &PayloadFixture, tenant: &str) -> SourceView {
        let (provider, options) = (fixture.scheme.as_str(), json!({}));
        self.create_source(json!({
            "tenant": tenant,
            "provider": provider,
            "secret": fixture.secret,
            "options": options,
        }))
        .await
    }

    /// POSTs raw bytes with headers to a webhook path (`/v1/webhooks/…`).
    pub async fn deliver_to(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.unwrap()
    }

    /// POSTs raw bytes with headers to a source's webhook path.
    pub async fn deliver(
        &self,
        source_id: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/webhooks/{source_id}")))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.unwrap()
    }

    /// Delivers a fixture exactly as its provider signed it.
    pub async fn deliver_fixture(&self, source_id: &str, f: &PayloadFixture) -> reqwest::Response {
        let headers: Vec<(String, String)> = f
            .headers
            .as_map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.deliver(source_id, &headers, &f.body).await
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let res = self.http.get(self.url("/metrics")).send().await.unwrap();
        res.text().await.unwrap()
    }

    /// `GET /readyz`'s JSON answer (`null` when it is not JSON).
    pub async fn readyz(&self) -> Value {
        let res = self.http.get(self.url("/readyz")).send().await.unwrap();
        res.json().await.unwrap_or(Value::Null)
    }

    /// Every event of a tenant's log, following `next` until a page says `done`.
    /// The types of `tenant`'s events, sorted, once there are at least `n` (or as they
    /// are after 20 s: the caller's assertion then says what is missing).
    pub async fn event_types_when(&self, tenant: &str, n: usize) -> Vec<String> {
        let mut types = Vec::new();
        for _ in 0..200 {
            types = self
                .tenant_events(tenant, None)
                .await
                .iter()
                .map(|e| e["type"].as_str().unwrap_or_default().to_string())
                .collect();
            if types.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        types.sort();
        types
    }

    pub async fn tenant_events(&self, tenant: &str, event_type: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/v1/tenants/{tenant}/events?limit=50");
            if let Some(t) = event_type {
                path.push_str(&format!("&type={t}"));
            }
            if let Some(a) = &after {
                path.push_str(&format!("&after={a}"));
            }
            let res = self
                .admin(reqwest::Method::GET, &path)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let page: Value = res.json().await.unwrap();
            out.extend(page["events"].as_array().unwrap().iter().cloned());
            if page["done"] == true {
                return out;
            }
            after = page["next"].as_str().map(str::to_string);
        }
    }
}

/// The clock a fixture was sent at: its signed time, else (schemes that sign none) a
/// moment after the newest time its body states, else a fixed time.
pub fn fixture_time(f: &PayloadFixture) -> DateTime<Utc> {
    if let Some(at) = f.verify_at_unix {
        return DateTime::from_timestamp(at, 0).unwrap();
    }
    let provider: Option<omnigate_schemas::api::Provider> =
        serde_json::from_value(Value::String(f.scheme.clone())).ok();
    let body: Option<Value> = serde_json::from_slice(&f.body).ok();
    provider
        .zip(body)
        .and_then(|(p, b)| {
            omnigate::ingest::identity::signed_resource_time(
                omnigate::providers::of(p),
                &omnigate::json::Json::from(&b),
            )
        })
        .map(|t| t + chrono::Duration::seconds(1))
        .unwrap_or_else(|| DateTime::from_timestamp(1_741_944_415, 0).unwrap())
}

/// A `redis-server` process of the test's own, for killing and restarting.
pub struct RedisProcess {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisProcess {
    /// Starts one on a free port with an append-only file fsynced on every write, so a
    /// restart keeps what was acknowledged.
    pub fn start() -> RedisProcess {
        Self::start_with(&[])
    }

    /// Starts one with extra `redis-server` arguments (e.g. cluster mode).
    pub fn start_with(extra: &[&str]) -> RedisProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("omnigate-redis-{}", unique_prefix()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = RedisProcess {
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        p.restart();
        p
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and data directory.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the server process.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
