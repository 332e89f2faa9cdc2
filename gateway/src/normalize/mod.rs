//! Provider payloads to canonical events: one module per provider, each a pure function of
//! (topic, headers, parsed body). Anything that cannot be mapped is a [`Rejection`] whose
//! reason names the field; the pipeline quarantines the payload with it.

mod fields;
pub mod money;
mod shopify;
pub mod time;
mod woocommerce;

use chrono::{DateTime, Utc};
use omnigate_schemas::api::Provider;
use serde_json::Value;

use crate::headers::Headers;

/// Why a verified payload could not become events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(String);

impl Rejection {
    pub fn new(reason: impl Into<String>) -> Self {
        Rejection(reason.into())
    }

    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One canonical event, before the envelope is added.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub event_type: &'static str,
    pub occurred_at: DateTime<Utc>,
    /// `order/<id>`, `customer/<id>`, `return/<id>`.
    pub subject: String,
    pub data: Value,
}

impl Normalized {
    fn new<T: serde::Serialize>(
        event_type: &'static str,
        occurred_at: DateTime<Utc>,
        subject: String,
        data: &T,
    ) -> Result<Self, Rejection> {
        let data = serde_json::to_value(data)
            .map_err(|e| Rejection::new(format!("cannot encode {event_type}: {e}")))?;
        Ok(Normalized {
            event_type,
            occurred_at,
            subject,
            data,
        })
    }
}

/// What a normaliser gets.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub topic: &'a str,
    pub headers: &'a Headers,
    pub body: &'a Value,
}

/// The provider payload schema (`schemas/providers/<provider>/<resource>`) a topic's body
/// must satisfy; `None` when the topic is not mapped (the payload goes to quarantine).
pub fn payload_resource(provider: Provider, topic: &str) -> Option<&'static str> {
    match provider {
        Provider::Shopify => shopify::resource(topic),
        Provider::Woocommerce => woocommerce::resource(topic),
        Provider::StandardWebhooks | Provider::Stripe | Provider::Github => None,
    }
}

/// Maps one verified, schema-valid delivery to 0..n canonical events.
pub fn normalize(provider: Provider, input: Input<'_>) -> Result<Vec<Normalized>, Rejection> {
    match provider {
        Provider::Shopify => shopify::normalize(input),
        Provider::Woocommerce => woocommerce::normalize(input),
        Provider::StandardWebhooks | Provider::Stripe | Provider::Github => {
            Err(unknown_topic(provider, input.topic))
        }
    }
}

fn unknown_topic(provider: Provider, topic: &str) -> Rejection {
    Rejection::new(format!(
        "{provider} topic {topic:?} is not mapped to a canonical event"
    ))
}

#[cfg(test)]
mod tests;
