//! The [Standard Webhooks](https://www.standardwebhooks.com/) signature, as both sides of
//! the contract use it: the gateway verifies senders with it and signs pushes with it, the
//! SDK verifies pushes with it. `webhook-signature` holds space-separated `v1,<base64>`
//! entries, each an HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>` keyed with
//! the base64 after `whsec_`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The HMAC key of a `whsec_…` secret (the prefix is optional), or `None` when the rest
/// is not base64 or is empty.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    let text = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(text).ok().filter(|k| !k.is_empty())
}

/// The signature of `body` sent as message `id` at `timestamp` (the header's text).
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The `webhook-signature` header for `keys` (one `v1,` entry per key, so a receiver
/// holding any one of them verifies).
pub fn header<K: AsRef<[u8]>>(keys: &[K], id: &str, timestamp: &str, body: &[u8]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "v1,{}",
                STANDARD.encode(sign(k.as_ref(), id, timestamp, body))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The header has no `v1` signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSignature;

/// Whether any `v1` entry of `header` is the signature of `body` with any of `keys`,
/// compared in constant time.
pub fn matches<K: AsRef<[u8]>>(
    keys: &[K],
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> Result<bool, NoSignature> {
    let given: Vec<Vec<u8>> = header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, value)| STANDARD.decode(value).ok())
        .collect();
    if given.is_empty() {
        return Err(NoSignature);
    }
    Ok(keys.iter().any(|k| {
        let expected = sign(k.as_ref(), id, timestamp, body);
        given
            .iter()
            .any(|g| bool::from(expected.as_slice().ct_eq(g.as_slice())))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example.
    #[test]
    fn the_specifications_example() {
        let spec = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let signed = header(&[&spec[..]], id, "1614265330", body);
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let other = [7u8; 32];
        assert_eq!(
            matches(&[&other[..], &spec[..]], id, "1614265330", body, &signed),
            Ok(true)
        );
        assert_eq!(
            matches(&[&other[..]], id, "1614265330", body, &signed),
            Ok(false)
        );
        assert_eq!(
            matches(&[&spec[..]], id, "1614265331", body, &signed),
            Ok(false)
        );
        assert_eq!(
            matches(&[&spec[..]], id, "1614265330", body, "v2,abc"),
            Err(NoSignature)
        );
        assert_eq!(key("whsec_!!"), None);
        assert_eq!(key("whsec_"), None);
    }
}
