//! RSA public keys from a JWKS: given inline in a source's options, or fetched from the
//! shop's `/.well-known/jwks.json` and cached (refetched when a signature names a key id the
//! cache does not know, at most once a minute).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// An RSA public key (big-endian modulus and exponent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub kid: Option<String>,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// The RSA signing keys of a JWKS document (`{"keys": [...]}`); other keys are skipped.
pub fn parse(jwks: &Value) -> Result<Vec<RsaKey>> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::validation("a JWKS is an object with a \"keys\" array"))?;
    let b64 = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
    };
    let rsa: Vec<RsaKey> = keys
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| {
            Some(RsaKey {
                kid: k.get("kid").and_then(Value::as_str).map(str::to_string),
                n: b64(k.get("n"))?,
                e: b64(k.get("e"))?,
            })
        })
        .collect();
    if rsa.is_empty() {
        return Err(Error::validation("the JWKS holds no RSA signing key"));
    }
    Ok(rsa)
}

/// Keys fetched from JWKS URLs, per URL.
pub struct JwksCache {
    http: reqwest::Client,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Vec<RsaKey>)>>,
}

impl Default for JwksCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(3600))
    }
}

impl JwksCache {
    pub fn new(ttl: Duration) -> Self {
        JwksCache {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The keys at `url`. `want_kid`, when the cache lacks it, forces a refetch (key
    /// rotation) unless the last fetch was under a minute ago.
    pub async fn keys(&self, url: &str, want_kid: Option<&str>) -> Result<Vec<RsaKey>> {
        let cached = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.get(url).cloned()
        };
        if let Some((at, keys)) = &cached {
            let fresh = at.elapsed() < self.ttl;
            let knows =
                want_kid.is_none_or(|kid| keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
            if fresh && (knows || at.elapsed() < Duration::from_secs(60)) {
                return Ok(keys.clone());
            }
        }
        match self.fetch(url).await {
            Ok(keys) => {
                self.entries
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(url.to_string(), (Instant::now(), keys.clone()));
                Ok(keys)
            }
            // Keys we had are better than none while the shop is unreachable.
            Err(e) => match cached {
                Some((_, keys)) => {
                    tracing::warn!(%url, error = %e, "JWKS refresh failed; using cached keys");
                    Ok(keys)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<RsaKey>> {
        let unavailable = |e: String| Error::StoreUnavailable(format!("JWKS at {url}: {e}"));
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(format!("HTTP {}", res.status())));
        }
        let doc: Value = res.json().await.map_err(|e| unavailable(e.to_string()))?;
        parse(&doc).map_err(|e| unavailable(e.to_string()))
    }
}
