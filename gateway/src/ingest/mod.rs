//! The webhook pipeline: source → verify → identify → validate → normalize → one atomic
//! append. The HTTP handler in [`handler`] only reads the body and maps the outcome.

pub mod drain;
pub mod handler;
pub mod identity;
pub mod publish;

use chrono::{DateTime, Utc};
use omnigate_schemas::EventSource;
use omnigate_schemas::api::Provider;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::headers::Headers;
use crate::json::Json;
use crate::normalize::snapshot::Snapshot;
use crate::normalize::{self, Input, Rejection};
use crate::providers::{self, Credentials, Descriptor, Handshake, Tolerance};
use crate::spool::{Spool, SpooledDelivery};
use crate::state::AppState;
use crate::store::{
    Append, Appended, LogRecord, QuarantineId, QuarantineRecord, SnapshotWrite, SourceRecord,
    StoredSnapshot, Write, partition_of,
};
use crate::telemetry::WebhookOutcome;
use crate::verify::{self, SignedRequest};
use identity::{Identity, identify};

/// Namespace of event ids (UUID v5), fixed forever so ids stay deterministic.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f6d_6e69_6761_7465_8000_0000_0000_0001);

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted(Vec<String>),
    Duplicate,
    Quarantined {
        id: QuarantineId,
        reason: String,
    },
    /// Written to the local spool; the drainer writes it to the log later.
    Spooled,
    Handshake,
}

impl Outcome {
    /// The metric/log label.
    pub fn label(&self) -> WebhookOutcome {
        match self {
            Outcome::Accepted(_) => WebhookOutcome::Accepted,
            Outcome::Duplicate => WebhookOutcome::Duplicate,
            Outcome::Quarantined { .. } => WebhookOutcome::Quarantined,
            Outcome::Spooled => WebhookOutcome::Spooled,
            Outcome::Handshake => WebhookOutcome::Handshake,
        }
    }
}

/// The id of the `index`-th event of a delivery: a redelivery yields the same ids.
pub fn event_id(store_key: &str, index: usize) -> String {
    let name = format!("{store_key}\n{index}");
    format!(
        "evt_{}",
        Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).simple()
    )
}

/// `<source>:<key>`, hashed when long so Redis keys stay small.
fn store_key(source_id: &str, dedupe_key: &str) -> String {
    if dedupe_key.len() <= 160 {
        format!("{source_id}:{dedupe_key}")
    } else {
        format!(
            "{source_id}:h:{}",
            hex::encode(Sha256::digest(dedupe_key.as_bytes()))
        )
    }
}

/// Everything needed to turn one verified body into events.
struct Webhook<'a> {
    source_id: &'a str,
    tenant: &'a str,
    provider: &'static Descriptor,
    identity: &'a Identity,
    headers: &'a Headers,
    body: &'a Json<'a>,
    received_at: DateTime<Utc>,
    /// How long the delivery and the facts it proves are remembered.
    remember: std::time::Duration,
    shop_locale: Option<&'a str>,
}

/// The id of an event derived from a fact (`refund:53140`) rather than from a delivery:
/// every delivery that derives the fact gives it the same id.
pub fn fact_event_id(source_id: &str, fact: &str) -> String {
    let name = format!("{source_id}\nfact\n{fact}");
    format!(
        "evt_{}",
        Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).simple()
    )
}

/// The envelope as it is written to the log: [`omnigate_schemas::Event`]'s fields in its
/// order, borrowed, with the data embedded as the bytes it was serialized to.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema_version: u32,
    tenant: &'a str,
    occurred_at: &'a str,
    received_at: &'a str,
    source: &'a EventSource,
    subject: &'a str,
    data: &'a RawValue,
}

/// The delivery's topic, once the body is checked against the payload schema its topic maps
/// to. Nothing here depends on a snapshot: it runs once per delivery, not per attempt.
fn check_payload<'a>(state: &AppState, d: &Webhook<'a>) -> Result<&'a str, Rejection> {
    let topic = d.identity.topic.as_deref().ok_or_else(|| {
        Rejection::new(format!("{} delivery names no topic", d.provider.provider))
    })?;
    let resource = d.provider.resource(topic).ok_or_else(|| {
        Rejection::new(format!(
            "{} topic {topic:?} is not mapped to a canonical event",
            d.provider.provider
        ))
    })?;
    state
        .validators
        .check_payload(d.provider.provider, resource, d.body)?;
    Ok(topic)
}

/// Normalizes a checked delivery against the resource's last snapshot; every event is
/// checked against its schema before it is kept. Returns the records and the snapshot to keep.
fn build_events(
    state: &AppState,
    d: &Webhook<'_>,
    topic: &str,
    prior: Option<&Snapshot>,
) -> Result<(Vec<LogRecord>, Option<Snapshot>), Rejection> {
    let output = d.provider.normalizer.normalize(Input {
        topic,
        headers: d.headers,
        body: d.body,
        received_at: d.received_at,
        snapshot: prior,
        shop_locale: d.shop_locale,
    })?;
    let source = EventSource {
        id: d.source_id.to_string(),
        provider: d.provider.provider.to_string(),
        topic: topic.to_string(),
        delivery_id: d.identity.delivery_id.clone(),
    };
    let received_at = normalize::time::format(d.received_at);
    let records = output
        .events
        .into_iter()
        .map(|n| record(state, d.source_id, d.tenant, &source, &received_at, n))
        .collect::<Result<Vec<_>, Rejection>>()?;
    Ok((records, output.snapshot))
}

/// One event as the log keeps it: its id from the fact it reports, its envelope serialized
/// once and checked against its type's schema.
fn record(
    state: &AppState,
    source_id: &str,
    tenant: &str,
    source: &EventSource,
    received_at: &str,
    n: normalize::Normalized,
) -> Result<LogRecord, Rejection> {
    let schema_version = omnigate_schemas::catalog::event_type(n.event_type)
        .map(|t| t.schema_version)
        .ok_or_else(|| Rejection::new(format!("{} is not cataloged", n.event_type)))?;
    let id = fact_event_id(source_id, &n.fact_key());
    let envelope = Envelope {
        id: &id,
        event_type: n.event_type,
        schema_version,
        tenant,
        occurred_at: &normalize::time::format(n.occurred_at),
        received_at,
        source,
        subject: &n.subject,
        data: &n.data,
    };
    let encode = |e: serde_json::Error| Rejection::new(format!("cannot encode event: {e}"));
    // Serialized once; the schema check reads these very bytes.
    let json = serde_json::to_string(&envelope).map_err(encode)?;
    state
        .validators
        .check_event(n.event_type, &Json::parse_str(&json).map_err(encode)?)?;
    Ok(LogRecord {
        event_id: id,
        tenant: tenant.to_string(),
        event_type: n.event_type.to_string(),
        json,
    })
}

/// What became of the full events read back for a thin event.
#[derive(Debug)]
pub enum Enriched {
    /// Written (or already in the log): their ids.
    Written(Vec<String>),
    /// They do not pass their schemas: the reason.
    Rejected(Rejection),
}

/// Appends the full events the enricher read back for the thin event `thin_id` (of
/// `topic`), in one step keyed by the thin event: reading it again adds nothing, and each
/// fact the events report is kept once.
pub async fn append_enriched(
    state: &AppState,
    source: &SourceRecord,
    thin_id: &str,
    topic: &str,
    events: Vec<normalize::Normalized>,
) -> Result<Enriched> {
    let meta = EventSource {
        id: source.id.clone(),
        provider: source.provider.to_string(),
        topic: topic.to_string(),
        delivery_id: Some(format!("enriched:{thin_id}")),
    };
    let received_at = normalize::time::format(state.now());
    let records = match events
        .into_iter()
        .map(|n| record(state, &source.id, &source.tenant, &meta, &received_at, n))
        .collect::<Result<Vec<_>, Rejection>>()
    {
        Ok(records) => records,
        Err(rejection) => return Ok(Enriched::Rejected(rejection)),
    };
    let ids: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
    if records.is_empty() {
        return Ok(Enriched::Written(ids));
    }
    append(
        state,
        Append {
            partition: partition_of(&source.tenant, state.settings.partitions),
            dedupe_key: store_key(&source.id, &format!("enriched:{thin_id}")),
            // The facts a resource shows (`order.created` the first time it is read) are
            // remembered as long as kept order state is, not only the dedupe window:
            // notifications about one order come for weeks.
            dedupe_ttl: state
                .settings
                .dedupe_ttl()
                .max(state.settings.snapshot_ttl()),
            write: Write::Events(records),
            snapshot: None,
        },
    )
    .await?;
    Ok(Enriched::Written(ids))
}

/// How often a delivery is re-diffed when its resource's snapshot changes under it (several
/// deliveries about one order can arrive within milliseconds).
const SNAPSHOT_ATTEMPTS: u32 = 8;

enum Mapped {
    /// The ids written (facts the log already had are left out).
    Written(Vec<String>),
    /// Already written, or every fact it proves was already in the log; the ids it has.
    Duplicate(Vec<String>),
    Rejected(Rejection),
}

/// Normalizes `d` against the resource's kept snapshot and appends the events, the new snapshot
/// and the dedupe mark in one atomic step. A delivery that usually announces a new resource is
/// written expecting no snapshot, without reading one first: one round trip. When the store
/// has a different snapshot than expected it answers with it, and the delivery is diffed
/// again against that.
async fn map_and_append(
    state: &AppState,
    d: &Webhook<'_>,
    partition: u32,
    dedupe_key: &str,
) -> Result<Mapped> {
    let topic = match check_payload(state, d) {
        Ok(topic) => topic,
        Err(rejection) => return Ok(Mapped::Rejected(rejection)),
    };
    let snapshot_key =
        (d.provider.normalizer.snapshot_key)(topic, d.body).map(|k| format!("{}:{k}", d.source_id));
    let creates = d.provider.normalizer.creates.contains(&topic);
    let mut stored: Option<StoredSnapshot> = match &snapshot_key {
        Some(k) if !creates => state.store.get_snapshot(partition, k).await?,
        _ => None,
    };
    // Whether `stored` is what the store said (else it is the guess "none yet").
    let mut read = !creates;
    for attempt in 0..SNAPSHOT_ATTEMPTS {
        // Fields that are no snapshot of any layout count as none.
        let prior = stored
            .as_ref()
            .and_then(|s| Snapshot::from_fields(&s.fields));
        let (records, new_snapshot) = match build_events(state, d, topic, prior.as_ref()) {
            Ok(built) => built,
            Err(rejection) => return Ok(Mapped::Rejected(rejection)),
        };
        let ids: Vec<String> = records.iter().map(|r| r.event_id.clone()).collect();
        let snapshot_write = match (&snapshot_key, new_snapshot) {
            (Some(key), Some(snapshot)) => Some(SnapshotWrite {
                key: key.clone(),
                expected_version: stored.as_ref().map_or(0, |p| p.version),
                fields: snapshot.into_fields(),
                ttl: state.settings.snapshot_ttl(),
            }),
            // Nothing to write means nothing the store checks the guess "none yet" against:
            // read what is kept, and map again from it.
            (Some(key), None) if !read => {
                stored = state.store.get_snapshot(partition, key).await?;
                read = true;
                continue;
            }
            _ => None,
        };
        let appended = append(
            state,
            Append {
                partition,
                dedupe_key: dedupe_key.to_string(),
                dedupe_ttl: d.remember,
                write: Write::Events(records),
                snapshot: snapshot_write,
            },
        )
        .await?;
        match appended {
            Appended::Written { known, .. } if !ids.is_empty() && known.len() == ids.len() => {
                return Ok(Mapped::Duplicate(ids));
            }
            Appended::Written { known, .. } => {
                let written = ids.into_iter().filter(|id| !known.contains(id)).collect();
                return Ok(Mapped::Written(written));
            }
            Appended::Duplicate => return Ok(Mapped::Duplicate(ids)),
            Appended::Conflict(now) => {
                // A wrong guess costs nothing more; another writer moving the snapshot
                // between our read and our write is a race: back off a little, with
                // jitter, so racing deliveries do not collide again.
                if read {
                    let ms = rand::random_range(0..(1u64 << (attempt + 1).min(6)));
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                stored = now;
                read = true;
            }
        }
    }
    Err(Error::Contended(
        "the resource changed under every attempt; retry".into(),
    ))
}

/// Runs one delivery through the pipeline. `Err` is an HTTP error answer; a payload that
/// verified but cannot be mapped is `Ok(Outcome::Quarantined)`.
/// What the request itself says beside its headers and body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    /// The secret in the webhook URL (unsigned providers).
    pub url_secret: Option<&'a str>,
    /// Who sent it (the peer, or behind trusted proxies the address they forwarded for).
    pub sender: Option<std::net::IpAddr>,
}

pub async fn ingest(
    state: &AppState,
    source: &SourceRecord,
    headers: Headers,
    body: &[u8],
    call: Call<'_>,
) -> Result<Outcome> {
    let provider = providers::of(source.provider);
    if provider.handshake == Handshake::WoocommerceFormPing
        && verify::is_woocommerce_ping(&headers, body)
    {
        return Ok(Outcome::Handshake);
    }
    let now = state.now();
    let secrets = source.valid_secrets(now);
    let request = SignedRequest {
        headers: &headers,
        body,
        now: now.timestamp(),
        tolerance_s: source
            .options
            .tolerance_s
            .unwrap_or(match provider.tolerance {
                Tolerance::DedupeWindow => state.settings.dedupe_ttl_secs,
                Tolerance::Signature => state.settings.signature_tolerance_secs,
            }),
        url_secret: call.url_secret,
    };
    // A Saleor source verifies either its JWKS or, when it opted in, the legacy HMAC:
    // never both, so a JWS source cannot be downgraded to a shared secret.
    let (rsa, secrets) = match provider.credentials {
        Credentials::PublicKeysOrLegacySecret if source.options.legacy_hmac == Some(true) => {
            (Vec::new(), secrets)
        }
        Credentials::PublicKeysOrLegacySecret => {
            (saleor_keys(state, source, &headers).await?, Vec::new())
        }
        Credentials::Secret => (Vec::new(), secrets),
        // Refused by its scheme: a poll source takes no webhooks (its secret is its API
        // credentials, never a signing key).
        Credentials::Api => (Vec::new(), Vec::new()),
    };
    verify::verify_with_keys(
        provider.scheme,
        source.options.key_encoding.unwrap_or_default(),
        &request,
        &secrets,
        &rsa,
    )?;
    // Checked after the secret, so a stranger learns nothing about the list.
    if let Some(list) = &source.options.allow_cidrs {
        let cidrs = crate::peer::parse_cidrs(list).map_err(Error::Internal)?;
        let allowed = call
            .sender
            .is_some_and(|ip| crate::peer::allowed(ip, &cidrs));
        if !allowed {
            let from = call
                .sender
                .map_or("an unknown address".into(), |ip| ip.to_string());
            return Err(Error::Forbidden(format!(
                "deliveries from {from} are not in this source's allow_cidrs"
            )));
        }
    }
    // Only verified deliveries spend the source's budget: unsigned junk sent to a known
    // webhook URL cannot use it up and get the shop's real deliveries refused.
    state.limits.webhook(&source.id)?;
    let origin = Origin {
        source_id: &source.id,
        tenant: &source.tenant,
        provider,
        shop_locale: source.options.locale.as_deref(),
    };
    pipeline(state, &origin, &headers, body, now, state.spool.as_deref()).await
}

/// Where a verified delivery came from: all the pipeline needs of its source once the
/// signature checked out (a spooled delivery is drained with this, not its source).
pub struct Origin<'a> {
    pub source_id: &'a str,
    pub tenant: &'a str,
    pub provider: &'static Descriptor,
    /// The source's `options.locale`.
    pub shop_locale: Option<&'a str>,
}

/// A store failure sends the deliveries of the next second straight to the spool instead
/// of each waiting out the store's timeout; the drainer ends it early when the store is back.
const STORE_DOWN_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything after verification, as of `now`: identify, refuse what is stale, then map
/// and append (or quarantine). With a `spool`, a delivery the store cannot take is spooled
/// instead; the drainer runs spooled deliveries through here again without one.
pub(crate) async fn pipeline(
    state: &AppState,
    origin: &Origin<'_>,
    headers: &Headers,
    body: &[u8],
    now: DateTime<Utc>,
    spool: Option<&Spool>,
) -> Result<Outcome> {
    let provider = origin.provider;
    // Parsed once, borrowing the body; everything downstream reads this tree.
    let parsed = Json::parse(body);
    let identity = identify(provider, headers, parsed.as_ref().ok(), body);
    if identity.handshake {
        return Ok(Outcome::Handshake);
    }
    let signed_at = match &parsed {
        Ok(value) => refuse_stale(provider, value, now, state.settings.dedupe_ttl_secs)?,
        Err(_) => None,
    };
    // Up to here nothing needed the store: what is refused is refused with or without it.
    let Some(spool) = spool else {
        return write(
            state, origin, headers, body, &parsed, &identity, now, signed_at,
        )
        .await;
    };
    let why = if spool.store_known_down() {
        None
    } else {
        // One deadline for the whole write (a snapshot read and the append), so the answer
        // comes within the store's timeout even while Redis hangs rather than refuses.
        let timeout = state.settings.store_timeout();
        let written = tokio::time::timeout(
            timeout,
            write(
                state, origin, headers, body, &parsed, &identity, now, signed_at,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::StoreUnavailable(format!(
                "the write was not confirmed within {timeout:?}"
            )))
        });
        match written {
            Err(Error::StoreUnavailable(why)) => {
                spool.note_store_down(STORE_DOWN_FOR);
                Some(why)
            }
            // Busy or refusing this one, not down: this delivery waits in the spool, the
            // next ones do not.
            Err(Error::Contended(why) | Error::StoreRefused(why)) => Some(why),
            other => return other,
        }
    };
    let delivery = SpooledDelivery {
        source_id: origin.source_id.to_string(),
        tenant: origin.tenant.to_string(),
        provider: provider.provider,
        received_at: now,
        headers: headers.without_credentials(),
        body: body.to_vec(),
    };
    spool.append(&delivery).await?;
    state.metrics.spool.observe(spool.stats(), state.now());
    // Loud when the store has just failed; the deliveries right after it are counted
    // (`outcome="spooled"`, `omnigate_spool_records`) rather than logged one by one.
    match why {
        Some(why) => {
            tracing::warn!(source_id = origin.source_id, reason = %why, "store unavailable: delivery spooled")
        }
        None => tracing::debug!(source_id = origin.source_id, "delivery spooled"),
    }
    Ok(Outcome::Spooled)
}

/// Maps and appends a parsed delivery, or keeps it in quarantine when it cannot be mapped.
#[allow(clippy::too_many_arguments)]
async fn write(
    state: &AppState,
    origin: &Origin<'_>,
    headers: &Headers,
    body: &[u8],
    parsed: &std::result::Result<Json<'_>, serde_json::Error>,
    identity: &Identity,
    now: DateTime<Utc>,
    signed_at: Option<DateTime<Utc>>,
) -> Result<Outcome> {
    let provider = origin.provider;
    let remember = remember_for(state, provider, signed_at);
    let key = store_key(origin.source_id, &identity.dedupe_key);
    let partition = partition_of(origin.tenant, state.settings.partitions);

    let normalized = match parsed {
        Ok(value) => {
            let delivery = Webhook {
                source_id: origin.source_id,
                tenant: origin.tenant,
                provider,
                identity,
                headers,
                body: value,
                received_at: now,
                remember,
                shop_locale: origin.shop_locale,
            };
            map_and_append(state, &delivery, partition, &key).await?
        }
        Err(e) => Mapped::Rejected(Rejection::new(format!("body is not JSON: {e}"))),
    };
    let rejection = match normalized {
        Mapped::Written(ids) => return Ok(Outcome::Accepted(ids)),
        Mapped::Duplicate(_) => return Ok(Outcome::Duplicate),
        Mapped::Rejected(rejection) => rejection,
    };
    quarantine(
        state,
        origin,
        headers,
        body,
        identity,
        now,
        remember,
        rejection.reason(),
    )
    .await
}

/// Keeps a verified body that cannot be mapped, byte-exact, with the reason.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn quarantine(
    state: &AppState,
    origin: &Origin<'_>,
    headers: &Headers,
    body: &[u8],
    identity: &Identity,
    now: DateTime<Utc>,
    remember: std::time::Duration,
    reason: &str,
) -> Result<Outcome> {
    let provider = origin.provider;
    let partition = partition_of(origin.tenant, state.settings.partitions);
    // One entry per body: the same bytes under other topics or headers add nothing. Ecwid
    // signs only `eventCreated.eventId`, so its entries are one per signed event id: a
    // captured signature re-sent with other unsigned bytes cannot fill the quarantine.
    let qkey = match provider.quarantine_by_signed_id {
        true => format!("q:event:{}", identity.dedupe_key),
        false => identity::quarantine_key(body),
    };
    let key = store_key(origin.source_id, &qkey);
    let record = QuarantineRecord {
        tenant: origin.tenant.to_string(),
        source_id: origin.source_id.to_string(),
        provider: provider.provider.to_string(),
        topic: identity.topic.clone(),
        reason: reason.to_string(),
        received_at: now,
        headers: headers.without_credentials(),
        body: body.to_vec(),
        dedupe_key: key.clone(),
    };
    let appended = append(
        state,
        Append {
            partition,
            dedupe_key: key,
            dedupe_ttl: remember,
            write: Write::Quarantine(record),
            snapshot: None,
        },
    )
    .await?;
    match appended {
        Appended::Written { ids, .. } => Ok(Outcome::Quarantined {
            id: QuarantineId {
                partition,
                entry: *ids
                    .first()
                    .ok_or_else(|| Error::StoreCorrupt("quarantine write returned no id".into()))?,
            },
            reason: reason.to_string(),
        }),
        Appended::Duplicate | Appended::Conflict(_) => Ok(Outcome::Duplicate),
    }
}

/// For providers that sign no timestamp, a body whose own signed time is older than the
/// dedupe window is refused: the window no longer remembers whether it was seen. Returns
/// the signed time, when the body has one.
fn refuse_stale(
    provider: &Descriptor,
    body: &Json<'_>,
    now: DateTime<Utc>,
    window_s: u64,
) -> Result<Option<DateTime<Utc>>> {
    if provider.signs_timestamp {
        return Ok(None);
    }
    let Some(signed_at) = identity::signed_resource_time(provider, body) else {
        return Ok(None);
    };
    let window = i64::try_from(window_s)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .unwrap_or(chrono::Duration::MAX);
    if now.signed_duration_since(signed_at) > window {
        return Err(Error::StaleDelivery {
            signed_at: normalize::time::format(signed_at),
            window_s,
        });
    }
    Ok(Some(signed_at))
}

/// How long a delivery and its facts are remembered. A body from a provider that signs no
/// timestamp and that states no time of its own (a Shopify return or erasure, a
/// WooCommerce deletion) cannot be refused as stale, so its marks are kept as long as
/// resource snapshots are (`OMNIGATE_STATE_TTL_SECS`, 90 days by default) instead of the dedupe
/// window: a replay within that time adds nothing.
fn remember_for(
    state: &AppState,
    provider: &Descriptor,
    signed_at: Option<DateTime<Utc>>,
) -> std::time::Duration {
    let window = state.settings.dedupe_ttl();
    if !provider.signs_timestamp && signed_at.is_none() {
        window.max(state.settings.snapshot_ttl())
    } else {
        window
    }
}

/// A Saleor source's public keys: its inline JWKS, else the one at its JWKS URL.
async fn saleor_keys(
    state: &AppState,
    source: &SourceRecord,
    headers: &Headers,
) -> Result<Vec<verify::RsaKey>> {
    if let Some(jwks) = &source.options.jwks {
        return Ok(verify::jwks::parse(jwks)?);
    }
    match &source.options.jwks_url {
        Some(url) => {
            let kid = verify::saleor_signature_kid(headers);
            Ok(state.jwks.keys(url, kid.as_deref()).await?)
        }
        None => Ok(Vec::new()),
    }
}

/// The store append, with its error and retention accounting.
async fn append(state: &AppState, append: Append) -> Result<Appended> {
    let result = state.store.append(append).await;
    if let Ok(Appended::Written { held: true, .. }) = &result {
        state.metrics.log_retention_held.inc();
        // Once a minute at most: every append says so while the router lags.
        static LAST_SAID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
        let now = state.now().timestamp();
        let last = LAST_SAID.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 60
            && LAST_SAID
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                cap = state.settings.log_maxlen,
                "a log partition is over OMNIGATE_LOG_MAXLEN but its oldest events are kept: \
                 the router has not delivered them yet (is a router running? \
                 OMNIGATE_ROUTER, omnigate_log_retention_held_total)"
            );
        }
    }
    match &result {
        Ok(Appended::Written { trimmed, .. }) if *trimmed > 0 => {
            state.metrics.log_trimmed.inc_by(*trimmed);
            tracing::debug!(
                trimmed,
                "retention trimmed the oldest routed entries of a partition"
            );
        }
        Err(e) => {
            state
                .metrics
                .store_errors
                .with_label_values(&["append"])
                .inc();
            tracing::error!(error = %e, "store append failed");
        }
        _ => {}
    }
    Ok(result?)
}

/// Re-runs a quarantined payload through validation and normalization (after a fix, or
/// after a provider mapping was added). Idempotent: a second replay returns the same ids.
pub async fn replay(state: &AppState, id: QuarantineId) -> Result<Vec<String>> {
    let stored = state
        .store
        .get_quarantine(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("quarantine entry {id}")))?;
    if let Some(ids) = stored.replayed {
        return Ok(ids);
    }
    let r = &stored.record;
    let provider: Provider = serde_json::from_value(Value::String(r.provider.clone()))
        .map_err(|_| Error::ReplayFailed(format!("unknown provider {:?}", r.provider)))?;
    let provider = providers::of(provider);
    let headers: Headers = r.headers.iter().collect();
    let body =
        Json::parse(&r.body).map_err(|e| Error::ReplayFailed(format!("body is not JSON: {e}")))?;
    let mut identity = identify(provider, &headers, Some(&body), &r.body);
    identity.topic = r.topic.clone().or(identity.topic);
    // The source as it is now (it may have been deleted since: then no shop locale).
    let source = state.source(&r.source_id).await?;
    let delivery = Webhook {
        source_id: &r.source_id,
        tenant: &r.tenant,
        provider,
        identity: &identity,
        headers: &headers,
        body: &body,
        received_at: r.received_at,
        remember: state.settings.dedupe_ttl(),
        shop_locale: source.as_ref().and_then(|s| s.options.locale.as_deref()),
    };
    // Its own mark: the delivery's mark was set when it was quarantined.
    let replay_key = format!("{}:replay", r.dedupe_key);
    let event_ids = match map_and_append(state, &delivery, id.partition, &replay_key).await? {
        Mapped::Written(ids) | Mapped::Duplicate(ids) => ids,
        Mapped::Rejected(rejection) => {
            return Err(Error::ReplayFailed(rejection.reason().to_string()));
        }
    };
    state.store.mark_replayed(id, &event_ids).await?;
    tracing::info!(quarantine_id = %id, events = event_ids.len(), "quarantined payload replayed");
    Ok(event_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_deterministic_per_delivery_and_index() {
        assert_eq!(event_id("src_1:k", 0), event_id("src_1:k", 0));
        assert_ne!(event_id("src_1:k", 0), event_id("src_1:k", 1));
        assert_ne!(event_id("src_1:k", 0), event_id("src_2:k", 0));
        assert!(event_id("a", 0).starts_with("evt_"));
    }

    #[test]
    fn long_keys_are_hashed() {
        let long = "x".repeat(500);
        let k = store_key("src_1", &long);
        assert!(k.len() < 100);
        assert_eq!(k, store_key("src_1", &long));
        assert_eq!(store_key("src_1", "abc"), "src_1:abc");
    }
}
