//! Providers that sign nothing (Ozon, Mercado Libre): the webhook URL carries a secret,
//! `/v1/webhooks/{source_id}/{secret}`. Both sides are hashed before the constant-time
//! compare, so not even the length of a stored secret shows in the timing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{SignedRequest, VerifyError, VerifyResult, ct_eq};

/// The shortest and longest URL secret accepted.
const MIN_CHARS: usize = 16;
const MAX_CHARS: usize = 128;

pub(super) fn verify(req: &SignedRequest<'_>, secrets: &[&str]) -> VerifyResult<()> {
    let Some(given) = req.url_secret else {
        return Err(VerifyError::InvalidSignature(
            "this source's webhook URL carries its secret: /v1/webhooks/<id>/<secret>".into(),
        ));
    };
    let given = Sha256::digest(given.as_bytes());
    // Every secret is compared: which one matched takes no less time than none.
    let matched = secrets.iter().fold(false, |ok, s| {
        ct_eq(&Sha256::digest(s.as_bytes()), &given) | ok
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature(
            "the URL secret does not match".into(),
        ))
    }
}

/// A URL secret is a path segment that cannot be guessed: 16–128 of `A-Za-z0-9_-`.
pub fn check(secret: &str) -> VerifyResult<()> {
    let ok = (MIN_CHARS..=MAX_CHARS).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(VerifyError::invalid(format!(
            "a URL secret is {MIN_CHARS}–{MAX_CHARS} characters of A-Z, a-z, 0-9, _ and - \
             (leave it out and the gateway makes one)"
        )))
    }
}

/// A new URL secret: 32 random bytes, base64url (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;

    fn req<'a>(headers: &'a Headers, url_secret: Option<&'a str>) -> SignedRequest<'a> {
        SignedRequest {
            headers,
            body: b"{}",
            now: 0,
            tolerance_s: 0,
            url_secret,
        }
    }

    #[test]
    fn the_url_secret_must_match_one_of_the_sources_secrets() {
        let h = Headers::new();
        let (old, new) = (generate(), generate());
        assert_eq!(new.len(), 43);
        check(&new).unwrap();
        let both = [new.as_str(), old.as_str()];
        assert!(verify(&req(&h, Some(&old)), &both).is_ok());
        assert!(verify(&req(&h, Some(&new)), &both).is_ok());
        assert!(verify(&req(&h, Some(&old)), &[new.as_str()]).is_err());
        assert!(verify(&req(&h, Some(&old[..42])), &both).is_err());
        let missing = verify(&req(&h, None), &both).unwrap_err().to_string();
        assert!(missing.contains("/v1/webhooks/<id>/<secret>"), "{missing}");
        assert!(check("short").is_err());
        assert!(check("has/slash-in-it-0123456789").is_err());
        assert!(check(&"a".repeat(129)).is_err());
    }
}
