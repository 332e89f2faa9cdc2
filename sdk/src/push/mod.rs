//! Receiving pushed events: checking that a request really comes from the gateway.
//!
//! A gateway that pushes events to a plugin's URL signs each request as
//! [Standard Webhooks](https://www.standardwebhooks.com/) does: `webhook-id` (the event
//! id), `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64>` entries,
//! space-separated, HMAC-SHA256 over `<id>.<timestamp>.<body>` with the key of the
//! `whsec_…` secret). [`Verifier`] checks the signature over the raw body bytes, in constant
//! time, and refuses timestamps more than five minutes away from now (replays). During a
//! secret rotation give it both secrets.
//!
//! ```
//! use omnigate_sdk::push::Verifier;
//! let verifier = Verifier::new(&["whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY="])?;
//! let body = br#"{"type":"order.placed","data":{"id":"order_01J9","total":"54.90"}}"#;
//! let checked = verifier.verify_at(
//!     "msg_2yR7fQ1mZk4VbS0cNq8tXe3Jw5A",
//!     "1748938543",
//!     "v1,/Zntlb+hAJg3rla5rjqW+BViXERH5AVefm/ESQs9f/Q=",
//!     body,
//!     1_748_938_588, // the receiver's clock, 45 s later
//! );
//! assert!(checked.is_ok());
//! # Ok::<(), omnigate_sdk::push::PushError>(())
//! ```
//!
//! With the `push-server` feature, [`Server`] runs the same [`Handler`](crate::Handler) a
//! [`Runtime`](crate::Runtime) runs, behind a small HTTP server the gateway pushes to: one
//! plugin code base runs pulled or pushed.

#[cfg(feature = "push-server")]
mod server;
#[cfg(feature = "push-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "push-server")))]
pub use server::{DEAD_LETTER_HEADER, Server, Serving, run_from_env};

use omnigate_schemas::standard_webhooks;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a pushed request was refused. Answer it with a 4xx (the gateway shows the answer's
/// first 200 characters as the endpoint's last error, which helps its operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// A secret is not `whsec_` followed by base64.
    #[error("a signing secret is not whsec_ followed by base64")]
    BadSecret,
    /// A signature header is missing.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// A header is not in the form Standard Webhooks gives it.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance (a replay, or a clock far off).
    #[error("the timestamp is {0} s away from now, outside the tolerance")]
    Stale(i64),
    /// No signature matches any secret.
    #[error("no signature matches")]
    Mismatch,
}

/// Checks pushed requests against the plugin's signing secrets.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Vec<u8>>,
    tolerance: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier for `secrets` (`whsec_…`; two while a rotation's grace period runs).
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Verifier, PushError> {
        let keys = secrets
            .iter()
            .map(|s| standard_webhooks::key(s.as_ref()).ok_or(PushError::BadSecret))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(PushError::BadSecret);
        }
        Ok(Verifier {
            keys,
            tolerance: Duration::from_secs(300),
        })
    }

    /// How far the timestamp may be from now, either way (default 5 minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> Verifier {
        self.tolerance = tolerance;
        self
    }

    /// Checks a request by its headers and its body exactly as received (never a
    /// re-encoded copy: one changed byte and no signature matches).
    pub fn verify(
        &self,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<(), PushError> {
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            if headers.get(name).is_some_and(|v| v.to_str().is_err()) {
                return Err(PushError::Malformed("a header is not ASCII"));
            }
        }
        self.verify_with(|name| headers.get(name).and_then(|v| v.to_str().ok()), body)
    }

    /// Checks a request by a header lookup (`name` → value, for any HTTP library) and its
    /// body exactly as received, against the current time.
    pub fn verify_with<'h>(
        &self,
        header: impl Fn(&'static str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<(), PushError> {
        let get = |name: &'static str| header(name).ok_or(PushError::Missing(name));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.verify_at(
            get("webhook-id")?,
            get("webhook-timestamp")?,
            get("webhook-signature")?,
            body,
            now,
        )
    }

    /// Checks the three header values and the body as of `now` (Unix seconds).
    pub fn verify_at(
        &self,
        id: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), PushError> {
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PushError::Malformed(
                "webhook-timestamp is not integer seconds",
            ));
        }
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| PushError::Malformed("webhook-timestamp is out of range"))?;
        let matched = standard_webhooks::matches(&self.keys, id, timestamp, body, signature)
            .map_err(|_| PushError::Malformed("no v1 signature"))?;
        if !matched {
            return Err(PushError::Mismatch);
        }
        // Judged after the signature, so a forged request learns nothing about the clock.
        let skew = now.saturating_sub(ts);
        if skew.unsigned_abs() > self.tolerance.as_secs() {
            return Err(PushError::Stale(skew));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's Standard Webhooks signature vectors (valid and invalid ones, with
    /// the receiver's clock and tolerance each was made for) are judged as they say.
    #[test]
    fn the_shared_standard_webhooks_vectors() {
        let vectors: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../../tests/fixtures/signatures.json")).unwrap();
        let mut checked = 0;
        for v in vectors.iter().filter(|v| {
            v["scheme"] == "standard-webhooks"
                && v["key_encoding"].as_str().unwrap_or("base64") == "base64"
        }) {
            // Header names are case-insensitive.
            let h = |name: &str| {
                v["headers"]
                    .as_object()
                    .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                    .and_then(|(_, v)| v.as_str())
                    .unwrap_or("")
            };
            let result = Verifier::new(&[v["secret"].as_str().unwrap()]).and_then(|verifier| {
                verifier
                    .tolerance(Duration::from_secs(
                        v["tolerance_s"].as_u64().unwrap_or(300),
                    ))
                    .verify_at(
                        h("webhook-id"),
                        h("webhook-timestamp"),
                        h("webhook-signature"),
                        v["body"].as_str().unwrap().as_bytes(),
                        v["now"].as_i64().unwrap(),
                    )
            });
            assert_eq!(
                result.is_ok(),
                v["valid"] == true,
                "{}: {result:?}",
                v["why"]
            );
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} vectors");
    }

    #[test]
    fn rotation_accepts_either_secret_and_a_changed_byte_fails() {
        let old = "whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=";
        use base64::Engine as _;
        let new = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        let body = br#"{"type":"order.placed","data":{"id":"order_01J9","total":"54.90"}}"#;
        let (id, ts, sig) = (
            "msg_2yR7fQ1mZk4VbS0cNq8tXe3Jw5A",
            "1748938543",
            "v1,/Zntlb+hAJg3rla5rjqW+BViXERH5AVefm/ESQs9f/Q=",
        );
        let both = Verifier::new(&[new.as_str(), old]).unwrap();
        assert_eq!(both.verify_at(id, ts, sig, body, 1_748_938_600), Ok(()));
        let only_new = Verifier::new(&[new.as_str()]).unwrap();
        assert_eq!(
            only_new.verify_at(id, ts, sig, body, 1_748_938_600),
            Err(PushError::Mismatch)
        );
        let mut changed = body.to_vec();
        changed[10] ^= 1;
        assert_eq!(
            both.verify_at(id, ts, sig, &changed, 1_748_938_600),
            Err(PushError::Mismatch)
        );
        assert_eq!(
            both.verify_at(id, ts, sig, body, 1_748_938_543 + 301),
            Err(PushError::Stale(301))
        );
        assert_eq!(
            Verifier::new(&["whsec_!!"]).unwrap_err(),
            PushError::BadSecret
        );
        assert!(!format!("{both:?}").contains("BwgJ"), "keys never printed");
    }
}
