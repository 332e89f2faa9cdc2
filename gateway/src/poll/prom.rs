//! Prom.ua's seller API, as the poller reads it: `GET /orders/list` with the shop's API
//! token (`Authorization: Bearer`), filtered by `last_modified_from` and paged downwards by
//! id (`last_id`: ids no higher than it). An order says no modification time of its own,
//! so a change is the order as it reads now, named by a digest of its body: an order read
//! again unchanged adds nothing, a changed one is diffed against the last one kept.

use chrono::{DateTime, Utc};
use omnigate_schemas::api::PollCredentials;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{Change, Page, PollError, excerpt, retry_after};

pub const API_BASE: &str = "https://my.prom.ua/api/v1";
/// Orders per page (Prom.ua's own limit is 100).
pub const PAGE: usize = 100;
/// The window is read from this long before the cursor: clocks and commits on Prom.ua's
/// side are not exact, and an order read twice adds nothing.
const OVERLAP: chrono::Duration = chrono::Duration::minutes(2);
/// Most pages one window may hold (at least 1,000 × the page Prom.ua answers).
const MAX_PAGES: usize = 1000;

pub struct Prom<'a> {
    pub http: &'a reqwest::Client,
    pub api_base: &'a str,
    pub credentials: &'a PollCredentials,
}

/// `2015-04-28T12:50:34`, as Prom.ua takes its times.
fn param(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

impl Prom<'_> {
    async fn get(&self, path: &str) -> Result<Value, PollError> {
        let token = self.credentials.token.as_deref().ok_or_else(|| {
            PollError::Config("credentials.token (the shop's API token) is required".into())
        })?;
        let url = format!("{}{path}", self.api_base.trim_end_matches('/'));
        let res = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| PollError::Provider(format!("cannot reach Prom.ua: {e}")))?;
        let status = res.status();
        if status.as_u16() == 429 {
            return Err(PollError::RateLimited(retry_after(
                res.headers(),
                Duration::from_secs(60),
            )));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(PollError::Credentials(format!(
                "Prom.ua refused the API token (HTTP {status}): make a new one in the shop's \
                 settings (API tokens, with access to orders) and PATCH the source's credentials"
            )));
        }
        let text = super::text(res).await.map_err(PollError::Provider)?;
        if !status.is_success() {
            let path_only = path.split('?').next().unwrap_or(path);
            return Err(PollError::Provider(format!(
                "GET {path_only} answered HTTP {status}: {}",
                excerpt(&text)
            )));
        }
        serde_json::from_str(&text)
            .map_err(|_| PollError::Provider(format!("GET {path}: the answer is not JSON")))
    }

    /// Every order modified since `cursor` (an RFC 3339 time; without one, since
    /// `start_from`, else since `now`), newest id first, and the cursor for next time: when
    /// this poll began.
    pub async fn changes(
        &self,
        cursor: Option<&str>,
        start_from: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Page<Change>, PollError> {
        let since = match cursor.and_then(crate::normalize::time::parse) {
            Some(t) => t - OVERLAP,
            None => match start_from {
                Some(t) => t,
                // A new source: from its first poll on, as for Allegro.
                None => {
                    return Ok(Page {
                        changes: Vec::new(),
                        more: false,
                        cursor: Some(crate::normalize::time::format(now)),
                    });
                }
            },
        };
        let mut page = Page::default();
        let mut last_id: Option<i64> = None;
        for _ in 0..MAX_PAGES {
            let mut path = format!(
                "/orders/list?last_modified_from={}&limit={PAGE}",
                param(since)
            );
            if let Some(id) = last_id {
                path.push_str(&format!("&last_id={id}"));
            }
            let answer = self.get(&path).await?;
            let orders = answer["orders"]
                .as_array()
                .ok_or_else(|| PollError::Provider("GET /orders/list: no orders array".into()))?;
            let mut lowest = None;
            for order in orders {
                let Some(id) = order["id"].as_i64() else {
                    return Err(PollError::Provider(
                        "GET /orders/list: an order without an id".into(),
                    ));
                };
                lowest = Some(lowest.map_or(id, |l: i64| l.min(id)));
                let body =
                    serde_json::to_vec(order).map_err(|e| PollError::Provider(e.to_string()))?;
                let digest = hex::encode(&Sha256::digest(&body)[..12]);
                page.changes.push(Change {
                    topic: "order".into(),
                    id: format!("order:{id}:{digest}"),
                    body,
                    occurred_at: order["date_created"]
                        .as_str()
                        .and_then(crate::normalize::time::parse),
                    // The window's cursor moves only once all of it is written.
                    cursor: cursor.map(str::to_string).unwrap_or_default(),
                });
            }
            // Until an empty page: Prom.ua may answer fewer than asked for before the end.
            if orders.is_empty() {
                // Oldest first, so an order's earlier state is never written after a later
                // one within a poll (ids grow with time).
                page.changes.reverse();
                page.cursor = Some(crate::normalize::time::format(now));
                return Ok(page);
            }
            // The next page: ids below the lowest read.
            last_id = lowest.map(|l| l - 1);
        }
        Err(PollError::Provider(format!(
            "more than {} orders changed since the last poll: poll more often \
             (options.poll_interval_secs)",
            MAX_PAGES * PAGE
        )))
    }
}
