//! An Allegro shop, which pushes nothing: the gateway polls its order event journal with
//! the shop's OAuth token, from a cursor kept in Redis, and tells each journal entry's
//! facts once, through the same dedupe and log as webhooks. The Allegro API here is a
//! local fake written from Allegro's documented requests and answers: paged journal,
//! checkout forms, rotating refresh tokens, 401 on an expired token, 429 with
//! `Retry-After`, an entry listed twice, entries out of time order, and a poller killed
//! in the middle of a page.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The fake Allegro: its journal, checkout forms and tokens.
#[derive(Default)]
struct Allegro {
    journal: Mutex<Vec<Value>>,
    forms: Mutex<HashMap<String, Value>>,
    access: Mutex<HashSet<String>>,
    refresh: Mutex<String>,
    refreshes: AtomicU64,
    /// Most entries one page holds (Allegro's own limit is the request's `limit`).
    page_limit: AtomicUsize,
    /// The next journal read answers 429.
    throttle: AtomicBool,
    throttled: AtomicU64,
    /// The first read of this form never answers (a poller stuck mid-page).
    hang_form: Mutex<Option<String>>,
    /// Every request's bearer token, to check credentials never go elsewhere.
    bearer_missing: AtomicU64,
}

const CLIENT: (&str, &str) = ("client-1", "client-secret-1");

fn bearer_ok(fake: &Allegro, req: &HttpRequest) -> bool {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = fake.access.lock().unwrap().contains(token);
    if !ok {
        fake.bearer_missing.fetch_add(1, Ordering::Relaxed);
    }
    ok
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({"error": "invalid_token"}))
}

async fn token(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    fake: web::Data<Allegro>,
) -> HttpResponse {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1))
    );
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if auth != Some(basic.as_str())
        || form.get("grant_type").map(String::as_str) != Some("refresh_token")
    {
        return HttpResponse::Unauthorized().json(json!({"error": "unauthorized_client"}));
    }
    let mut current = fake.refresh.lock().unwrap();
    if form.get("refresh_token") != Some(&*current) {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    }
    let n = fake.refreshes.fetch_add(1, Ordering::Relaxed) + 1;
    // Allegro hands out a new refresh token each time; the old one stops working.
    *current = format!("refresh-{n}");
    let access = format!("access-{n}");
    fake.access.lock().unwrap().insert(access.clone());
    HttpResponse::Ok().json(json!({
        "access_token": access, "token_type": "bearer", "refresh_token": *current,
        "expires_in": 43199, "scope": "allegro:api:orders:read", "allegro_api": true
    }))
}

async fn event_stats(req: HttpRequest, fake: web::Data<Allegro>) -> HttpResponse {
    if !bearer_ok(&fake, &req) {
        return unauthorized();
    }
    let journal = fake.journal.lock().unwrap();
    let latest = journal
        .last()
        .map(|e| json!({"id": e["id"], "occurredAt": e["occurredAt"]}));
    HttpResponse::Ok().json(json!({"latestEvent": latest}))
}

async fn events(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    fake: web::Data<Allegro>,
) -> HttpResponse {
    if !bearer_ok(&fake, &req) {
        return unauthorized();
    }
    if fake.throttle.swap(false, Ordering::Relaxed) {
        fake.throttled.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .json(json!({"errors": [{"code": "TooManyRequests"}]}));
    }
    let journal = fake.journal.lock().unwrap();
    let start = match q.get("from") {
        Some(from) => journal
            .iter()
            .rposition(|e| e["id"] == from.as_str())
            .map_or(0, |i| i + 1),
        None => 0,
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let limit = limit.min(fake.page_limit.load(Ordering::Relaxed).max(1));
    let page: Vec<Value> = journal.iter().skip(start).take(limit).cloned().collect();
    HttpResponse::Ok().json(json!({"events": page}))
}

async fn checkout_form(
    req: HttpRequest,
    id: web::Path<String>,
    fake: web::Data<Allegro>,
) -> HttpResponse {
    if !bearer_ok(&fake, &req) {
        return unauthorized();
    }
    let hang = {
        let mut hang = fake.hang_form.lock().unwrap();
        (hang.as_deref() == Some(id.as_str())).then(|| hang.take())
    };
    if hang.is_some() {
        std::future::pending::<()>().await;
    }
    match fake.forms.lock().unwrap().get(id.as_str()) {
        Some(form) => HttpResponse::Ok().json(form),
        None => HttpResponse::NotFound().json(json!({"errors": [{"code": "NOT_FOUND"}]})),
    }
}

impl Allegro {
    fn start() -> (Arc<Allegro>, String) {
        let fake = Arc::new(Allegro {
            page_limit: AtomicUsize::new(100),
            ..Allegro::default()
        });
        *fake.refresh.lock().unwrap() = "refresh-0".into();
        let data = web::Data::from(fake.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/auth/oauth/token", web::post().to(token))
                .route("/order/event-stats", web::get().to(event_stats))
                .route("/order/events", web::get().to(events))
                .route("/order/checkout-forms/{id}", web::get().to(checkout_form))
        })
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (fake, base)
    }

    /// A journal entry and, if new, its checkout form as it is now.
    fn add(&self, id: &str, kind: &str, form: Value, occurred_at: &str) {
        let form_id = form["id"].as_str().unwrap().to_string();
        self.journal.lock().unwrap().push(json!({
            "id": id, "type": kind, "occurredAt": occurred_at,
            "order": {"checkoutForm": {"id": form_id, "revision": "1"},
                      "buyer": {"id": "buyer-1", "login": "Kupujacy_1"},
                      "marketplace": {"id": "allegro-pl"}}
        }));
        self.forms.lock().unwrap().insert(form_id, form);
    }
}

/// A checkout form as Allegro answers it.
fn form(id: &str, paid: bool, fulfillment: &str) -> Value {
    json!({
        "id": id,
        "status": if paid { "READY_FOR_PROCESSING" } else { "BOUGHT" },
        "buyer": {"id": "44716093", "email": "8x2mq5fk4+1a2b3c@allegromail.pl",
                  "login": "Kupujacy_1", "firstName": "Anna", "lastName": "Nowak",
                  "guest": false, "phoneNumber": "+48 600 100 200",
                  "preferences": {"language": "pl-PL"}},
        "payment": {"id": "pay-1", "type": "ONLINE", "provider": "P24",
                    "finishedAt": if paid { json!("2026-11-30T10:05:00.000Z") } else { Value::Null },
                    "paidAmount": if paid { json!({"amount": "169.98", "currency": "PLN"}) } else { Value::Null }},
        "fulfillment": {"status": fulfillment},
        "delivery": {"address": {"firstName": "Anna", "lastName": "Nowak", "street": "Grunwaldzka 182",
                                 "city": "Poznań", "zipCode": "60-166", "countryCode": "PL",
                                 "phoneNumber": "+48 600 100 200"},
                     "method": {"id": "m-1", "name": "Allegro Paczkomaty InPost"},
                     "cost": {"amount": "9.99", "currency": "PLN"}},
        "lineItems": [{"id": "li-1", "offer": {"id": "12345678901", "name": "Herbata zielona 100 g",
                                               "external": {"id": "TEA-GRN-100"}},
                       "quantity": 2, "price": {"amount": "79.99", "currency": "PLN"},
                       "boughtAt": "2026-11-30T10:00:00.000Z"}],
        "summary": {"totalToPay": {"amount": "169.98", "currency": "PLN"}},
        "updatedAt": "2026-11-30T10:05:00.000Z"
    })
}

async fn gateway(store: Arc<dyn omnigate::store::Store>) -> Gateway {
    Gateway::start_with(store, chrono::Utc::now(), |s| {
        s.poll_allow_http = true;
        s.poll_lease_ms = 1_000;
    })
    .await
}

async fn connect(gw: &Gateway, base: &str) -> String {
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({
            "tenant": "sklep-herbata", "provider": "allegro", "mode": "poll",
            "credentials": {"client_id": CLIENT.0, "client_secret": CLIENT.1,
                            "refresh_token": "refresh-0"},
            "options": {"api_base": base, "token_url": format!("{base}/auth/oauth/token"),
                        "poll_interval_secs": 1}
        }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["mode"], "poll");
    assert!(
        !body.to_string().contains(CLIENT.1),
        "credentials are write-only"
    );
    body["id"].as_str().unwrap().to_string()
}

/// `GET /v1/sources/{id}` once `pred` holds of its `poll`, or as it is after 20 s.
async fn progress_when(gw: &Gateway, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut source = Value::Null;
    for _ in 0..200 {
        source = gw.admin_json(&format!("/v1/sources/{id}")).await;
        if pred(&source["poll"]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    source
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allegro_shop_is_polled_from_its_journal_and_each_fact_told_once() {
    let (fake, base) = Allegro::start();
    // History before the shop was connected is not imported (no `start_from`).
    fake.add(
        "E0000",
        "BOUGHT",
        form("old-order", false, "NEW"),
        "2026-11-01T09:00:00Z",
    );
    let gw = gateway(redis_store(Retention::default()).await).await;
    let id = connect(&gw, &base).await;
    let source = progress_when(&gw, &id, |p| p["cursor"] == "E0000").await;
    assert_eq!(source["poll"]["cursor"], "E0000", "{source:#}");

    // Two pages' worth at two entries a page, an entry listed twice, times out of order,
    // a 429 first, and the access token revoked: each fact is told once all the same.
    fake.page_limit.store(2, Ordering::Relaxed);
    fake.throttle.store(true, Ordering::Relaxed);
    fake.access.lock().unwrap().clear();
    let t = "2026-11-30T10:00:00.000Z";
    fake.add("E0001", "BOUGHT", form("order-a", true, "SENT"), t);
    fake.add(
        "E0002",
        "READY_FOR_PROCESSING",
        form("order-a", true, "SENT"),
        "2026-11-30T10:05:00.000Z",
    );
    fake.add(
        "E0003",
        "BOUGHT",
        form("order-b", false, "NEW"),
        "2026-11-30T10:07:00.000Z",
    );
    fake.add(
        "E0003",
        "BOUGHT",
        form("order-b", false, "NEW"),
        "2026-11-30T10:07:00.000Z",
    );
    fake.add(
        "E0004",
        "BUYER_CANCELLED",
        form("order-b", false, "NEW"),
        "2026-11-30T10:06:00.000Z",
    );
    fake.add(
        "E0005",
        "FULFILLMENT_STATUS_CHANGED",
        form("order-a", true, "SENT"),
        "2026-11-30T12:00:00.000Z",
    );

    let types = gw.event_types_when("sklep-herbata", 5).await;
    assert_eq!(
        types,
        [
            "order.cancelled",
            "order.created",
            "order.created",
            "order.paid",
            "shipment.created"
        ],
    );
    let source = progress_when(&gw, &id, |p| p["cursor"] == "E0005").await;
    let poll = &source["poll"];
    assert_eq!(poll["cursor"], "E0005", "{source:#}");
    assert_eq!(poll["polling"], true);
    assert!(poll["last_success_at"].is_string());
    assert!(
        poll["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("rate limited"),
        "the 429 is on record: {poll}"
    );
    assert_eq!(fake.throttled.load(Ordering::Relaxed), 1);
    // The first token, then one more after the revocation, each refresh rotating.
    assert!(fake.refreshes.load(Ordering::Relaxed) >= 2);

    // What the events say: the order from its checkout form, money as strings.
    let created = gw
        .tenant_events("sklep-herbata", Some("order.created"))
        .await;
    let a = created
        .iter()
        .find(|e| e["subject"] == "order/order-a")
        .unwrap();
    assert_eq!(
        a["data"]["total"],
        json!({"amount": "169.98", "currency": "PLN"})
    );
    assert_eq!(a["data"]["lines"][0]["sku"], "TEA-GRN-100");
    assert_eq!(a["data"]["customer"]["customer_id"], "44716093");
    assert_eq!(a["source"]["provider"], "allegro");
    let paid = gw.tenant_events("sklep-herbata", Some("order.paid")).await;
    assert_eq!(paid[0]["data"]["paid_at"], "2026-11-30T10:05:00Z");

    // An entry whose checkout form is gone does not stop the source: it is kept in
    // quarantine with the reason, and the journal goes on.
    fake.journal.lock().unwrap().push(json!({
        "id": "E0006", "type": "BOUGHT", "occurredAt": "2026-11-30T13:00:00.000Z",
        "order": {"checkoutForm": {"id": "order-gone"}}
    }));
    fake.add(
        "E0007",
        "BUYER_CANCELLED",
        form("order-a", true, "SENT"),
        "2026-11-30T13:05:00.000Z",
    );
    let source = progress_when(&gw, &id, |p| p["cursor"] == "E0007").await;
    assert_eq!(source["poll"]["cursor"], "E0007", "{source:#}");
    let quarantine = gw.admin_json("/v1/quarantine").await;
    let entries = quarantine["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{quarantine:#}");
    assert_eq!(entries[0]["provider"], "allegro");
    assert!(
        entries[0]["reason"]
            .as_str()
            .unwrap()
            .contains("checkoutForm"),
        "{quarantine:#}"
    );
    assert_eq!(
        gw.event_types_when("sklep-herbata", 6).await.len(),
        6,
        "order-a's cancellation"
    );

    // Nothing comes twice on the following polls.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gw.event_types_when("sklep-herbata", 6).await.len(), 6);

    // A poll source takes no webhooks.
    let res = gw.deliver(&id, &[], b"{}").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_killed_mid_page_is_taken_over_and_nothing_is_told_twice() {
    let (fake, base) = Allegro::start();
    fake.add(
        "E0000",
        "BOUGHT",
        form("old-order", false, "NEW"),
        "2026-11-01T09:00:00Z",
    );
    let store = redis_store(Retention::default()).await;
    let first = gateway(store.clone()).await;
    let id = connect(&first, &base).await;
    progress_when(&first, &id, |p| p["cursor"] == "E0000").await;

    // Thirty orders in one page; the 25th's checkout form never answers the first time.
    *fake.hang_form.lock().unwrap() = Some("order-25".into());
    for n in 1..=30 {
        fake.add(
            &format!("E{n:04}"),
            "BOUGHT",
            form(&format!("order-{n}"), false, "NEW"),
            "2026-11-30T10:00:00.000Z",
        );
    }
    // The first process writes 24 orders (its cursor saved after the 20th), then dies.
    assert_eq!(first.event_types_when("sklep-herbata", 24).await.len(), 24);
    let source = progress_when(&first, &id, |p| p["cursor"] == "E0020").await;
    assert_eq!(source["poll"]["cursor"], "E0020", "{source:#}");
    first.crash().await;

    // Another process takes the source over once the lease lapses and reads from the
    // saved cursor: orders 21–24 are read again and add nothing.
    let second = gateway(store).await;
    let source = progress_when(&second, &id, |p| p["cursor"] == "E0030").await;
    assert_eq!(source["poll"]["cursor"], "E0030", "{source:#}");
    let created = second
        .tenant_events("sklep-herbata", Some("order.created"))
        .await;
    assert_eq!(created.len(), 30, "each order once");
    let subjects: HashSet<&str> = created
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 30);
    second.stop().await;
}
