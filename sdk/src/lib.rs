//! Build plugins for [Omnigate](https://omnigate.dev), the webhook gateway for online shops.
//!
//! A plugin receives the canonical events of the shops it is installed in (`order.paid`,
//! `shipment.updated`, …), whichever shop engine sent them, and may publish events of its
//! own. This crate gives you:
//!
//! * [`Client`]: the HTTP API (inbox, publishing, admin calls), with retries.
//! * [`Runtime`]: pulls deliveries, runs your [`Handler`] with bounded concurrency,
//!   acknowledges what succeeded, retries what failed with backoff, and stops gracefully.
//! * [`Data`]: every canonical event type as a Rust type, to `match` on.
//! * [`state`]: a small compare-and-set document store for the plugin's own state
//!   (memory, or Redis with the `redis` feature).
//! * `testing` (feature): a real gateway in your test process.
//!
//! # The whole path
//!
//! **1. Register and install** (once, with the operator's admin token). The answer holds
//! the plugin's API key, shown only this once.
//!
//! ```no_run
//! use omnigate_sdk::api::{CreateInstallation, CreatePlugin, PublishedType, Scope};
//! use omnigate_sdk::Client;
//! # async fn register() -> Result<(), omnigate_sdk::Error> {
//! let admin = Client::builder("http://127.0.0.1:8080", "the admin token").build()?;
//! let created = admin
//!     .admin()
//!     .register_plugin(&CreatePlugin {
//!         name: "Loyalty".into(),
//!         event_types: vec!["order.paid".into()],
//!         publishes: vec![PublishedType {
//!             event_type: "loyalty.points.changed".into(),
//!             schema: serde_json::json!({"type": "object", "required": ["points"]}),
//!         }],
//!     })
//!     .await?;
//! admin
//!     .admin()
//!     .install(
//!         &created.plugin.id,
//!         &CreateInstallation {
//!             tenant: "shop-a".into(),
//!             scopes: vec![Scope::EventsRead, Scope::EventsPublish],
//!         },
//!     )
//!     .await?;
//! println!("OMNIGATE_API_KEY={}", created.api_key);
//! # Ok(())
//! # }
//! ```
//!
//! **2. Handle** each event with a [`Handler`], run by the [`Runtime`] (the key from step
//! 1 in `OMNIGATE_API_KEY`), and **3. publish** your own events with [`Events::publish`]
//! — or, when the publication follows from a change of your state, with
//! [`state::apply_once`], which saves both together so neither happens without the other.
//!
//! ```no_run
//! use omnigate_sdk::api::PublishEvent;
//! use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerResult, Runtime};
//!
//! struct Loyalty;
//!
//! #[omnigate_sdk::async_trait]
//! impl Handler for Loyalty {
//!     async fn handle(&self, delivery: &Delivery, client: &Client) -> HandlerResult {
//!         if let Data::OrderPaid(paid) = delivery.data()? {
//!             let points = serde_json::json!({"points": 10, "order_id": paid.order_id});
//!             let event = PublishEvent::new(&delivery.event.tenant, "loyalty.points.changed", points)
//!                 .subject(format!("order/{}", paid.order_id))
//!                 // Keyed on the event: a redelivery publishes nothing twice.
//!                 .idempotency_key(format!("{}:points", delivery.event.id));
//!             client.events().publish(&event).await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), omnigate_sdk::Error> {
//! let client = Client::from_env()?;
//! Runtime::new(client, Loyalty).concurrency(8).run().await?;
//! # Ok(())
//! # }
//! ```
//!
//! **4. Test** the plugin against a real gateway in the test process with the `testing`
//! feature (see the `testing` module): connect a shop, send it a signed sample webhook as
//! the provider would, and read what your plugin published.
//!
//! Errors from the gateway are [`Error::Api`] with its RFC 9457 problem; a 4xx other than
//! 408, 409 and 429 is [`Error::is_permanent`].

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
pub mod declared;
mod runtime;
pub mod state;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use async_trait::async_trait;
pub use client::{Admin, Client, ClientBuilder, Error, Events, Inbox};
pub use omnigate_schemas::api;
pub use omnigate_schemas::events::{self, Data};
pub use omnigate_schemas::{Address, Event, EventSource, LineRef, Money, Party};
pub use runtime::{
    Delivery, Handler, HandlerError, HandlerResult, Permanent, Runtime, RuntimeStats,
};

// Every Rust block of the repository's README compiles as a doctest, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
