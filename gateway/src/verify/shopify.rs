//! Shopify: base64(HMAC-SHA256(secret, body)); newer deliveries drop the `X-` prefix.

use super::VerifyResult;
use super::{SignedRequest, verify_base64_body_hmac};

pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[&str]) -> VerifyResult<()> {
    verify_base64_body_hmac(
        req,
        secrets,
        &["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
    )
}
