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
//! * [`PluginEvent`]: the event types you publish as Rust types, their registered JSON
//!   Schema derived from the type.
//! * [`push`]: verify pushed requests, and (feature `push-server`) run your [`Handler`]
//!   behind an HTTP server the gateway pushes events to.
//! * `testing` (feature): a real gateway in your test process.
//!
//! # The whole path
//!
//! **1. Declare** the events the plugin publishes as Rust types ([`PluginEvent`]; add
//! `schemars = "1"` to your dependencies): the JSON Schema the gateway checks them against
//! is derived from the type.
//!
//! ```
//! use omnigate_sdk::PluginEvent;
//!
//! /// Points a customer earned with an order.
//! #[derive(serde::Serialize, schemars::JsonSchema)]
//! pub struct PointsChanged {
//!     pub order_id: String,
//!     pub points: u32,
//! }
//!
//! impl PluginEvent for PointsChanged {
//!     const TYPE: &'static str = "loyalty.points.changed";
//! }
//! ```
//!
//! **2. Register and install** (once, with the operator's admin token). The answer holds
//! the plugin's API key, shown only this once. Subscriptions must name catalog types
//! (`GET /v1/event-types`) or types another plugin declares: a typo is refused, naming the
//! type meant. [`Admin::update_plugin`] changes a registration later.
//!
//! ```no_run
//! use omnigate_sdk::api::{CreateInstallation, CreatePlugin, Scope};
//! use omnigate_sdk::{Client, PluginEvent};
//! # #[derive(serde::Serialize, schemars::JsonSchema)]
//! # struct PointsChanged { order_id: String, points: u32 }
//! # impl PluginEvent for PointsChanged { const TYPE: &'static str = "loyalty.points.changed"; }
//! # async fn register() -> Result<(), omnigate_sdk::Error> {
//! let admin = Client::builder("http://127.0.0.1:8080", "the admin token").build()?;
//! let created = admin
//!     .admin()
//!     .register_plugin(&CreatePlugin {
//!         name: "Loyalty".into(),
//!         event_types: vec!["order.paid".into()],
//!         publishes: vec![PointsChanged::declaration()],
//!         delivery: None,
//!     })
//!     .await?;
//! admin
//!     .admin()
//!     .install(
//!         &created.plugin.id,
//!         &CreateInstallation {
//!             tenant: "shop-a".into(),
//!             scopes: vec![Scope::EventsRead, Scope::EventsPublish],
//!             push_url: None,
//!         },
//!     )
//!     .await?;
//! println!("OMNIGATE_API_KEY={}", created.api_key);
//! # Ok(())
//! # }
//! ```
//!
//! **3. Handle** each event with a [`Handler`], run by the [`Runtime`] (the key from step
//! 2 in `OMNIGATE_API_KEY`), and **4. publish** your own events with [`Events::publish`]
//! — or, when the publication follows from a change of your state, with
//! [`state::apply_once`], which saves both together so neither happens without the other.
//!
//! ```no_run
//! use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerResult, PluginEvent, Runtime};
//! # #[derive(serde::Serialize, schemars::JsonSchema)]
//! # struct PointsChanged { order_id: String, points: u32 }
//! # impl PluginEvent for PointsChanged { const TYPE: &'static str = "loyalty.points.changed"; }
//!
//! struct Loyalty;
//!
//! #[omnigate_sdk::async_trait]
//! impl Handler for Loyalty {
//!     async fn handle(&self, delivery: &Delivery, client: &Client) -> HandlerResult {
//!         if let Data::OrderPaid(paid) = delivery.data()? {
//!             let points = PointsChanged { order_id: paid.order_id.clone(), points: 10 };
//!             let event = points
//!                 .publication(&delivery.event.tenant)?
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
//! **5. Test** the plugin against a real gateway in the test process with the `testing`
//! feature (see the `testing` module): register it with `gw.plugin(..).publishes::<T>()`,
//! connect a shop, send it a signed sample webhook as the provider would, run the runtime,
//! `gw.wait_idle()` (no sleeps), and read what your plugin published with `gw.events(..)`.
//!
//! Errors from the gateway are [`Error::Api`] with its RFC 9457 problem; a 4xx other than
//! 408, 409 and 429 is [`Error::is_permanent`].

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
pub mod declared;
pub mod published;
pub mod push;
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
pub use published::PluginEvent;
pub use runtime::{
    Delivery, Handler, HandlerError, HandlerResult, Permanent, Running, Runtime, RuntimeStats,
};
/// The JSON Schema derive [`PluginEvent`] types use (`#[derive(schemars::JsonSchema)]`).
pub use schemars;

// Every Rust block of the repository's README compiles as a doctest, so it cannot rot. Some
// use the push server: `cargo test --workspace` enables it (the e2e tests need it).
#[cfg(all(doctest, feature = "push-server"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
