//! `omnigate forward`: a plugin developer's bridge from a gateway to a receiver on their
//! machine. It pulls the plugin's inbox through the public API (with the plugin's key, so
//! it sees exactly what the plugin may see), POSTs each event to `--to` with the headers
//! and body push delivery would send ([`crate::push::send`]), acknowledges on 2xx and hands
//! the rest back to come again, printing one line per delivery.

use chrono::Utc;
use omnigate_schemas::api::{InboxDelivery, PullResponse};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use crate::config::ForwardArgs;
use crate::error::{Error, Result};
use crate::push::send::{self, ClientOptions, Outcome, Push};
use crate::push::signature::Signer;

/// How long one pull waits for an event.
const PULL_WAIT_MS: u64 = 20_000;
/// The first wait after a failed forward; doubled per attempt, at most [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// A failed delivery that has not come back this long after it was due (buried, or
/// settled elsewhere) no longer holds its subject.
const STALE_BLOCK: Duration = Duration::from_secs(30);

/// The signing secret to use: the one given, or a new one (and a line saying so).
pub fn secret(args: &ForwardArgs) -> Result<(String, Option<String>)> {
    match &args.secret {
        Some(s) => {
            Signer::new(&[s]).map_err(|e| Error::Config(format!("--secret: {e}")))?;
            Ok((s.clone(), None))
        }
        None => {
            let (_, secret) = crate::plugins::registry::new_signing_secret(Utc::now());
            let note =
                format!("Signing with {secret} (made for this run; pass --secret to keep one)");
            Ok((secret, Some(note)))
        }
    }
}

/// Forwards until `stop` completes, calling `line` with each line to print.
pub async fn run(
    args: &ForwardArgs,
    secret: &str,
    mut line: impl FnMut(String),
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let signer = Signer::new(&[secret]).map_err(|e| Error::Config(format!("--secret: {e}")))?;
    crate::push::target::check_url(&args.to, true)
        .map_err(|e| Error::Config(format!("--to: {e}")))?;
    let api = reqwest::Client::builder()
        .timeout(Duration::from_millis(PULL_WAIT_MS + 10_000))
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let to = send::client(ClientOptions {
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_millis(args.timeout_ms),
        // The receiver is on this machine: that is the point.
        allow_private: true,
    })
    .map_err(|e| Error::Internal(e.to_string()))?;
    let gateway = args.url.trim_end_matches('/');
    line(format!(
        "Forwarding events from {gateway} to {} (Ctrl-C to stop)",
        args.to
    ));
    tokio::pin!(stop);
    // A long-poll wakes for new events only: it waits no longer than the next retry.
    let mut retries: Vec<std::time::Instant> = Vec::new();
    // A subject whose delivery failed: the rest of it waits for that one's retry, across
    // pulls (the failed one's receipt, and when it is due).
    let mut blocked: HashMap<String, (String, std::time::Instant)> = HashMap::new();
    loop {
        let now = std::time::Instant::now();
        retries.retain(|at| *at > now);
        let wait_ms = retries
            .iter()
            .min()
            .map_or(PULL_WAIT_MS, |at| (*at - now).as_millis() as u64 + 1)
            .min(PULL_WAIT_MS);
        let pulled = tokio::select! {
            r = call(&api, gateway, &args.key, "/v1/inbox/pull", json!({"max": 10, "wait_ms": wait_ms})) => r?,
            _ = &mut stop => return Ok(()),
        };
        let pulled: PullResponse = serde_json::from_value(pulled)
            .map_err(|e| Error::Internal(format!("the gateway's pull answer: {e}")))?;
        for d in pulled.deliveries {
            let subject = crate::pusher::subject_key(&d.event);
            let now = std::time::Instant::now();
            let wait = match blocked.get(&subject) {
                // Behind a failed delivery of its subject: it comes again just after that.
                Some((holder, until)) if *holder != d.receipt && *until + STALE_BLOCK > now => {
                    let wait = until.saturating_duration_since(now) + Duration::from_millis(50);
                    hand_back(&api, gateway, &args.key, &d, wait, None, true).await?;
                    wait
                }
                _ => {
                    if forward_one(&api, &to, &signer, gateway, args, &d, &mut line).await? {
                        blocked.remove(&subject);
                        continue;
                    }
                    let wait = retry_wait(d.attempt);
                    blocked.insert(subject, (d.receipt.clone(), now + wait));
                    wait
                }
            };
            retries.push(std::time::Instant::now() + wait);
        }
    }
}

/// Forwards one delivery and settles it; false when it failed.
async fn forward_one(
    api: &reqwest::Client,
    to: &reqwest::Client,
    signer: &Signer,
    gateway: &str,
    args: &ForwardArgs,
    d: &InboxDelivery,
    line: &mut impl FnMut(String),
) -> Result<bool> {
    let body = serde_json::to_vec(&d.event).map_err(|e| Error::Internal(e.to_string()))?;
    let push = Push {
        url: &args.to,
        id: &d.event.id,
        event_type: &d.event.event_type,
        attempt: d.attempt,
        body: &body,
        timestamp: Utc::now().timestamp(),
    };
    let (outcome, took) = send::send(to, signer, &push, true).await;
    let at = crate::normalize::time::format(Utc::now());
    let ms = took.as_millis();
    match outcome {
        Outcome::Delivered { status } => {
            call(
                api,
                gateway,
                &args.key,
                "/v1/inbox/ack",
                json!({"receipts": [d.receipt]}),
            )
            .await?;
            line(format!(
                "{at}  {status}  {}  {}  ({ms} ms)",
                d.event.event_type, d.event.id
            ));
            Ok(true)
        }
        Outcome::Refused { status, error } => {
            let body =
                json!({"receipts": [d.receipt], "dead": true, "reason": send::excerpt(&error)});
            call(api, gateway, &args.key, "/v1/inbox/nack", body).await?;
            line(format!(
                "{at}  {status}  {}  {}  ({ms} ms) {error}; dead letter (the endpoint said no retry can fix it)",
                d.event.event_type, d.event.id
            ));
            Ok(true)
        }
        Outcome::Failed { status, error, .. } => {
            let wait = retry_wait(d.attempt);
            hand_back(api, gateway, &args.key, d, wait, Some(error.clone()), false).await?;
            let status = status.map_or("---".to_string(), |s| s.to_string());
            line(format!(
                "{at}  {status}  {}  {}  ({ms} ms) {error}; again in {} s",
                d.event.event_type,
                d.event.id,
                wait.as_secs()
            ));
            Ok(false)
        }
    }
}

/// The wait after failed attempt `attempt`: 5 s, doubling, at most a minute (a receiver
/// being written and restarted, not a service to spare).
fn retry_wait(attempt: u64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(8) as u32;
    (FIRST_RETRY * 2u32.pow(doublings)).min(MAX_RETRY)
}

async fn hand_back(
    api: &reqwest::Client,
    gateway: &str,
    key: &str,
    d: &InboxDelivery,
    wait: Duration,
    reason: Option<String>,
    defer: bool,
) -> Result<()> {
    let mut body =
        json!({"receipts": [d.receipt], "retry_after_ms": wait.as_millis() as u64, "defer": defer});
    if let Some(reason) = reason {
        body["reason"] = json!(send::excerpt(&reason));
    }
    call(api, gateway, key, "/v1/inbox/nack", body).await?;
    Ok(())
}

/// One plugin API call; a problem answer becomes an error carrying its detail.
async fn call(
    api: &reqwest::Client,
    gateway: &str,
    key: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    let res = api
        .post(format!("{gateway}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::Config(format!("cannot reach the gateway at {gateway}: {e}")))?;
    let status = res.status();
    let answer: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let detail = answer["detail"].as_str().unwrap_or("no detail");
        return Err(Error::Config(format!("{path} answered {status}: {detail}")));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_five_seconds_up_to_a_minute() {
        let waits: Vec<u64> = (1..=6).map(|a| retry_wait(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
    }
}
