//! Allegro's REST API, as the poller reads it: OAuth 2 tokens refreshed before they expire
//! (Allegro hands out a new refresh token with every refresh, which the caller must save
//! before using), the order event journal (`GET /order/events?from=<id>`, in order, kept
//! 60 days) and the checkout form each entry names (`GET /order/checkout-forms/{id}`).

use chrono::{DateTime, Utc};
use omnigate_schemas::api::PollCredentials;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;

use super::{Change, Page, PollError, excerpt, retry_after};
use crate::store::{PollState, SecretValue};

pub const API_BASE: &str = "https://api.allegro.pl";
pub const TOKEN_URL: &str = "https://allegro.pl/auth/oauth/token";
/// Allegro's media type for its public API.
const MEDIA: &str = "application/vnd.allegro.public.v1+json";
/// Journal entries per page (Allegro allows up to 1000).
pub const PAGE: usize = 100;
/// A token is refreshed when it has less than this left.
const EARLY: chrono::Duration = chrono::Duration::minutes(5);

/// One journal entry, before its checkout form is read.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub kind: String,
    pub form_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub raw: Value,
}

pub struct Allegro<'a> {
    pub http: &'a reqwest::Client,
    pub api_base: &'a str,
    pub token_url: &'a str,
    pub credentials: &'a PollCredentials,
}

/// A digest naming the refresh token an operator gave (never the token itself).
pub fn marker(credentials: &PollCredentials) -> Option<String> {
    let token = credentials.refresh_token.as_deref()?;
    Some(hex::encode(&Sha256::digest(token.as_bytes())[..8]))
}

impl Allegro<'_> {
    /// Makes sure `state` holds an access token for five more minutes. True when it
    /// refreshed: the new refresh token is then in `state`, and the caller saves it
    /// before anything else (the old one no longer works).
    pub async fn ensure_token(
        &self,
        state: &mut PollState,
        now: DateTime<Utc>,
    ) -> Result<bool, PollError> {
        // New credentials from the operator win over the token kept from the old ones.
        let given = marker(self.credentials);
        if given.is_some() && state.credentials_marker != given {
            state.refresh_token = self.credentials.refresh_token.clone().map(SecretValue::new);
            state.access_token = None;
            state.credentials_marker = given;
        }
        let fresh = state.access_token.is_some()
            && state.access_expires_at.is_some_and(|at| at - now > EARLY);
        if fresh {
            return Ok(false);
        }
        self.refresh(state, now).await?;
        Ok(true)
    }

    async fn refresh(&self, state: &mut PollState, now: DateTime<Utc>) -> Result<(), PollError> {
        let (Some(id), Some(secret)) = (
            self.credentials.client_id.as_deref(),
            self.credentials.client_secret.as_deref(),
        ) else {
            return Err(PollError::Config(
                "credentials.client_id and client_secret are required".into(),
            ));
        };
        let Some(refresh) = state.refresh_token.as_ref() else {
            return Err(PollError::Credentials(
                "no refresh token: PATCH the source's credentials with one".into(),
            ));
        };
        let res = self
            .http
            .post(self.token_url)
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ])
            .send()
            .await
            .map_err(|e| {
                PollError::Provider(format!("cannot reach Allegro's token endpoint: {e}"))
            })?;
        let status = res.status();
        if status.as_u16() == 429 {
            return Err(PollError::RateLimited(retry_after(
                res.headers(),
                Duration::from_secs(60),
            )));
        }
        let text = super::text(res).await.map_err(PollError::Provider)?;
        // Only the OAuth error code is kept: an error body may echo what was sent.
        let code = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(excerpt))
            .unwrap_or_else(|| "no error code".into());
        if status.as_u16() == 400 || status.as_u16() == 401 {
            // invalid_grant: revoked, expired (3 months unused) or already used.
            return Err(PollError::Credentials(format!(
                "Allegro refused the refresh token (HTTP {status}, {code}): authorize the \
                 application again and PATCH the source's credentials"
            )));
        }
        if !status.is_success() {
            return Err(PollError::Provider(format!(
                "Allegro's token endpoint answered HTTP {status} ({code})"
            )));
        }
        let token: Value = serde_json::from_str(&text)
            .map_err(|_| PollError::Provider("Allegro's token answer is not JSON".into()))?;
        let access = token["access_token"].as_str().ok_or_else(|| {
            PollError::Provider("Allegro's token answer has no access_token".into())
        })?;
        // Whatever Allegro says (12 h), kept within a minute and a day.
        let lifetime = token["expires_in"]
            .as_i64()
            .unwrap_or(3600)
            .clamp(60, 86_400);
        state.access_token = Some(SecretValue::new(access));
        state.access_expires_at = Some(now + chrono::Duration::seconds(lifetime));
        if let Some(next) = token["refresh_token"].as_str() {
            state.refresh_token = Some(SecretValue::new(next));
        }
        Ok(())
    }

    /// GETs a path of the API with the access token; a 401 refreshes the token once.
    async fn get(
        &self,
        state: &mut PollState,
        path: &str,
        now: DateTime<Utc>,
        refreshed: &mut bool,
    ) -> Result<Value, PollError> {
        for attempt in 0..2 {
            let token = state
                .access_token
                .as_ref()
                .map(|t| t.expose().to_string())
                .unwrap_or_default();
            let url = format!("{}{path}", self.api_base.trim_end_matches('/'));
            let res = self
                .http
                .get(&url)
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, MEDIA)
                .send()
                .await
                .map_err(|e| PollError::Provider(format!("cannot reach Allegro: {e}")))?;
            let status = res.status();
            if status.as_u16() == 401 {
                if attempt > 0 {
                    return Err(PollError::Credentials(
                        "Allegro refused a freshly refreshed token: check the application's \
                         scopes (allegro:api:orders:read)"
                            .into(),
                    ));
                }
                // Expired early or revoked: one refresh, then the request again.
                self.refresh(state, now).await?;
                *refreshed = true;
                continue;
            }
            if status.as_u16() == 429 {
                return Err(PollError::RateLimited(retry_after(
                    res.headers(),
                    Duration::from_secs(60),
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
            return serde_json::from_str(&text)
                .map_err(|_| PollError::Provider(format!("GET {path}: the answer is not JSON")));
        }
        Err(PollError::Credentials(
            "Allegro refused a freshly refreshed token".into(),
        ))
    }

    /// The next journal entries after `state.cursor`. Without a cursor the journal is read
    /// from its oldest entry when `start_from` is given (entries before it are skipped),
    /// else only from its newest entry on. `refreshed` is set when the token changed.
    pub async fn entries(
        &self,
        state: &mut PollState,
        start_from: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        refreshed: &mut bool,
    ) -> Result<Page<Entry>, PollError> {
        if state.cursor.is_none() && start_from.is_none() {
            let stats = self
                .get(state, "/order/event-stats", now, refreshed)
                .await?;
            let head = stats["latestEvent"]["id"].as_str().map(str::to_string);
            return Ok(Page {
                changes: Vec::new(),
                more: head.is_some(),
                cursor: head,
            });
        }
        let mut path = format!("/order/events?limit={PAGE}");
        if let Some(from) = &state.cursor {
            path.push_str("&from=");
            path.push_str(
                &percent_encoding::utf8_percent_encode(from, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        let answer = self.get(state, &path, now, refreshed).await?;
        let listed = answer["events"]
            .as_array()
            .ok_or_else(|| PollError::Provider("GET /order/events: no events array".into()))?;
        let mut page = Page {
            more: listed.len() >= PAGE,
            ..Page::default()
        };
        for entry in listed {
            let (Some(id), Some(kind)) = (entry["id"].as_str(), entry["type"].as_str()) else {
                return Err(PollError::Provider(
                    "GET /order/events: an entry without id or type".into(),
                ));
            };
            page.cursor = Some(id.to_string());
            let occurred_at = entry["occurredAt"]
                .as_str()
                .and_then(crate::normalize::time::parse);
            if start_from.is_some_and(|from| occurred_at.is_some_and(|at| at < from)) {
                continue;
            }
            // An entry naming no form is written anyway, and kept in quarantine.
            let form_id = entry["order"]["checkoutForm"]["id"].as_str().unwrap_or("");
            page.changes.push(Entry {
                id: id.to_string(),
                kind: kind.to_string(),
                form_id: form_id.to_string(),
                occurred_at,
                raw: entry.clone(),
            });
        }
        Ok(page)
    }

    /// The change an entry stands for: the entry with its checkout form (read once per
    /// form and page, through `forms`).
    pub async fn change(
        &self,
        state: &mut PollState,
        entry: &Entry,
        forms: &mut HashMap<String, Value>,
        now: DateTime<Utc>,
        refreshed: &mut bool,
    ) -> Result<Change, PollError> {
        if !forms.contains_key(&entry.form_id) {
            let form = if entry.form_id.is_empty() {
                Value::Null
            } else {
                let escaped = percent_encoding::utf8_percent_encode(
                    &entry.form_id,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                let path = format!("/order/checkout-forms/{escaped}");
                match self.get(state, &path, now, refreshed).await {
                    Ok(form) => form,
                    // Gone: the entry is written without it and kept in quarantine with
                    // the reason, so one entry cannot stop the source.
                    Err(PollError::Provider(e)) if e.contains("HTTP 404") => Value::Null,
                    Err(e) => return Err(e),
                }
            };
            forms.insert(entry.form_id.clone(), form);
        }
        let body = json!({"event": entry.raw, "checkoutForm": forms[&entry.form_id]});
        Ok(Change {
            topic: entry.kind.clone(),
            id: entry.id.clone(),
            body: serde_json::to_vec(&body).map_err(|e| PollError::Provider(e.to_string()))?,
            occurred_at: entry.occurred_at,
            cursor: entry.id.clone(),
        })
    }
}
