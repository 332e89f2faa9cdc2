//! Every provider in one table: how it signs, where its topic and delivery id are, what a
//! delivery is de-duplicated by, how it is mapped, and its quirks. The webhook pipeline
//! looks a provider up once ([`of`]) and reads everything from the descriptor, so adding a
//! provider is one entry here (plus its scheme in `verify/`, its mapping in `normalize/`,
//! and how to sign like it in `sign.rs` for samples and tests), not a `match` in every
//! stage. Each row follows the provider's own webhook
//! documentation, as `tests/fixtures/spec.json` records it for the signed fixtures.

use omnigate_schemas::api::Provider;

use crate::normalize::{self, Normalizer};
use crate::verify::Scheme;

/// The headers a poller gives each change it read: its topic, and its id at the provider
/// (what a change read twice is de-duplicated by).
pub const POLL_TOPIC_HEADER: &str = "x-omnigate-poll-topic";
pub const POLL_CHANGE_HEADER: &str = "x-omnigate-poll-change";

/// Where a delivery names something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The first of these headers that is present (case-insensitive).
    Header(&'static [&'static str]),
    /// A top-level string field of the JSON body.
    Body(&'static str),
    /// Nowhere.
    Absent,
}

/// A delivery that is a provider's handshake: answered, stored nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    None,
    /// This topic (GitHub's `ping`), once verified.
    Topic(&'static str),
    /// WooCommerce's unsigned `webhook_id=<n>` form body, sent when a webhook is created.
    WoocommerceFormPing,
}

/// How old a signed timestamp may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// The signature window (`OMNIGATE_SIGNATURE_TOLERANCE_SECS`, 5 minutes).
    Signature,
    /// The dedupe window: the provider retries with the original signed time (Ecwid, for
    /// a day), so only the dedupe marks bound its replays.
    DedupeWindow,
}

/// How a provider wants its deliveries answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 202 with what was written; 200 for a duplicate or a handshake.
    Standard,
    /// Ozon counts only a 200 with `{"result": true}`, and wants its `TYPE_PING` answered
    /// with `{"version", "name", "time"}`.
    Ozon,
    /// Mercado Libre counts only a 200.
    Ok200,
}

/// What a source verifies deliveries with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// A shared secret (HMAC).
    Secret,
    /// The shop's public keys (JWKS), or with `options.legacy_hmac` a shared secret: never
    /// both (Saleor).
    PublicKeysOrLegacySecret,
    /// API credentials the gateway polls with (Allegro's OAuth client and refresh token):
    /// the source takes no webhooks.
    Api,
}

/// One provider.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    pub provider: Provider,
    pub scheme: Scheme,
    pub credentials: Credentials,
    pub topic: Field,
    pub delivery_id: Field,
    /// Whether the signature covers a timestamp (replays outside the window are refused).
    /// Otherwise replays are bounded by the dedupe marks and [`Descriptor::signed_time`].
    pub signs_timestamp: bool,
    /// Whether the signature covers the delivery id: then the id is the dedupe key.
    /// Otherwise a delivery is its topic and a digest of the signed bytes, and its ids are
    /// metadata (anyone holding one signed body could send it with fresh ones).
    pub delivery_id_signed: bool,
    /// Body fields with the resource's own times, newest first wins, for providers that
    /// sign no timestamp: a body older than the dedupe window is refused as stale.
    pub signed_time: &'static [&'static str],
    /// The topic header is lower case while everything else names events in upper case.
    pub upper_case_topic: bool,
    pub handshake: Handshake,
    pub tolerance: Tolerance,
    /// Only one body field is signed (Ecwid signs `eventId`): quarantine once per signed
    /// id, or a captured signature could be re-sent with other bytes to fill it.
    pub quarantine_by_signed_id: bool,
    pub normalizer: &'static Normalizer,
    pub answer: Answer,
}

impl Descriptor {
    /// The topics its deliveries are mapped from, with their payload schemas and events.
    pub fn mappings(&self) -> impl Iterator<Item = &'static normalize::Mapping> + '_ {
        normalize::MAPPINGS
            .iter()
            .filter(|m| m.provider == self.provider)
    }

    /// The payload schema (`schemas/providers/<provider>/<resource>`) of a mapped topic.
    pub fn resource(&self, topic: &str) -> Option<&'static str> {
        self.mappings()
            .find(|m| m.topic == topic)
            .map(|m| m.resource)
    }
}

/// The descriptor of `provider`.
pub fn of(provider: Provider) -> &'static Descriptor {
    PROVIDERS
        .iter()
        .find(|d| d.provider == provider)
        .expect("every provider has a descriptor (checked by a test)")
}

/// Every row spells out every field: a new provider cannot inherit another's scheme.
pub static PROVIDERS: [Descriptor; 14] = [
    Descriptor {
        provider: Provider::Shopify,
        scheme: Scheme::Shopify,
        credentials: Credentials::Secret,
        topic: Field::Header(&["x-shopify-topic", "shopify-topic"]),
        // Names the delivery (stable across retries), but is unsigned: metadata only.
        delivery_id: Field::Header(&["x-shopify-webhook-id", "shopify-webhook-id"]),
        signs_timestamp: false,
        delivery_id_signed: false,
        signed_time: &["updated_at", "processed_at", "created_at"],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::SHOPIFY,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Woocommerce,
        scheme: Scheme::Woocommerce,
        credentials: Credentials::Secret,
        topic: Field::Header(&["x-wc-webhook-topic"]),
        // A hash of webhook id and the current second: collides across events, unsigned.
        delivery_id: Field::Header(&["x-wc-webhook-delivery-id"]),
        signs_timestamp: false,
        delivery_id_signed: false,
        signed_time: &["date_modified_gmt", "date_created_gmt"],
        upper_case_topic: false,
        handshake: Handshake::WoocommerceFormPing,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::WOOCOMMERCE,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::StandardWebhooks,
        scheme: Scheme::StandardWebhooks,
        credentials: Credentials::Secret,
        topic: Field::Body("type"),
        delivery_id: Field::Header(&["webhook-id", "svix-id"]),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::BRIDGE,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Stripe,
        scheme: Scheme::Stripe,
        credentials: Credentials::Secret,
        topic: Field::Body("type"),
        delivery_id: Field::Body("id"),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::STRIPE,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Github,
        scheme: Scheme::Github,
        credentials: Credentials::Secret,
        topic: Field::Header(&["x-github-event"]),
        delivery_id: Field::Header(&["x-github-delivery"]),
        signs_timestamp: false,
        delivery_id_signed: false,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::Topic("ping"),
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::GITHUB,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Bigcommerce,
        scheme: Scheme::StandardWebhooksRawKey,
        credentials: Credentials::Secret,
        topic: Field::Body("scope"),
        delivery_id: Field::Header(&["webhook-id"]),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::BIGCOMMERCE,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Etsy,
        scheme: Scheme::StandardWebhooks,
        credentials: Credentials::Secret,
        topic: Field::Body("event_type"),
        delivery_id: Field::Header(&["webhook-id"]),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::ETSY,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Ecwid,
        scheme: Scheme::Ecwid,
        credentials: Credentials::Secret,
        topic: Field::Body("eventType"),
        // One of the two signed fields.
        delivery_id: Field::Body("eventId"),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::DedupeWindow,
        quarantine_by_signed_id: true,
        normalizer: &normalize::ECWID,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Saleor,
        scheme: Scheme::Saleor,
        credentials: Credentials::PublicKeysOrLegacySecret,
        topic: Field::Header(&["saleor-event", "x-saleor-event"]),
        // No delivery id at all; the event name is an unsigned header.
        delivery_id: Field::Absent,
        signs_timestamp: false,
        delivery_id_signed: false,
        signed_time: &["issuedAt"],
        upper_case_topic: true,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::SALEOR,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Ozon,
        scheme: Scheme::UrlSecret,
        credentials: Credentials::Secret,
        topic: Field::Body("message_type"),
        // Posting notifications carry no event id: a delivery is its body.
        delivery_id: Field::Absent,
        signs_timestamp: false,
        delivery_id_signed: false,
        signed_time: &["changed_state_date", "in_process_at", "created_at", "time"],
        upper_case_topic: false,
        handshake: Handshake::Topic("TYPE_PING"),
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::OZON,
        answer: Answer::Ozon,
    },
    Descriptor {
        provider: Provider::MercadoLibre,
        scheme: Scheme::UrlSecret,
        credentials: Credentials::Secret,
        topic: Field::Body("topic"),
        // The URL secret vouches for the whole body: `_id` is the notification, the same
        // on every retry (whose `attempts` and `sent` change).
        delivery_id: Field::Body("_id"),
        signs_timestamp: false,
        delivery_id_signed: true,
        signed_time: &["received", "sent"],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::MERCADOLIBRE,
        answer: Answer::Ok200,
    },
    Descriptor {
        provider: Provider::Allegro,
        // Nothing arrives by HTTP: the poller reads the API over TLS with the shop's
        // token and vouches for what it read, with headers of its own.
        scheme: Scheme::Polled,
        credentials: Credentials::Api,
        topic: Field::Header(&[POLL_TOPIC_HEADER]),
        // The journal entry's id: a page read again adds nothing.
        delivery_id: Field::Header(&[POLL_CHANGE_HEADER]),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::ALLEGRO,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Prom,
        // Read by the poller, as Allegro.
        scheme: Scheme::Polled,
        credentials: Credentials::Api,
        topic: Field::Header(&[POLL_TOPIC_HEADER]),
        // The order's id and a digest of it as read: an order read again unchanged adds
        // nothing.
        delivery_id: Field::Header(&[POLL_CHANGE_HEADER]),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::PROM,
        answer: Answer::Standard,
    },
    Descriptor {
        provider: Provider::Rozetka,
        // Read by the poller, as Allegro.
        scheme: Scheme::Polled,
        credentials: Credentials::Api,
        topic: Field::Header(&[POLL_TOPIC_HEADER]),
        // The order's id, its `changed` time and a digest of it: its version, so an order
        // read again unchanged adds nothing.
        delivery_id: Field::Header(&[POLL_CHANGE_HEADER]),
        signs_timestamp: true,
        delivery_id_signed: true,
        signed_time: &[],
        upper_case_topic: false,
        handshake: Handshake::None,
        tolerance: Tolerance::Signature,
        quarantine_by_signed_id: false,
        normalizer: &normalize::ROZETKA,
        answer: Answer::Standard,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_looked_up_through_the_descriptor() {
        let shopify = of(Provider::Shopify);
        assert_eq!(shopify.resource("orders/create"), Some("order"));
        assert_eq!(shopify.resource("carts/update"), None);
        assert!(of(Provider::Github).mappings().next().is_none());
    }

    #[test]
    fn every_provider_has_exactly_one_descriptor() {
        for p in Provider::ALL {
            let n = PROVIDERS.iter().filter(|d| d.provider == p).count();
            assert_eq!(n, 1, "{p}");
            assert_eq!(of(p).provider, p);
        }
    }

    /// A provider whose signature covers no timestamp gives the stale check a signed time
    /// (GitHub's bodies carry none, and nothing of GitHub's is mapped); a signed delivery id
    /// must exist to be a dedupe key.
    #[test]
    fn replays_are_bounded_for_every_provider() {
        for d in &PROVIDERS {
            if !d.signs_timestamp {
                assert!(
                    !d.signed_time.is_empty() || d.provider == Provider::Github,
                    "{}",
                    d.provider
                );
            }
            if d.delivery_id_signed {
                assert_ne!(d.delivery_id, Field::Absent, "{}", d.provider);
            }
        }
    }
}
