//! Plugins: the registry (what a plugin receives and publishes), its API keys (stored
//! hashed, shown once), installations per shop with scopes, the plugin-caller check every
//! plugin endpoint starts with, and PII redaction for plugins without `customer_pii`.

pub mod auth;
pub mod redact;
pub mod registry;

pub use auth::PluginCaller;
