//! Standard Webhooks: `webhook-signature` holds space-separated `v1,<base64>` entries over
//! `<webhook-id>.<webhook-timestamp>.<body>`; the timestamp must be within the tolerance in
//! both directions. The key is the base64 after `whsec_`, or (option `key_encoding: raw`,
//! BigCommerce) the secret's own bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use omnigate_schemas::api::KeyEncoding;

use super::{SignedRequest, ct_eq, hmac_sha256, malformed, mismatch, missing};
use super::{VerifyError, VerifyResult};

/// The HMAC key a secret stands for, or `None` when it is not valid base64.
pub(super) fn key(secret: &str, encoding: KeyEncoding) -> Option<Vec<u8>> {
    match encoding {
        KeyEncoding::Raw => Some(secret.as_bytes().to_vec()),
        KeyEncoding::Base64 => {
            let text = secret.strip_prefix("whsec_").unwrap_or(secret);
            STANDARD.decode(text).ok().filter(|k| !k.is_empty())
        }
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

    let given: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, value)| STANDARD.decode(value).ok())
        .collect();
    if given.is_empty() {
        return Err(malformed("no v1 signature"));
    }
    let matched = secrets.iter().filter_map(|s| key(s, encoding)).any(|k| {
        let expected = hmac_sha256(
            &k,
            &[msg_id.as_bytes(), b".", stamp.as_bytes(), b".", req.body],
        );
        given.iter().any(|g| ct_eq(&expected, g))
    });
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
