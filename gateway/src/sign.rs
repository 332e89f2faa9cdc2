//! Signing a webhook exactly as its provider would: the inverse of [`crate::verify`], for
//! tests, the SDK's test harness and `omnigate trigger`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::DateTime;
use omnigate_schemas::api::{KeyEncoding, Provider};
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents};
use serde_json::Value;
use sha2::Digest;

use crate::error::{Error, Result};

use crate::verify::hmac_sha256 as mac;

/// Base64 HMAC-SHA256 of the whole body: Shopify's `X-Shopify-Hmac-Sha256` and WooCommerce's
/// `X-WC-Webhook-Signature`. Load generators re-sign every request with it.
pub fn body_hmac_base64(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(mac(secret.as_bytes(), &[body]))
}

/// Hex HMAC-SHA256 of the whole body: Saleor's deprecated `Saleor-Signature` form.
pub fn hex_hmac(secret: &str, body: &[u8]) -> String {
    hex::encode(mac(secret.as_bytes(), &[body]))
}

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct ProviderWebhook<'a> {
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
pub fn sign(d: &ProviderWebhook<'_>) -> Result<Vec<(String, String)>> {
    let h = |k: &str, v: String| (k.to_string(), v);
    let mut headers = vec![h("Content-Type", "application/json".into())];
    match d.provider {
        Provider::Shopify => {
            let at = DateTime::from_timestamp(d.now, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            headers.extend([
                h("X-Shopify-Topic", d.topic.into()),
                h("X-Shopify-Hmac-Sha256", body_hmac_base64(d.secret, d.body)),
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
                h("X-WC-Webhook-Signature", body_hmac_base64(d.secret, d.body)),
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
                    format!("sha256={}", hex_hmac(d.secret, d.body)),
                ),
            ]);
        }
        Provider::Saleor => {
            let key = saleor_key(d.secret)?;
            let header = serde_json::json!({
                "alg": "RS256", "b64": false, "crit": ["b64"], "kid": key_id(&key),
            });
            let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
            let mut input = header_b64.as_bytes().to_vec();
            input.push(b'.');
            input.extend_from_slice(d.body);
            let mut sig = vec![0; key.public().modulus_len()];
            key.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                &input,
                &mut sig,
            )
            .map_err(|_| Error::Internal("RSA signing failed".into()))?;
            headers.extend([
                h("Saleor-Event", d.topic.to_ascii_lowercase()),
                h(
                    "Saleor-Signature",
                    format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode(sig)),
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
        // Unsigned: the secret goes in the URL (`webhook_path`), the body says the rest.
        Provider::Ozon | Provider::MercadoLibre => {}
        Provider::Allegro | Provider::Prom | Provider::Rozetka => {
            return Err(Error::validation(format!(
                "{} sources are polled: nothing is sent to them",
                d.provider
            )));
        }
    }
    Ok(headers)
}

/// Where a provider posts a source's deliveries: `/v1/webhooks/{id}`, or for a provider
/// that signs nothing `/v1/webhooks/{id}/{secret}`.
pub fn webhook_path(provider: Provider, source_id: &str, secret: &str) -> String {
    if crate::providers::of(provider).scheme == crate::verify::Scheme::UrlSecret {
        format!("/v1/webhooks/{source_id}/{secret}")
    } else {
        format!("/v1/webhooks/{source_id}")
    }
}

/// An RSA private key in PKCS#8, PEM or base64 DER: what signs Saleor deliveries here.
fn saleor_key(secret: &str) -> Result<RsaKeyPair> {
    let text: String = secret
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = STANDARD
        .decode(text.trim())
        .map_err(|_| Error::validation("a saleor signing key is an RSA PKCS#8 key (PEM)"))?;
    RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| Error::validation(format!("not an RSA PKCS#8 key: {e}")))
}

/// A stable key id: the first 16 hex digits of SHA-256 over the modulus.
fn key_id(key: &RsaKeyPair) -> String {
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    hex::encode(&sha2::Sha256::digest(&public.n)[..8])
}

/// The JWKS publishing the public half of `private_pem`, as a Saleor shop serves it.
pub fn saleor_jwks(private_pem: &str) -> Result<Value> {
    let key = saleor_key(private_pem)?;
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    Ok(serde_json::json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": key_id(&key),
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
    }]}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;
    use crate::verify::{SignedRequest, verify};

    pub(crate) use crate::samples::SALEOR_TEST_KEY as TEST_SALEOR_KEY;

    /// What the signer puts in headers is where the pipeline reads it: the topic and the
    /// delivery id of every provider that sends them as headers come back unchanged.
    #[test]
    fn signed_headers_are_the_ones_the_pipeline_reads() {
        use crate::providers::Field;
        let body =
            br#"{"id":"d-1","eventId":"d-1","eventCreated":1700000000,"type":"orders/create"}"#;
        for provider in Provider::ALL {
            if crate::providers::of(provider).scheme == crate::verify::Scheme::Polled {
                // Nothing is sent to a polled source: signing one is refused.
                assert!(
                    sign(&ProviderWebhook {
                        provider,
                        secret: "x",
                        key_encoding: KeyEncoding::Base64,
                        topic: "BOUGHT",
                        body,
                        now: 0,
                        delivery_id: "d-1",
                    })
                    .is_err()
                );
                continue;
            }
            let secret = match provider {
                Provider::Saleor => TEST_SALEOR_KEY,
                _ => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            };
            let d = ProviderWebhook {
                provider,
                secret,
                key_encoding: KeyEncoding::Base64,
                topic: "orders/create",
                body,
                now: 1_700_000_000,
                delivery_id: "d-1",
            };
            let headers: Headers = sign(&d).unwrap().into_iter().collect();
            let descriptor = crate::providers::of(provider);
            let parsed = crate::json::Json::parse(body).unwrap();
            let id = crate::ingest::identity::identify(descriptor, &headers, Some(&parsed), body);
            if let Field::Header(_) = descriptor.topic {
                let topic = id.topic.as_deref().unwrap_or_default();
                assert!(
                    topic.eq_ignore_ascii_case("orders/create"),
                    "{provider}: {topic}"
                );
            }
            if let Field::Header(_) = descriptor.delivery_id {
                assert_eq!(id.delivery_id.as_deref(), Some("d-1"), "{provider}");
            }
        }
    }

    #[test]
    fn what_is_signed_verifies_and_tampering_does_not() {
        let body = br#"{"id":1,"eventId":"e-1","eventCreated":1700000000,"type":"x"}"#;
        for provider in Provider::ALL {
            // Saleor has its own tests; unsigned providers sign nothing to tamper with
            // (their URL secret is tested in `verify::url_secret`).
            if provider == Provider::Saleor
                || matches!(
                    crate::providers::of(provider).scheme,
                    crate::verify::Scheme::UrlSecret | crate::verify::Scheme::Polled
                )
            {
                continue;
            }
            let secret = match provider {
                Provider::StandardWebhooks | Provider::Etsy => {
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                }
                _ => "s3cret&!",
            };
            let d = ProviderWebhook {
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
                url_secret: None,
                headers: &headers,
                body,
                now: 1_700_000_010,
                tolerance_s: 300,
            };
            verify(
                crate::providers::of(provider).scheme,
                KeyEncoding::Base64,
                &req,
                &[secret],
            )
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
            let scheme = crate::providers::of(provider).scheme;
            assert!(verify(scheme, KeyEncoding::Base64, &req, &["other"]).is_err());
            // Ecwid signs ids, not the body: tamper with what it signs.
            let tampered: &[u8] = if provider == Provider::Ecwid {
                br#"{"id":1,"eventId":"e-2","eventCreated":1700000000,"type":"x"}"#
            } else {
                br#"{"id":2,"eventId":"e-1","eventCreated":1700000000,"type":"x"}"#
            };
            let req = SignedRequest {
                url_secret: None,
                body: tampered,
                ..req
            };
            assert!(
                verify(scheme, KeyEncoding::Base64, &req, &[secret]).is_err(),
                "{provider}"
            );
        }
    }
}

#[cfg(test)]
mod saleor_tests {
    use super::tests::TEST_SALEOR_KEY;
    use super::*;
    use crate::headers::Headers;
    use crate::verify::{Scheme, SignedRequest, jwks, verify_with_keys};

    #[test]
    fn saleor_jws_verifies_with_the_published_key_and_only_it() {
        let body = br#"{"issuedAt":"2025-06-01T10:00:00+00:00","order":{"id":"T3JkZXI6MQ=="}}"#;
        let d = ProviderWebhook {
            provider: Provider::Saleor,
            secret: TEST_SALEOR_KEY,
            key_encoding: KeyEncoding::Base64,
            topic: "ORDER_CREATED",
            body,
            now: 0,
            delivery_id: "",
        };
        let headers: Headers = sign(&d).unwrap().into_iter().collect();
        assert_eq!(headers.get("saleor-event"), Some("order_created"));
        let keys = jwks::parse(&saleor_jwks(TEST_SALEOR_KEY).unwrap()).unwrap();
        let req = SignedRequest {
            url_secret: None,
            headers: &headers,
            body,
            now: 0,
            tolerance_s: 300,
        };
        let enc = KeyEncoding::Base64;
        verify_with_keys(Scheme::Saleor, enc, &req, &[], &keys).unwrap();
        // Another key, a re-encoded body, or no keys: refused.
        let mut other = keys.clone();
        other[0].n[10] ^= 1;
        assert!(verify_with_keys(Scheme::Saleor, enc, &req, &[], &other).is_err());
        let changed = br#"{"issuedAt": "2025-06-01T10:00:00+00:00","order":{"id":"T3JkZXI6MQ=="}}"#;
        let req2 = SignedRequest {
            url_secret: None,
            body: changed,
            ..req
        };
        assert!(verify_with_keys(Scheme::Saleor, enc, &req2, &[], &keys).is_err());
        assert!(verify_with_keys(Scheme::Saleor, enc, &req, &["x"], &[]).is_err());
    }

    #[test]
    fn saleor_legacy_hex_hmac() {
        let body = br#"{"order":{"id":"1"}}"#;
        let sig = hex::encode(mac(b"legacy-secret", &[body]));
        let headers: Headers = [("Saleor-Signature", sig.as_str())].into_iter().collect();
        let req = SignedRequest {
            url_secret: None,
            headers: &headers,
            body,
            now: 0,
            tolerance_s: 300,
        };
        let enc = KeyEncoding::Base64;
        verify_with_keys(Scheme::Saleor, enc, &req, &["legacy-secret"], &[]).unwrap();
        assert!(verify_with_keys(Scheme::Saleor, enc, &req, &["other"], &[]).is_err());
        // A source with public keys never falls back to the HMAC, even with the right
        // secret: that would be a downgrade anyone holding a placeholder could use.
        let keys = jwks::parse(&saleor_jwks(TEST_SALEOR_KEY).unwrap()).unwrap();
        assert!(verify_with_keys(Scheme::Saleor, enc, &req, &["legacy-secret"], &keys).is_err());
    }

    #[test]
    fn unsupported_jws_forms_are_refused() {
        let keys = jwks::parse(&saleor_jwks(TEST_SALEOR_KEY).unwrap()).unwrap();
        let body = b"{}";
        for header in [
            serde_json::json!({"alg": "RS256"}),
            serde_json::json!({"alg": "none", "b64": false}),
            serde_json::json!({"alg": "RS256", "b64": false, "crit": ["exp"]}),
        ] {
            let h = URL_SAFE_NO_PAD.encode(header.to_string());
            let sig = format!("{h}..AAAA");
            let headers: Headers = [("Saleor-Signature", sig.as_str())].into_iter().collect();
            let req = SignedRequest {
                url_secret: None,
                headers: &headers,
                body,
                now: 0,
                tolerance_s: 300,
            };
            assert!(
                verify_with_keys(Scheme::Saleor, KeyEncoding::Base64, &req, &[], &keys).is_err()
            );
        }
    }
}
