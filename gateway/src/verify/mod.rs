//! Signature verification, one file per scheme. Every scheme works on the raw bytes as
//! received and compares in constant time.
//!
//! A source may hold several secrets during a rotation; a delivery is authentic when any
//! of them verifies it.

mod ecwid;
mod github;
pub mod jwks;
mod saleor;
mod shopify;
mod standard_webhooks;
mod stripe;
pub mod url_secret;
mod woocommerce;

use hmac::{Hmac, KeyInit, Mac};
use omnigate_schemas::api::KeyEncoding;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::headers::Headers;

pub use jwks::{JwksCache, RsaKey};
pub use saleor::signature_kid as saleor_signature_kid;
pub use woocommerce::is_creation_ping as is_woocommerce_ping;

/// Why a delivery or a verification setting was refused; the HTTP layer maps it in
/// `error.rs` (401 for signatures and replay windows, 422 for settings, 503 when a
/// provider's keys cannot be fetched).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Missing or wrong signature: one answer for both, the cause goes to the log only.
    #[error("signature verification failed: {0}")]
    InvalidSignature(String),
    #[error("signed timestamp outside the {tolerance_s} s window")]
    TimestampOutsideTolerance { tolerance_s: u64 },
    /// A secret, a JWKS or its URL that cannot verify anything.
    #[error("{0}")]
    InvalidSetting(String),
    /// The provider's public keys could not be fetched now.
    #[error("{0}")]
    KeysUnavailable(String),
}

impl VerifyError {
    pub fn invalid(detail: impl Into<String>) -> Self {
        VerifyError::InvalidSetting(detail.into())
    }
}

pub type VerifyResult<T> = std::result::Result<T, VerifyError>;

/// One delivery as a verifier sees it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub headers: &'a Headers,
    pub body: &'a [u8],
    /// Receiver clock, Unix seconds.
    pub now: i64,
    /// Replay window for schemes that sign a timestamp.
    pub tolerance_s: u64,
    /// The secret in the webhook URL (`/v1/webhooks/{id}/{secret}`), for unsigned
    /// providers.
    pub url_secret: Option<&'a str>,
}

/// How a provider signs its deliveries (several providers share one: BigCommerce and Etsy
/// sign the Standard Webhooks way). `crate::providers` says which provider uses which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the body.
    Shopify,
    /// `X-WC-Webhook-Signature`: base64 HMAC-SHA256 of the body.
    Woocommerce,
    /// Standard Webhooks, the key as the source's `options.key_encoding` says (`whsec_`
    /// base64 unless told otherwise).
    StandardWebhooks,
    /// Standard Webhooks signed with the secret's own bytes (BigCommerce's client secret).
    StandardWebhooksRawKey,
    /// `Stripe-Signature`: `t=…,v1=…` over `t.body`.
    Stripe,
    /// `X-Hub-Signature-256`: `sha256=` hex HMAC of the body.
    Github,
    /// `X-Ecwid-Webhook-Signature`: HMAC of `eventCreated.eventId` only.
    Ecwid,
    /// Saleor: a detached JWS by the shop's public keys, or (opted in) the deprecated HMAC.
    Saleor,
    /// No signature (Ozon, Mercado Libre): a secret in the webhook URL.
    UrlSecret,
    /// Read by the gateway's poller (Allegro): no webhook is ever accepted.
    Polled,
}

/// Verifies `req` by `scheme` against any of `secrets`.
pub fn verify(
    scheme: Scheme,
    key_encoding: KeyEncoding,
    req: &SignedRequest<'_>,
    secrets: &[&str],
) -> VerifyResult<()> {
    verify_with_keys(scheme, key_encoding, req, secrets, &[])
}

/// [`verify`], with the RSA public keys of schemes that use them (Saleor).
pub fn verify_with_keys(
    scheme: Scheme,
    key_encoding: KeyEncoding,
    req: &SignedRequest<'_>,
    secrets: &[&str],
    rsa: &[RsaKey],
) -> VerifyResult<()> {
    if secrets.is_empty() && rsa.is_empty() {
        return Err(VerifyError::InvalidSignature(
            "source has no valid secret".into(),
        ));
    }
    match scheme {
        Scheme::Shopify => shopify::verify(req, secrets),
        Scheme::Woocommerce => woocommerce::verify(req, secrets),
        Scheme::StandardWebhooks => standard_webhooks::verify(req, secrets, key_encoding),
        Scheme::StandardWebhooksRawKey => standard_webhooks::verify(req, secrets, KeyEncoding::Raw),
        Scheme::Stripe => stripe::verify(req, secrets),
        Scheme::Github => github::verify(req, secrets),
        Scheme::Ecwid => ecwid::verify(req, secrets),
        Scheme::Saleor => saleor::verify(req, secrets, rsa),
        Scheme::UrlSecret => url_secret::verify(req, secrets),
        Scheme::Polled => Err(VerifyError::InvalidSignature(
            "this source is polled: the gateway reads the provider's API, it takes no webhooks"
                .into(),
        )),
    }
}

/// The shortest HMAC key accepted: shorter ones can be guessed offline from one captured
/// delivery. Providers generate far longer ones.
pub const MIN_SECRET_BYTES: usize = 16;
/// The longest secret accepted (no provider comes near it).
pub const MAX_SECRET_BYTES: usize = 1024;

/// Checks that a secret is usable for `scheme` before a source is saved: the key it
/// yields is at least [`MIN_SECRET_BYTES`] long.
pub fn check_secret(scheme: Scheme, key_encoding: KeyEncoding, secret: &str) -> VerifyResult<()> {
    if secret.len() > MAX_SECRET_BYTES {
        return Err(VerifyError::invalid(format!(
            "secret must be at most {MAX_SECRET_BYTES} bytes"
        )));
    }
    if scheme == Scheme::UrlSecret {
        return url_secret::check(secret);
    }
    let standard = scheme == Scheme::StandardWebhooks;
    let key_len = if standard && key_encoding == KeyEncoding::Base64 {
        standard_webhooks::key(secret, KeyEncoding::Base64)
            .ok_or_else(|| {
                VerifyError::invalid(
                    "a standard-webhooks secret must be `whsec_` followed by base64; \
                     use options.key_encoding = \"raw\" for senders that sign with the secret's bytes",
                )
            })?
            .len()
    } else {
        secret.len()
    };
    if key_len < MIN_SECRET_BYTES {
        return Err(VerifyError::invalid(format!(
            "secret must be at least {MIN_SECRET_BYTES} bytes of key material \
             (an HMAC key shorter than that can be guessed from one captured delivery); \
             paste the secret the provider generated"
        )));
    }
    Ok(())
}

pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality (lengths are public).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn mismatch() -> VerifyError {
    VerifyError::InvalidSignature("no secret produces the given signature".into())
}

fn missing(header: &str) -> VerifyError {
    VerifyError::InvalidSignature(format!("missing {header}"))
}

fn malformed(what: &str) -> VerifyError {
    VerifyError::InvalidSignature(format!("malformed signature: {what}"))
}

/// base64(HMAC-SHA256(secret, body)) in one header: Shopify and WooCommerce.
fn verify_base64_body_hmac(
    req: &SignedRequest<'_>,
    secrets: &[&str],
    header_names: &[&str],
) -> VerifyResult<()> {
    use base64::Engine;
    let given = req
        .headers
        .first(header_names)
        .ok_or_else(|| missing(header_names[0]))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| malformed("not base64"))?;
    let matched = secrets
        .iter()
        .any(|s| ct_eq(&hmac_sha256(s.as_bytes(), &[req.body]), &given));
    if matched { Ok(()) } else { Err(mismatch()) }
}

#[cfg(test)]
mod tests;
