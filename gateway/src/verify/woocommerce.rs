//! WooCommerce: base64(HMAC-SHA256(secret, body as sent)). The secret is used as typed
//! (never HTML-escaped). A new webhook first sends an unsigned, form-encoded ping.

use super::VerifyResult;
use super::{SignedRequest, verify_base64_body_hmac};
use crate::headers::Headers;

pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[&str]) -> VerifyResult<()> {
    verify_base64_body_hmac(req, secrets, &["x-wc-webhook-signature"])
}

/// The creation ping: no signature header and a body of exactly `webhook_id=<digits>`.
/// It proves nothing, so it is answered and stored nowhere.
pub fn is_creation_ping(headers: &Headers, body: &[u8]) -> bool {
    if headers.get("x-wc-webhook-signature").is_some() {
        return false;
    }
    let Some(id) = body.strip_prefix(b"webhook_id=") else {
        return false;
    };
    let id = id.strip_suffix(b"\n").unwrap_or(id);
    !id.is_empty() && id.len() <= 20 && id.iter().all(u8::is_ascii_digit)
}
