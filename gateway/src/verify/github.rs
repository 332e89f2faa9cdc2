//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`. The legacy SHA-1
//! header is not accepted.

use super::VerifyResult;
use super::{SignedRequest, ct_eq, hmac_sha256, malformed, mismatch, missing};

pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[&str]) -> VerifyResult<()> {
    let given = req
        .headers
        .first(&["x-hub-signature-256"])
        .ok_or_else(|| missing("X-Hub-Signature-256"))?;
    let hex_sig = given
        .strip_prefix("sha256=")
        .ok_or_else(|| malformed("no sha256= prefix"))?;
    let given = hex::decode(hex_sig).map_err(|_| malformed("not hex"))?;
    let matched = secrets
        .iter()
        .any(|s| ct_eq(&hmac_sha256(s.as_bytes(), &[req.body]), &given));
    if matched { Ok(()) } else { Err(mismatch()) }
}
