//! A plugin written in any language registers a URL and receives its events pushed,
//! signed per Standard Webhooks: verified by a receiver holding only the signing secret,
//! retried on failure in order per subject, buried after the last attempt, paused and
//! resumed by an operator, never sent inside the gateway's network unless allowed.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use omnigate::store::Retention;
use omnigate_sdk::push::Verifier;
use omnigate_tests::{Gateway, Plugin, fixture_time, payload_fixture, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    event_type: String,
    attempt: u64,
    /// The status it answered.
    answered: u16,
    /// The `webhook-signature` header as sent.
    signature: String,
    /// What each of the receiver's secrets said of the signature.
    verified: Vec<bool>,
}

/// Decides the status for the n-th request (1-based) carrying event `id`.
type Answer = Arc<dyn Fn(&str, u64) -> u16 + Send + Sync>;

/// A plugin's endpoint: verifies every request against the secrets it holds and answers as
/// told.
#[derive(Clone)]
struct Receiver {
    url: String,
    secrets: Arc<Mutex<Vec<String>>>,
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let receiver = Receiver {
            url,
            secrets: Arc::default(),
            got: Arc::default(),
            answer: Arc::new(Mutex::new(Arc::new(|_: &str, _: u64| 200u16) as Answer)),
        };
        let shared = receiver.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/hooks", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        receiver
    }

    fn secret(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.to_string());
    }

    fn answer(&self, f: impl Fn(&str, u64) -> u16 + Send + Sync + 'static) {
        *self.answer.lock().unwrap() = Arc::new(f);
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `pred` holds of what was received, or fails after 20 s.
    async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..400 {
            let got = self.got();
            if pred(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: received {:#?}", self.got());
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, r: web::Data<Receiver>) -> HttpResponse {
    let h = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (id, ts, signature) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let now = chrono::Utc::now().timestamp();
    let verified = r
        .secrets
        .lock()
        .unwrap()
        .iter()
        .map(|s| {
            Verifier::new(&[s])
                .unwrap()
                .verify_at(&id, &ts, &signature, &body, now)
                .is_ok()
        })
        .collect();
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(event["id"], id.as_str(), "webhook-id is the event id");
    let nth = r.got.lock().unwrap().iter().filter(|g| g.id == id).count() as u64 + 1;
    let answer = r.answer.lock().unwrap().clone();
    let status = answer(&id, nth);
    r.got.lock().unwrap().push(Received {
        id,
        event_type: event["type"].as_str().unwrap_or("").to_string(),
        attempt: h("omnigate-attempt").parse().unwrap_or(0),
        answered: status,
        signature,
        verified,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).body(
        if status >= 300 {
            "crm is down\nstack trace…"
        } else {
            ""
        },
    )
}

/// A gateway whose pushes may go to this machine, retrying fast.
async fn gateway(schedule: &str) -> Gateway {
    let created = payload_fixture("shopify/orders-create");
    let schedule = schedule.to_string();
    Gateway::start_with(
        redis_store(Retention::default()).await,
        fixture_time(&created),
        move |s| {
            s.push_allow_private = true;
            s.push_retry_schedule = schedule.parse().unwrap();
            s.push_breaker_after_secs = 3600;
            s.inbox_visibility_ms = 2_000;
        },
    )
    .await
}

/// Registers a push plugin for `order.*` in `shop-a` at `url`: its id and signing secret.
async fn push_plugin(gw: &Gateway, url: &str) -> (String, String) {
    let (p, secret) = push_plugin_with_key(gw, url).await;
    (p.id, secret)
}

async fn push_plugin_with_key(gw: &Gateway, url: &str) -> (Plugin, String) {
    let res = gw
        .admin(Method::POST, "/v1/plugins")
        .json(&json!({"name": "CRM sync", "event_types": ["order.*"],
                      "delivery": {"mode": "push", "url": url, "max_in_flight": 4}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let p = Plugin {
        id: created["id"].as_str().unwrap().to_string(),
        key: created["api_key"].as_str().unwrap().to_string(),
    };
    gw.install(&p, "shop-a", json!(["events:read"])).await;
    (p, secret)
}

/// Sends the shop's order created, then paid (one subject: the order).
async fn send_orders(gw: &Gateway) {
    let created = payload_fixture("shopify/orders-create");
    let source = gw.source_for(&created, "shop-a").await;
    for name in ["shopify/orders-create", "shopify/orders-paid"] {
        let f = payload_fixture(name);
        gw.clock.set(fixture_time(&f));
        assert_eq!(
            gw.deliver_fixture(&source.id, &f).await.status(),
            StatusCode::ACCEPTED
        );
    }
}

/// `GET /v1/plugins/{id}` once `pred` holds of it, or as it is after 10 s (the caller's
/// assertions then say what is wrong).
async fn plugin_when(gw: &Gateway, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut plugin = Value::Null;
    for _ in 0..200 {
        plugin = gw.admin_json(&format!("/v1/plugins/{id}")).await;
        if pred(&plugin) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    plugin
}

fn delivered(got: &[Received]) -> Vec<&str> {
    got.iter()
        .filter(|g| (200..300).contains(&g.answered))
        .map(|g| g.event_type.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_events_verify_with_the_secret_and_arrive_in_order() {
    let receiver = Receiver::start();
    let gw = gateway("100ms,200ms").await;
    let (p, secret) = push_plugin_with_key(&gw, &receiver.url).await;
    let id = p.id.clone();
    receiver.secret(&secret);
    send_orders(&gw).await;
    let got = receiver
        .wait_for("both orders events delivered", |g| delivered(g).len() >= 2)
        .await;
    assert_eq!(delivered(&got)[..2], ["order.created", "order.paid"]);
    assert!(got.iter().all(|g| g.verified == [true]), "{got:#?}");
    assert!(got.iter().all(|g| g.attempt == 1));

    // Acknowledged: the inbox is empty, the endpoint healthy with its last success.
    let plugin = plugin_when(&gw, &id, |p| {
        p["inbox"]["in_flight"] == 0 && p["inbox"]["waiting"] == 0
    })
    .await;
    assert_eq!(
        plugin["inbox"],
        json!({"waiting": 0, "in_flight": 0, "dead_letters": 0})
    );
    let endpoint = &plugin["delivery"]["endpoints"][0];
    assert_eq!(endpoint["url"], receiver.url.as_str());
    assert_eq!(endpoint["status"], "healthy");
    assert!(endpoint["last_success_at"].is_string(), "{plugin}");
    assert!(
        !plugin.to_string().contains(&secret[6..]),
        "the secret is never shown again"
    );

    // A push plugin does not pull: its events go to its URL.
    let (status, problem) = gw.plugin_call(&p, "/v1/inbox/pull", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("delivered by push")
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_in_order_then_buried_then_replayed() {
    let receiver = Receiver::start();
    let gw = gateway("100ms,200ms,300ms").await;
    let (p, secret) = push_plugin_with_key(&gw, &receiver.url).await;
    receiver.secret(&secret);
    // The order's first event fails twice; the second must wait for it.
    let first_fails: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let seen = first_fails.clone();
    receiver.answer(move |event_id, nth| {
        let mut seen = seen.lock().unwrap();
        let first = seen.is_empty() || seen.contains_key(event_id);
        seen.entry(event_id.to_string()).or_insert(nth);
        if first && nth <= 2 { 500 } else { 200 }
    });
    send_orders(&gw).await;
    let got = receiver
        .wait_for("both delivered after retries", |g| delivered(g).len() >= 2)
        .await;
    let first = &got[0].id;
    let attempts: Vec<(String, u64, u16)> = got
        .iter()
        .map(|g| (g.event_type.clone(), g.attempt, g.answered))
        .collect();
    assert_eq!(
        attempts[..4],
        [
            ("order.created".into(), 1, 500),
            ("order.created".into(), 2, 500),
            ("order.created".into(), 3, 200),
            ("order.paid".into(), 1, 200),
        ],
        "the paid event waited for the created one's retries: {attempts:?}"
    );
    assert!(got.iter().filter(|g| g.id == *first).count() == 3);

    // Now everything fails: after the last attempt (4 with three waits) it is a dead
    // letter, with the reasons; the endpoint shows its last error.
    receiver.answer(|_, _| 503);
    let refund = payload_fixture("shopify/orders-fulfilled");
    let source = gw.source_for(&refund, "shop-a").await;
    gw.clock.set(fixture_time(&refund));
    assert_eq!(
        gw.deliver_fixture(&source.id, &refund).await.status(),
        StatusCode::ACCEPTED
    );
    let mut dead = Value::Null;
    for _ in 0..200 {
        let res = gw
            .http
            .get(gw.url("/v1/inbox/dead"))
            .bearer_auth(&p.key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        if !body["dead_letters"].as_array().unwrap().is_empty() {
            dead = body["dead_letters"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letters = dead.as_array().expect("a dead letter");
    assert!(letters.iter().all(|l| l["attempts"] == 4), "{dead:#}");
    let reasons = letters[0]["failures"].as_array().unwrap();
    assert_eq!(reasons.len(), 4);
    assert!(
        reasons[3]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 503: crm is down stack trace"),
        "{dead:#}"
    );
    let plugin = gw.admin_json(&format!("/v1/plugins/{}", p.id)).await;
    let endpoint = &plugin["delivery"]["endpoints"][0];
    assert!(
        endpoint["consecutive_failures"].as_u64().unwrap() >= 4,
        "{plugin:#}"
    );
    assert!(
        endpoint["last_error"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 503")
    );

    // Fixed: the operator replays the dead letters and they are delivered.
    receiver.answer(|_, _| 200);
    let before = delivered(&receiver.got()).len();
    let (status, body) = gw.plugin_call(&p, "/v1/inbox/dead/replay", json!({})).await;
    assert!(status.is_success(), "{body}");
    receiver
        .wait_for("replayed and delivered", |g| delivered(g).len() > before)
        .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_events_and_resume_sends_them() {
    let receiver = Receiver::start();
    let gw = gateway("100ms").await;
    let (id, secret) = push_plugin(&gw, &receiver.url).await;
    receiver.secret(&secret);
    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/delivery/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let paused: Value = res.json().await.unwrap();
    assert!(paused["delivery"]["paused_at"].is_string());
    // Let every pusher see the pause.
    tokio::time::sleep(Duration::from_secs(3)).await;
    send_orders(&gw).await;
    let plugin = plugin_when(&gw, &id, |p| p["inbox"]["waiting"] == 2).await;
    assert_eq!(plugin["inbox"]["waiting"], 2, "{plugin:#}");
    assert_eq!(plugin["delivery"]["endpoints"][0]["status"], "paused");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(receiver.got().is_empty(), "nothing pushed while paused");

    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/delivery/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = receiver
        .wait_for("delivered after resuming", |g| delivered(g).len() >= 2)
        .await;
    assert_eq!(delivered(&got), ["order.created", "order.paid"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_probed_and_what_waits_past_the_schedule_is_buried() {
    let receiver = Receiver::start();
    receiver.answer(|_, _| 503);
    let created = payload_fixture("shopify/orders-create");
    // Failing at the first failure; one probe a minute; two 1 s waits: a 2.2 s span.
    let gw = Gateway::start_with(
        redis_store(Retention::default()).await,
        fixture_time(&created),
        |s| {
            s.push_allow_private = true;
            s.push_retry_schedule = "1s,1s".parse().unwrap();
            s.push_breaker_after_secs = 0;
            s.push_probe_interval_ms = 60_000;
        },
    )
    .await;
    let (p, secret) = push_plugin_with_key(&gw, &receiver.url).await;
    receiver.secret(&secret);
    send_orders(&gw).await;
    // Tried, then probed once; the breaker keeps everything else waiting untried.
    receiver
        .wait_for("the first try and the probe", |g| g.len() >= 2)
        .await;
    let mut letters = Vec::new();
    for _ in 0..300 {
        // The endpoint has been failing longer than the span only once the gateway's clock
        // says so (the deliveries' own age is by the wall clock).
        let paid = payload_fixture("shopify/orders-paid");
        gw.clock
            .set(fixture_time(&paid) + chrono::Duration::seconds(60));
        let res = gw
            .http
            .get(gw.url("/v1/inbox/dead"))
            .bearer_auth(&p.key)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        letters = body["dead_letters"].as_array().unwrap().clone();
        if letters.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(letters.len(), 2, "both events buried: {letters:#?}");
    // The creation was tried, then probed once; the breaker kept it (and the payment
    // behind it) from a third try, and the schedule's span ran out.
    let got = receiver.got();
    assert_eq!(
        got.iter().map(|g| g.attempt).collect::<Vec<_>>(),
        [1, 2],
        "{got:#?}"
    );
    assert!(got.iter().all(|g| g.event_type == "order.created"));
    for letter in &letters {
        let reasons = letter["failures"].as_array().unwrap();
        let last = reasons.last().unwrap()["reason"].as_str().unwrap();
        assert!(
            last.contains("not delivered within 2s")
                && last.contains("the endpoint has been failing since")
                && last.contains("HTTP 503"),
            "{letter:#}"
        );
    }
    let plugin = gw.admin_json(&format!("/v1/plugins/{}", p.id)).await;
    assert_eq!(
        plugin["delivery"]["endpoints"][0]["status"], "failing",
        "{plugin:#}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_next_to_the_old_one_until_the_old_is_revoked() {
    let receiver = Receiver::start();
    let gw = gateway("100ms").await;
    let (id, old) = push_plugin(&gw, &receiver.url).await;
    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/signing-secrets"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let rotated: Value = res.json().await.unwrap();
    let new = rotated["signing_secret"].as_str().unwrap().to_string();
    receiver.secret(&old);
    receiver.secret(&new);
    let plugin = gw.admin_json(&format!("/v1/plugins/{id}")).await;
    assert_eq!(
        plugin["delivery"]["signing_secrets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    send_orders(&gw).await;
    let got = receiver
        .wait_for("delivered", |g| delivered(g).len() >= 2)
        .await;
    for g in &got {
        assert_eq!(
            g.verified,
            [true, true],
            "either secret verifies during the grace"
        );
        assert_eq!(g.signature.split(' ').count(), 2);
    }

    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/signing-secrets"))
        .json(&json!({"revoke_previous": true}))
        .send()
        .await
        .unwrap();
    let newest = res.json::<Value>().await.unwrap()["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    receiver.secret(&newest);
    // Let the pusher see the change, then replay the log to be pushed again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cancelled = payload_fixture("shopify/orders-fulfilled");
    let source = gw.source_for(&cancelled, "shop-a").await;
    gw.clock.set(fixture_time(&cancelled));
    gw.deliver_fixture(&source.id, &cancelled).await;
    let got = receiver
        .wait_for("delivered", |g| delivered(g).len() >= 3)
        .await;
    let last = got.last().unwrap();
    assert_eq!(
        last.verified,
        [false, false, true],
        "only the newest signs now"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_never_go_inside_the_gateways_network_unless_allowed() {
    let receiver = Receiver::start();
    let created = payload_fixture("shopify/orders-create");
    let gw = Gateway::start_with(
        redis_store(Retention::default()).await,
        fixture_time(&created),
        |s| {
            s.push_retry_schedule = "100ms".parse().unwrap();
            s.push_breaker_after_secs = 0;
        },
    )
    .await;
    for url in [
        receiver.url.clone(),
        receiver.url.replace("http://", "https://"),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://[::1]/hooks".into(),
        "https://10.0.0.8/hooks".into(),
    ] {
        let res = gw
            .admin(Method::POST, "/v1/plugins")
            .json(&json!({"name": "x", "event_types": ["order.*"],
                          "delivery": {"mode": "push", "url": url}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let problem: Value = res.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("push url")
                || problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("not a public address"),
            "{problem}"
        );
    }
    // A name passes registration, but one resolving inside is refused when connecting
    // (DNS rebinding): the push fails, naming why, and nothing reaches the receiver.
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let inside = format!("https://localhost:{port}/hooks");
    let (id, _) = push_plugin(&gw, &inside).await;
    send_orders(&gw).await;
    let plugin = plugin_when(&gw, &id, |p| {
        p["delivery"]["endpoints"][0]["last_error"].is_string()
    })
    .await;
    let endpoint = &plugin["delivery"]["endpoints"][0];
    assert!(
        endpoint["last_error"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{plugin:#}"
    );
    assert_eq!(
        endpoint["status"], "failing",
        "breaker after 0 s: {plugin:#}"
    );
    assert!(receiver.got().is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omnigate_forward_brings_a_pull_plugins_events_to_a_local_receiver() {
    let receiver = Receiver::start();
    let gw = gateway("100ms").await;
    let plugin = gw
        .register_plugin(json!({"name": "In development", "event_types": ["order.*"]}))
        .await;
    gw.install(&plugin, "shop-a", json!(["events:read"])).await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    receiver.secret(secret);
    // The receiver's first answer is a crash: forwarded again, then acknowledged; the
    // order's next event waits for it.
    let crash = Arc::new(std::sync::atomic::AtomicBool::new(true));
    receiver.answer(move |_, _| {
        if crash.swap(false, std::sync::atomic::Ordering::SeqCst) {
            500
        } else {
            204
        }
    });
    let args = omnigate::config::ForwardArgs {
        key: plugin.key.clone(),
        to: receiver.url.clone(),
        secret: Some(secret.into()),
        url: gw.base.clone(),
        timeout_ms: 5_000,
    };
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let printed = lines.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let forwarding = tokio::spawn(async move {
        omnigate::forward::run(
            &args,
            secret,
            move |line| printed.lock().unwrap().push(line),
            async {
                let _ = stopped.await;
            },
        )
        .await
    });
    send_orders(&gw).await;
    // Retried 5 s after the failure.
    let got = receiver
        .wait_for("both forwarded", |g| delivered(g).len() >= 2)
        .await;
    let sequence: Vec<(&str, u16)> = got
        .iter()
        .map(|g| (g.event_type.as_str(), g.answered))
        .collect();
    assert_eq!(
        sequence,
        [
            ("order.created", 500),
            ("order.created", 204),
            ("order.paid", 204)
        ],
        "{got:#?}"
    );
    assert!(
        got.iter().all(|g| g.verified == [true]),
        "signed as pushes are"
    );
    let _ = stop.send(());
    forwarding.await.unwrap().unwrap();
    let lines = lines.lock().unwrap().clone();
    assert!(lines[0].starts_with("Forwarding events from"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("  500  order.created") && l.contains("again in 5 s")),
        "{lines:#?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("  204  ")).count(),
        2,
        "{lines:#?}"
    );
    let view = gw.admin_json(&format!("/v1/plugins/{}", plugin.id)).await;
    assert_eq!(view["inbox"]["waiting"], 0, "{view:#}");
    assert_eq!(view["inbox"]["in_flight"], 0, "all acknowledged: {view:#}");
    gw.stop().await;
}

/// The Python interpreter with `standardwebhooks` (scripts/test.sh installs it and sets
/// `OMNIGATE_TEST_PYTHON`). Without it the test says so and passes, except under CI, where
/// it fails: the check must not silently vanish there.
fn python_with_standardwebhooks() -> Option<String> {
    match std::env::var("OMNIGATE_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("OMNIGATE_TEST_PYTHON is not set: run the suite with scripts/test.sh")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED: OMNIGATE_TEST_PYTHON is not set (scripts/test.sh sets it); the \
                 standardwebhooks receiver did not run"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_receiver_verifies_every_push_with_the_standard_webhooks_library() {
    use std::io::{BufRead, BufReader};
    let Some(python) = python_with_standardwebhooks() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("omnigate-push-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (secret_file, log_file) = (dir.join("secret"), dir.join("requests.jsonl"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/push_receiver.py");
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .arg(&secret_file)
        .arg(&log_file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first
        .trim()
        .strip_prefix("listening ")
        .expect("listening <port>");
    let url = format!("http://127.0.0.1:{port}/hooks");

    let gw = gateway("100ms").await;
    let (id, old) = push_plugin(&gw, &url).await;
    std::fs::write(&secret_file, &old).unwrap();
    send_orders(&gw).await;
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&log_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut requests = Vec::new();
    for _ in 0..200 {
        requests = read();
        if requests.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for r in &requests {
        assert_eq!(r["ok"], true, "standardwebhooks refused a push: {r}");
    }
    assert_eq!(requests[0]["type"], "order.created");
    assert_eq!(requests[1]["type"], "order.paid");

    // After a rotation the receiver holds only the new secret: it still verifies.
    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/signing-secrets"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let new = res.json::<Value>().await.unwrap()["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&secret_file, &new).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fulfilled = payload_fixture("shopify/orders-fulfilled");
    let source = gw.source_for(&fulfilled, "shop-a").await;
    gw.clock.set(fixture_time(&fulfilled));
    gw.deliver_fixture(&source.id, &fulfilled).await;
    for _ in 0..200 {
        requests = read();
        if requests.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(requests.len() >= 3, "{requests:#?}");
    for r in &requests {
        assert_eq!(r["ok"], true, "standardwebhooks refused a push: {r}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    gw.stop().await;
}
