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
//! ```no_run
//! use omnigate_sdk::{Client, Data, Delivery, Handler, HandlerResult, Runtime};
//!
//! struct Loyalty;
//!
//! #[omnigate_sdk::async_trait]
//! impl Handler for Loyalty {
//!     async fn handle(&self, delivery: &Delivery, _client: &Client) -> HandlerResult {
//!         if let Data::OrderPaid(paid) = delivery.data()? {
//!             println!("{} paid {} {}", paid.order_id, paid.amount.amount, paid.amount.currency);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), omnigate_sdk::Error> {
//! let client = Client::builder("http://127.0.0.1:8080", "ogk_…").build()?;
//! Runtime::new(client, Loyalty).concurrency(8).run().await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod client;
pub mod declared;
mod runtime;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use async_trait::async_trait;
pub use client::{Client, ClientBuilder, Error};
pub use omnigate_schemas::api;
pub use omnigate_schemas::events::{self, Data};
pub use omnigate_schemas::{Address, Event, EventSource, LineRef, Money, Party};
pub use runtime::{Delivery, Handler, HandlerError, HandlerResult, Runtime, RuntimeStats};
