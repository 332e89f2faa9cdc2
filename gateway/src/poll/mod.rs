//! Reading marketplaces that push nothing (Allegro, Prom.ua, Rozetka): each provider's API client turns the
//! provider's change feed into [`Change`]s, read from a cursor; [`crate::poller`] runs one
//! poller per source and writes the changes through the same pipeline as webhooks.

pub mod allegro;
pub mod prom;
pub mod rozetka;

use std::time::Duration;

use crate::normalize::time;

/// One change read from a provider: what the pipeline receives in place of a webhook.
#[derive(Debug, Clone)]
pub struct Change {
    /// The topic it is mapped by (Allegro: the journal entry's type).
    pub topic: String,
    /// The provider's id for the change (the journal entry's id): its dedupe key.
    pub id: String,
    /// The body the normalizer reads.
    pub body: Vec<u8>,
    /// When it happened at the provider.
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The cursor to save once this change is written.
    pub cursor: String,
}

/// A page of what a feed lists (changes, or entries still to be read in full).
#[derive(Debug)]
pub struct Page<T> {
    pub changes: Vec<T>,
    /// More are waiting right after this page.
    pub more: bool,
    /// Where the page ends (also past entries that were skipped, or the feed's head).
    pub cursor: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            changes: Vec::new(),
            more: false,
            cursor: None,
        }
    }
}

/// Why a poll failed; each says what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The provider asks us to slow down; try again after this long.
    #[error("rate limited by the provider; retrying in {0:?}")]
    RateLimited(Duration),
    /// The credentials no longer work (a refresh token revoked or expired).
    #[error("{0}")]
    Credentials(String),
    /// The provider failed or could not be reached; retried with backoff.
    #[error("{0}")]
    Provider(String),
    /// The source's settings cannot work (a URL, missing credentials).
    #[error("{0}")]
    Config(String),
}

/// `Retry-After` in seconds or as an HTTP date, else `fallback`; at most 15 minutes.
pub fn retry_after(headers: &reqwest::header::HeaderMap, fallback: Duration) -> Duration {
    let asked = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
                .or_else(|| {
                    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
                    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                        .to_std()
                        .ok()
                })
        });
    asked.unwrap_or(fallback).min(Duration::from_secs(900))
}

/// The HTTP client pollers use: bounded connect and total times.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        // A redirect would carry a refresh token (a form body) somewhere nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Omnigate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Most bytes one answer of a provider's API may have (a page of orders, a resource).
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// An answer's body as text, read up to [`MAX_ANSWER_BYTES`] (more is an error, not a
/// process holding it all).
pub async fn text(mut res: reqwest::Response) -> Result<String, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
    {
        if buf.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is over {} MiB: not read",
                MAX_ANSWER_BYTES / (1024 * 1024)
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A provider answer's first characters, for an error message.
pub fn excerpt(text: &str) -> String {
    let cut: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    cut.trim().to_string()
}

/// A URL a poll source may use: `https`, unless this gateway allows `http` (tests).
pub fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        other => Err(format!(
            "{url:?}: the scheme must be https (not {other}){}",
            if other == "http" {
                "; OMNIGATE_POLL_ALLOW_HTTP=true allows http for local fakes"
            } else {
                ""
            }
        )),
    }
}

/// RFC 3339 for a time a change happened at.
pub fn format(t: chrono::DateTime<chrono::Utc>) -> String {
    time::format(t)
}
