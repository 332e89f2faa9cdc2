//! Request and response bodies of the gateway's HTTP API.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::events::Event;

/// The answer header a push endpoint sets to say that no retry can fix a delivery (it lacks
/// what the plugin needs): `omnigate-dead-letter: true` on a 4xx other than 401, 404, 408,
/// 409 and 429 (which a retry may well fix) makes it a dead letter at once.
pub const DEAD_LETTER_HEADER: &str = "omnigate-dead-letter";

/// Whether a push answer with `status` and `omnigate-dead-letter: <value>` asks for a dead
/// letter at once.
pub fn asks_for_dead_letter(status: u16, value: Option<&str>) -> bool {
    (400..500).contains(&status)
        && !matches!(status, 401 | 404 | 408 | 409 | 429)
        && value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Shop engines and marketplaces a source can be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Shopify,
    Woocommerce,
    StandardWebhooks,
    Stripe,
    Github,
    Bigcommerce,
    Etsy,
    Ecwid,
    Saleor,
    /// Unsigned: the secret is in the webhook URL.
    Ozon,
    /// Polled: the order event journal, with OAuth.
    Allegro,
    /// Polled: orders by modification time, with the shop's API token.
    Prom,
    /// Polled: orders by modification time, with a seller account's session.
    Rozetka,
    /// Unsigned: the secret is in the webhook URL.
    #[serde(rename = "mercadolibre")]
    MercadoLibre,
}

impl Provider {
    pub const ALL: [Provider; 14] = [
        Provider::Shopify,
        Provider::Woocommerce,
        Provider::StandardWebhooks,
        Provider::Stripe,
        Provider::Github,
        Provider::Bigcommerce,
        Provider::Etsy,
        Provider::Ecwid,
        Provider::Saleor,
        Provider::Ozon,
        Provider::MercadoLibre,
        Provider::Allegro,
        Provider::Prom,
        Provider::Rozetka,
    ];

    /// The wire name (`standard-webhooks`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Shopify => "shopify",
            Provider::Woocommerce => "woocommerce",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Stripe => "stripe",
            Provider::Github => "github",
            Provider::Bigcommerce => "bigcommerce",
            Provider::Etsy => "etsy",
            Provider::Ecwid => "ecwid",
            Provider::Saleor => "saleor",
            Provider::Ozon => "ozon",
            Provider::MercadoLibre => "mercadolibre",
            Provider::Allegro => "allegro",
            Provider::Prom => "prom",
            Provider::Rozetka => "rozetka",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a Standard Webhooks secret becomes the HMAC key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    /// `whsec_<base64>`: the key is the base64-decoded part (the specification's rule).
    #[default]
    Base64,
    /// The secret's own UTF-8 bytes are the key (BigCommerce and similar senders).
    Raw,
}

/// Per-source verification options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SourceOptions {
    /// `standard-webhooks` and `etsy`: how the secret becomes the key (default `base64`;
    /// `bigcommerce` always uses the secret's own bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_encoding: Option<KeyEncoding>,
    /// Replay window in seconds for schemes that sign a timestamp (default 300, at most
    /// 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 86400))]
    pub tolerance_s: Option<u64>,
    /// `saleor`: the shop's JWKS (`{"keys": [...]}`), for verifying its JWS signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub jwks: Option<Value>,
    /// `saleor`: where to fetch the JWKS (`https://<shop>/.well-known/jwks.json`); cached,
    /// refetched when a signature names an unknown key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// `saleor`: accept Saleor's deprecated hex HMAC-SHA256 signature, keyed with the
    /// source's `secret`, instead of its JWS. Only without `jwks`/`jwks_url`: a source
    /// verified by public keys never falls back to a shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_hmac: Option<bool>,
    /// The shop's language (a BCP 47 tag: `uk`, `pl`, `en-US`): shipment and return events
    /// whose order says none carry it as their `locale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", max_length = 35)
    )]
    pub locale: Option<String>,
    /// `ozon` and `mercadolibre` (unsigned): the networks deliveries may come from (CIDR,
    /// e.g. `195.34.21.0/24`; at most 32). Without it any address that knows the URL may
    /// send. Behind a proxy, see `OMNIGATE_TRUSTED_PROXIES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_items = 32))]
    pub allow_cidrs: Option<Vec<String>>,
    /// Poll sources: the provider API's base URL, when not its production one (Allegro's
    /// sandbox `https://api.allegro.pl.allegrosandbox.pl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = "uri", max_length = 2048))]
    pub api_base: Option<String>,
    /// Poll sources: the OAuth token endpoint, when not the provider's production one
    /// (Allegro's sandbox `https://allegro.pl.allegrosandbox.pl/auth/oauth/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = "uri", max_length = 2048))]
    pub token_url: Option<String>,
    /// Poll sources: seconds between polls once caught up (default 30, 1 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub poll_interval_secs: Option<u64>,
    /// Thin push sources (`bigcommerce`, `ecwid`, `etsy`, `mercadolibre`, and
    /// `standard-webhooks` bridges of Medusa): where the gateway reads
    /// the full resource a thin event names, with the `credentials` given beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiAccess>,
    /// Poll sources: read the changes from this time on (RFC 3339) at the first poll;
    /// by default only what happens from the source's creation on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub start_from: Option<String>,
}

/// Where a thin source's resources are read (the token is in the source's write-only
/// `credentials`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiAccess {
    /// `bigcommerce`: the store hash (`stores/{store_hash}` in its API's paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9]{1,64}$"))]
    pub store_hash: Option<String>,
    /// `etsy`: the shop id; only its receipts are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{1,20}$"))]
    pub shop_id: Option<String>,
    /// `ecwid`: the store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{1,20}$"))]
    pub store_id: Option<String>,
    /// The API's base URL when not the provider's production one (a sandbox, a local
    /// fake): `https` unless the gateway allows `http` (`OMNIGATE_POLL_ALLOW_HTTP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Reads a minute this source's enrichment may make in each gateway process
    /// (default 60, 1 to 6000); more wait their turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 6000))]
    pub per_minute: Option<u32>,
}

/// How a thin source's enrichment is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrichmentProgress {
    /// Reads that failed in a row (0 once one succeeds).
    pub consecutive_failures: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_success_at: Option<String>,
    /// The last failure (kept after a recovery, to compare with the success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_error_at: Option<String>,
}

/// How a source's changes reach the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// The provider posts webhooks to `webhook_path`.
    #[default]
    Push,
    /// The gateway reads the provider's API (`allegro`, `prom`, `rozetka`).
    Poll,
}

/// What a poll source's API needs. Write-only: sealed at rest, never returned.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PollCredentials {
    /// Allegro: the application's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Allegro: the application's client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Allegro: a refresh token from the shop owner's authorization of the application
    /// (the gateway keeps the newer ones Allegro hands out with every refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Prom.ua: the shop's API token (settings → API tokens, with access to orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Rozetka: the seller account's login (a manager of the shop with access to orders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Rozetka: that account's password, as typed (the gateway base64-encodes it for
    /// Rozetka's login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for PollCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("PollCredentials")
            .field("client_id", &self.client_id.as_ref().map(|_| "***"))
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Where a poll source got to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PollProgress {
    /// Whether a gateway process holds the source's poll lease now.
    pub polling: bool,
    /// Where the next read starts (the provider's event id or modification time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_success_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_error_at: Option<String>,
    /// Seconds between the newest change read and now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// Changes read and turned into events so far.
    pub changes: u64,
}

/// `POST /v1/sources`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenant": "maysternia-hlyny",
    "provider": "shopify",
    "secret": "shpss_0123456789abcdef",
    "name": "Shopify main shop"
})))]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// The shop (tenant) whose log receives this source's events.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", min_length = 1, max_length = 128)
    )]
    pub tenant: String,
    pub provider: Provider,
    /// The signing secret, exactly as the provider shows it (at least 16 bytes). Write-only.
    /// Required for every HMAC scheme; a `saleor` source verified by its JWKS takes none.
    /// For the unsigned `ozon` and `mercadolibre` it is the secret in the webhook URL
    /// (16–128 of `A-Za-z0-9_-`); without one the gateway makes one, shown once in
    /// `webhook_path`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 16, max_length = 1024))]
    pub secret: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub options: Option<SourceOptions>,
    /// `poll` for providers the gateway reads (`allegro`; the default for them); `push`
    /// (the default) for the others.
    #[serde(default)]
    pub mode: Option<SourceMode>,
    /// A poll source's API credentials (instead of `secret`), or a thin source's API
    /// token (beside `secret`, with `options.api`). Write-only.
    #[serde(default)]
    pub credentials: Option<PollCredentials>,
}

/// `PATCH /v1/sources/{id}`. A new `secret` becomes current; the previous current secret
/// stays valid until `expires_at` (default: 24 hours from now).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "secret": "shpss_fedcba9876543210",
    "expires_at": "2025-03-15T09:00:00Z"
})))]
#[serde(deny_unknown_fields)]
pub struct UpdateSource {
    #[serde(default)]
    pub name: Option<String>,
    /// A new signing secret (at least 16 bytes).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 16, max_length = 1024))]
    pub secret: Option<String>,
    /// RFC 3339: until when the previous secret stays valid (only with a new `secret`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub options: Option<SourceOptions>,
    /// A poll source's new API credentials, or a thin source's new API token (they
    /// replace the old ones at once).
    #[serde(default)]
    pub credentials: Option<PollCredentials>,
}

/// A secret as the API shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretInfo {
    pub created_at: String,
    /// Absent for the current secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A connected shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "src_7m3kq9x2v8w4",
    "tenant": "maysternia-hlyny",
    "provider": "shopify",
    "name": "Shopify main shop",
    "webhook_path": "/v1/webhooks/src_7m3kq9x2v8w4",
    "options": {},
    "secrets": [{"created_at": "2025-03-14T09:00:00Z"}],
    "created_at": "2025-03-14T09:00:00Z",
    "updated_at": "2025-03-14T09:00:00Z"
})))]
pub struct SourceView {
    pub id: String,
    pub tenant: String,
    pub provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the provider must POST its webhooks. For the unsigned `ozon` and
    /// `mercadolibre` the path ends in the URL secret, shown only in the answer that set it
    /// (creation, or a PATCH with a new `secret`); elsewhere it ends in `{url_secret}`.
    pub webhook_path: String,
    /// `webhook_path` on the gateway's public address, when it is configured
    /// (`OMNIGATE_PUBLIC_URL`): the URL to paste into the shop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = "uri"))]
    pub webhook_url: Option<String>,
    pub options: SourceOptions,
    /// The secrets that currently verify deliveries, newest first (values are write-only).
    pub secrets: Vec<SecretInfo>,
    /// `push` (webhooks) or `poll` (the gateway reads the provider's API).
    #[serde(default)]
    pub mode: SourceMode,
    /// A poll source's progress: cursor, last success, last error, lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollProgress>,
    /// A thin source with `options.api`: how reading its resources is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<EnrichmentProgress>,
    /// Webhooks it was sent over the last hour, by outcome, and when the last arrived
    /// (lists and reads of sources; absent when the counts could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<SourceDeliveries>,
    pub created_at: String,
    pub updated_at: String,
}

/// A source's webhooks over the last hour, summed over every gateway process (each adds
/// its counts every few seconds: `OMNIGATE_TALLY_REPORT_MS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "window_minutes": 60,
    "outcomes": {"accepted": 118, "duplicate": 3, "invalid_signature": 1},
    "last_delivery_at": "2025-03-14T09:26:55.412Z"
})))]
pub struct SourceDeliveries {
    pub window_minutes: u32,
    /// Deliveries per outcome, as `omnigate_webhooks_total` labels them (`accepted`,
    /// `duplicate`, `quarantined`, `spooled`, `invalid_signature`, `stale`, …); outcomes
    /// with none are left out.
    pub outcomes: BTreeMap<String, u64>,
    /// The last delivery, whatever its outcome (kept past the hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_delivery_at: Option<String>,
}

/// 202: the delivery was written to the tenant log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"event_ids": ["evt_0b7f6c0a4d2e5b1c9a8f7e6d5c4b3a29"]})))]
pub struct Accepted {
    pub event_ids: Vec<String>,
}

/// 200: this delivery was already written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"duplicate": true})))]
pub struct Duplicate {
    pub duplicate: bool,
}

/// 202: verified but not normalizable; kept byte-exact in quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"quarantined": true, "quarantine_id": "q7-1741944415000-0"})))]
pub struct Quarantined {
    pub quarantined: bool,
    pub quarantine_id: String,
}

/// 202: verified and written to the gateway's local spool because the store could not
/// take it in time; it is written to the log, in arrival order, once the store answers
/// again (its events then appear as for any accepted delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"spooled": true})))]
pub struct Spooled {
    pub spooled: bool,
}

/// 200: a provider handshake (creation ping), answered and stored nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"handshake": true})))]
pub struct Handshake {
    pub handshake: bool,
}

/// A page of a tenant's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// Pass as `after` to read on (present whenever anything was read). At the end of the
    /// log it is where new events will follow: keep it to poll for them. Newest first
    /// (`order=newest_first`), pass it as `before` for older events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when this page reached the end of the log (or of `since`/`until`): nothing
    /// more for now. A page can be short (even empty) and not done, when the read stopped
    /// after skipping many other tenants' events of a shared partition: read on from `next`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub done: bool,
    /// Newest first without `before`: the log position of the newest entry read. Pass it as
    /// `after` (oldest first) to follow the events written since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
}

/// A verified payload that could not be normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineEntry {
    pub id: String,
    pub tenant: String,
    pub source_id: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Why it could not be normalized; names the field where one is at fault.
    pub reason: String,
    pub received_at: String,
    /// The request headers as received (names lower-case).
    pub headers: BTreeMap<String, String>,
    /// The body, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The exact bytes received, base64.
    pub body_base64: String,
    /// Set once a replay has turned it into events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_event_ids: Option<Vec<String>>,
}

/// A quarantine entry as `GET /v1/quarantine` lists it: without headers and body (fetch
/// those with `GET /v1/quarantine/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineSummary {
    pub id: String,
    pub tenant: String,
    pub source_id: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Why it could not be normalized; names the field where one is at fault.
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub received_at: String,
    /// Length of the body kept.
    pub body_bytes: u64,
    /// Set once a replay has turned it into events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_event_ids: Option<Vec<String>>,
}

/// A canonical event the router could not write to a plugin's inbox because Redis kept
/// refusing it; set aside so the rest of its partition went on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouterDeadLetter {
    /// `r<partition>-<ms>-<seq>`.
    pub id: String,
    pub plugin_id: String,
    pub event_id: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// What Redis answered.
    pub reason: String,
}

/// `GET /v1/router/dead-letters`: oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouterDeadLetterPage {
    pub dead_letters: Vec<RouterDeadLetter>,
    /// Pass as `after` for the next page (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when there is nothing after this page.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub done: bool,
}

/// `POST /v1/router/dead-letters/{id}/replay`: the event is in the plugin's inbox again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouterReplayed {
    pub plugin_id: String,
    pub event_id: String,
}

/// `GET /v1/sources`: in id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourcePage {
    pub sources: Vec<SourceView>,
    /// Pass as `after` for the next page (absent when the list is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when there is nothing after this page.
    pub done: bool,
}

/// `GET /v1/plugins`: in id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginPage {
    pub plugins: Vec<PluginView>,
    /// Pass as `after` for the next page (absent when the list is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when there is nothing after this page.
    pub done: bool,
}

/// `GET /v1/plugins/{id}/installations`: in tenant order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallationPage {
    pub installations: Vec<InstallationView>,
    /// Pass as `after` for the next page (absent when the list is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when there is nothing after this page.
    pub done: bool,
}

/// `GET /v1/quarantine`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantinePage {
    pub entries: Vec<QuarantineSummary>,
    /// Pass as `before` for the next (older) page; absent when nothing was listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when there is nothing older.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub done: bool,
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "type": "https://omnigate.dev/problems/invalid-signature",
    "title": "Signature verification failed",
    "status": 401,
    "detail": "The webhook signature is missing or does not match any of the source's secrets."
})))]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Problem-specific extra members (e.g. `errors`).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extensions: BTreeMap<String, Value>,
}

/// The stable cause of a problem: the last segment of its `type` URI
/// (`https://omnigate.dev/problems/<slug>`). Clients match on this, never on `title` or
/// `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    SourceNotFound,
    InvalidSignature,
    TimestampOutsideTolerance,
    StaleDelivery,
    RateLimited,
    BodyTimeout,
    PayloadTooLarge,
    Unauthorized,
    NotFound,
    Forbidden,
    MalformedBody,
    ValidationFailed,
    InvalidQuery,
    Conflict,
    MethodNotAllowed,
    ReplayFailed,
    StoreUnavailable,
    /// The quarantine is at its cap (entries or bytes): a verified payload that cannot be
    /// mapped is refused rather than an older one evicted. Discard or replay entries.
    QuarantineFull,
    Internal,
}

impl ProblemKind {
    /// The prefix of every problem `type`.
    pub const BASE: &'static str = "https://omnigate.dev/problems/";

    /// Every kind, for tests and documentation.
    pub const ALL: [ProblemKind; 19] = [
        Self::SourceNotFound,
        Self::InvalidSignature,
        Self::TimestampOutsideTolerance,
        Self::StaleDelivery,
        Self::RateLimited,
        Self::BodyTimeout,
        Self::PayloadTooLarge,
        Self::Unauthorized,
        Self::NotFound,
        Self::Forbidden,
        Self::MalformedBody,
        Self::ValidationFailed,
        Self::InvalidQuery,
        Self::Conflict,
        Self::MethodNotAllowed,
        Self::ReplayFailed,
        Self::StoreUnavailable,
        Self::QuarantineFull,
        Self::Internal,
    ];

    /// The `type` URI's last segment.
    pub fn slug(self) -> &'static str {
        match self {
            Self::SourceNotFound => "source-not-found",
            Self::InvalidSignature => "invalid-signature",
            Self::TimestampOutsideTolerance => "timestamp-outside-tolerance",
            Self::StaleDelivery => "stale-delivery",
            Self::RateLimited => "rate-limited",
            Self::BodyTimeout => "body-timeout",
            Self::PayloadTooLarge => "payload-too-large",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not-found",
            Self::Forbidden => "forbidden",
            Self::MalformedBody => "malformed-body",
            Self::ValidationFailed => "validation-failed",
            Self::InvalidQuery => "invalid-query",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::ReplayFailed => "replay-failed",
            Self::StoreUnavailable => "store-unavailable",
            Self::QuarantineFull => "quarantine-full",
            Self::Internal => "internal",
        }
    }

    /// The whole `type` URI.
    pub fn type_uri(self) -> String {
        format!("{}{}", Self::BASE, self.slug())
    }

    /// The kind a `type` URI names, if it is one of these.
    pub fn from_type_uri(uri: &str) -> Option<Self> {
        let slug = uri.strip_prefix(Self::BASE)?;
        Self::ALL.into_iter().find(|k| k.slug() == slug)
    }
}

impl Problem {
    /// The stable cause of this problem, when it is one the gateway defines.
    pub fn kind(&self) -> Option<ProblemKind> {
        ProblemKind::from_type_uri(&self.problem_type)
    }
}

/// `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok` (`/healthz`), `ready`, or `degraded` (`/readyz`: the store is unreachable but
    /// the spool takes deliveries, or the spool still holds deliveries to drain).
    pub status: String,
    /// `reachable` or `unreachable` (`/readyz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// What the local spool holds (`/readyz`, when the gateway has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolHealth>,
}

/// The local spool, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpoolHealth {
    /// Deliveries waiting to be written to the store.
    pub records: u64,
    /// Bytes of spool files on disk.
    pub bytes: u64,
    /// When the oldest waiting delivery was received (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub oldest_received_at: Option<String>,
}

/// One entry of `GET /v1/event-types`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventTypeInfo {
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub description: String,
    /// The JSON Schema (2020-12) of the whole event.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub schema: Value,
}

/// `GET /v1/status`: what an operator checks first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "store": "reachable",
    "spool": {"records": 0, "bytes": 0},
    "router": [{"partition": 0, "unrouted": 0, "last_written_at": "2025-03-14T09:26:55.412Z"}]
})))]
pub struct GatewayStatus {
    /// `reachable` or `unreachable` (the store did not answer a ping within half a second).
    pub store: String,
    /// The local spool, when the gateway has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolHealth>,
    /// How far the router is behind, per log partition (empty when the store is
    /// unreachable or its progress could not be read within two seconds).
    pub router: Vec<PartitionStatus>,
}

/// The router's progress on one partition of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionStatus {
    pub partition: u32,
    /// Log entries not routed to plugins yet (never taken, or taken and not finished).
    pub unrouted: u64,
    /// When the partition's newest entry was written (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_written_at: Option<String>,
}

/// `GET /v1/providers`: what connecting a shop of each provider takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderList {
    pub providers: Vec<ProviderInfo>,
}

/// One provider: how its deliveries are verified and what a new source of it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "provider": "shopify",
    "title": "Shopify",
    "mode": "push",
    "verification": "Base64 HMAC-SHA256 of the raw body in X-Shopify-Hmac-Sha256, keyed with the app's client secret",
    "fields": [{"name": "secret", "kind": "secret", "required": true,
                "description": "The app's client secret (Partner Dashboard → app → Client credentials)"}],
    "topics": ["orders/create", "orders/updated"],
    "url_secret": false
})))]
pub struct ProviderInfo {
    pub provider: Provider,
    /// The provider's name as people write it.
    pub title: String,
    pub mode: SourceMode,
    /// How a delivery is told genuine.
    pub verification: String,
    /// The members of `POST /v1/sources` this provider takes besides `tenant`, `provider`
    /// and `name`.
    pub fields: Vec<ProviderField>,
    /// Topics mapped to canonical events (others are quarantined).
    pub topics: Vec<String>,
    /// The provider signs nothing: the webhook URL ends in the source's secret, shown only
    /// in the answer that set it.
    pub url_secret: bool,
}

/// A member of `POST /v1/sources`, by its dotted path (`options.api.store_hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderField {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    pub description: String,
    /// A value of the right form (never a real secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

/// How a field's value is written: `secret` is write-only text, `json` a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Secret,
    Text,
    Url,
    Integer,
    Boolean,
    Json,
}

/// `GET /v1/event-types`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventTypeList {
    pub event_types: Vec<EventTypeInfo>,
    /// Shared definitions referenced by the event schemas (`common.schema.json`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub common: Value,
}

/// The 202 answer of the webhook endpoint: written, kept in quarantine, or spooled
/// during a store outage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum IngestAccepted {
    Written(Accepted),
    Quarantined(Quarantined),
    Spooled(Spooled),
}

/// The 200 answer of the webhook endpoint: a duplicate, or a provider handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum IngestOk {
    Duplicate(Duplicate),
    Handshake(Handshake),
}

/// What an installed plugin may do in a shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Receive the shop's events the plugin subscribed to.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Publish the plugin's own event types into the shop's log.
    #[serde(rename = "events:publish")]
    EventsPublish,
    /// See personal data: contact data, addresses, free text, tracking and attachment URLs,
    /// everything an event type's schema marks `x-pii: true` (removed otherwise).
    #[serde(rename = "customer_pii")]
    CustomerPii,
}

/// An event type a plugin publishes, with the JSON Schema its `data` must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishedType {
    /// Namespaced, e.g. `loyalty.points.awarded`.
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", max_length = 100)
    )]
    pub event_type: String,
    /// JSON Schema (2020-12) of the event's `data`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub schema: Value,
}

/// `POST /v1/plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Loyalty points",
    "event_types": ["order.paid", "refund.created", "order.cancelled"],
    "publishes": [{"type": "loyalty.points.changed", "schema": {"type": "object"}}]
})))]
#[serde(deny_unknown_fields)]
pub struct CreatePlugin {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: String,
    /// Event types to receive: exact (`order.paid`) or a family (`order.*`).
    #[cfg_attr(feature = "openapi", schema(inline, value_type = Vec<SubscriptionText>))]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub publishes: Vec<PublishedType>,
    /// How the plugin receives its events: pulled from its inbox (the default) or pushed
    /// to its URL, signed per Standard Webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// How a plugin receives its events: `pull` (it long-polls `POST /v1/inbox/pull`) or
/// `push` (the gateway POSTs each event to `url`, signed per Standard Webhooks with the
/// plugin's `whsec_` signing secret). A plugin is one or the other; both keep the same
/// inbox, retries, dead letters and replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "mode": "push", "url": "https://loyalty.example.com/omnigate/webhooks", "max_in_flight": 10
})))]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub mode: DeliveryMode,
    /// Where pushes go (`push` only): `https`, a public host, no credentials or fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048, format = "uri"))]
    pub url: Option<String>,
    /// Most pushes in flight at once per gateway process (`push` only; default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max_in_flight: Option<u32>,
}

impl Delivery {
    /// Push delivery to `url`, with the default `max_in_flight`.
    pub fn push(url: impl Into<String>) -> Delivery {
        Delivery {
            mode: DeliveryMode::Push,
            url: Some(url.into()),
            max_in_flight: None,
        }
    }
}

/// See [`Delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    #[default]
    Pull,
    Push,
}

/// How a push plugin's delivery is set up and doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub mode: DeliveryMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Paused by an operator (`POST /v1/plugins/{id}/delivery/pause`): events wait in the
    /// inbox until it is resumed. RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub paused_at: Option<String>,
    /// Signing secrets that currently sign pushes (ids and dates only; during a rotation's
    /// grace period each push carries a signature by each).
    #[serde(default)]
    pub signing_secrets: Vec<KeyInfo>,
    /// Each endpoint pushes went to (the plugin's URL, and installations' own URLs), with
    /// its health (on `GET /v1/plugins/{id}` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointStatus>,
}

/// How one push endpoint is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointStatus {
    pub url: String,
    pub status: EndpointState,
    /// Failures in a row.
    pub consecutive_failures: u64,
    /// RFC 3339: since when every push failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub failing_since: Option<String>,
    /// The last failure: the status or error, and a short excerpt of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_error_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub last_success_at: Option<String>,
}

/// `healthy`: pushes succeed (or few failed); `failing`: every push failed for longer than
/// the breaker's threshold, so it gets one probe at a time, spaced out, until one
/// succeeds; `paused`: an operator paused delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndpointState {
    Healthy,
    Failing,
    Paused,
}

/// `PATCH /v1/plugins/{id}`: each field given replaces the registered one; the others stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "event_types": ["order.paid", "refund.created", "order.cancelled", "shipment.updated"]
})))]
#[serde(deny_unknown_fields)]
pub struct UpdatePlugin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, pattern = r"\S")
    )]
    pub name: Option<String>,
    /// Event types to receive, replacing the registered list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(inline, value_type = Option<Vec<SubscriptionText>>))]
    pub event_types: Option<Vec<String>>,
    /// Event types the plugin publishes, replacing the registered list. Namespaces already
    /// claimed stay the plugin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publishes: Option<Vec<PublishedType>>,
    /// How it receives events. Switching to `push` creates a signing secret (in the
    /// answer, once); changing the URL keeps the secret; back to `pull` drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// 200 of `PATCH /v1/plugins/{id}`: the plugin, and the signing secret when the change
/// created one (switching to push), shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginUpdated {
    #[serde(flatten)]
    pub plugin: PluginView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// An API key as the API shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub id: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A registered plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginView {
    pub id: String,
    pub name: String,
    pub event_types: Vec<String>,
    pub publishes: Vec<PublishedType>,
    /// Keys that currently authenticate the plugin.
    pub keys: Vec<KeyInfo>,
    pub created_at: String,
    /// What its inbox holds (on `GET /v1/plugins/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxStats>,
    /// How it receives events (absent: pulled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryView>,
}

/// What a plugin's inbox holds, read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxStats {
    /// Events routed to the plugin and not handed out yet.
    pub waiting: u64,
    /// Handed out and not acknowledged: being handled, or handed back to be retried.
    pub in_flight: u64,
    /// Dead letters (`GET /v1/inbox/dead`).
    pub dead_letters: u64,
}

/// 201 of `POST /v1/plugins`: the plugin and its API key, shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PluginCreated {
    #[serde(flatten)]
    pub plugin: PluginView,
    /// Shown once; stored hashed.
    pub api_key: String,
    /// A push plugin's signing secret (`whsec_…`), shown once: what its endpoint verifies
    /// pushes with (Standard Webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// A new signing secret of a push plugin, shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningSecretCreated {
    pub secret_id: String,
    pub signing_secret: String,
}

/// `POST /v1/plugins/{id}/keys`: a new key; the others stay valid until
/// `previous_expires_at` (default: 24 hours), or stop at once with `revoke_previous`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"previous_expires_at": "2025-03-15T09:00:00Z"})))]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    #[serde(default)]
    pub revoke_previous: bool,
    /// RFC 3339.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub previous_expires_at: Option<String>,
}

/// A new API key, shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyCreated {
    pub key_id: String,
    pub api_key: String,
}

/// `POST /v1/plugins/{id}/installations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenant": "maysternia-hlyny", "scopes": ["events:read", "events:publish"]
})))]
#[serde(deny_unknown_fields)]
pub struct CreateInstallation {
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", min_length = 1, max_length = 128)
    )]
    pub tenant: String,
    pub scopes: Vec<Scope>,
    /// A push plugin's endpoint for this shop, instead of the plugin's URL (same rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048, format = "uri"))]
    pub push_url: Option<String>,
}

/// A plugin installed in a shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstallationView {
    pub plugin_id: String,
    pub tenant: String,
    pub scopes: Vec<Scope>,
    pub installed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_url: Option<String>,
}

/// `POST /v1/inbox/pull`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"max": 20, "wait_ms": 20000})))]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// At most this many deliveries (default 10, at most 100).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    pub max: Option<usize>,
    /// Wait up to this long for a delivery when none is ready (default 0, at most 30000).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 30000))]
    pub wait_ms: Option<u64>,
}

/// One event handed to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxDelivery {
    /// Acknowledge (or nack) with this.
    pub receipt: String,
    /// 1 on the first delivery; grows with each redelivery.
    pub attempt: u64,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    pub deliveries: Vec<InboxDelivery>,
}

/// `POST /v1/inbox/ack`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"receipts": ["1795384621392-0", "1795384621392-1"]})))]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[cfg_attr(feature = "openapi", schema(max_items = 1000, inline, value_type = Vec<ReceiptText>))]
    pub receipts: Vec<String>,
}

/// `POST /v1/inbox/nack`: hand these out again after `retry_after_ms` (default 0), or, with
/// `dead: true`, move them to the dead letters at once (a failure no retry can fix). A
/// `reason` is kept with each delivery, per attempt, and shown with its dead letter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"receipts": ["1795384621392-0"], "retry_after_ms": 60000, "reason": "CRM answered 503"})))]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    #[cfg_attr(feature = "openapi", schema(max_items = 1000, inline, value_type = Vec<ReceiptText>))]
    pub receipts: Vec<String>,
    /// At most a day (86400000); longer than the visibility timeout is fine.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 86_400_000))]
    pub retry_after_ms: Option<u64>,
    /// Why (at most 1000 characters): kept per attempt, shown with the dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub reason: Option<String>,
    /// Give up: to the dead letters now instead of after the last attempt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dead: bool,
    /// Not tried: hand it back without counting the attempt (it waits behind an earlier
    /// event of its subject that is being retried); no reason is kept. Not with `dead`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub defer: bool,
}

/// Why a delivery was handed back, on one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryFailure {
    pub attempt: u64,
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub at: String,
}

/// How many receipts were still pending (and so were acknowledged or nacked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settled {
    pub settled: u64,
}

/// A delivery that failed every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterView {
    pub id: String,
    pub attempts: u64,
    pub event: Event,
    /// The reasons the plugin gave when it handed the delivery back (the last 10), oldest
    /// first; empty when it gave none (or let the visibility timeout run out).
    #[serde(default)]
    pub failures: Vec<DeliveryFailure>,
}

/// `GET /v1/inbox/dead`: oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `after` for the next page (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when there is nothing after this page.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub done: bool,
}

/// The former name of [`DeadLetterPage`].
#[deprecated(note = "renamed DeadLetterPage")]
pub type DeadLetters = DeadLetterPage;

/// `POST /v1/inbox/dead/replay`: the given dead letters (all of them without `ids`) go
/// back to the inbox as new deliveries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"ids": ["1795384700000-0"]})))]
#[serde(deny_unknown_fields)]
pub struct ReplayDead {
    /// At most 1000; a repeated id counts once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 1000, inline, value_type = Option<Vec<ReceiptText>>))]
    pub ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replayed {
    pub replayed: u64,
}

/// `POST /v1/events`: a plugin publishes one of its own event types into a shop's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenant": "maysternia-hlyny",
    "type": "loyalty.points.changed",
    "subject": "customer/7402918365521",
    "data": {"customer_id": "7402918365521", "balance": 230},
    "idempotency_key": "order-5938201746113-points"
})))]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", min_length = 1, max_length = 128)
    )]
    pub tenant: String,
    #[serde(rename = "type")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", max_length = 100)
    )]
    pub event_type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Value,
    /// Defaults to `plugin/<plugin id>`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub subject: Option<String>,
    /// RFC 3339; defaults to now.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub occurred_at: Option<String>,
    /// The same key publishes once per plugin and shop (within the dedupe window); the
    /// answer repeats the id.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub idempotency_key: Option<String>,
}

impl PublishEvent {
    /// A publication of `event_type` with `data` into `tenant`'s log; subject, time and
    /// idempotency key take their defaults until set.
    pub fn new(tenant: impl Into<String>, event_type: impl Into<String>, data: Value) -> Self {
        PublishEvent {
            tenant: tenant.into(),
            event_type: event_type.into(),
            data,
            subject: None,
            occurred_at: None,
            idempotency_key: None,
        }
    }

    /// What the event is about (`customer/123`); default `plugin/<plugin id>`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// When it happened (RFC 3339); default: when the gateway takes it.
    pub fn occurred_at(mut self, at: impl Into<String>) -> Self {
        self.occurred_at = Some(at.into());
        self
    }

    /// Publishes once per plugin and shop for this key (e.g. `<event id>:points`), so a
    /// retried handler does not publish twice.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    pub event_id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// `POST /v1/inbox/replay`: deliver a shop's events again, from a point in time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenant": "maysternia-hlyny", "from": "2025-03-14T00:00:00Z"
})))]
#[serde(deny_unknown_fields)]
pub struct ReplayLog {
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", min_length = 1, max_length = 128)
    )]
    pub tenant: String,
    /// RFC 3339: events written at or after this time.
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub from: String,
    /// At most this many events per call (default and maximum 10000); continue from `next`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    pub limit: Option<usize>,
    /// A `next` from an earlier answer.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9]{1,19}-[0-9]{1,19}$"))]
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogReplayed {
    pub replayed: u64,
    /// Present unless the end of the log was reached: pass it as `after` to go on (also
    /// after an answer that replayed nothing, when the read stopped after skipping many
    /// other tenants' events of a shared partition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// True when the end of the log was reached.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub done: bool,
}

/// A receipt or dead-letter id (`<ms>-<seq>`), for the OpenAPI document.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = r"^[0-9]{1,19}-[0-9]{1,19}$")]
pub struct ReceiptText(pub String);

/// An event type to subscribe to: exact (`order.paid`) or a family (`order.*`).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(pattern = r"^(?=.{1,100}$)[a-z0-9_]+(\.([a-z0-9_]+|\*))+$")]
pub struct SubscriptionText(pub String);

#[cfg(test)]
mod problem_kind_tests {
    use super::ProblemKind;

    #[test]
    fn every_kind_round_trips_through_its_type_uri() {
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::from_type_uri(&kind.type_uri()), Some(kind));
        }
        assert_eq!(ProblemKind::from_type_uri("about:blank"), None);
        assert_eq!(
            ProblemKind::from_type_uri("https://omnigate.dev/problems/no-such-thing"),
            None
        );
    }
}

#[cfg(test)]
mod dead_letter_tests {
    use super::asks_for_dead_letter;

    #[test]
    fn only_an_explicit_true_on_a_lasting_4xx_asks_for_a_dead_letter() {
        assert!(asks_for_dead_letter(422, Some("true")));
        assert!(asks_for_dead_letter(400, Some(" TRUE ")));
        assert!(!asks_for_dead_letter(422, Some("false")));
        assert!(!asks_for_dead_letter(422, None));
        for fixable in [401, 404, 408, 409, 429] {
            assert!(!asks_for_dead_letter(fixable, Some("true")), "{fixable}");
        }
        assert!(!asks_for_dead_letter(500, Some("true")));
        assert!(!asks_for_dead_letter(302, Some("true")));
    }
}
