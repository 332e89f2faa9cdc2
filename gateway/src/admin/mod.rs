//! The admin API: sources, tenant logs, quarantine, and events the router set aside. Every handler takes [`Admin`],
//! which checks the bearer token.

mod auth;
pub mod events;
pub mod list;
pub mod plugins;
pub mod providers;
pub mod quarantine;
pub mod router;
pub mod sources;
pub mod status;

pub use auth::Admin;

/// A random admin token (32 alphanumeric characters).
pub fn generate_token() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}
