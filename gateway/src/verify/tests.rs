//! Every signature vector and every signed fixture payload, of the repository's set
//! (`tests/fixtures`) and, when it sits beside the repository, the shared one.

use super::*;
use crate::fixtures::{fixture_sets, fixtures_dir, load_payload_fixtures_from};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    scheme: String,
    secret: String,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
    now: Option<i64>,
    tolerance_s: Option<u64>,
    valid: bool,
    why: String,
}

/// The fixtures name schemes; BigCommerce is Standard Webhooks keyed with raw bytes.
pub(crate) fn scheme(name: &str) -> (Scheme, KeyEncoding) {
    match name {
        "shopify" => (Scheme::Shopify, KeyEncoding::Base64),
        "woocommerce" => (Scheme::Woocommerce, KeyEncoding::Base64),
        "standard-webhooks" => (Scheme::StandardWebhooks, KeyEncoding::Base64),
        "bigcommerce" => (Scheme::StandardWebhooks, KeyEncoding::Raw),
        "stripe" => (Scheme::Stripe, KeyEncoding::Base64),
        "github" => (Scheme::Github, KeyEncoding::Base64),
        other => panic!("fixture names an unknown scheme {other:?}"),
    }
}

#[test]
fn every_signature_vector_gets_the_expected_verdict() {
    let mut failures = Vec::new();
    for set in fixture_sets() {
        let text = std::fs::read_to_string(set.join("signatures.json")).unwrap();
        let vectors: Vec<Vector> = serde_json::from_str(&text).unwrap();
        assert!(
            vectors.len() >= 50,
            "{}: expected the full vector set",
            set.display()
        );
        for (i, v) in vectors.iter().enumerate() {
            let (provider, encoding) = scheme(&v.scheme);
            let headers: Headers = v.headers.iter().collect();
            let req = SignedRequest {
                url_secret: None,
                headers: &headers,
                body: v.body.as_bytes(),
                // Schemes without a signed timestamp never look at the clock.
                now: v.now.unwrap_or(0),
                tolerance_s: v.tolerance_s.unwrap_or(300),
            };
            let got = verify(provider, encoding, &req, &[&v.secret]);
            if got.is_ok() != v.valid {
                failures.push(format!(
                    "{} #{i} {} expected valid={} got {got:?}: {}",
                    set.display(),
                    v.scheme,
                    v.valid,
                    v.why
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_signed_fixture_payload_verifies_and_fails_when_tampered() {
    for set in fixture_sets() {
        let fixtures = load_payload_fixtures_from(&set);
        assert!(fixtures.len() >= 20, "{}", set.display());
        for f in fixtures {
            let (provider, encoding) = scheme(&f.scheme);
            let mut req = SignedRequest {
                url_secret: None,
                headers: &f.headers,
                body: &f.body,
                now: f.verify_at_unix.unwrap_or(0),
                tolerance_s: 300,
            };
            verify(provider, encoding, &req, &[&f.secret])
                .unwrap_or_else(|e| panic!("{}: {e}", f.name));
            let mut tampered = f.body.clone();
            let last = tampered.len() - 2;
            tampered[last] ^= 0x01;
            req.body = &tampered;
            assert!(
                verify(provider, encoding, &req, &[&f.secret]).is_err(),
                "{}",
                f.name
            );
        }
    }
}

/// The repository's fixtures are what `tests/fixtures/make.py` writes: no hand edits, no
/// stale signature.
#[test]
fn the_repository_fixtures_are_current() {
    let script = fixtures_dir().join("make.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("--check")
        .output()
        .expect("python3 runs tests/fixtures/make.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rotation_accepts_any_current_secret() {
    let body = br#"{"id":1}"#;
    let sig = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"new", &[body]))
    };
    let headers: Headers = [("X-Shopify-Hmac-Sha256", sig.as_str())]
        .into_iter()
        .collect();
    let req = SignedRequest {
        url_secret: None,
        headers: &headers,
        body,
        now: 0,
        tolerance_s: 300,
    };
    assert!(verify(Scheme::Shopify, KeyEncoding::Base64, &req, &["old", "new"]).is_ok());
    assert!(verify(Scheme::Shopify, KeyEncoding::Base64, &req, &["old"]).is_err());
    assert!(verify(Scheme::Shopify, KeyEncoding::Base64, &req, &[]).is_err());
}

#[test]
fn stale_timestamps_have_their_own_error() {
    let body = b"{}";
    let key = b"0123456789abcdef0123456789abcdef";
    let secret = {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    };
    let sig = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(key, &[b"msg_1", b".", b"1000", b".", body]))
    };
    let headers: Headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", "1000"),
        ("webhook-signature", &format!("v1,{sig}")),
    ]
    .into_iter()
    .collect();
    let mut req = SignedRequest {
        url_secret: None,
        headers: &headers,
        body,
        now: 1300,
        tolerance_s: 300,
    };
    let enc = KeyEncoding::Base64;
    assert!(verify(Scheme::StandardWebhooks, enc, &req, &[&secret]).is_ok());
    req.now = 1301;
    assert!(matches!(
        verify(Scheme::StandardWebhooks, enc, &req, &[&secret]),
        Err(VerifyError::TimestampOutsideTolerance { tolerance_s: 300 })
    ));
}

#[test]
fn woocommerce_ping_is_recognised_only_in_its_exact_shape() {
    let none = Headers::new();
    assert!(is_woocommerce_ping(&none, b"webhook_id=41"));
    assert!(!is_woocommerce_ping(&none, b"webhook_id="));
    assert!(!is_woocommerce_ping(&none, b"webhook_id=41&x=1"));
    assert!(!is_woocommerce_ping(&none, br#"{"id":1}"#));
    let signed: Headers = [("X-WC-Webhook-Signature", "abc")].into_iter().collect();
    assert!(!is_woocommerce_ping(&signed, b"webhook_id=41"));
}

#[test]
fn standard_webhooks_secrets_are_checked_on_save() {
    let enc = KeyEncoding::Base64;
    assert!(
        check_secret(
            Scheme::StandardWebhooks,
            enc,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        )
        .is_ok()
    );
    assert!(check_secret(Scheme::StandardWebhooks, enc, "whsec_not base64!").is_err());
    assert!(
        check_secret(
            Scheme::StandardWebhooks,
            KeyEncoding::Raw,
            "anything-16-bytes"
        )
        .is_ok()
    );
    assert!(check_secret(Scheme::StandardWebhooks, KeyEncoding::Raw, "anything").is_err());
    assert!(check_secret(Scheme::Shopify, enc, "").is_err());
}

mod never_panics {
    use super::*;
    use crate::normalize::fuzz::arb_headers;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any bytes and headers: a verdict, never a panic, for every scheme; and the
        /// identity of whatever verified is computed without panicking too.
        #[test]
        fn verifiers_and_identity_on_arbitrary_input(
            body in prop::collection::vec(any::<u8>(), 0..256),
            headers in arb_headers(),
            now in any::<i64>(),
            tolerance_s in any::<u64>(),
        ) {
            let keys = crate::verify::jwks::parse(
                &crate::sign::saleor_jwks(crate::samples::SALEOR_TEST_KEY).unwrap(),
            )
            .unwrap();
            let req = SignedRequest { headers: &headers, body: &body, now, tolerance_s, url_secret: None };
            for provider in omnigate_schemas::api::Provider::ALL {
                for enc in [KeyEncoding::Base64, KeyEncoding::Raw] {
                    let _ = verify_with_keys(crate::providers::of(provider).scheme, enc, &req, &["sixteen-byte-key"], &keys);
                    let _ = verify_with_keys(crate::providers::of(provider).scheme, enc, &req, &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], &[]);
                }
                let parsed = crate::json::Json::parse(&body).ok();
                let _ = crate::ingest::identity::identify(crate::providers::of(provider), &headers, parsed.as_ref(), &body);
            }
        }
    }
}
