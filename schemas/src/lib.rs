//! The Omnigate contract.
//!
//! * [`events`]: the canonical event envelope and the shared shapes (`Money`, `Party`,
//!   `Address`, `LineRef`), plus one Rust type per event `data`.
//! * [`catalog`]: the JSON Schemas (2020-12) of the canonical events and of the provider
//!   payloads, embedded at compile time so validators never touch the file system.
//! * [`api`]: request and response bodies of the gateway's HTTP API (`utoipa::ToSchema` with
//!   the `openapi` feature).
//! * [`standard_webhooks`]: the signature of pushed events (and of Standard Webhooks
//!   senders).
//!
//! The JSON Schemas are the source of truth; tests in this crate prove that every schema
//! example deserialises into its Rust type.

pub mod api;
pub mod catalog;
pub mod events;
pub mod standard_webhooks;

pub use events::{Address, Event, EventSource, LineRef, Money, Party};
