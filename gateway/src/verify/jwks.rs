//! RSA public keys from a JWKS: given inline in a source's options, or fetched from the
//! shop's `/.well-known/jwks.json` and cached.
//!
//! Fetching is driven by deliveries anyone can send, so it is bounded every way a shop (or
//! an attacker pointing a source at a slow server) could make it expensive: `https` only
//! (plain `http` with an explicit development flag), no redirects, connect and total
//! timeouts, a response size cap, one fetch in flight per URL (callers wait for it), failures
//! remembered for a while, and a signature naming an unknown `kid` triggers a refetch at
//! most once per interval, so forged `kid`s cannot make the gateway hammer the shop.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{VerifyError, VerifyResult};

/// An RSA public key (big-endian modulus and exponent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    pub kid: Option<String>,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// The RSA signing keys of a JWKS document (`{"keys": [...]}`); other keys are skipped.
pub fn parse(jwks: &Value) -> VerifyResult<Vec<RsaKey>> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| VerifyError::invalid("a JWKS is an object with a \"keys\" array"))?;
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
        return Err(VerifyError::invalid("the JWKS holds no RSA signing key"));
    }
    Ok(rsa)
}

/// How JWKS URLs are fetched; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    /// Accept `http://` URLs (local development only).
    pub allow_http: bool,
    /// How long fetched keys are used before they are fetched again.
    pub ttl: Duration,
    /// Least time between two fetches of one URL when a signature names an unknown key.
    pub refetch_interval: Duration,
    /// How long a failed fetch is remembered (no new fetch meanwhile).
    pub failure_ttl: Duration,
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// Largest JWKS document accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            allow_http: false,
            ttl: Duration::from_secs(3600),
            refetch_interval: Duration::from_secs(60),
            failure_ttl: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            max_bytes: 64 * 1024,
        }
    }
}

/// Checks a source's `jwks_url` when it is saved: an absolute `https` URL (or `http` when
/// allowed), with a host and no credentials.
pub fn check_url(url: &str, allow_http: bool) -> VerifyResult<()> {
    let parsed = url::Url::parse(url)
        .map_err(|_| VerifyError::invalid("options.jwks_url must be an absolute URL"))?;
    let scheme_ok = parsed.scheme() == "https" || (allow_http && parsed.scheme() == "http");
    if !scheme_ok {
        return Err(VerifyError::invalid(if allow_http {
            "options.jwks_url must be an http(s) URL"
        } else {
            "options.jwks_url must be an https URL (plain http only with \
             --jwks-allow-http, for local development)"
        }));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(VerifyError::invalid("options.jwks_url must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(VerifyError::invalid(
            "options.jwks_url must not carry credentials",
        ));
    }
    Ok(())
}

/// What is known about one URL.
#[derive(Default)]
struct Slot {
    keys: Option<(Instant, Vec<RsaKey>)>,
    /// When the last fetch was tried, and its error if it failed.
    last_try: Option<Instant>,
    failure: Option<String>,
}

/// Keys fetched from JWKS URLs, per URL.
pub struct JwksCache {
    http: reqwest::Client,
    policy: JwksPolicy,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    fetches: AtomicU64,
}

impl Default for JwksCache {
    fn default() -> Self {
        Self::new(JwksPolicy::default())
    }
}

impl JwksCache {
    pub fn new(policy: JwksPolicy) -> Self {
        JwksCache {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .https_only(!policy.allow_http)
                .connect_timeout(policy.connect_timeout)
                .timeout(policy.total_timeout)
                .build()
                .expect("HTTP client"),
            policy,
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many fetches were started (for metrics and tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn slot(&self, url: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(url.to_string())
            .or_default()
            .clone()
    }

    /// The keys at `url`. A `want_kid` the cache lacks forces a refetch (key rotation),
    /// at most once per `refetch_interval`. Concurrent callers for one URL share one fetch.
    pub async fn keys(&self, url: &str, want_kid: Option<&str>) -> VerifyResult<Vec<RsaKey>> {
        let slot = self.slot(url);
        // Holding the slot across the fetch is the single flight: the others wait here
        // and then find what it fetched.
        let mut slot = slot.lock().await;
        let p = &self.policy;
        let recently_tried = slot
            .last_try
            .is_some_and(|t| t.elapsed() < p.refetch_interval);
        if let Some((at, keys)) = &slot.keys {
            let fresh = at.elapsed() < p.ttl;
            let knows =
                want_kid.is_none_or(|kid| keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
            if fresh && (knows || recently_tried) {
                return Ok(keys.clone());
            }
        }
        if let (Some(error), Some(at)) = (&slot.failure, slot.last_try)
            && at.elapsed() < p.failure_ttl
        {
            return match &slot.keys {
                Some((_, keys)) => Ok(keys.clone()),
                None => Err(unavailable(url, error)),
            };
        }
        slot.last_try = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch(url).await {
            Ok(keys) => {
                slot.keys = Some((Instant::now(), keys.clone()));
                slot.failure = None;
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(%url, %error, "JWKS fetch failed");
                slot.failure = Some(error.clone());
                // Keys we had are better than none while the shop is unreachable.
                match &slot.keys {
                    Some((_, keys)) => Ok(keys.clone()),
                    None => Err(unavailable(url, &error)),
                }
            }
        }
    }

    async fn fetch(&self, url: &str) -> std::result::Result<Vec<RsaKey>, String> {
        let mut res = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("HTTP {}", res.status()));
        }
        let max = self.policy.max_bytes;
        if res.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("response larger than {max} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > max {
                return Err(format!("response larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        parse(&doc).map_err(|e| e.to_string())
    }
}

fn unavailable(url: &str, error: &str) -> VerifyError {
    VerifyError::KeysUnavailable(format!("JWKS at {url}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, HttpServer, web};
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn urls_are_https_with_a_host_and_no_credentials() {
        assert!(check_url("https://shop.example/.well-known/jwks.json", false).is_ok());
        assert!(check_url("http://shop.example/jwks.json", false).is_err());
        assert!(check_url("http://127.0.0.1:8000/jwks.json", true).is_ok());
        assert!(check_url("ftp://shop.example/jwks.json", true).is_err());
        assert!(check_url("https://user:pw@shop.example/jwks.json", false).is_err());
        assert!(check_url("/.well-known/jwks.json", false).is_err());
    }

    /// A shop whose JWKS endpoint counts requests and misbehaves as told.
    async fn shop(
        behaviour: &'static str,
    ) -> (String, Arc<AtomicUsize>, actix_web::dev::ServerHandle) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let jwks = crate::sign::saleor_jwks(crate::samples::SALEOR_TEST_KEY).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let (hits, jwks) = (counted.clone(), jwks.clone());
            App::new().route(
                "/jwks.json",
                web::get().to(move || {
                    let (hits, jwks) = (hits.clone(), jwks.clone());
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        match behaviour {
                            "redirect" => HttpResponse::Found()
                                .insert_header(("location", "/elsewhere.json"))
                                .finish(),
                            "huge" => HttpResponse::Ok().body(vec![b' '; 200 * 1024]),
                            "slow" => {
                                tokio::time::sleep(Duration::from_secs(3)).await;
                                HttpResponse::Ok().json(jwks)
                            }
                            _ => {
                                // Slow enough that concurrent callers overlap.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                HttpResponse::Ok().json(jwks)
                            }
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        (url, hits, handle)
    }

    fn local() -> JwksCache {
        JwksCache::new(JwksPolicy {
            allow_http: true,
            total_timeout: Duration::from_millis(500),
            ..JwksPolicy::default()
        })
    }

    #[tokio::test]
    async fn forged_kids_share_one_fetch_and_cannot_force_more() {
        let (url, hits, handle) = shop("ok").await;
        let cache = Arc::new(local());
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let (cache, url) = (cache.clone(), url.clone());
                tokio::spawn(async move { cache.keys(&url, Some(&format!("forged-{i}"))).await })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap().is_ok(), "the shop's keys are returned");
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "one fetch in flight, then the cache"
        );
        for i in 0..20 {
            cache.keys(&url, Some(&format!("again-{i}"))).await.unwrap();
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "an unknown kid refetches once per interval"
        );
        assert_eq!(cache.fetches(), 1);
        handle.stop(true).await;
    }

    #[tokio::test]
    async fn redirects_oversized_and_slow_answers_fail_and_failures_are_remembered() {
        for behaviour in ["redirect", "huge", "slow"] {
            let (url, hits, handle) = shop(behaviour).await;
            let cache = local();
            let started = Instant::now();
            assert!(cache.keys(&url, None).await.is_err(), "{behaviour}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{behaviour} is bounded"
            );
            // Remembered: no new request while the failure is fresh.
            assert!(cache.keys(&url, Some("k")).await.is_err());
            assert_eq!(cache.fetches(), 1, "{behaviour}");
            assert!(
                hits.load(Ordering::SeqCst) <= 1,
                "{behaviour}: redirect not followed"
            );
            handle.stop(false).await;
        }
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_allowed() {
        let (url, hits, handle) = shop("ok").await;
        let strict = JwksCache::default();
        assert!(strict.keys(&url, None).await.is_err());
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        handle.stop(true).await;
    }
}
