//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`, hex HMAC-SHA256 over
//! `<t>.<body>` keyed with the whole `whsec_…` string. Like Stripe's own libraries, only
//! stale timestamps are rejected.

use super::{SignedRequest, ct_eq, hmac_sha256, malformed, mismatch, missing};
use super::{VerifyError, VerifyResult};

pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[&str]) -> VerifyResult<()> {
    let header = req
        .headers
        .first(&["stripe-signature"])
        .ok_or_else(|| missing("Stripe-Signature"))?;
    let mut stamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| malformed("element without ="))?;
        match k.trim() {
            "t" => stamp = Some(v),
            "v1" => v1.push(v),
            _ => {}
        }
    }
    let stamp = stamp.ok_or_else(|| malformed("no t="))?;
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("t is not integer seconds"));
    }
    let ts: i64 = stamp.parse().map_err(|_| malformed("t out of range"))?;
    if v1.is_empty() {
        return Err(malformed("no v1 signature"));
    }
    let given: Vec<Vec<u8>> = v1.iter().filter_map(|v| hex::decode(v).ok()).collect();
    let matched = secrets.iter().any(|s| {
        let expected = hmac_sha256(s.as_bytes(), &[stamp.as_bytes(), b".", req.body]);
        given.iter().any(|g| ct_eq(&expected, g))
    });
    if !matched {
        return Err(mismatch());
    }
    if req.now - ts > req.tolerance_s as i64 {
        return Err(VerifyError::TimestampOutsideTolerance {
            tolerance_s: req.tolerance_s,
        });
    }
    Ok(())
}
