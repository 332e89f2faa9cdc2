//! A Rozetka shop: the gateway logs in as a seller account (`POST /sites`, the password in
//! base64), reads orders changed since its cursor (`GET /orders/search`, sorted by
//! `changed`), and tells each fact an order shows once. The API here is a local fake of
//! Rozetka's documented seller API: the `{success, content}` envelope, `_meta` paging two
//! orders a page, Kyiv wall-clock times, sessions that end (error 6001) and a 429.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use chrono::Utc;
use omnigate::store::Retention;
use omnigate_tests::{Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const USER: &str = "manager@tea-shop.ua";
const PASSWORD: &str = "Пароль-продавця-42";

/// The fake Rozetka: orders (each with its `changed` text), sessions, and a 429 on demand.
#[derive(Default)]
struct Rozetka {
    orders: Mutex<Vec<Value>>,
    sessions: Mutex<HashSet<String>>,
    logins: AtomicUsize,
    throttle: AtomicBool,
    /// Searches answered before the fake stops answering (a process dies mid-read).
    answer_only: Mutex<Option<usize>>,
    searches: AtomicUsize,
}

fn kyiv_now() -> String {
    Utc::now()
        .with_timezone(&chrono_tz::Europe::Kyiv)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

async fn login(body: web::Json<Value>, fake: web::Data<Rozetka>) -> HttpResponse {
    let password = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    if body["username"] != USER || body["password"] != password.as_str() {
        return HttpResponse::Ok().json(json!({"success": false,
            "errors": {"message": "incorrect_username_password", "code": 1004}}));
    }
    let n = fake.logins.fetch_add(1, Ordering::SeqCst);
    let token = format!("session-{n}");
    fake.sessions.lock().unwrap().insert(token.clone());
    HttpResponse::Ok().json(json!({"success": true, "content": {
        "id": 111, "access_token": token, "permissions": ["order_edit"], "roles": ["default_owner"],
        "seller": {"fio": "Олена Коваль"}, "market": {"id": 1086, "title": "Чайна крамниця"}}}))
}

async fn search(
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
    fake: web::Data<Rozetka>,
) -> HttpResponse {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !fake.sessions.lock().unwrap().contains(token) {
        return HttpResponse::Ok().json(json!({"success": false,
            "errors": {"message": "session_expired", "code": 6001}}));
    }
    let n = fake.searches.fetch_add(1, Ordering::SeqCst);
    let limit = *fake.answer_only.lock().unwrap();
    if limit.is_some_and(|l| n >= l) {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if fake.throttle.swap(false, Ordering::SeqCst) {
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .json(
                json!({"success": false, "errors": {"message": "too_many_requests", "code": 0}}),
            );
    }
    let from = q.get("changed_from").cloned().unwrap_or_default();
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut orders: Vec<Value> = fake
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|o| o["changed"].as_str().unwrap() >= from.as_str())
        .cloned()
        .collect();
    let key = |o: &Value| {
        (
            o["changed"].as_str().unwrap().to_string(),
            o["id"].as_i64().unwrap(),
        )
    };
    match q.get("sort").map(String::as_str) {
        Some("-changed") => orders.sort_by_key(|o| std::cmp::Reverse(key(o))),
        _ => orders.sort_by_key(key),
    }
    let per_page = 2;
    let total = orders.len();
    let page_count = total.div_ceil(per_page).max(1);
    let listed: Vec<Value> = orders
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    HttpResponse::Ok().json(json!({"success": true, "content": {
        "orders": listed,
        "_meta": {"totalCount": total, "pageCount": page_count, "currentPage": page, "perPage": per_page}}}))
}

impl Rozetka {
    fn start() -> (web::Data<Rozetka>, String) {
        let data = web::Data::new(Rozetka::default());
        let shared = data.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/sites", web::post().to(login))
                .route("/orders/search", web::get().to(search))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (data, base)
    }

    /// Saves an order as changed now (a new one, or a new state of one).
    fn save(&self, order: Value) {
        self.save_at(order, &kyiv_now());
    }

    /// Saves an order as changed at `changed` (Kyiv wall-clock text).
    fn save_at(&self, mut order: Value, changed: &str) {
        order["changed"] = json!(changed);
        let mut orders = self.orders.lock().unwrap();
        orders.retain(|o| o["id"] != order["id"]);
        orders.push(order);
    }
}

/// An order as `GET /orders/search?expand=purchases,delivery,status_payment,user` gives it.
fn order(id: i64, status: i64, group: i64, paid: bool, ttn: &str) -> Value {
    json!({
        "id": id, "created": "2026-07-25 11:49:32", "changed": "",
        "amount": "600.00", "amount_with_discount": "560.00",
        "cost": "640.00", "cost_with_discount": "600.00",
        "status": status, "status_group": group, "ttn": ttn,
        "user_phone": "380501234567",
        "user_title": {"first_name": "Олена", "last_name": "Коваль", "full_name": "Коваль Олена"},
        "user": {"id": 10621442, "has_email": true, "contact_fio": "Олена Коваль", "email": "true"},
        "is_viewed": true,
        "payment_type_name": "Оплата карткою",
        "status_payment": if paid {
            json!({"order_id": id, "status_payment_id": 2, "name": "paid", "title": "Оплачено",
                   "created_at": "2026-07-25 12:01:00"})
        } else { Value::Null },
        "status_data": {"id": status, "name_en": format!("status {status}")},
        "delivery": {"delivery_service_id": 5, "delivery_service_name": "Нова Пошта", "cost": "40.00",
                     "city": {"id": 1, "name": "Київ"}},
        "purchases": [{"id": 145735205, "item_id": 6629229, "item_name": "Чай зелений",
                       "quantity": 2, "price": "300.00", "price_with_discount": "280.00",
                       "item": {"id": 38225280, "article": "TEA-GRN-100", "price_offer_id": "2972"}}]
    })
}

/// Waits (up to 10 s) for the source's first poll: its cursor set.
async fn first_cursor(gw: &Gateway, id: &str) {
    for _ in 0..100 {
        let s = gw.admin_json(&format!("/v1/sources/{id}")).await;
        if s["poll"]["cursor"].is_string() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_source(gw: &Gateway, base: &str, password: &str) -> String {
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({"tenant": "rozetka-shop", "provider": "rozetka",
                      "credentials": {"username": USER, "password": password},
                      "options": {"api_base": base, "poll_interval_secs": 1}}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let created: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["mode"], "poll");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rozetka_shop_is_polled_and_each_fact_told_once() {
    let (fake, base) = Rozetka::start();
    // An order from before the source existed is not told.
    let mut old = order(900, 6, 2, true, "20450000000900");
    old["changed"] = json!("2026-11-01 10:00:00");
    fake.orders.lock().unwrap().push(old);
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.poll_allow_http = true;
    })
    .await;
    let id = create_source(&gw, &base, PASSWORD).await;
    first_cursor(&gw, &id).await;

    // Three orders in one second (more than a page): a new one, a paid one, and one seen
    // first when already received, with its waybill.
    fake.save(order(201, 1, 1, false, ""));
    fake.save(order(202, 2, 1, true, ""));
    fake.save(order(203, 6, 2, true, "20450000000203"));
    let types = gw.event_types_when("rozetka-shop", 7).await;
    assert_eq!(
        types,
        [
            "order.created",
            "order.created",
            "order.created",
            "order.fulfilled",
            "order.paid",
            "order.paid",
            "shipment.created"
        ]
    );
    let created = gw
        .tenant_events("rozetka-shop", Some("order.created"))
        .await;
    let first = created
        .iter()
        .find(|e| e["subject"] == "order/201")
        .unwrap();
    assert_eq!(
        first["data"]["total"],
        json!({"amount": "600.00", "currency": "UAH"})
    );
    assert_eq!(first["data"]["shipping"]["amount"], "40.00");
    assert_eq!(
        first["data"]["placed_at"], "2026-07-25T08:49:32Z",
        "Kyiv summer time"
    );
    assert_eq!(first["data"]["lines"][0]["sku"], "TEA-GRN-100");
    assert_eq!(first["data"]["customer"]["name"], "Олена Коваль");
    assert!(
        first["data"]["customer"]["email"].is_null(),
        "Rozetka's \"true\" is no e-mail"
    );
    let shipment = gw
        .tenant_events("rozetka-shop", Some("shipment.created"))
        .await;
    assert_eq!(shipment[0]["data"]["tracking_number"], "20450000000203");
    assert_eq!(shipment[0]["data"]["carrier"], "Нова Пошта");

    // The session ends and Rozetka asks us to slow down; order 201 is then sent with a
    // waybill and cancelled by the buyer: each fact once.
    fake.sessions.lock().unwrap().clear();
    fake.throttle.store(true, Ordering::SeqCst);
    fake.save(order(201, 3, 1, false, "20450000000201"));
    assert_eq!(gw.event_types_when("rozetka-shop", 8).await.len(), 8);
    fake.save(order(201, 45, 3, false, "20450000000201"));
    let types = gw.event_types_when("rozetka-shop", 9).await;
    assert_eq!(types.iter().filter(|t| *t == "shipment.created").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "order.cancelled").count(), 1);
    let cancelled = gw
        .tenant_events("rozetka-shop", Some("order.cancelled"))
        .await;
    assert_eq!(cancelled[0]["data"]["reason"], "customer");
    assert_eq!(cancelled[0]["data"]["refund_expected"], false);
    assert!(
        fake.logins.load(Ordering::SeqCst) >= 2,
        "logged in again after 6001"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        gw.event_types_when("rozetka-shop", 9).await.len(),
        9,
        "orders read again add nothing"
    );

    let source = gw.admin_json(&format!("/v1/sources/{id}")).await;
    assert_eq!(source["poll"]["polling"], true, "{source:#}");
    // The 429 is shown, and that the source went on after it.
    let error = source["poll"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("rate limited"), "{source:#}");
    assert!(
        source["poll"]["last_success_at"].as_str() > source["poll"]["last_error_at"].as_str(),
        "{source:#}"
    );
    assert!(
        !source.to_string().contains(PASSWORD),
        "the password is write-only"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_shown_on_the_source() {
    let (_fake, base) = Rozetka::start();
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.poll_allow_http = true;
    })
    .await;
    let id = create_source(&gw, &base, "wrong password").await;
    let mut source = Value::Null;
    for _ in 0..100 {
        source = gw.admin_json(&format!("/v1/sources/{id}")).await;
        if source["poll"]["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = source["poll"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("refused the login"), "{source:#}");
    assert!(!source.to_string().contains("wrong password"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_changed_within_one_second_are_paged_and_an_unreadable_one_quarantined() {
    let (fake, base) = Rozetka::start();
    let gw = Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.poll_allow_http = true;
    })
    .await;
    let id = create_source(&gw, &base, PASSWORD).await;
    first_cursor(&gw, &id).await;
    // Five orders changed in the same second: three pages of two, read by page number
    // within that second; and one whose time is none (the hour skipped in spring).
    for n in 0..5 {
        fake.save_at(order(300 + n, 1, 1, false, ""), "2026-11-30 12:00:00");
    }
    fake.save_at(order(399, 1, 1, false, ""), "2026-03-29 03:30:00");
    let types = gw.event_types_when("rozetka-shop", 5).await;
    assert_eq!(types, ["order.created"; 5]);
    let mut source = Value::Null;
    for _ in 0..100 {
        source = gw.admin_json(&format!("/v1/sources/{id}")).await;
        if source["poll"]["cursor"] == "2026-11-30 12:00:00|3" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        source["poll"]["cursor"], "2026-11-30 12:00:00|3",
        "{source:#}"
    );
    let quarantined = gw.admin_json("/v1/quarantine?tenant=rozetka-shop").await;
    let reasons: Vec<&str> = quarantined["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 1, "{quarantined:#}");
    assert!(reasons[0].contains("changed"), "{reasons:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        gw.event_types_when("rozetka-shop", 5).await.len(),
        5,
        "read again: nothing new"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_killed_mid_read_is_taken_over_and_nothing_is_told_twice() {
    let (fake, base) = Rozetka::start();
    let store = redis_store(Retention::default()).await;
    let gateway = |store| {
        Gateway::start_with(store, Utc::now(), |s| {
            s.poll_allow_http = true;
            s.poll_lease_ms = 1_000;
        })
    };
    let first = gateway(store.clone()).await;
    let id = create_source(&first, &base, PASSWORD).await;
    first_cursor(&first, &id).await;
    // Seven orders, a second apart: four pages of two. The first process reads two pages,
    // then Rozetka stops answering it and it dies.
    let searches = fake.searches.load(Ordering::SeqCst);
    *fake.answer_only.lock().unwrap() = Some(searches + 2);
    for n in 0..7 {
        fake.save_at(
            order(500 + n, 1, 1, false, ""),
            &format!("2026-11-30 12:00:0{n}"),
        );
    }
    // (Each read starts at the newest second read, so two pages tell three orders.)
    let told = first.event_types_when("rozetka-shop", 3).await.len();
    assert!((2..7).contains(&told), "{told} told before the crash");
    first.crash().await;

    // Another process takes the source over once the lease lapses and reads on from the
    // saved cursor: what was read again adds nothing.
    *fake.answer_only.lock().unwrap() = None;
    let second = gateway(store).await;
    let created = {
        let mut created = Vec::new();
        for _ in 0..150 {
            created = second
                .tenant_events("rozetka-shop", Some("order.created"))
                .await;
            if created.len() >= 7 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        created
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = second
        .tenant_events("rozetka-shop", Some("order.created"))
        .await;
    assert_eq!(again.len(), 7, "each order once: {created:#?}");
    let subjects: HashSet<&str> = again
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 7);
    second.stop().await;
}
