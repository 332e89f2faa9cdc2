//! An operator runs the gateway from the console in a real headless Chromium: logs in,
//! connects a shop, sends it a signed webhook and watches the event arrive, replays and
//! discards quarantined payloads, replays a plugin's dead letters, checks health, and looks
//! at it all on a phone. Every page is checked for unlabelled controls and low-contrast
//! text, and a screenshot of each is written to `target/console/` for the README.

use chrono::{DateTime, Utc};
use omnigate::store::{Append, Appended, QuarantineId, QuarantineRecord, Retention, Write};
use omnigate_tests::browser::Browser;
use omnigate_tests::{ADMIN_TOKEN, Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;

const SECRET: &str = "shpss_console_0123456789abcdef";
const TENANT: &str = "console-shop";

/// Where the screenshots go: the workspace's `target/console/`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console")
}

fn order(n: u32, at: DateTime<Utc>) -> String {
    format!(
        r##"{{"id":{n},"name":"#{n}","created_at":"{}","currency":"UAH","total_price":"1250.00","line_items":[]}}"##,
        at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// Sends `body` to the webhook URL as Shopify signs it.
async fn send(gw: &Gateway, url: &str, topic: &str, body: &str, id: &str) -> Value {
    let res = gw
        .http
        .post(url)
        .header("X-Shopify-Topic", topic)
        .header(
            "X-Shopify-Hmac-Sha256",
            omnigate::sign::body_hmac_base64(SECRET, body.as_bytes()),
        )
        .header("X-Shopify-Webhook-Id", id)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    res.json().await.unwrap()
}

/// Form controls without a label, and text below WCAG AA contrast (4.5:1, 3:1 for large
/// text) against the background it is drawn on.
const AUDIT: &str = r#"
const visible = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
const unlabelled = [...document.querySelectorAll('input, select, textarea')]
  .filter((e) => e.type !== 'hidden' && visible(e))
  .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map((e) => e.outerHTML.slice(0, 80));
const rgba = (c) => (c.match(/[\d.]+/g) || []).map(Number);
const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const background = (e) => {
  for (let n = e; n; n = n.parentElement) {
    const c = rgba(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] >= 0.99)) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
const lowContrast = [];
for (const e of document.querySelectorAll('body *')) {
  const text = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!text || !visible(e) || e.disabled || e.closest('[hidden], dialog:not([open])')) continue;
  const style = getComputedStyle(e);
  const [l1, l2] = [luminance(rgba(style.color)), luminance(background(e))];
  const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  if (ratio < needed) lowContrast.push(`${e.tagName.toLowerCase()}.${e.className} ${ratio.toFixed(2)}: ${e.textContent.trim().slice(0, 40)}`);
}
return { unlabelled, lowContrast };
"#;

/// Audits the page and writes its screenshot.
async fn page_done(browser: &Browser, name: &str) {
    let audit = browser.run(AUDIT).await;
    assert_eq!(
        audit["unlabelled"],
        json!([]),
        "{name}: unlabelled controls"
    );
    assert_eq!(
        audit["lowContrast"],
        json!([]),
        "{name}: text below AA contrast"
    );
    browser
        .screenshot(&screenshots().join(format!("{name}.png")))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_gateway_from_the_console() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let now = Utc::now();
    let store = redis_store(Retention::default()).await;
    let gw = Gateway::start_with(store.clone(), now, |s| s.tally_report_ms = 100).await;
    let plugin = gw
        .register_plugin(json!({"name": "Loyalty", "event_types": ["order.created"]}))
        .await;
    gw.install(&plugin, TENANT, json!(["events:read"])).await;

    // The page comes from the binary; the first paint is printed, not judged.
    browser.goto(&gw.url("/console")).await;
    browser.find("#token").await;
    let paint = browser
        .run("const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;")
        .await;
    eprintln!("console: first contentful paint {paint} ms (embedded assets, local gateway)");

    // A wrong token is refused; the right one, typed and entered from the keyboard, opens
    // the console and stays in this tab's session storage only.
    browser.fill("#token", "not-the-token").await;
    browser.click("#login button[type=submit]").await;
    browser
        .text_where("#login-error", |t| t.contains("refused"))
        .await;
    page_done(&browser, "login").await;
    browser
        .fill("#token", &format!("{ADMIN_TOKEN}\u{E007}"))
        .await;
    browser
        .find("#nav a[href='#/sources'][aria-current='page']")
        .await;
    let kept = browser
        .run("return [sessionStorage.getItem('omnigate.adminToken'), localStorage.length, document.cookie]")
        .await;
    assert_eq!(kept, json!([ADMIN_TOKEN, 0, ""]));

    // Connect a shop: the provider picker says what Shopify needs.
    browser.click("#new-source").await;
    browser.select("#provider", "shopify").await;
    browser
        .text_where("#provider-verification", |t| {
            t.contains("X-Shopify-Hmac-Sha256")
        })
        .await;
    browser.fill("#tenant", TENANT).await;
    browser.fill("#source-name", "Console shop").await;
    browser.fill("#field-secret", SECRET).await;
    browser.click("#source-form button[type=submit]").await;
    let url = browser
        .text_where("#webhook-url", |t| t.contains("/v1/webhooks/src_"))
        .await;
    let source_id = url.rsplit('/').next().unwrap().to_string();
    assert!(url.starts_with(&gw.url("/v1/webhooks/")), "{url}");

    // The shop sends an order to the URL shown; the event appears in the log.
    let first = send(&gw, &url, "orders/create", &order(1, now), "w1").await;
    let first_id = first["event_ids"][0].as_str().unwrap().to_string();
    browser.click("#nav a[href='#/events']").await;
    browser.fill("#events-tenant", TENANT).await;
    browser.click("#events-load").await;
    let shown = browser
        .text_where(&format!("li.event[data-event-id='{first_id}']"), |t| {
            t.contains("order.created")
        })
        .await;
    assert!(shown.contains(&first_id), "{shown}");
    let json_shown = browser
        .run(&format!(
            "return document.querySelector(\"li.event[data-event-id='{first_id}'] pre\").textContent"
        ))
        .await;
    let event: Value = serde_json::from_str(json_shown.as_str().unwrap()).unwrap();
    assert_eq!(event["data"]["order_id"], "1");
    assert!(
        json_shown.as_str().unwrap().contains("\n  \"data\""),
        "pretty-printed"
    );

    // Following: a second order shows up on top without reloading.
    browser.click("#events-follow").await;
    let second = send(&gw, &url, "orders/create", &order(2, now), "w2").await;
    let second_id = second["event_ids"][0].as_str().unwrap().to_string();
    browser
        .find(&format!("li.event[data-event-id='{second_id}']"))
        .await;
    let top = browser
        .run("return document.querySelector('#events-list li.event').dataset.eventId")
        .await;
    assert_eq!(top, json!(second_id), "the newest event is on top");
    page_done(&browser, "events").await;
    browser.click("#events-follow").await;

    // Quarantine: a topic the gateway does not map, and a payload an older gateway could
    // not map that this one can (replayed into an event).
    let cart = r#"{"id":"c1","token":"c1","line_items":[]}"#;
    let kept = send(&gw, &url, "carts/update", cart, "w3").await;
    let unmapped = kept["quarantine_id"].as_str().unwrap().to_string();
    let older = order(3, now);
    let partition = omnigate::store::partition_of(TENANT, 16);
    let written = store
        .append(Append {
            partition,
            dedupe_key: format!("{source_id}:older-3"),
            dedupe_ttl: std::time::Duration::from_secs(3600),
            write: Write::Quarantine(QuarantineRecord {
                tenant: TENANT.into(),
                source_id: source_id.clone(),
                provider: "shopify".into(),
                topic: Some("orders/create".into()),
                reason: "shopify topic \"orders/create\" is not mapped".into(),
                received_at: now,
                headers: [
                    ("x-shopify-topic".to_string(), "orders/create".to_string()),
                    (
                        "x-shopify-hmac-sha256".to_string(),
                        omnigate::sign::body_hmac_base64(SECRET, older.as_bytes()),
                    ),
                ]
                .into_iter()
                .collect(),
                body: older.clone().into_bytes(),
                dedupe_key: format!("{source_id}:older-3"),
            }),
            snapshot: None,
        })
        .await
        .unwrap();
    let Appended::Written { ids, .. } = written else {
        panic!("not written")
    };
    let replayable = QuarantineId {
        partition,
        entry: ids[0],
    }
    .to_string();

    browser.click("#nav a[href='#/quarantine']").await;
    browser
        .click(&format!(
            "tr[data-quarantine-id='{replayable}'] .quarantine-open"
        ))
        .await;
    browser
        .text_where("#quarantine-reason", |t| t.contains("orders/create"))
        .await;
    let body = browser
        .text_where("#quarantine-body", |t| !t.is_empty())
        .await;
    assert_eq!(body, older, "the body is shown byte for byte");
    browser.click("#quarantine-replay").await;
    let result = browser
        .text_where("#quarantine-result", |t| t.contains("evt_"))
        .await;
    let replayed: Value = gw.admin_json(&format!("/v1/quarantine/{replayable}")).await;
    let replayed_id = replayed["replayed_event_ids"][0].as_str().unwrap();
    assert!(result.contains(replayed_id), "{result}");
    page_done(&browser, "quarantine").await;

    browser.click("#nav a[href='#/quarantine']").await;
    browser
        .click(&format!(
            "tr[data-quarantine-id='{unmapped}'] .quarantine-open"
        ))
        .await;
    browser
        .text_where("#quarantine-reason", |t| t.contains("carts/update"))
        .await;
    browser.click("#quarantine-discard").await;
    browser.find("dialog#confirm[open]").await;
    browser.click("#confirm-yes").await;
    let mut gone = StatusCode::OK;
    for _ in 0..100 {
        gone = gw
            .admin(Method::GET, &format!("/v1/quarantine/{unmapped}"))
            .send()
            .await
            .unwrap()
            .status();
        if gone == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(gone, StatusCode::NOT_FOUND, "discarded after confirming");

    // The plugin gave up on the first order; the operator sends it back.
    let mut receipt = Value::Null;
    for _ in 0..50 {
        let (_, pulled) = gw
            .plugin_call(
                &plugin,
                "/v1/inbox/pull",
                json!({"max": 10, "wait_ms": 500}),
            )
            .await;
        if let Some(d) = pulled["deliveries"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["event"]["id"] == first_id.as_str()))
        {
            receipt = d["receipt"].clone();
            break;
        }
    }
    let (status, _) = gw
        .plugin_call(
            &plugin,
            "/v1/inbox/nack",
            json!({"receipts": [receipt], "dead": true, "reason": "CRM answered 503"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    browser.click("#nav a[href='#/plugins']").await;
    browser
        .click(&format!("tr[data-plugin-id='{}'] .plugin-open", plugin.id))
        .await;
    browser
        .text_where("#plugin-detail", |t| {
            t.contains(TENANT) && t.contains("events:read") && t.contains("CRM answered 503")
        })
        .await;
    page_done(&browser, "plugins").await;
    browser.click("#dead-replay-all").await;
    browser
        .text_where("#plugin-result", |t| t == "Replayed 1 dead letter.")
        .await;
    let (_, again) = gw
        .plugin_call(
            &plugin,
            "/v1/inbox/pull",
            json!({"max": 10, "wait_ms": 2000}),
        )
        .await;
    assert!(
        again["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["event"]["id"] == first_id.as_str()),
        "the dead letter was delivered again: {again}"
    );

    // Health: the store answers, the router keeps up.
    browser.click("#nav a[href='#/health']").await;
    browser.find("#router-table").await;
    browser
        .text_where("#store-status", |t| t == "reachable")
        .await;
    page_done(&browser, "health").await;

    // Back on the sources: what the shop sent in the last hour.
    browser.click("#nav a[href='#/sources']").await;
    let mut row = String::new();
    for _ in 0..50 {
        row = browser
            .text_where(&format!("tr[data-source-id='{source_id}']"), |_| true)
            .await;
        if row.contains("accepted") && row.contains("quarantined") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        browser.click("#nav a[href='#/health']").await;
        browser.click("#nav a[href='#/sources']").await;
    }
    assert!(
        row.contains("accepted") && row.contains("quarantined"),
        "{row}"
    );
    page_done(&browser, "sources").await;

    // On a phone: nothing wider than the screen, the sections still reachable.
    browser.resize(390, 844).await;
    let fits = browser
        .run("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(
        fits,
        json!(true),
        "the sources page overflows a phone's width"
    );
    browser.find("#nav a[href='#/events']").await;
    page_done(&browser, "sources-phone").await;
    browser.close().await;
}

/// What any browser gets, with or without Chromium on this machine: the page from the
/// binary under its policy, compressed when asked, and revalidated rather than refetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_from_the_binary_under_a_strict_policy() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = client.get(gw.url("/console")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()["location"], "/console/");

    let page = client
        .get(gw.url("/console/app.js"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"));
    let etag = page.headers()["etag"].clone();
    let sent = page.bytes().await.unwrap().len();
    assert!(sent < 30_000, "compressed: {sent} bytes");
    let again = client
        .get(gw.url("/console/app.js"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = client
        .get(gw.url("/console/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
