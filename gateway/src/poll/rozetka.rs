//! Rozetka's seller API, as the poller reads it. A session comes from `POST /sites` (a
//! seller account's login, its password in base64) and lasts a day; orders come from
//! `GET /orders/search`, filtered by `changed_from` and sorted by `changed`, with the
//! extra fields the normalizer reads (`expand=`). Every answer is an envelope:
//! `{"success": true, "content": …}`, or `{"success": false, "errors": {"message", "code"}}`.
//!
//! The cursor is the newest `changed` read, in Rozetka's own wall-clock text (Kyiv time), so
//! no clock of ours is compared with Rozetka's. The next read starts at that second again
//! (orders changed later within it are not missed; the ones already read are named by their
//! version and a digest of them, `order:{id}:{changed}:{digest}`, and add nothing). Only
//! when a whole page shares the cursor's second does the read go on by page number within
//! it (`{changed}|{page}`).

use base64::Engine;
use chrono::{DateTime, Utc};
use omnigate_schemas::api::PollCredentials;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{Change, Page, PollError, excerpt, retry_after};
use crate::normalize::time;
use crate::store::{PollState, SecretValue};

pub const API_BASE: &str = "https://api-seller.rozetka.com.ua";
/// Rozetka's sessions last a day; a new one is made an hour before that.
const SESSION: chrono::Duration = chrono::Duration::hours(23);
/// Rozetka's time zone: the wall-clock times it writes and reads.
const ZONE: chrono_tz::Tz = time::KYIV;
/// What the normalizer reads beyond an order's own fields.
const EXPAND: &str = "purchases,delivery,status_payment,user";
/// Rozetka's error codes for a session that no longer works (expired, or not a token).
const SESSION_CODES: &[i64] = &[1018, 5401, 6001];
/// Its codes for a login refused.
const LOGIN_CODES: &[i64] = &[1004, 1020, 1021];
/// Pages one poll reads of the window around Kyiv's autumn clock change.
const MAX_OVERLAP_PAGES: u32 = 50;
/// The cursor a shop without orders starts from: every order it gets is new.
const EPOCH: &str = "2000-01-01 00:00:00";

pub struct Rozetka<'a> {
    pub http: &'a reqwest::Client,
    pub api_base: &'a str,
    pub credentials: &'a PollCredentials,
    /// Which credentials these are (when they were given, not a digest of the password):
    /// a session made with others ends.
    pub marker: Option<String>,
}

/// The cursor: the second the next read starts at, and the page within it.
fn parse_cursor(cursor: &str) -> (String, u32) {
    match cursor.rsplit_once('|') {
        Some((at, page)) => (at.to_string(), page.parse().unwrap_or(1).max(1)),
        None => (cursor.to_string(), 1),
    }
}

/// An hour before `from`, when `from` (Kyiv wall time) is in the hour the clock passes
/// twice in autumn, or in the hour after it.
fn autumn_overlap(from: &str) -> Option<String> {
    let at = chrono::NaiveDateTime::parse_from_str(from.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    let earlier = at - chrono::Duration::hours(1);
    let twice = |t: chrono::NaiveDateTime| {
        matches!(
            t.and_local_timezone(ZONE),
            chrono::LocalResult::Ambiguous(_, _)
        )
    };
    (twice(at) || twice(earlier)).then(|| earlier.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Rozetka's error envelope: its code and message.
fn refusal(answer: &Value) -> Option<(i64, String)> {
    if answer["success"].as_bool() != Some(false) {
        return None;
    }
    let errors = &answer["errors"];
    let code = errors["code"].as_i64().unwrap_or(0);
    let message = errors["message"]
        .as_str()
        .or(errors["description"].as_str())
        .unwrap_or("no message")
        .to_string();
    Some((code, message))
}

enum Answer {
    Content(Value),
    /// The session no longer works: log in again.
    Session,
}

impl Rozetka<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_base.trim_end_matches('/'))
    }

    /// Makes sure `state` holds a session for a while yet (logging in when it does not).
    pub async fn ensure_session(
        &self,
        state: &mut PollState,
        now: DateTime<Utc>,
    ) -> Result<(), PollError> {
        let given = self.marker.clone();
        if state.credentials_marker != given {
            state.access_token = None;
            state.credentials_marker = given;
        }
        let fresh =
            state.access_token.is_some() && state.access_expires_at.is_some_and(|at| at > now);
        if !fresh {
            self.login(state, now).await?;
        }
        Ok(())
    }

    async fn login(&self, state: &mut PollState, now: DateTime<Utc>) -> Result<(), PollError> {
        let (Some(user), Some(password)) = (
            self.credentials.username.as_deref(),
            self.credentials.password.as_deref(),
        ) else {
            return Err(PollError::Config(
                "credentials.username and password are required".into(),
            ));
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(password.as_bytes());
        let res = self
            .http
            .post(self.url("/sites"))
            .json(&serde_json::json!({"username": user, "password": encoded}))
            .send()
            .await
            .map_err(|e| PollError::Provider(format!("cannot reach Rozetka: {e}")))?;
        let status = res.status();
        if status.as_u16() == 429 {
            return Err(PollError::RateLimited(retry_after(
                res.headers(),
                Duration::from_secs(60),
            )));
        }
        let text = super::text(res).await.map_err(PollError::Provider)?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some((code, message)) = refusal(&answer) {
            return Err(if LOGIN_CODES.contains(&code) || status.as_u16() == 401 {
                PollError::Credentials(format!(
                    "Rozetka refused the login ({message}, code {code}): check the seller \
                     account's username and password and PATCH the source's credentials"
                ))
            } else {
                PollError::Provider(format!("POST /sites: {message} (code {code})"))
            });
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(PollError::Credentials(format!(
                "Rozetka refused the login (HTTP {status}): check the seller account's \
                 username and password and PATCH the source's credentials"
            )));
        }
        if !status.is_success() {
            return Err(PollError::Provider(format!(
                "POST /sites answered HTTP {status}: {}",
                excerpt(&text)
            )));
        }
        let token = answer["content"]["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PollError::Provider("POST /sites: no access_token".into()))?;
        state.access_token = Some(SecretValue::new(token.to_string()));
        state.access_expires_at = Some(now + SESSION);
        tracing::info!("logged in to Rozetka");
        Ok(())
    }

    async fn get_once(&self, token: &str, path: &str) -> Result<Answer, PollError> {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .header("Content-Language", "uk")
            .send()
            .await
            .map_err(|e| PollError::Provider(format!("cannot reach Rozetka: {e}")))?;
        let status = res.status();
        if status.as_u16() == 429 {
            return Err(PollError::RateLimited(retry_after(
                res.headers(),
                Duration::from_secs(60),
            )));
        }
        let text = super::text(res).await.map_err(PollError::Provider)?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let path_only = path.split('?').next().unwrap_or(path);
        if let Some((code, message)) = refusal(&answer) {
            if SESSION_CODES.contains(&code) || status.as_u16() == 401 {
                return Ok(Answer::Session);
            }
            return Err(PollError::Provider(format!(
                "GET {path_only}: {message} (code {code})"
            )));
        }
        if status.as_u16() == 401 {
            return Ok(Answer::Session);
        }
        if status.as_u16() == 403 {
            return Err(PollError::Credentials(format!(
                "Rozetka refused GET {path_only} (HTTP 403): the seller account needs access \
                 to orders"
            )));
        }
        if !status.is_success() || answer.is_null() {
            return Err(PollError::Provider(format!(
                "GET {path_only} answered HTTP {status}: {}",
                excerpt(&text)
            )));
        }
        Ok(Answer::Content(answer["content"].clone()))
    }

    /// A GET with the session, logging in again once if Rozetka says it ended.
    async fn get(
        &self,
        state: &mut PollState,
        path: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, PollError> {
        self.ensure_session(state, now).await?;
        let token = state
            .access_token
            .as_ref()
            .map(|t| t.expose().to_string())
            .unwrap_or_default();
        if let Answer::Content(c) = self.get_once(&token, path).await? {
            return Ok(c);
        }
        self.login(state, now).await?;
        let token = state
            .access_token
            .as_ref()
            .map(|t| t.expose().to_string())
            .unwrap_or_default();
        match self.get_once(&token, path).await? {
            Answer::Content(c) => Ok(c),
            Answer::Session => Err(PollError::Credentials(
                "Rozetka refused a session it had just given: check the seller account's \
                 access to orders"
                    .into(),
            )),
        }
    }

    /// One page of orders changed since the cursor (oldest change first), and the cursor
    /// after it. Without a cursor: from `start_from` (read as Kyiv time, so a few hours
    /// early at most, which only re-reads), else from the newest order now (nothing
    /// before the source existed is told).
    pub async fn changes(
        &self,
        state: &mut PollState,
        start_from: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Page<Change>, PollError> {
        let Some(cursor) = state.cursor.clone() else {
            let start = match start_from {
                Some(t) => t
                    .with_timezone(&ZONE)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                None => self.head(state, now).await?,
            };
            return Ok(Page {
                changes: Vec::new(),
                more: true,
                cursor: Some(start),
            });
        };
        let (from, page_no) = parse_cursor(&cursor);
        // In the hour Kyiv's clock repeats each autumn (and the hour after), a later change
        // can be written with an earlier wall time than the cursor: that window is read
        // again whole, from an hour before the cursor (what was read adds nothing).
        let rewind = (page_no == 1).then(|| autumn_overlap(&from)).flatten();
        let (query_from, pages) = match &rewind {
            Some(earlier) => (earlier.clone(), MAX_OVERLAP_PAGES),
            None => (from.clone(), 1),
        };
        let mut page = Page::default();
        let mut newest = from.clone();
        let mut more_pages = false;
        for n in 0..pages {
            let path = format!(
                "/orders/search?changed_from={}&sort=changed&page={}&expand={EXPAND}",
                percent_encoding::utf8_percent_encode(
                    &query_from,
                    percent_encoding::NON_ALPHANUMERIC
                ),
                page_no + n
            );
            let content = self.get(state, &path, now).await?;
            let orders = content["orders"]
                .as_array()
                .ok_or_else(|| PollError::Provider("GET /orders/search: no orders array".into()))?;
            let meta = &content["_meta"];
            more_pages = match (meta["currentPage"].as_u64(), meta["pageCount"].as_u64()) {
                (Some(current), Some(count)) => current < count,
                _ => false,
            };
            for order in orders {
                let body =
                    serde_json::to_vec(order).map_err(|e| PollError::Provider(e.to_string()))?;
                let changed = order["changed"]
                    .as_str()
                    .filter(|c| time::naive_in(c, ZONE).is_some());
                // `changed` has whole seconds: two changes within one are told apart by a
                // digest of the order as read (read again unchanged, it adds nothing).
                let digest = hex::encode(&Sha256::digest(&body)[..12]);
                let id = match (order["id"].as_i64(), changed) {
                    (Some(id), Some(changed)) => format!("order:{id}:{changed}:{digest}"),
                    // Not an order the gateway can read (no id, or a time that is none): it
                    // goes on to quarantine with the reason, named by its digest, and the
                    // cursor passes it.
                    (id, _) => {
                        let id = id.map_or_else(|| "unknown".to_string(), |i| i.to_string());
                        format!("order:{id}:{digest}")
                    }
                };
                // Text compares as time: both are `YYYY-MM-DD HH:MM:SS`.
                if let Some(changed) = changed
                    && changed > newest.as_str()
                {
                    newest = changed.to_string();
                }
                page.changes.push(Change {
                    topic: "order".into(),
                    id,
                    body,
                    occurred_at: changed.and_then(|c| time::naive_in(c, ZONE)),
                    cursor: String::new(),
                });
            }
            if !more_pages {
                break;
            }
        }
        if rewind.is_some() {
            page.changes.sort_by_key(|c| c.occurred_at);
            // The whole window was read (or as much as one poll reads).
            page.cursor = Some(newest);
            page.more = more_pages;
            return Ok(page);
        }
        page.changes.sort_by_key(|c| c.occurred_at);
        (page.cursor, page.more) = if newest > from {
            // On from the newest second read, its first page again.
            (Some(newest), more_pages)
        } else if more_pages {
            // A whole page within the cursor's second: on by page number within it.
            (Some(format!("{from}|{}", page_no + 1)), true)
        } else {
            (Some(cursor), false)
        };
        Ok(page)
    }

    /// Just after the newest order's `changed`, where a new source starts; a shop without
    /// orders starts from the beginning (each order it gets is new).
    async fn head(&self, state: &mut PollState, now: DateTime<Utc>) -> Result<String, PollError> {
        let content = self
            .get(state, "/orders/search?sort=-changed&page=1", now)
            .await?;
        let newest = content["orders"]
            .as_array()
            .and_then(|o| o.first())
            .and_then(|o| o["changed"].as_str())
            .and_then(|c| {
                chrono::NaiveDateTime::parse_from_str(c.trim(), "%Y-%m-%d %H:%M:%S").ok()
            });
        Ok(match newest {
            Some(t) => (t + chrono::Duration::seconds(1))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            None => EPOCH.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_carry_a_page_only_within_one_second() {
        assert_eq!(
            parse_cursor("2026-11-30 10:00:00"),
            ("2026-11-30 10:00:00".into(), 1)
        );
        assert_eq!(
            parse_cursor("2026-11-30 10:00:00|3"),
            ("2026-11-30 10:00:00".into(), 3)
        );
        assert_eq!(
            parse_cursor("2026-11-30 10:00:00|x"),
            ("2026-11-30 10:00:00".into(), 1)
        );
    }

    #[test]
    fn the_hour_kyiv_repeats_in_autumn_is_read_again() {
        // 2026-10-25: 04:00 EEST becomes 03:00 EET; 03:00-04:00 happens twice.
        assert_eq!(
            autumn_overlap("2026-10-25 03:30:00").as_deref(),
            Some("2026-10-25 02:30:00")
        );
        assert_eq!(
            autumn_overlap("2026-10-25 04:20:00").as_deref(),
            Some("2026-10-25 03:20:00"),
            "the hour after"
        );
        assert_eq!(autumn_overlap("2026-10-25 05:30:00"), None);
        assert_eq!(autumn_overlap("2026-11-30 03:30:00"), None);
    }

    #[test]
    fn refusals_are_read_from_the_envelope() {
        let answer = serde_json::json!({"success": false,
            "errors": {"message": "session_expired", "code": 6001}});
        assert_eq!(refusal(&answer), Some((6001, "session_expired".into())));
        assert_eq!(
            refusal(&serde_json::json!({"success": true, "content": {}})),
            None
        );
    }
}
