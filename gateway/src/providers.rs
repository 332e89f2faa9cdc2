//! Every provider in one table: how it signs, where its topic and delivery id are, what a
//! delivery is de-duplicated by, how it is mapped, and its quirks. The webhook pipeline
//! looks a provider up once ([`of`]) and reads everything from the descriptor, so adding a
//! provider is one entry here (plus its scheme in `verify/` and its mapping in
//! `normalize/`), not a `match` in every stage. PROVIDERS.md is the source of each row.

use omnigate_schemas::api::Provider;

use crate::normalize::{self, Normalizer};
use crate::verify::Scheme;

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

/// What a source verifies deliveries with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// A shared secret (HMAC).
    Secret,
    /// The shop's public keys (JWKS), or with `options.legacy_hmac` a shared secret: never
    /// both (Saleor).
    PublicKeysOrLegacySecret,
}

/// One provider.
#[derive(Debug, Clone, Copy)]
pub struct Descriptor {
    pub provider: Provider,
    pub scheme: Scheme,
    pub credentials: Credentials,
    pub topic: Field,
    pub delivery_id: Field,
    /// Whether the signature covers a timestamp and, with it, the delivery id: then the id
    /// is the dedupe key. Otherwise every id is unsigned, and a delivery is its topic and a
    /// digest of the signed bytes, with replays bounded by [`Descriptor::signed_time`].
    pub signs_timestamp: bool,
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

const BASE: Descriptor = Descriptor {
    provider: Provider::Shopify,
    scheme: Scheme::Shopify,
    credentials: Credentials::Secret,
    topic: Field::Absent,
    delivery_id: Field::Absent,
    signs_timestamp: true,
    signed_time: &[],
    upper_case_topic: false,
    handshake: Handshake::None,
    tolerance: Tolerance::Signature,
    quarantine_by_signed_id: false,
    normalizer: &normalize::GITHUB,
};

pub static PROVIDERS: [Descriptor; 9] = [
    Descriptor {
        provider: Provider::Shopify,
        scheme: Scheme::Shopify,
        topic: Field::Header(&["x-shopify-topic", "shopify-topic"]),
        // Names the delivery (stable across retries), but is unsigned: metadata only.
        delivery_id: Field::Header(&["x-shopify-webhook-id", "shopify-webhook-id"]),
        signs_timestamp: false,
        signed_time: &["updated_at", "processed_at", "created_at"],
        normalizer: &normalize::SHOPIFY,
        ..BASE
    },
    Descriptor {
        provider: Provider::Woocommerce,
        scheme: Scheme::Woocommerce,
        topic: Field::Header(&["x-wc-webhook-topic"]),
        // A hash of webhook id and the current second: collides across events, unsigned.
        delivery_id: Field::Header(&["x-wc-webhook-delivery-id"]),
        signs_timestamp: false,
        signed_time: &["date_modified_gmt", "date_created_gmt"],
        handshake: Handshake::WoocommerceFormPing,
        normalizer: &normalize::WOOCOMMERCE,
        ..BASE
    },
    Descriptor {
        provider: Provider::StandardWebhooks,
        scheme: Scheme::StandardWebhooks,
        topic: Field::Body("type"),
        delivery_id: Field::Header(&["webhook-id", "svix-id"]),
        normalizer: &normalize::BRIDGE,
        ..BASE
    },
    Descriptor {
        provider: Provider::Stripe,
        scheme: Scheme::Stripe,
        topic: Field::Body("type"),
        delivery_id: Field::Body("id"),
        normalizer: &normalize::STRIPE,
        ..BASE
    },
    Descriptor {
        provider: Provider::Github,
        scheme: Scheme::Github,
        topic: Field::Header(&["x-github-event"]),
        delivery_id: Field::Header(&["x-github-delivery"]),
        signs_timestamp: false,
        handshake: Handshake::Topic("ping"),
        normalizer: &normalize::GITHUB,
        ..BASE
    },
    Descriptor {
        provider: Provider::Bigcommerce,
        scheme: Scheme::StandardWebhooksRawKey,
        topic: Field::Body("scope"),
        delivery_id: Field::Header(&["webhook-id"]),
        normalizer: &normalize::BIGCOMMERCE,
        ..BASE
    },
    Descriptor {
        provider: Provider::Etsy,
        scheme: Scheme::StandardWebhooks,
        topic: Field::Body("event_type"),
        delivery_id: Field::Header(&["webhook-id"]),
        normalizer: &normalize::ETSY,
        ..BASE
    },
    Descriptor {
        provider: Provider::Ecwid,
        scheme: Scheme::Ecwid,
        topic: Field::Body("eventType"),
        // One of the two signed fields.
        delivery_id: Field::Body("eventId"),
        tolerance: Tolerance::DedupeWindow,
        quarantine_by_signed_id: true,
        normalizer: &normalize::ECWID,
        ..BASE
    },
    Descriptor {
        provider: Provider::Saleor,
        scheme: Scheme::Saleor,
        credentials: Credentials::PublicKeysOrLegacySecret,
        // No delivery id at all; the event name is an unsigned header.
        topic: Field::Header(&["saleor-event", "x-saleor-event"]),
        signs_timestamp: false,
        signed_time: &["issuedAt"],
        upper_case_topic: true,
        normalizer: &normalize::SALEOR,
        ..BASE
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

    /// A provider whose signature covers no timestamp must give the stale check a signed
    /// time, or be one whose bodies carry none (GitHub); and one whose signature does must
    /// sign its delivery id, since that id becomes the dedupe key.
    #[test]
    fn unsigned_ids_are_never_dedupe_keys() {
        for d in &PROVIDERS {
            if d.signs_timestamp {
                assert!(
                    d.delivery_id != Field::Absent,
                    "{}: a timestamped scheme names its signed id",
                    d.provider
                );
            } else {
                assert!(
                    !d.signed_time.is_empty() || d.provider == Provider::Github,
                    "{}",
                    d.provider
                );
            }
        }
    }
}
