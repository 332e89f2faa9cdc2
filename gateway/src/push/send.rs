//! One push: the signed `POST` of an event to an endpoint, with the client every pusher
//! shares (connect and total timeouts, no redirects, no proxies, the resolving guard of
//! [`super::target`]), and what the answer means. Only a short excerpt of an answer is
//! read and kept: a receiver cannot make the gateway buffer or store its pages.

use std::time::{Duration, Instant};

use super::health::ERROR_EXCERPT_CHARS;
use super::schedule::parse_retry_after;
use super::signature::Signer;
use super::target::{self, Resolver};

/// Most bytes of an answer read (the rest is dropped with the connection).
pub const MAX_ANSWER_BYTES: usize = 4096;

/// A receiver's way to say that no retry can fix a delivery: opt-in and explicit, so a
/// receiver's ordinary 4xx (a bug, a deploy under way) is still retried.
pub use omnigate_schemas::api::DEAD_LETTER_HEADER;

/// How pushes connect.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub allow_private: bool,
}

impl ClientOptions {
    pub fn from_settings(settings: &crate::config::Settings) -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_millis(settings.push_connect_timeout_ms),
            timeout: Duration::from_millis(settings.push_timeout_ms),
            allow_private: settings.push_allow_private,
        }
    }
}

/// The HTTP client pushes go through.
pub fn client(o: ClientOptions) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(o.connect_timeout)
        .timeout(o.timeout)
        // A redirect would send the event somewhere nobody registered (and past the
        // address check): a 3xx is a failed push, named as such.
        .redirect(reqwest::redirect::Policy::none())
        // Environment proxies would carry pushes past the address check too.
        .no_proxy()
        .dns_resolver(Resolver::shared(o.allow_private))
        .user_agent(concat!("Omnigate/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
}

/// What to push.
#[derive(Debug)]
pub struct Push<'a> {
    pub url: &'a str,
    /// The event id: Standard Webhooks' message id, the same on every attempt.
    pub id: &'a str,
    pub event_type: &'a str,
    pub attempt: u64,
    pub body: &'a [u8],
    /// Unix seconds.
    pub timestamp: i64,
}

/// How a push went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx: acknowledged.
    Delivered { status: u16 },
    /// A 4xx with `omnigate-dead-letter: true` ([`DEAD_LETTER_HEADER`]): the receiver says
    /// no retry can fix it.
    Refused { status: u16, error: String },
    /// Anything else: to be tried again. `error` is short and safe to keep and show.
    Failed {
        status: Option<u16>,
        error: String,
        /// What a 429 or 503 asked for.
        retry_after: Option<Duration>,
    },
}

/// Sends one push and reads at most [`MAX_ANSWER_BYTES`] of the answer. Returns how it
/// went and how long it took.
pub async fn send(
    client: &reqwest::Client,
    signer: &Signer,
    push: &Push<'_>,
    allow_private: bool,
) -> (Outcome, Duration) {
    let started = Instant::now();
    // An IP literal never meets the resolver: judged here, before every push.
    if let Err(e) = target::check_url(push.url, allow_private) {
        return (failed(None, e.to_string()), started.elapsed());
    }
    let mut request = client
        .post(push.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("omnigate-event-type", push.event_type)
        .header("omnigate-attempt", push.attempt.to_string());
    for (name, value) in signer.headers(push.id, push.timestamp, push.body) {
        request = request.header(name, value);
    }
    let response = match request.body(push.body.to_vec()).send().await {
        Ok(r) => r,
        Err(e) => return (failed(None, describe(&e)), started.elapsed()),
    };
    let status = response.status();
    let retry_after = if status.as_u16() == 429 || status.as_u16() == 503 {
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
    } else {
        None
    };
    let refused = omnigate_schemas::api::asks_for_dead_letter(
        status.as_u16(),
        response
            .headers()
            .get(DEAD_LETTER_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(excerpt);
    let answer = read_capped(response).await;
    let outcome = if status.is_success() {
        Outcome::Delivered {
            status: status.as_u16(),
        }
    } else if status.is_redirection() {
        let to = location.unwrap_or_default();
        failed(
            Some(status.as_u16()),
            format!(
                "HTTP {status}: redirects are not followed (to {to:?}); register the final URL"
            ),
        )
    } else {
        let error = match answer {
            Ok(text) if !text.is_empty() => {
                format!("HTTP {}: {}", status.as_u16(), excerpt(&text))
            }
            _ => format!("HTTP {status}"),
        };
        if refused {
            Outcome::Refused {
                status: status.as_u16(),
                error,
            }
        } else {
            Outcome::Failed {
                status: Some(status.as_u16()),
                error,
                retry_after,
            }
        }
    };
    (outcome, started.elapsed())
}

fn failed(status: Option<u16>, error: String) -> Outcome {
    Outcome::Failed {
        status,
        error,
        retry_after: None,
    }
}

/// A transport error in a few words, without the URL (it is shown next to it anyway).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    excerpt(&match causes.last() {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_string(),
    })
}

/// The first bytes of an answer as text.
async fn read_capped(mut response: reqwest::Response) -> reqwest::Result<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// At most [`ERROR_EXCERPT_CHARS`] characters on one line.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_EXCERPT_CHARS)
        .collect();
    if text.chars().count() > ERROR_EXCERPT_CHARS {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_single_lines() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let e = excerpt(&long);
        assert!(!e.contains('\n'));
        assert_eq!(e.chars().count(), ERROR_EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }
}
