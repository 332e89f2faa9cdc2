//! Standard Webhooks: `webhook-signature` holds space-separated `v1,<base64>` entries over
//! `<webhook-id>.<webhook-timestamp>.<body>`; the timestamp must be within the tolerance in
//! both directions. The key is the base64 after `whsec_`, or (option `key_encoding: raw`,
//! BigCommerce) the secret's own bytes.

use omnigate_schemas::api::KeyEncoding;
use omnigate_schemas::standard_webhooks;

use super::{SignedRequest, malformed, mismatch, missing};
use super::{VerifyError, VerifyResult};

/// The HMAC key a secret stands for, or `None` when it is not valid base64.
pub(super) fn key(secret: &str, encoding: KeyEncoding) -> Option<Vec<u8>> {
    match encoding {
        KeyEncoding::Raw => Some(secret.as_bytes().to_vec()),
        KeyEncoding::Base64 => standard_webhooks::key(secret),
    }
}

pub(super) fn verify(
    req: &SignedRequest<'_>,
    secrets: &[&str],
    encoding: KeyEncoding,
) -> VerifyResult<()> {
    let h = req.headers;
    let msg_id = h
        .first(&["webhook-id", "svix-id"])
        .ok_or_else(|| missing("webhook-id"))?;
    let stamp = h
        .first(&["webhook-timestamp", "svix-timestamp"])
        .ok_or_else(|| missing("webhook-timestamp"))?;
    let signatures = h
        .first(&["webhook-signature", "svix-signature"])
        .ok_or_else(|| missing("webhook-signature"))?;
    if !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("webhook-timestamp is not integer seconds"));
    }
    let ts: i64 = stamp
        .parse()
        .map_err(|_| malformed("webhook-timestamp out of range"))?;

    let keys: Vec<Vec<u8>> = secrets.iter().filter_map(|s| key(s, encoding)).collect();
    let matched = standard_webhooks::matches(&keys, msg_id, stamp, req.body, signatures)
        .map_err(|_| malformed("no v1 signature"))?;
    if !matched {
        return Err(mismatch());
    }
    if req.now.abs_diff(ts) > req.tolerance_s {
        return Err(VerifyError::TimestampOutsideTolerance {
            tolerance_s: req.tolerance_s,
        });
    }
    Ok(())
}
