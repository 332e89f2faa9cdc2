//! Signing a webhook exactly as its provider would: the inverse of [`crate::verify`], for
//! tests, the SDK's test harness and `omnigate trigger`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::DateTime;
use hmac::{Hmac, KeyInit, Mac};
use omnigate_schemas::api::{KeyEncoding, Provider};
use serde_json::Value;
use sha2::Sha256;

use crate::error::{Error, Result};

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub provider: Provider,
    pub secret: &'a str,
    /// `standard-webhooks` and `etsy` only.
    pub key_encoding: KeyEncoding,
    pub topic: &'a str,
    pub body: &'a [u8],
    /// Unix seconds of the signature.
    pub now: i64,
    /// The provider's delivery id (`webhook-id`, `X-Shopify-Event-Id`, …).
    pub delivery_id: &'a str,
}

/// The headers the provider would send with `d.body`.
pub fn sign(d: &Delivery<'_>) -> Result<Vec<(String, String)>> {
    let h = |k: &str, v: String| (k.to_string(), v);
    let mut headers = vec![h("Content-Type", "application/json".into())];
    match d.provider {
        Provider::Shopify => {
            let at = DateTime::from_timestamp(d.now, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            headers.extend([
                h("X-Shopify-Topic", d.topic.into()),
                h(
                    "X-Shopify-Hmac-Sha256",
                    STANDARD.encode(mac(d.secret.as_bytes(), &[d.body])),
                ),
                h("X-Shopify-Event-Id", d.delivery_id.into()),
                h("X-Shopify-Webhook-Id", d.delivery_id.into()),
                h("X-Shopify-Triggered-At", at),
            ]);
        }
        Provider::Woocommerce => {
            let (resource, event) = d.topic.split_once('.').unwrap_or((d.topic, ""));
            headers.extend([
                h("X-WC-Webhook-Topic", d.topic.into()),
                h("X-WC-Webhook-Resource", resource.into()),
                h("X-WC-Webhook-Event", event.into()),
                h(
                    "X-WC-Webhook-Signature",
                    STANDARD.encode(mac(d.secret.as_bytes(), &[d.body])),
                ),
                h("X-WC-Webhook-Delivery-ID", d.delivery_id.into()),
            ]);
        }
        Provider::StandardWebhooks | Provider::Bigcommerce | Provider::Etsy => {
            let encoding = if d.provider == Provider::Bigcommerce {
                KeyEncoding::Raw
            } else {
                d.key_encoding
            };
            let key = match encoding {
                KeyEncoding::Raw => d.secret.as_bytes().to_vec(),
                KeyEncoding::Base64 => STANDARD
                    .decode(d.secret.strip_prefix("whsec_").unwrap_or(d.secret))
                    .map_err(|_| Error::validation("the secret is not whsec_ + base64"))?,
            };
            let ts = d.now.to_string();
            let sig = mac(
                &key,
                &[d.delivery_id.as_bytes(), b".", ts.as_bytes(), b".", d.body],
            );
            headers.extend([
                h("webhook-id", d.delivery_id.into()),
                h("webhook-timestamp", ts),
                h("webhook-signature", format!("v1,{}", STANDARD.encode(sig))),
            ]);
        }
        Provider::Stripe => {
            let ts = d.now.to_string();
            let sig = mac(d.secret.as_bytes(), &[ts.as_bytes(), b".", d.body]);
            headers.push(h(
                "Stripe-Signature",
                format!("t={ts},v1={}", hex::encode(sig)),
            ));
        }
        Provider::Github => {
            headers.extend([
                h("X-GitHub-Event", d.topic.into()),
                h("X-GitHub-Delivery", d.delivery_id.into()),
                h(
                    "X-Hub-Signature-256",
                    format!(
                        "sha256={}",
                        hex::encode(mac(d.secret.as_bytes(), &[d.body]))
                    ),
                ),
            ]);
        }
        Provider::Ecwid => {
            let body: Value = serde_json::from_slice(d.body)
                .map_err(|e| Error::validation(format!("ecwid body is not JSON: {e}")))?;
            let created = body.get("eventCreated").and_then(Value::as_i64);
            let id = body.get("eventId").and_then(Value::as_str);
            let (Some(created), Some(id)) = (created, id) else {
                return Err(Error::validation(
                    "an ecwid body needs eventCreated and eventId, which the signature covers",
                ));
            };
            let signed = format!("{created}.{id}");
            headers.push(h(
                "X-Ecwid-Webhook-Signature",
                STANDARD.encode(mac(d.secret.as_bytes(), &[signed.as_bytes()])),
            ));
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;
    use crate::verify::{SignedRequest, verify};

    #[test]
    fn what_is_signed_verifies_and_tampering_does_not() {
        let body = br#"{"id":1,"eventId":"e-1","eventCreated":1700000000,"type":"x"}"#;
        for provider in Provider::ALL {
            let secret = match provider {
                Provider::StandardWebhooks | Provider::Etsy => {
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                }
                _ => "s3cret&!",
            };
            let d = Delivery {
                provider,
                secret,
                key_encoding: KeyEncoding::Base64,
                topic: "orders/create",
                body,
                now: 1_700_000_000,
                delivery_id: "d-1",
            };
            let headers: Headers = sign(&d).unwrap().into_iter().collect();
            let req = SignedRequest {
                headers: &headers,
                body,
                now: 1_700_000_010,
                tolerance_s: 300,
            };
            verify(provider, KeyEncoding::Base64, &req, &[secret])
                .unwrap_or_else(|e| panic!("{provider}: {e}"));
            assert!(verify(provider, KeyEncoding::Base64, &req, &["other"]).is_err());
            // Ecwid signs ids, not the body: tamper with what it signs.
            let tampered: &[u8] = if provider == Provider::Ecwid {
                br#"{"id":1,"eventId":"e-2","eventCreated":1700000000,"type":"x"}"#
            } else {
                br#"{"id":2,"eventId":"e-1","eventCreated":1700000000,"type":"x"}"#
            };
            let req = SignedRequest {
                body: tampered,
                ..req
            };
            assert!(
                verify(provider, KeyEncoding::Base64, &req, &[secret]).is_err(),
                "{provider}"
            );
        }
    }
}
