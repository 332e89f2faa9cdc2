//! Saleor: `Saleor-Signature` is a JWS with a detached, unencoded payload (RFC 7797,
//! `"b64": false`, with or without `"crit": ["b64"]`): `<b64url(header)>..<b64url(sig)>`,
//! RS256 over `<b64url(header)>.<raw body>`, the key chosen by `kid` from the shop's JWKS.
//! The deprecated hex HMAC-SHA256 of the body is accepted only from a source that opted in
//! (`options.legacy_hmac`), which then has no keys: a source with keys never falls back to
//! a shared secret, so nobody can downgrade a JWS source to a guessable HMAC.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::Value;

use super::VerifyResult;
use super::jwks::RsaKey;
use super::{SignedRequest, ct_eq, hmac_sha256, malformed, mismatch, missing};

pub(super) const HEADERS: &[&str] = &["saleor-signature", "x-saleor-signature"];

/// The `kid` a delivery's JWS names, to pick (or fetch) the key before verifying.
pub fn signature_kid(req_headers: &crate::headers::Headers) -> Option<String> {
    let sig = req_headers.first(HEADERS)?;
    let (header, _) = sig.split_once("..")?;
    let json = URL_SAFE_NO_PAD.decode(header).ok()?;
    let v: Value = serde_json::from_slice(&json).ok()?;
    v.get("kid").and_then(Value::as_str).map(str::to_string)
}

pub(super) fn verify(
    req: &SignedRequest<'_>,
    secrets: &[&str],
    keys: &[RsaKey],
) -> VerifyResult<()> {
    let sig = req
        .headers
        .first(HEADERS)
        .ok_or_else(|| missing("Saleor-Signature"))?;
    let Some((header_b64, signature_b64)) = sig.split_once("..") else {
        if !keys.is_empty() {
            return Err(malformed(
                "this source verifies Saleor's JWS; the legacy HMAC is not accepted",
            ));
        }
        // Deprecated: hex HMAC-SHA256 of the body.
        let given = hex::decode(sig.trim()).map_err(|_| malformed("neither a JWS nor hex"))?;
        let matched = secrets
            .iter()
            .any(|s| ct_eq(&hmac_sha256(s.as_bytes(), &[req.body]), &given));
        return if matched { Ok(()) } else { Err(mismatch()) };
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| malformed("JWS header is not base64url JSON"))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(malformed("JWS alg is not RS256"));
    }
    // Only the unencoded-payload form is accepted: the body is signed as sent.
    if header.get("b64").and_then(Value::as_bool) != Some(false) {
        return Err(malformed("JWS is not b64:false"));
    }
    if let Some(crit) = header.get("crit").and_then(Value::as_array)
        && crit.iter().any(|c| c.as_str() != Some("b64"))
    {
        return Err(malformed("JWS names critical headers it cannot honour"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed("JWS signature is not base64url"))?;
    let mut input = Vec::with_capacity(header_b64.len() + 1 + req.body.len());
    input.extend_from_slice(header_b64.as_bytes());
    input.push(b'.');
    input.extend_from_slice(req.body);
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid);
    for key in candidates {
        let public = RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        };
        if public
            .verify(&RSA_PKCS1_2048_8192_SHA256, &input, &signature)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(mismatch())
}
