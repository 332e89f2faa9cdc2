//! Thin webhooks made whole: a BigCommerce store, an Etsy shop and a Mercado Libre seller
//! send webhooks that carry only ids; with the shop's API credentials the gateway reads
//! each resource back and writes the full events after the thin one. The APIs here are a
//! local fake of each provider's documented endpoints (BigCommerce `v2/orders`, its
//! products and shipments with `X-Auth-Token`; Ecwid orders and the store profile with a
//! bearer token; Medusa's Admin API behind a Standard Webhooks bridge; Etsy receipts with `x-api-key` and a bearer
//! token; Mercado Libre `orders/{id}` with a bearer token), which can fail on demand.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Utc;
use omnigate::sign::{ProviderWebhook, sign};
use omnigate::store::Retention;
use omnigate_schemas::api::{KeyEncoding, Provider};
use omnigate_tests::{Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const BC_TOKEN: &str = "bc-api-token-0123456789";
const BC_SECRET: &str = "bc-client-secret-0123456789";
const ETSY_KEY: &str = "etsy-keystring-42";
const ETSY_TOKEN: &str = "etsy-oauth-token-42";
const ML_TOKEN: &str = "APP_USR-ml-token-42";
const ECWID_TOKEN: &str = "secret_ecwid-token-42";
const MEDUSA_KEY: &str = "sk_medusa_0123456789";

/// The fake APIs: resources by path, how many reads still fail with a 500, and Mercado
/// Libre's OAuth tokens (each refresh token works once).
#[derive(Default)]
struct Apis {
    resources: Mutex<HashMap<String, Value>>,
    failures_left: AtomicUsize,
    reads: AtomicUsize,
    refresh_tokens: Mutex<Vec<String>>,
    access_tokens: Mutex<Vec<String>>,
    refreshes: AtomicUsize,
}

/// `POST /oauth/token` with `grant_type=refresh_token`: a new access token and a new
/// refresh token; the one spent stops working.
fn refresh(apis: &Apis, form: &HashMap<String, String>) -> HttpResponse {
    let given = form.get("refresh_token").cloned().unwrap_or_default();
    let mut refresh_tokens = apis.refresh_tokens.lock().unwrap();
    let ok = form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("client_id").map(String::as_str) == Some("5503910054141466")
        && form.get("client_secret").map(String::as_str) == Some("ml-app-secret")
        && refresh_tokens.contains(&given);
    if !ok {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant", "status": 400}));
    }
    refresh_tokens.retain(|t| *t != given);
    let n = apis.refreshes.fetch_add(1, Ordering::SeqCst) + 2;
    let (access, next) = (format!("APP_USR-{n}"), format!("TG-{n}"));
    refresh_tokens.push(next.clone());
    apis.access_tokens.lock().unwrap().push(access.clone());
    HttpResponse::Ok().json(
        json!({"access_token": access, "token_type": "Bearer", "expires_in": 21600,
        "scope": "offline_access read", "user_id": 468424240, "refresh_token": next}),
    )
}

async fn serve(req: HttpRequest, body: web::Bytes, apis: web::Data<Apis>) -> HttpResponse {
    let path = req.path().to_string();
    if path == "/oauth/token" {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        return refresh(&apis, &form);
    }
    let header = |k: &str| {
        req.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let allowed = if path.starts_with("/stores/") {
        header("x-auth-token") == BC_TOKEN
    } else if path.starts_with("/admin/") {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{MEDUSA_KEY}:"));
        header("authorization") == format!("Basic {basic}")
    } else if path.starts_with("/api/v3/") {
        header("authorization") == format!("Bearer {ECWID_TOKEN}")
    } else if path.starts_with("/v3/application/") {
        header("x-api-key") == ETSY_KEY && header("authorization") == format!("Bearer {ETSY_TOKEN}")
    } else {
        let bearer = header("authorization")
            .strip_prefix("Bearer ")
            .unwrap_or_default()
            .to_string();
        bearer == ML_TOKEN || apis.access_tokens.lock().unwrap().contains(&bearer)
    };
    if !allowed {
        return HttpResponse::Unauthorized().json(json!({"title": "Unauthorized"}));
    }
    // Another seller's order, as Mercado Libre answers it.
    if path == "/orders/999" {
        return HttpResponse::Forbidden().json(json!({"message": "forbidden", "status": 403}));
    }
    apis.reads.fetch_add(1, Ordering::SeqCst);
    if apis
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return HttpResponse::InternalServerError().body("upstream hiccup");
    }
    match apis.resources.lock().unwrap().get(&path) {
        Some(v) => HttpResponse::Ok().json(v),
        None => HttpResponse::NotFound().json(json!({"status": 404, "title": "Not Found"})),
    }
}

impl Apis {
    fn start() -> (web::Data<Apis>, String) {
        let data = web::Data::new(Apis::default());
        let shared = data.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(serve))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (data, base)
    }

    fn put(&self, path: &str, v: Value) {
        self.resources.lock().unwrap().insert(path.to_string(), v);
    }
}

async fn gateway() -> Gateway {
    Gateway::start_with(redis_store(Retention::default()).await, Utc::now(), |s| {
        s.poll_allow_http = true;
        s.enrich_retry_ms = 200;
    })
    .await
}

async fn send(
    gw: &Gateway,
    source: &str,
    provider: Provider,
    secret: &str,
    topic: &str,
    id: &str,
    body: &Value,
) -> StatusCode {
    let body = serde_json::to_vec(body).unwrap();
    let headers = sign(&ProviderWebhook {
        provider,
        secret,
        key_encoding: KeyEncoding::Base64,
        topic,
        body: &body,
        now: Utc::now().timestamp(),
        delivery_id: id,
    })
    .unwrap();
    gw.deliver(source, &headers, &body).await.status()
}

/// A Mercado Libre `orders_v2` notification about the test order, sent now.
fn notify(id: &str) -> Value {
    let now = omnigate::normalize::time::format(Utc::now());
    json!({"_id": id, "resource": "/orders/2000008521436172", "user_id": 468424240,
           "topic": "orders_v2", "application_id": 5503910054141466u64, "attempts": 1,
           "sent": now, "received": now})
}

/// Posts a notification to an unsigned source's webhook path (with its URL secret).
async fn post(gw: &Gateway, path: &str, body: Value) -> StatusCode {
    gw.deliver_to(
        path,
        &[("content-type".into(), "application/json".into())],
        &serde_json::to_vec(&body).unwrap(),
    )
    .await
    .status()
}

/// The tenant's events of `event_type` once there are `n`, oldest first.
async fn events_when(gw: &Gateway, tenant: &str, event_type: &str, n: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..150 {
        events = gw.tenant_events(tenant, Some(event_type)).await;
        if events.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bigcommerce_order_is_read_back_after_its_thin_webhook() {
    let (apis, base) = Apis::start();
    apis.put(
        "/stores/x7k2pq9d4m/v2/orders/250731",
        json!({
            "id": 250731, "customer_id": 0, "status_id": 11, "status": "Awaiting Fulfillment",
            "date_created": "Tue, 18 Feb 2025 11:02:23 +0000",
            "date_modified": "Tue, 18 Feb 2025 11:05:00 +0000", "date_shipped": "",
            "subtotal_inc_tax": "200.0000", "total_inc_tax": "225.0000", "total_tax": "18.5000",
            "shipping_cost_inc_tax": "25.0000", "discount_amount": "0.0000",
            "refunded_amount": "0.0000", "currency_code": "USD", "payment_method": "Credit Card",
            "payment_status": "captured",
            "billing_address": {"first_name": "Ada", "last_name": "Lovelace", "company": "",
                "street_1": "12 Analytical Row", "street_2": "", "city": "London", "state": "",
                "zip": "N1 9GU", "country": "United Kingdom", "country_iso2": "gb",
                "phone": "+44 20 7946 0000", "email": "ada@example.com"}
        }),
    );
    apis.put(
        "/stores/x7k2pq9d4m/v2/orders/250731/products",
        json!([{"id": 7, "order_id": 250731, "product_id": 77, "variant_id": 770, "name": "Tea tin",
                "sku": "TIN-1", "quantity": 2, "price_inc_tax": "100.0000"}]),
    );
    apis.put(
        "/stores/x7k2pq9d4m/v2/orders/250731/shipments/433",
        json!({"id": 433, "order_id": 250731, "date_created": "Wed, 19 Feb 2025 09:00:00 +0000",
               "tracking_number": "1Z999AA10123456784", "tracking_carrier": "ups",
               "tracking_link": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
               "shipping_provider": "", "items": [{"order_product_id": 7, "product_id": 77, "quantity": 2}]}),
    );
    let gw = gateway().await;

    // Reading needs the store hash.
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(
            &json!({"tenant": "bc-shop", "provider": "bigcommerce", "secret": BC_SECRET,
                      "credentials": {"token": BC_TOKEN}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let source = gw
        .create_source(
            json!({"tenant": "bc-shop", "provider": "bigcommerce", "secret": BC_SECRET,
            "credentials": {"token": BC_TOKEN},
            "options": {"api": {"store_hash": "x7k2pq9d4m", "base_url": base, "per_minute": 600}}}),
        )
        .await;

    // The first read fails; the next one is made after a short wait.
    apis.failures_left.store(1, Ordering::SeqCst);
    let thin = json!({"created_at": Utc::now().timestamp(), "store_id": "1009384752",
        "producer": "stores/x7k2pq9d4m", "scope": "store/order/created",
        "hash": "c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9", "data": {"type": "order", "id": 250731}});
    let status = send(
        &gw,
        &source.id,
        Provider::Bigcommerce,
        BC_SECRET,
        "store/order/created",
        "bc-1",
        &thin,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let created = events_when(&gw, "bc-shop", "order.created", 2).await;
    assert_eq!(created.len(), 2, "{created:#?}");
    assert_eq!(
        created[0]["data"]["enrichment"], "pending",
        "the thin event comes first"
    );
    let full = &created[1]["data"];
    assert!(full.get("enrichment").is_none(), "{full:#}");
    assert_eq!(
        full["total"],
        json!({"amount": "225.00", "currency": "USD"})
    );
    assert_eq!(full["placed_at"], "2025-02-18T11:02:23Z");
    assert_eq!(full["lines"][0]["sku"], "TIN-1");
    assert_eq!(full["customer"]["email"], "ada@example.com");
    assert_eq!(full["billing_address"]["country"], "GB");
    assert_eq!(created[1]["subject"], "order/250731");
    assert_ne!(created[0]["id"], created[1]["id"]);

    let shown = gw.admin_json(&format!("/v1/sources/{}", source.id)).await;
    let enrichment = &shown["enrichment"];
    assert!(
        enrichment["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{shown:#}"
    );
    assert!(enrichment["last_success_at"].is_string(), "{shown:#}");
    assert_eq!(enrichment["consecutive_failures"], 0);
    assert!(
        !shown.to_string().contains(BC_TOKEN),
        "the API token is write-only"
    );

    // A shipment's tracking is read back too.
    let thin = json!({"created_at": Utc::now().timestamp(), "store_id": "1009384752",
        "producer": "stores/x7k2pq9d4m", "scope": "store/shipment/created", "hash": "ab",
        "data": {"type": "shipment", "id": 433, "orderId": 250731}});
    send(
        &gw,
        &source.id,
        Provider::Bigcommerce,
        BC_SECRET,
        "store/shipment/created",
        "bc-2",
        &thin,
    )
    .await;
    let shipments = events_when(&gw, "bc-shop", "shipment.created", 2).await;
    assert_eq!(
        shipments[1]["data"]["tracking_number"],
        "1Z999AA10123456784"
    );
    assert_eq!(shipments[1]["data"]["carrier"], "ups");

    // An order the API does not have: the thin event stays, and the failure is shown.
    let thin = json!({"created_at": Utc::now().timestamp(), "store_id": "1009384752",
        "producer": "stores/x7k2pq9d4m", "scope": "store/order/created", "hash": "cd",
        "data": {"type": "order", "id": 999}});
    send(
        &gw,
        &source.id,
        Provider::Bigcommerce,
        BC_SECRET,
        "store/order/created",
        "bc-3",
        &thin,
    )
    .await;
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = gw.admin_json(&format!("/v1/sources/{}", source.id)).await;
        if shown["enrichment"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("404")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown["enrichment"]["last_error"]
            .as_str()
            .unwrap()
            .contains("not there (HTTP 404)"),
        "{shown:#}"
    );
    assert_eq!(
        gw.tenant_events("bc-shop", Some("order.created"))
            .await
            .len(),
        3
    );
    assert!(
        gw.metrics()
            .await
            .contains(r#"omnigate_enrichment_total{outcome="failed"} 1"#)
    );

    // The same webhook again adds nothing, and is not read again.
    let reads = apis.reads.load(Ordering::SeqCst);
    let thin = json!({"created_at": Utc::now().timestamp(), "store_id": "1009384752",
        "producer": "stores/x7k2pq9d4m", "scope": "store/order/created",
        "hash": "c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9", "data": {"type": "order", "id": 250731}});
    send(
        &gw,
        &source.id,
        Provider::Bigcommerce,
        BC_SECRET,
        "store/order/created",
        "bc-1",
        &thin,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        gw.tenant_events("bc-shop", Some("order.created"))
            .await
            .len(),
        3
    );
    assert_eq!(apis.reads.load(Ordering::SeqCst), reads);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercado_libre_notifications_tell_each_order_fact_once() {
    let (apis, base) = Apis::start();
    let order = |status: &str| {
        json!({"id": 2000008521436172u64, "status": status,
            "date_created": "2025-05-31T09:20:30.000-04:00", "last_updated": "2025-05-31T09:22:41.000-04:00",
            "date_closed": "2025-05-31T09:21:00.000-04:00",
            "total_amount": 15999.5, "paid_amount": 15999.5, "currency_id": "ARS",
            "order_items": [{"item": {"id": "MLA1418227653", "title": "Mate de calabaza", "seller_sku": "MATE-01",
                             "variation_id": null}, "quantity": 1, "unit_price": 15999.5}],
            "buyer": {"id": 1234567, "nickname": "COMPRADOR_TEST"},
            "payments": [{"id": 95623410, "status": "approved", "payment_type": "credit_card",
                          "date_approved": "2025-05-31T09:21:00.000-04:00"}]})
    };
    apis.put("/orders/2000008521436172", order("paid"));
    let gw = gateway().await;
    let source = gw
        .create_source(json!({"tenant": "ml-seller", "provider": "mercadolibre",
            "credentials": {"token": ML_TOKEN}, "options": {"api": {"base_url": base}}}))
        .await;
    assert_eq!(
        post(&gw, &source.webhook_path, notify("n-1")).await,
        StatusCode::OK
    );
    let types = gw.event_types_when("ml-seller", 4).await;
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.updated",
            "order.updated"
        ]
    );
    let paid = gw.tenant_events("ml-seller", Some("order.paid")).await;
    assert_eq!(
        paid[0]["data"]["amount"],
        json!({"amount": "15999.50", "currency": "ARS"})
    );
    assert_eq!(paid[0]["data"]["paid_at"], "2025-05-31T13:21:00Z");

    // Cancelled later: a second notification tells that, and not again what was told.
    apis.put("/orders/2000008521436172", order("cancelled"));
    assert_eq!(
        post(&gw, &source.webhook_path, notify("n-2")).await,
        StatusCode::OK
    );
    let types = gw.event_types_when("ml-seller", 7).await;
    assert_eq!(
        types,
        [
            "order.cancelled",
            "order.created",
            "order.paid",
            "order.updated",
            "order.updated",
            "order.updated",
            "order.updated"
        ]
    );
    let cancelled = gw.tenant_events("ml-seller", Some("order.cancelled")).await;
    assert_eq!(cancelled[0]["data"]["refund_expected"], true);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etsy_receipt_is_read_with_the_apps_key_and_the_shops_token() {
    let (apis, base) = Apis::start();
    apis.put(
        "/v3/application/shops/58238219/receipts/3412908765",
        json!({"receipt_id": 3412908765u64, "status": "paid", "is_paid": true, "is_shipped": false,
            "create_timestamp": 1748683200, "updated_timestamp": 1748683300,
            "grandtotal": {"amount": 4250, "divisor": 100, "currency_code": "EUR"},
            "subtotal": {"amount": 3800, "divisor": 100, "currency_code": "EUR"},
            "total_shipping_cost": {"amount": 450, "divisor": 100, "currency_code": "EUR"},
            "buyer_email": "kasia@example.com", "name": "Kasia Nowak", "buyer_user_id": 991,
            "first_line": "ul. Długa 5", "city": "Kraków", "zip": "31-147", "country_iso": "PL",
            "payment_method": "cc",
            "transactions": [{"transaction_id": 4001, "listing_id": 1500, "product_id": 15001,
                "sku": "MUG-BLUE", "title": "Blue mug", "quantity": 2,
                "price": {"amount": 1900, "divisor": 100, "currency_code": "EUR"}}],
            "shipments": []}),
    );
    let gw = gateway().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let source = gw
        .create_source(
            json!({"tenant": "etsy-shop", "provider": "etsy", "secret": secret,
            "credentials": {"client_id": ETSY_KEY, "token": ETSY_TOKEN},
            "options": {"api": {"base_url": base}}}),
        )
        .await;
    let thin = json!({"event_type": "order.paid",
        "resource_url": "https://openapi.etsy.com/v3/application/shops/58238219/receipts/3412908765",
        "shop_id": 58238219});
    let status = send(
        &gw,
        &source.id,
        Provider::Etsy,
        secret,
        "order.paid",
        "msg_etsy_1",
        &thin,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let types = gw.event_types_when("etsy-shop", 3).await;
    assert_eq!(types, ["order.created", "order.paid", "order.paid"]);
    let created = gw.tenant_events("etsy-shop", Some("order.created")).await;
    assert_eq!(
        created[0]["data"]["total"],
        json!({"amount": "42.50", "currency": "EUR"})
    );
    assert_eq!(
        created[0]["data"]["lines"][0]["unit_price"]["amount"],
        "19.00"
    );
    assert_eq!(created[0]["data"]["shipping_address"]["city"], "Kraków");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecwid_webhooks_tell_what_the_order_shows_not_what_the_body_claims() {
    let (apis, base) = Apis::start();
    apis.put(
        "/api/v3/1003/profile",
        json!({"generalInfo": {"storeId": 1003}, "formatsAndUnits": {"currency": "CAD"}}),
    );
    let order = |payment: &str, fulfilment: &str, tracking: &str| {
        json!({"id": "XJ12H", "internalId": 192749330, "orderNumber": 12345,
            "email": "lea@example.ca", "paymentMethod": "Stripe", "paymentStatus": payment,
            "fulfillmentStatus": fulfilment, "trackingNumber": tracking,
            "total": 48.5, "subtotal": 40, "tax": 3.5, "discount": 0,
            "createTimestamp": 1733050800, "updateTimestamp": 1733051400, "customerId": 777,
            "items": [{"id": 111, "productId": 222, "sku": "TEA-ROOIBOS", "name": "Rooibos", "quantity": 2, "price": 20}],
            "billingPerson": {"name": "Léa Tremblay", "street": "1 Rue Sainte-Catherine", "city": "Montréal",
                              "postalCode": "H2X 1Z4", "countryCode": "CA", "stateOrProvinceCode": "QC", "phone": "+1 514 555 0100"},
            "shippingOption": {"shippingMethodName": "Canada Post", "shippingRate": 5}})
    };
    apis.put(
        "/api/v3/1003/orders/192749330",
        order("PAID", "AWAITING_PROCESSING", ""),
    );
    let gw = gateway().await;
    let secret = "ecwid-client-secret-0123456789";
    let source = gw
        .create_source(
            json!({"tenant": "ecwid-shop", "provider": "ecwid", "secret": secret,
            "credentials": {"token": ECWID_TOKEN},
            "options": {"api": {"store_id": "1003", "base_url": base}}}),
        )
        .await;
    // The body's statuses are not signed: a webhook claiming a delivery tells only what the
    // order shows (paid, not yet sent).
    // A second apart: two updates of one order within the same second are one thin event.
    let webhook = |event: &str, later: i64| {
        json!({"eventId": event, "eventCreated": Utc::now().timestamp() + later, "storeId": 1003,
               "entityId": 192749330, "eventType": "order.updated",
               "data": {"orderId": "XJ12H", "newPaymentStatus": "PAID", "newFulfillmentStatus": "DELIVERED"}})
    };
    let status = send(
        &gw,
        &source.id,
        Provider::Ecwid,
        secret,
        "order.updated",
        "e-1",
        &webhook("e-1", 0),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let types = gw.event_types_when("ecwid-shop", 4).await;
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.updated",
            "order.updated"
        ]
    );
    let created = gw.tenant_events("ecwid-shop", Some("order.created")).await;
    assert_eq!(
        created[0]["data"]["total"],
        json!({"amount": "48.50", "currency": "CAD"})
    );
    assert_eq!(created[0]["data"]["order_number"], "XJ12H");
    assert_eq!(created[0]["subject"], "order/192749330");

    // Sent with a tracking number: the next webhook tells the shipment, and nothing twice.
    apis.put(
        "/api/v3/1003/orders/192749330",
        order("PAID", "SHIPPED", "7302 1234 5678"),
    );
    send(
        &gw,
        &source.id,
        Provider::Ecwid,
        secret,
        "order.updated",
        "e-2",
        &webhook("e-2", 1),
    )
    .await;
    let types = gw.event_types_when("ecwid-shop", 7).await;
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.updated",
            "order.updated",
            "order.updated",
            "order.updated",
            "shipment.created"
        ]
    );
    let shipment = gw
        .tenant_events("ecwid-shop", Some("shipment.created"))
        .await;
    assert_eq!(shipment[0]["data"]["tracking_number"], "7302 1234 5678");
    assert_eq!(shipment[0]["data"]["carrier"], "Canada Post");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_medusa_bridge_order_is_read_from_the_admin_api() {
    let (apis, base) = Apis::start();
    apis.put(
        "/admin/orders/order_01JDX7Q6N5",
        json!({"order": {"id": "order_01JDX7Q6N5", "display_id": 1042, "status": "pending",
            "currency_code": "eur", "total": 64.9, "subtotal": 59.9, "tax_total": 0, "shipping_total": 5,
            "discount_total": 0, "email": "jan@example.de", "customer_id": "cus_01JD",
            "payment_status": "captured", "fulfillment_status": "not_fulfilled",
            "created_at": "2026-11-30T18:01:02.000Z", "updated_at": "2026-11-30T18:01:09.000Z",
            "items": [{"id": "ordli_01", "title": "Green tea", "subtitle": "100 g", "quantity": 1,
                       "unit_price": 59.9, "variant_sku": "TEA-GRN-100", "product_id": "prod_01", "variant_id": "variant_01"}],
            "shipping_address": {"first_name": "Jan", "last_name": "Müller", "address_1": "Hauptstraße 1",
                                 "city": "Berlin", "postal_code": "10115", "country_code": "de"}}}),
    );
    let gw = gateway().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(
            &json!({"tenant": "medusa-shop", "provider": "standard-webhooks", "secret": secret,
                      "credentials": {"token": MEDUSA_KEY}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the backend's URL is needed"
    );
    let source = gw
        .create_source(
            json!({"tenant": "medusa-shop", "provider": "standard-webhooks", "secret": secret,
            "credentials": {"token": MEDUSA_KEY}, "options": {"api": {"base_url": base}}}),
        )
        .await;
    let thin = json!({"type": "order.placed", "timestamp": omnigate::normalize::time::format(Utc::now()),
                      "data": {"id": "order_01JDX7Q6N5"}});
    let status = send(
        &gw,
        &source.id,
        Provider::StandardWebhooks,
        secret,
        "order.placed",
        "msg_medusa_1",
        &thin,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let created = events_when(&gw, "medusa-shop", "order.created", 2).await;
    assert_eq!(created.len(), 2, "{created:#?}");
    let full = &created[1]["data"];
    assert_eq!(full["order_number"], "1042");
    assert_eq!(full["total"], json!({"amount": "64.90", "currency": "EUR"}));
    assert_eq!(full["shipping_address"]["country"], "DE");
    assert_eq!(full["payment_state"], "paid");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercado_libre_tokens_are_refreshed_and_each_refresh_token_spent_once() {
    let (apis, base) = Apis::start();
    apis.refresh_tokens.lock().unwrap().push("TG-1".into());
    let order = json!({"id": 2000008521436172u64, "status": "paid",
        "date_created": "2025-05-31T09:20:30.000-04:00", "last_updated": "2025-05-31T09:22:41.000-04:00",
        "total_amount": 100, "paid_amount": 100, "currency_id": "BRL", "order_items": [],
        "buyer": {"id": 1, "nickname": "COMPRADOR"}, "payments": []});
    apis.put("/orders/2000008521436172", order);
    let gw = gateway().await;
    // A refresh token needs the application's id and secret.
    let res = gw
        .admin(Method::POST, "/v1/sources")
        .json(&json!({"tenant": "ml-refresh", "provider": "mercadolibre",
                      "credentials": {"refresh_token": "TG-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let source = gw
        .create_source(json!({"tenant": "ml-refresh", "provider": "mercadolibre",
            "credentials": {"client_id": "5503910054141466", "client_secret": "ml-app-secret",
                            "refresh_token": "TG-1"},
            "options": {"api": {"base_url": base}}}))
        .await;
    assert_eq!(
        post(&gw, &source.webhook_path, notify("r-1")).await,
        StatusCode::OK
    );
    assert_eq!(gw.event_types_when("ml-refresh", 4).await.len(), 4);
    assert_eq!(apis.refreshes.load(Ordering::SeqCst), 1);

    // Mercado Libre revokes the access token: the next read is refused, a new token is
    // made from the kept refresh token (TG-2; TG-1 was spent), and the read succeeds.
    apis.access_tokens.lock().unwrap().clear();
    assert_eq!(
        post(&gw, &source.webhook_path, notify("r-2")).await,
        StatusCode::OK
    );
    let types = gw.event_types_when("ml-refresh", 6).await;
    assert_eq!(
        types.iter().filter(|t| *t == "order.updated").count(),
        4,
        "{types:?}"
    );
    assert_eq!(apis.refreshes.load(Ordering::SeqCst), 2);
    let shown = gw.admin_json(&format!("/v1/sources/{}", source.id)).await;
    assert!(
        shown["enrichment"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{shown:#}"
    );
    assert_eq!(shown["enrichment"]["consecutive_failures"], 0);
    let text = shown.to_string();
    assert!(!text.contains("TG-") && !text.contains("APP_USR-") && !text.contains("ml-app-secret"));

    // Another seller's order (403) is given up at once, and spends no refresh token.
    let mut other = notify("r-3");
    other["resource"] = json!("/orders/999");
    assert_eq!(post(&gw, &source.webhook_path, other).await, StatusCode::OK);
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = gw.admin_json(&format!("/v1/sources/{}", source.id)).await;
        if shown["enrichment"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("403")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown["enrichment"]["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 403"),
        "{shown:#}"
    );
    assert_eq!(apis.refreshes.load(Ordering::SeqCst), 2);
    gw.stop().await;
}
