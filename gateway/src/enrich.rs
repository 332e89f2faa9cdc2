//! Reading a thin event's resource back from its provider's API, with the source's API
//! credentials: Medusa backends behind a Standard Webhooks bridge (`/admin/orders/{id}`
//! with a secret API key), BigCommerce (`X-Auth-Token`, `stores/{store_hash}/v2/orders/{id}` and its
//! products, or the shipment), Ecwid (a bearer token, `api/v3/{storeId}/orders/{id}` and
//! the store's profile for its currency), Etsy (`x-api-key` and an OAuth bearer token, the receipt the
//! event names) and Mercado Libre (a bearer token, the order the notification names). Only
//! the API's own host is ever asked: a path named in a body is joined to the configured
//! base, never followed elsewhere.

use omnigate_schemas::api::{ApiAccess, PollCredentials, Provider};
use omnigate_schemas::events::types;
use serde_json::{Value, json};
use std::time::Duration;

use crate::normalize::enriched::Thin;
use crate::poll::{excerpt, retry_after};

/// The enricher's inbox, where the router copies the thin events to read back (not a
/// plugin id: those are `plg_…`).
pub const INBOX: &str = "_enricher";

const BIGCOMMERCE: &str = "https://api.bigcommerce.com";
const ECWID: &str = "https://app.ecwid.com";
const ETSY: &str = "https://openapi.etsy.com";
const MERCADOLIBRE: &str = "https://api.mercadolibre.com";

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The provider asks us to slow down: read again after this long (not a failure).
    #[error("rate limited by the provider; reading again in {0:?}")]
    RateLimited(Duration),
    /// Worth trying again later: the provider failed or was unreachable.
    #[error("{0}")]
    Retry(String),
    /// The API refused the token (expired or revoked): a new one may help, or the operator
    /// must give new credentials.
    #[error("{0}")]
    Refused(String),
    /// Trying again will not help: the resource is gone, or the event names none.
    #[error("{0}")]
    Gone(String),
}

/// What a source reads its resources with.
pub struct Access<'a> {
    pub provider: Provider,
    pub api: Option<&'a ApiAccess>,
    pub credentials: &'a PollCredentials,
}

/// The thin event's `resource_url`, as the enricher has it.
pub struct Named<'a> {
    pub thin: Thin<'a>,
    pub resource_url: Option<&'a str>,
}

fn base<'a>(access: &'a Access<'_>, default: &'a str) -> &'a str {
    access
        .api
        .and_then(|a| a.base_url.as_deref())
        .unwrap_or(default)
        .trim_end_matches('/')
}

fn token<'a>(access: &Access<'a>) -> Result<&'a str, ReadError> {
    access
        .credentials
        .token
        .as_deref()
        .ok_or_else(|| ReadError::Retry("credentials.token is missing".into()))
}

/// Whether events of `event_type` from `provider` are read back at all (before any budget
/// or token is spent on one).
pub fn reads(provider: Provider, event_type: &str) -> bool {
    match provider {
        Provider::Bigcommerce => {
            event_type.starts_with("order.") || event_type == types::SHIPMENT_CREATED
        }
        Provider::Ecwid | Provider::MercadoLibre => event_type == types::ORDER_UPDATED,
        Provider::Etsy => matches!(
            event_type,
            types::ORDER_PAID
                | types::ORDER_CANCELLED
                | types::SHIPMENT_CREATED
                | types::SHIPMENT_UPDATED
        ),
        Provider::StandardWebhooks => event_type.starts_with("order."),
        _ => false,
    }
}

/// Reads the resource `named` names (`None`: this event type is not read back).
pub async fn read(
    http: &reqwest::Client,
    access: &Access<'_>,
    named: &Named<'_>,
) -> Result<Option<Value>, ReadError> {
    let thin = &named.thin;
    if !reads(access.provider, thin.event_type) {
        return Ok(None);
    }
    match access.provider {
        Provider::Bigcommerce => {
            let hash = access
                .api
                .and_then(|a| a.store_hash.as_deref())
                .ok_or_else(|| ReadError::Retry("options.api.store_hash is missing".into()))?;
            let root = format!("{}/stores/{hash}/v2", base(access, BIGCOMMERCE));
            let get = |path: String| {
                http.get(format!("{root}{path}"))
                    .header("X-Auth-Token", token(access).unwrap_or_default())
                    .header(reqwest::header::ACCEPT, "application/json")
            };
            token(access)?;
            let order_id = thin
                .order_id
                .ok_or_else(|| ReadError::Gone("the event names no order".into()))?;
            if thin.event_type == types::SHIPMENT_CREATED {
                let Some(shipment) = thin.shipment_id else {
                    return Err(ReadError::Gone("the event names no shipment".into()));
                };
                let path = format!(
                    "/orders/{}/shipments/{}",
                    segment(order_id)?,
                    segment(shipment)?
                );
                let shipment = fetch(get(path), "the shipment").await?;
                return Ok(Some(json!({"shipment": shipment})));
            }
            if !thin.event_type.starts_with("order.") {
                return Ok(None);
            }
            let order = fetch(get(format!("/orders/{}", segment(order_id)?)), "the order").await?;
            // An order without products answers 204 (no body): none.
            let products = fetch(
                get(format!("/orders/{}/products", segment(order_id)?)),
                "the order's products",
            )
            .await
            .or_else(|e| match e {
                ReadError::Gone(_) => Ok(Value::Array(Vec::new())),
                other => Err(other),
            })?;
            Ok(Some(json!({"order": order, "products": products})))
        }
        Provider::Ecwid => {
            if thin.event_type != types::ORDER_UPDATED {
                return Ok(None);
            }
            let store = access
                .api
                .and_then(|a| a.store_id.as_deref())
                .ok_or_else(|| ReadError::Retry("options.api.store_id is missing".into()))?;
            let order_id = thin
                .order_id
                .ok_or_else(|| ReadError::Gone("the event names no order".into()))?;
            let root = format!("{}/api/v3/{}", base(access, ECWID), segment(store)?);
            let token = token(access)?;
            let order = fetch(
                http.get(format!("{root}/orders/{}", segment(order_id)?))
                    .bearer_auth(token),
                "the order",
            )
            .await?;
            // The order names no currency: the store's profile does.
            let profile = fetch(
                http.get(format!("{root}/profile")).bearer_auth(token),
                "the store's profile",
            )
            .await?;
            Ok(Some(json!({"order": order, "profile": profile})))
        }
        Provider::StandardWebhooks => {
            // A Medusa backend's Admin API, with a secret API key (HTTP Basic, no password).
            let base = access
                .api
                .and_then(|a| a.base_url.as_deref())
                .ok_or_else(|| ReadError::Retry("options.api.base_url is missing".into()))?
                .trim_end_matches('/');
            if !thin.event_type.starts_with("order.") {
                return Ok(None);
            }
            let order_id = thin
                .order_id
                .ok_or_else(|| ReadError::Gone("the event names no order".into()))?;
            let req = http
                .get(format!(
                    "{base}/admin/orders/{}?fields=*items,*shipping_address,*billing_address",
                    segment(order_id)?
                ))
                .basic_auth(token(access)?, Some(""));
            let order = fetch(req, "the order").await?;
            // Medusa answers `{"order": …}`.
            Ok(Some(match order.get("order") {
                Some(_) => order,
                None => json!({"order": order}),
            }))
        }
        Provider::Etsy => {
            let key = access
                .credentials
                .client_id
                .as_deref()
                .ok_or_else(|| ReadError::Retry("credentials.client_id is missing".into()))?;
            let prefix = match access.api.and_then(|a| a.shop_id.as_deref()) {
                // Only the configured shop's receipts.
                Some(shop) => format!("/v3/application/shops/{}/", segment(shop)?),
                None => "/v3/application/shops/".to_string(),
            };
            let path = resource_path(named.resource_url, &prefix, ETSY)?;
            let req = http
                .get(format!("{}{path}", base(access, ETSY)))
                .header("x-api-key", key)
                .bearer_auth(token(access)?);
            Ok(Some(json!({"receipt": fetch(req, "the receipt").await?})))
        }
        Provider::MercadoLibre => {
            if thin.event_type != types::ORDER_UPDATED {
                return Ok(None);
            }
            let path = resource_path(named.resource_url, "/orders/", MERCADOLIBRE)?;
            let req = http
                .get(format!("{}{path}", base(access, MERCADOLIBRE)))
                .bearer_auth(token(access)?);
            Ok(Some(json!({"order": fetch(req, "the order").await?})))
        }
        _ => Ok(None),
    }
}

/// Tokens from an OAuth refresh.
pub struct Tokens {
    pub access: String,
    /// Mercado Libre hands out a new refresh token with each refresh; the old one stops
    /// working.
    pub refresh: String,
    pub expires_in: Duration,
}

/// Refreshes a Mercado Libre access token (`POST /oauth/token`, `grant_type=refresh_token`,
/// the application's id and secret in the form).
pub async fn refresh_mercadolibre(
    http: &reqwest::Client,
    access: &Access<'_>,
    refresh_token: &str,
) -> Result<Tokens, ReadError> {
    let c = access.credentials;
    let (Some(id), Some(secret)) = (c.client_id.as_deref(), c.client_secret.as_deref()) else {
        return Err(ReadError::Retry(
            "credentials.client_id and client_secret are needed to refresh the token".into(),
        ));
    };
    let res = http
        .post(format!("{}/oauth/token", base(access, MERCADOLIBRE)))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("client_secret", secret),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .map_err(|e| ReadError::Retry(format!("cannot refresh the token: {e}")))?;
    let status = res.status();
    if status.as_u16() == 429 {
        return Err(ReadError::RateLimited(retry_after(
            res.headers(),
            Duration::from_secs(60),
        )));
    }
    let text = crate::poll::text(res).await.map_err(ReadError::Retry)?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if matches!(status.as_u16(), 400 | 401 | 403) {
        // Only the OAuth error code: the answer may echo what was sent.
        let code = answer["error"].as_str().unwrap_or("refused");
        return Err(ReadError::Refused(format!(
            "Mercado Libre refused the refresh token ({code}): authorize the application \
             again and PATCH the source's credentials"
        )));
    }
    if !status.is_success() {
        return Err(ReadError::Retry(format!(
            "refreshing the token answered HTTP {}",
            status.as_u16()
        )));
    }
    let text_of = |k: &str| {
        answer[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    match (text_of("access_token"), text_of("refresh_token")) {
        (Some(access), Some(refresh)) => Ok(Tokens {
            access,
            refresh,
            expires_in: Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(21_600)),
        }),
        _ => Err(ReadError::Retry(
            "the token answer has no access_token or refresh_token".into(),
        )),
    }
}

/// An id as one path segment: letters, digits, `-` and `_` only.
fn segment(id: &str) -> Result<&str, ReadError> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(ReadError::Gone(format!(
            "{id:?} is not an id the API takes"
        )))
    }
}

/// The path of a `resource_url` (absolute on `host`, or a path), when it starts with
/// `prefix` and holds nothing but id segments.
fn resource_path(url: Option<&str>, prefix: &str, host: &str) -> Result<String, ReadError> {
    let url = url.ok_or_else(|| ReadError::Gone("the event names no resource".into()))?;
    let path = match url.strip_prefix(host) {
        Some(rest) => rest,
        None if url.starts_with('/') => url,
        None => {
            return Err(ReadError::Gone(format!(
                "{url:?} is not on {host}: not read"
            )));
        }
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let rest = path
        .strip_prefix(prefix)
        .ok_or_else(|| ReadError::Gone(format!("{path:?} is not under {prefix}")))?;
    for part in rest.split('/') {
        segment(part)?;
    }
    Ok(path.to_string())
}

/// A GET's JSON body, its failures sorted into retry or give up.
async fn fetch(req: reqwest::RequestBuilder, what: &str) -> Result<Value, ReadError> {
    let res = req
        .send()
        .await
        .map_err(|e| ReadError::Retry(format!("cannot read {what}: {e}")))?;
    let status = res.status();
    if status.as_u16() == 429 {
        return Err(ReadError::RateLimited(retry_after(
            res.headers(),
            Duration::from_secs(60),
        )));
    }
    if matches!(status.as_u16(), 204 | 404 | 410) {
        return Err(ReadError::Gone(format!(
            "{what} is not there (HTTP {})",
            status.as_u16()
        )));
    }
    let text = crate::poll::text(res).await.map_err(ReadError::Retry)?;
    if status.as_u16() == 401 {
        return Err(ReadError::Refused(format!(
            "the API refused the credentials reading {what} (HTTP 401): PATCH the source's \
             credentials"
        )));
    }
    // Not this account's (Mercado Libre answers so for another seller's order), or a
    // scope the token lacks: reading again will not help.
    if status.as_u16() == 403 {
        return Err(ReadError::Gone(format!(
            "the API forbids reading {what} with these credentials (HTTP 403): another \
             seller's, or a scope the token lacks"
        )));
    }
    if !status.is_success() {
        return Err(ReadError::Retry(format!(
            "reading {what} answered HTTP {}: {}",
            status.as_u16(),
            excerpt(&text)
        )));
    }
    serde_json::from_str(&text)
        .map_err(|_| ReadError::Retry(format!("{what}: the answer is not JSON")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_under_the_api_are_read() {
        let ok = |u: &str, p: &str, h: &str| resource_path(Some(u), p, h).unwrap();
        assert_eq!(
            ok(
                "https://openapi.etsy.com/v3/application/shops/42/receipts/9001",
                "/v3/application/shops/",
                ETSY
            ),
            "/v3/application/shops/42/receipts/9001"
        );
        assert_eq!(
            ok("/orders/2195160686", "/orders/", MERCADOLIBRE),
            "/orders/2195160686"
        );
        for bad in [
            "https://evil.example/v3/application/shops/42/receipts/1",
            "https://openapi.etsy.com.evil.example/v3/application/shops/1",
            "/v3/application/shops/42/../../admin",
            "/v3/application/users/1",
            "//evil.example/orders/1",
        ] {
            assert!(
                resource_path(Some(bad), "/v3/application/shops/", ETSY).is_err(),
                "{bad}"
            );
        }
        assert!(resource_path(Some("/orders/1%2F..%2Fx"), "/orders/", MERCADOLIBRE).is_err());
        assert!(resource_path(None, "/orders/", MERCADOLIBRE).is_err());
    }
}
