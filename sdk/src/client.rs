//! The HTTP client.

use omnigate_schemas::api::{
    AckRequest, CreateInstallation, CreatePlugin, DeadLetterPage, InboxDelivery, InstallationView,
    LogReplayed, NackRequest, PluginCreated, PluginView, Problem, PublishEvent, Published,
    PullRequest, PullResponse, ReplayDead, ReplayLog, Replayed, Settled, UpdatePlugin,
};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

use crate::declared::Declared;

/// What can go wrong calling the gateway.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gateway answered with an error (RFC 9457 problem details).
    #[error("{status}: {}", problem.detail.as_deref().unwrap_or(&problem.title))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem document the gateway sent.
        problem: Box<Problem>,
    },
    /// The gateway could not be reached (after the retries).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer or an event did not have the expected shape.
    #[error("decode: {0}")]
    Decode(String),
    /// The client could not be built.
    #[error("configuration: {0}")]
    Config(String),
    /// A spawned runtime ended without an answer: its tokio runtime shut down first.
    #[error("the runtime task was cancelled")]
    Cancelled,
}

impl Error {
    /// The problem `type` slug (`invalid-signature`, `forbidden`, …) of an API error.
    pub fn problem_type(&self) -> Option<&str> {
        match self {
            Error::Api { problem, .. } => problem.problem_type.rsplit('/').next(),
            _ => None,
        }
    }

    /// Whether trying the same call again cannot succeed: a 4xx other than 401 (a key
    /// that rotation or an operator can fix), 404 (a proxy or a wrong URL rather than the
    /// request), 408 (timeout), 409 (conflict) and 429 (rate limit). Transport errors and
    /// 5xx may pass.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::Api { status, .. }
            if (400..500).contains(status) && !matches!(status, 401 | 404 | 408 | 409 | 429))
    }

    /// The stable cause of an API error, to match on
    /// (`Some(ProblemKind::RateLimited)`, `Some(ProblemKind::Forbidden)`, …).
    pub fn problem_kind(&self) -> Option<omnigate_schemas::api::ProblemKind> {
        match self {
            Error::Api { problem, .. } => problem.kind(),
            _ => None,
        }
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    base: String,
    token: String,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    user_agent: String,
}

impl ClientBuilder {
    /// Overall timeout of one HTTP request (default 45 s: above the longest pull wait).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a request is retried on 429, 5xx and transport errors (default 3).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first retry's delay; it doubles each time, with jitter (default 200 ms).
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The `User-Agent` header (default `omnigate-sdk-rust/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            http,
            base: self.base.trim_end_matches('/').to_string(),
            token: self.token,
            retries: self.retries,
            backoff: self.backoff,
            declared: Arc::default(),
        })
    }
}

/// The gateway's API for a plugin (with its API key) or an operator (with the admin
/// token). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    retries: u32,
    backoff: Duration,
    /// What the plugin publishes, fetched once (see [`crate::declared`]).
    declared: Arc<tokio::sync::OnceCell<Arc<Declared>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `base_url` of the gateway and the plugin's API key (or the admin token).
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            token: token.into(),
            timeout: Duration::from_secs(45),
            retries: 3,
            backoff: Duration::from_millis(200),
            user_agent: format!("omnigate-sdk-rust/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// A plugin's client from the environment: `OMNIGATE_URL` (default
    /// `http://127.0.0.1:8080`) and `OMNIGATE_API_KEY` (required).
    pub fn from_env() -> Result<Client, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = var("OMNIGATE_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let key = var("OMNIGATE_API_KEY").ok_or_else(|| {
            Error::Config("OMNIGATE_API_KEY (the plugin's API key) is required".into())
        })?;
        Client::builder(url, key).build()
    }

    /// The plugin's inbox.
    pub fn inbox(&self) -> Inbox<'_> {
        Inbox(self)
    }

    /// Publishing the plugin's own events.
    pub fn events(&self) -> Events<'_> {
        Events(self)
    }

    /// The plugin this client's key belongs to (`GET /v1/me`): its subscriptions and the
    /// event types it publishes, with their schemas.
    pub async fn me(&self) -> Result<PluginView, Error> {
        self.send::<(), _>(reqwest::Method::GET, "/v1/me", None)
            .await
    }

    /// The event types this plugin declared it publishes, with their schemas compiled:
    /// fetched from `GET /v1/me` on first use, then kept for the client's life (a
    /// registration changed meanwhile is seen by a new client).
    pub async fn declared(&self) -> Result<Arc<Declared>, Error> {
        self.declared
            .get_or_try_init(|| async { Ok(Arc::new(Declared::new(&self.me().await?))) })
            .await
            .cloned()
    }

    /// Operator calls (the client must hold the admin token).
    pub fn admin(&self) -> Admin<'_> {
        Admin(self)
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let retryable = match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    if status.is_success() {
                        let bytes = res.bytes().await?;
                        return serde_json::from_slice(&bytes)
                            .map_err(|e| Error::Decode(format!("{path}: {e}")));
                    }
                    let retry = status.as_u16() == 429 || status.is_server_error();
                    let problem: Problem = res.json().await.unwrap_or_else(|_| Problem {
                        problem_type: "about:blank".into(),
                        title: status.canonical_reason().unwrap_or("error").into(),
                        status: status.as_u16(),
                        detail: None,
                        instance: None,
                        extensions: Default::default(),
                    });
                    let err = Error::Api {
                        status: status.as_u16(),
                        problem: Box::new(problem),
                    };
                    if !retry || attempt >= self.retries {
                        return Err(err);
                    }
                    err
                }
                Err(e) => {
                    if attempt >= self.retries {
                        return Err(Error::Transport(e));
                    }
                    Error::Transport(e)
                }
            };
            let delay = self.backoff * 2u32.saturating_pow(attempt);
            let jitter = rand::rng().random_range(0..=delay.as_millis() as u64 / 2);
            tracing::debug!(path, attempt, error = %retryable, "retrying");
            tokio::time::sleep(delay + Duration::from_millis(jitter)).await;
            attempt += 1;
        }
    }
}

/// `client.inbox()`.
pub struct Inbox<'a>(&'a Client);

impl Inbox<'_> {
    /// Up to `max` deliveries, waiting up to `wait` for the first.
    pub async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<InboxDelivery>, Error> {
        let body = PullRequest {
            max: Some(max),
            wait_ms: Some(wait.as_millis() as u64),
        };
        let res: PullResponse = self
            .0
            .send(reqwest::Method::POST, "/v1/inbox/pull", Some(&body))
            .await?;
        Ok(res.deliveries)
    }

    /// Acknowledges handled deliveries; returns how many were still pending.
    pub async fn ack(&self, receipts: &[String]) -> Result<u64, Error> {
        let body = AckRequest {
            receipts: receipts.to_vec(),
        };
        let res: Settled = self
            .0
            .send(reqwest::Method::POST, "/v1/inbox/ack", Some(&body))
            .await?;
        Ok(res.settled)
    }

    /// Hands deliveries back, to come again after `retry_after`.
    pub async fn nack(&self, receipts: &[String], retry_after: Duration) -> Result<u64, Error> {
        self.settle(NackRequest {
            receipts: receipts.to_vec(),
            retry_after_ms: Some(retry_after.as_millis() as u64),
            ..NackRequest::default()
        })
        .await
    }

    /// Hands deliveries back, to come again after `retry_after`, saying why: the reason is
    /// kept per attempt and shown with the dead letter if the delivery never succeeds
    /// (at most 1000 characters; longer is cut).
    pub async fn nack_because(
        &self,
        receipts: &[String],
        retry_after: Duration,
        reason: &str,
    ) -> Result<u64, Error> {
        self.settle(NackRequest {
            receipts: receipts.to_vec(),
            retry_after_ms: Some(retry_after.as_millis() as u64),
            reason: Some(cut(reason)),
            ..NackRequest::default()
        })
        .await
    }

    /// Hands deliveries back untried, to come again after `retry_after` without counting
    /// an attempt (they wait behind an earlier event of their subject): however long the
    /// wait, they are not dead-lettered for it.
    pub async fn defer(&self, receipts: &[String], retry_after: Duration) -> Result<u64, Error> {
        self.settle(NackRequest {
            receipts: receipts.to_vec(),
            retry_after_ms: Some(retry_after.as_millis() as u64),
            defer: true,
            ..NackRequest::default()
        })
        .await
    }

    /// Gives up on deliveries no retry can fix: they move to the dead letters at once, with
    /// the reason (replay them with [`Inbox::replay_dead`] once the cause is fixed).
    pub async fn dead_letter(&self, receipts: &[String], reason: &str) -> Result<u64, Error> {
        self.settle(NackRequest {
            receipts: receipts.to_vec(),
            reason: Some(cut(reason)),
            dead: true,
            ..NackRequest::default()
        })
        .await
    }

    async fn settle(&self, body: NackRequest) -> Result<u64, Error> {
        let res: Settled = self
            .0
            .send(reqwest::Method::POST, "/v1/inbox/nack", Some(&body))
            .await?;
        Ok(res.settled)
    }

    /// Deliveries that failed every attempt, oldest first.
    pub async fn dead_letters(&self) -> Result<DeadLetterPage, Error> {
        self.0
            .send::<(), _>(reqwest::Method::GET, "/v1/inbox/dead", None)
            .await
    }

    /// Delivers `tenant`'s logged events from `from` (RFC 3339) again, also those from
    /// before the installation, up to `limit` per call (at most 10,000): call again with
    /// `after: next` until `done` (`POST /v1/inbox/replay`).
    pub async fn replay(&self, request: &ReplayLog) -> Result<LogReplayed, Error> {
        self.0
            .send(reqwest::Method::POST, "/v1/inbox/replay", Some(request))
            .await
    }

    /// Sends dead letters (all with `None`) back as new deliveries.
    pub async fn replay_dead(&self, ids: Option<Vec<String>>) -> Result<u64, Error> {
        let res: Replayed = self
            .0
            .send(
                reqwest::Method::POST,
                "/v1/inbox/dead/replay",
                Some(&ReplayDead { ids }),
            )
            .await?;
        Ok(res.replayed)
    }
}

/// `client.events()`.
pub struct Events<'a>(&'a Client);

impl Events<'_> {
    /// Publishes one of the plugin's declared event types into a shop's log.
    ///
    /// Without an `idempotency_key`, one is made here, before the first attempt, so a retry
    /// after a lost answer (a timeout, a 503 after the write landed) is recognised as the
    /// same publication instead of publishing twice.
    pub async fn publish(&self, event: &PublishEvent) -> Result<Published, Error> {
        if event.idempotency_key.is_some() {
            return self
                .0
                .send(reqwest::Method::POST, "/v1/events", Some(event))
                .await;
        }
        let keyed = PublishEvent {
            idempotency_key: Some(new_idempotency_key()),
            ..event.clone()
        };
        self.0
            .send(reqwest::Method::POST, "/v1/events", Some(&keyed))
            .await
    }
}

/// A nack reason as the gateway takes it: at most 1000 characters.
fn cut(reason: &str) -> String {
    match reason.char_indices().nth(1000) {
        Some((at, _)) => reason[..at].to_string(),
        None => reason.to_string(),
    }
}

/// A random idempotency key for one publication (128 bits).
fn new_idempotency_key() -> String {
    format!("sdk-{:032x}", rand::random::<u128>())
}

/// `client.admin()`.
pub struct Admin<'a>(&'a Client);

impl Admin<'_> {
    /// Registers a plugin; the answer holds its API key, shown only once.
    pub async fn register_plugin(&self, plugin: &CreatePlugin) -> Result<PluginCreated, Error> {
        self.0
            .send(reqwest::Method::POST, "/v1/plugins", Some(plugin))
            .await
    }

    /// A plugin's registration, with what its inbox holds (`inbox`).
    pub async fn plugin(&self, plugin_id: &str) -> Result<PluginView, Error> {
        self.0
            .send::<(), _>(
                reqwest::Method::GET,
                &format!("/v1/plugins/{plugin_id}"),
                None,
            )
            .await
    }

    /// Changes a plugin's name, subscriptions or published types: each field given
    /// replaces the registered one (`PATCH /v1/plugins/{id}`).
    ///
    /// ```no_run
    /// # async fn f(admin: omnigate_sdk::Client) -> Result<(), omnigate_sdk::Error> {
    /// use omnigate_sdk::api::UpdatePlugin;
    /// admin
    ///     .admin()
    ///     .update_plugin(
    ///         "plg_…",
    ///         &UpdatePlugin {
    ///             event_types: Some(vec!["order.*".into(), "shipment.updated".into()]),
    ///             ..UpdatePlugin::default()
    ///         },
    ///     )
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update_plugin(
        &self,
        plugin_id: &str,
        update: &UpdatePlugin,
    ) -> Result<PluginView, Error> {
        self.0
            .send(
                reqwest::Method::PATCH,
                &format!("/v1/plugins/{plugin_id}"),
                Some(update),
            )
            .await
    }

    /// Installs a plugin in a shop with scopes.
    pub async fn install(
        &self,
        plugin_id: &str,
        installation: &CreateInstallation,
    ) -> Result<InstallationView, Error> {
        self.0
            .send(
                reqwest::Method::POST,
                &format!("/v1/plugins/{plugin_id}/installations"),
                Some(installation),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> Error {
        Error::Api {
            status,
            problem: Box::new(
                serde_json::from_value(serde_json::json!({
                    "type": "https://omnigate.dev/problems/x", "title": "x", "status": status
                }))
                .unwrap(),
            ),
        }
    }

    #[test]
    fn only_refusals_about_the_request_itself_are_permanent() {
        for status in [400, 403, 413, 422] {
            assert!(api(status).is_permanent(), "{status}");
        }
        for status in [401, 404, 408, 409, 429, 500, 503] {
            assert!(!api(status).is_permanent(), "{status}");
        }
    }
}
