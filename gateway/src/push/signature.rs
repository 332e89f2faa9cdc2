//! Signing pushes as Standard Webhooks does: `webhook-id`, `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 over id.timestamp.body>`),
//! one `v1,` entry per signing secret, space-separated, so a receiver holding either secret
//! of a rotation verifies.

use omnigate_schemas::standard_webhooks;

/// A signing secret that is not `whsec_` + base64 (only a corrupt record has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a signing secret is not whsec_ followed by base64")]
pub struct BadSecret;

/// The secrets' HMAC keys, decoded once per plugin rather than once per push.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

impl Signer {
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Signer, BadSecret> {
        let keys = secrets
            .iter()
            .map(|s| {
                let s = s.as_ref();
                // The gateway made every secret it signs with: the prefix is always there.
                s.starts_with("whsec_")
                    .then(|| standard_webhooks::key(s))
                    .flatten()
                    .ok_or(BadSecret)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Signer { keys })
    }

    /// The three headers for `body` sent as message `id` at `timestamp` (Unix seconds).
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        let ts = timestamp.to_string();
        let signature = standard_webhooks::header(&self.keys, id, &ts, body);
        [
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", ts),
            ("webhook-signature", signature),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn signs_the_specifications_example() {
        let signer = Signer::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap();
        let body = br#"{"test": 2432232314}"#;
        let headers = signer.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(
            headers[2].1,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(headers[1].1, "1614265330");
    }

    #[test]
    fn each_secret_of_a_rotation_signs() {
        let signer = Signer::new(&[
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=",
        ])
        .unwrap();
        let sig = &signer.headers("msg_1", 1, b"{}")[2].1;
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.split(' ').all(|s| s.starts_with("v1,")));
        assert_eq!(
            Signer::new(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).unwrap_err(),
            BadSecret
        );
        assert_eq!(Signer::new(&["whsec_!!"]).unwrap_err(), BadSecret);
    }
}
