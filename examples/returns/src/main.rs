//! Returns, an Omnigate plugin. See README.md.

use omnigate_sdk::state::{self, StateStore, Tracked};
use omnigate_sdk::{Client, Runtime};
use returns::{plugin, policy};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn policy() -> Result<policy::Policy, String> {
    let mut p = policy::Policy::default();
    if let Some(days) = env("RETURNS_WINDOW_DAYS") {
        p.window_days = days
            .parse()
            .map_err(|_| "RETURNS_WINDOW_DAYS: whole days")?;
    }
    if let Some(skus) = env("RETURNS_EXCLUDED_SKUS") {
        p.excluded_skus = skus
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    if let Some(max) = env("RETURNS_MAX_AUTO_VALUE") {
        p.max_auto_value =
            Decimal::from_str(&max).map_err(|e| format!("RETURNS_MAX_AUTO_VALUE: {e}"))?;
    }
    Ok(p)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if std::env::args().nth(1).as_deref() == Some("registration") {
        println!("{}", serde_json::to_string_pretty(&plugin::registration())?);
        return Ok(());
    }
    let client = Client::from_env()?;
    let books: Arc<dyn StateStore<Tracked<policy::Book>>> =
        state::from_env("RETURNS_REDIS_URL", "returns:book").await?;
    let handler = plugin::Returns {
        policy: policy()?,
        books,
    };
    Runtime::new(client, handler).concurrency(4).run().await?;
    Ok(())
}
