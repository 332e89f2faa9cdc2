//! A plugin developer registers a plugin, gets its key once, and an operator installs it
//! in a shop; keys rotate with a grace period and can be revoked at once.

use chrono::{Duration, TimeZone, Utc};
use omnigate::store::Retention;
use omnigate_tests::{ADMIN_TOKEN, Gateway, redis_store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn me(gw: &Gateway, key: &str) -> StatusCode {
    me_answer(gw, key).await.0
}

/// `GET /v1/me` with `key`: the status and the JSON answer.
async fn me_answer(gw: &Gateway, key: &str) -> (StatusCode, Value) {
    let res = gw
        .http
        .get(gw.url("/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_get_a_key_once_and_keys_rotate_and_revoke() {
    let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, t0).await;
    let res = gw
        .admin(Method::POST, "/v1/plugins")
        .json(&json!({
            "name": "Loyalty points",
            "event_types": ["order.*", "refund.created"],
            "publishes": [{"type": "loyalty.points.changed",
                           "schema": {"type": "object", "required": ["balance"]}}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ogk_"));

    let shown = gw
        .admin(Method::GET, &format!("/v1/plugins/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!shown.contains(&key), "the key is shown only once");
    assert!(shown.contains("loyalty.points.changed"));

    assert_eq!(me(&gw, &key).await, StatusCode::OK);
    assert_eq!(me(&gw, "ogk_wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&gw, ADMIN_TOKEN).await,
        StatusCode::UNAUTHORIZED,
        "admin is not a plugin"
    );
    let as_admin = gw
        .http
        .get(gw.url(&format!("/v1/plugins/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_admin.status(),
        StatusCode::UNAUTHORIZED,
        "a plugin is not admin"
    );
    let as_admin: Value = as_admin.json().await.unwrap();
    assert_eq!(as_admin["detail"], "admin token missing or wrong");

    // Each 401 names the credential the endpoint wants.
    let (_, wrong_key) = me_answer(&gw, "ogk_wrong").await;
    let detail = wrong_key["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("plugin API key") && !detail.contains("admin"),
        "{detail}"
    );

    // Rotation: both keys work during the grace period, only the new one after it.
    let rotated: Value = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/keys"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key2 = rotated["api_key"].as_str().unwrap().to_string();
    assert_eq!(me(&gw, &key).await, StatusCode::OK);
    assert_eq!(me(&gw, &key2).await, StatusCode::OK);
    gw.clock.set(t0 + Duration::hours(24));
    assert_eq!(me(&gw, &key).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&gw, &key2).await, StatusCode::OK);

    // Revocation takes effect at once.
    let key2_id = rotated["key_id"].as_str().unwrap();
    let res = gw
        .admin(Method::DELETE, &format!("/v1/plugins/{id}/keys/{key2_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&gw, &key2).await, StatusCode::UNAUTHORIZED);

    // A fresh key that revokes all others.
    let fresh: Value = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/keys"))
        .json(&json!({"revoke_previous": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me(&gw, fresh["api_key"].as_str().unwrap()).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_install_and_uninstall_plugins_per_shop() {
    let gw = Gateway::start(redis_store(Retention::default()).await, Utc::now()).await;
    let created: Value = gw
        .admin(Method::POST, "/v1/plugins")
        .json(&json!({"name": "Returns", "event_types": ["return.*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let res = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/installations"))
        .json(
            &json!({"tenant": "shop-a", "scopes": ["events:read", "customer_pii", "events:read"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let installed: Value = res.json().await.unwrap();
    assert_eq!(installed["scopes"], json!(["events:read", "customer_pii"]));
    assert_eq!(
        gw.store.installations("shop-a").await.unwrap().len(),
        1,
        "stored per shop"
    );
    let bad = gw
        .admin(Method::POST, &format!("/v1/plugins/{id}/installations"))
        .json(&json!({"tenant": "shop-a", "scopes": ["everything"]}))
        .send()
        .await
        .unwrap();
    // Well-formed JSON that breaks the body's schema: 422 naming the field.
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let nope = gw
        .admin(Method::POST, "/v1/plugins/plg_missing/installations")
        .json(&json!({"tenant": "shop-a", "scopes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(nope.status(), StatusCode::NOT_FOUND);

    let del = |tenant: &'static str| {
        gw.admin(
            Method::DELETE,
            &format!("/v1/plugins/{id}/installations/{tenant}"),
        )
        .send()
    };
    assert_eq!(
        del("shop-a").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(del("shop-a").await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(gw.store.installations("shop-a").await.unwrap().is_empty());
}

/// `method path` with the admin token and `body`: the status and the JSON answer.
async fn admin_call(gw: &Gateway, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let res = gw.admin(method, path).json(&body).send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_typo_is_refused_by_name_and_a_registration_can_change() {
    let shop = omnigate_tests::payload_fixture("shopify/orders-create");
    let gw = Gateway::start(
        redis_store(Retention::default()).await,
        omnigate_tests::fixture_time(&shop),
    )
    .await;
    let loyalty = gw
        .register_plugin(json!({"name": "Loyalty", "event_types": ["order.paid"],
            "publishes": [{"type": "loyalty.points.changed", "schema": {"type": "object"}}]}))
        .await;

    // A typo no longer registers a plugin that silently receives nothing.
    for (types, named) in [
        (json!(["order.payed"]), "did you mean \"order.paid\""),
        (
            json!(["return.*", "loyalty.points.changd"]),
            "\"loyalty.points.changed\"",
        ),
        (json!(["ordres.*"]), "did you mean \"order.*\""),
        (
            json!(["nps.answered"]),
            "register the publishing plugin first",
        ),
    ] {
        let (status, problem) = admin_call(
            &gw,
            Method::POST,
            "/v1/plugins",
            json!({"name": "Returns", "event_types": types}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{types}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{types}: {detail}");
    }
    let returns = gw
        .register_plugin(json!({"name": "Returns",
            "event_types": ["return.*", "loyalty.points.changed"]}))
        .await;
    assert!(!returns.id.is_empty());

    // The operator widens Loyalty's subscriptions: the next order reaches its inbox, and
    // the plugin's page shows it waiting there.
    gw.install(&loyalty, "shop-a", json!(["events:read"])).await;
    let path = format!("/v1/plugins/{}", loyalty.id);
    let (status, updated) = admin_call(
        &gw,
        Method::PATCH,
        &path,
        json!({"event_types": ["order.*", "refund.created"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["event_types"], json!(["order.*", "refund.created"]));
    assert_eq!(
        updated["name"], "Loyalty",
        "what the PATCH does not name stays"
    );
    assert_eq!(updated["publishes"][0]["type"], "loyalty.points.changed");
    let source = gw.source_for(&shop, "shop-a").await;
    let res = gw.deliver_fixture(&source.id, &shop).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mut inbox = Value::Null;
    for _ in 0..50 {
        inbox = gw.admin_json(&path).await["inbox"].clone();
        if inbox["waiting"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        inbox,
        json!({"waiting": 1, "in_flight": 0, "dead_letters": 0})
    );

    // New published types claim their namespace, as at registration.
    let (status, _) = admin_call(
        &gw,
        Method::PATCH,
        &path,
        json!({"publishes": [
            {"type": "loyalty.points.changed", "schema": {"type": "object"}},
            {"type": "rewards.badge.earned", "schema": {"type": "object"}}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = admin_call(
        &gw,
        Method::PATCH,
        &format!("/v1/plugins/{}", returns.id),
        json!({"publishes": [{"type": "rewards.coupon.sent", "schema": {"type": "object"}}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // Loyalty stops publishing points: Returns' subscription to them stays, and does not
    // stop Returns from being changed otherwise.
    let (status, _) = admin_call(
        &gw,
        Method::PATCH,
        &path,
        json!({"publishes": [{"type": "rewards.badge.earned", "schema": {"type": "object"}}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, renamed) = admin_call(
        &gw,
        Method::PATCH,
        &format!("/v1/plugins/{}", returns.id),
        json!({"name": "Returns desk"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        renamed["event_types"],
        json!(["return.*", "loyalty.points.changed"])
    );
    // Checked as at registration: a typo, an unknown field, an unknown plugin.
    let (status, _) = admin_call(
        &gw,
        Method::PATCH,
        &path,
        json!({"event_types": ["refund.creatd"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, problem) = admin_call(&gw, Method::PATCH, &path, json!({"keys": []})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, _) = admin_call(&gw, Method::PATCH, "/v1/plugins/plg_nope", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let shown = gw.admin_json(&path).await;
    assert_eq!(shown["event_types"], json!(["order.*", "refund.created"]));
    gw.stop().await;
}

/// Operators rotating keys at the same moment (two admins, two gateway processes) each get
/// a key that works: no rotation saves over another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_rotations_lose_no_key() {
    let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap();
    let gw = Gateway::start(redis_store(Retention::default()).await, t0).await;
    let plugin = gw
        .register_plugin(json!({"name": "Busy", "event_types": ["order.*"]}))
        .await;
    let path = format!("/v1/plugins/{}/keys", plugin.id);
    let rotations = (0..8).map(|_| admin_call(&gw, Method::POST, &path, json!({})));
    let answers = futures_util::future::join_all(rotations).await;
    let issued: Vec<String> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body["api_key"].as_str().unwrap().to_string())
        .collect();
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::CONFLICT,
            "{status} {body}"
        );
    }
    assert!(!issued.is_empty());
    for key in issued.iter().chain([&plugin.key]) {
        assert_eq!(me(&gw, key).await, StatusCode::OK, "every issued key works");
    }
    let shown = gw.admin_json(&format!("/v1/plugins/{}", plugin.id)).await;
    assert_eq!(shown["keys"].as_array().unwrap().len(), issued.len() + 1);
    gw.stop().await;
}
