//! Omnigate: a webhook gateway for online shops.
//!
//! A delivery flows through the modules in this order: [`ingest`] takes the raw request,
//! [`verify`] proves it authentic, [`validate`] checks it against the provider's JSON
//! Schema, [`normalize`] turns it into canonical events, and [`store`] appends them
//! atomically with the delivery's dedupe mark. [`admin`] manages sources and reads logs and
//! quarantine; [`http`] wires it all into an actix-web app with an OpenAPI document.

pub mod admin;
pub mod body;
pub mod clock;
pub mod config;
pub mod enrich;
pub mod enricher;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fixtures;
pub mod forward;
pub mod headers;
pub mod http;
pub mod ids;
pub mod inbox;
pub mod ingest;
pub mod json;
#[cfg(test)]
mod layers;
pub mod limits;
pub mod normalize;
pub mod peer;
pub mod plugins;
pub mod poll;
pub mod poller;
pub mod providers;
pub mod push;
pub mod pusher;
pub mod router;
pub mod samples;
pub mod sign;
pub mod spool;
pub mod startup;
pub mod state;
pub mod store;
pub mod tally;
pub mod telemetry;
pub mod trigger;
pub mod validate;
pub mod verify;

pub use error::{Error, Result};
