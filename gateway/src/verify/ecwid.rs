//! Ecwid: `X-Ecwid-Webhook-Signature` = base64(HMAC-SHA256(client secret,
//! "{eventCreated}.{eventId}")). The body itself is not covered, so Ecwid events are thin:
//! they carry ids to fetch, never data to trust. `eventCreated` is signed; Ecwid retries
//! for 24 hours with the same value, so the window defaults to the dedupe window.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{SignedRequest, ct_eq, hmac_sha256, malformed, mismatch, missing};
use super::{VerifyError, VerifyResult};

pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[&str]) -> VerifyResult<()> {
    let given = req
        .headers
        .first(&["x-ecwid-webhook-signature"])
        .ok_or_else(|| missing("X-Ecwid-Webhook-Signature"))?;
    let given = STANDARD
        .decode(given.trim())
        .map_err(|_| malformed("not base64"))?;
    let body: Value =
        serde_json::from_slice(req.body).map_err(|_| malformed("body is not JSON"))?;
    let created = body
        .get("eventCreated")
        .and_then(Value::as_i64)
        .ok_or_else(|| malformed("eventCreated is not integer seconds"))?;
    let event_id = body
        .get("eventId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("eventId missing"))?;
    let signed = format!("{created}.{event_id}");
    let matched = secrets
        .iter()
        .any(|s| ct_eq(&hmac_sha256(s.as_bytes(), &[signed.as_bytes()]), &given));
    if !matched {
        return Err(mismatch());
    }
    if req.now.abs_diff(created) > req.tolerance_s {
        return Err(VerifyError::TimestampOutsideTolerance {
            tolerance_s: req.tolerance_s,
        });
    }
    Ok(())
}
