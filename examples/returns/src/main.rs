//! Returns, an Omnigate plugin. See README.md.

use omnigate_sdk::api::Delivery;
use omnigate_sdk::state::{self, StateStore, Tracked};
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("registration") {
        let mut registration = plugin::registration();
        // `registration --push-url https://…`: the gateway pushes events there.
        if let [_, flag, url] = args.as_slice()
            && flag == "--push-url"
        {
            registration.delivery = Some(Delivery::push(url));
        }
        println!("{}", serde_json::to_string_pretty(&registration)?);
        return Ok(());
    }
    let books: Arc<dyn StateStore<Tracked<policy::Book>>> =
        state::from_env("RETURNS_REDIS_URL", "returns:book").await?;
    let handler = plugin::Returns {
        policy: policy()?,
        books,
    };
    // Pushed (OMNIGATE_SIGNING_SECRET set: served on OMNIGATE_LISTEN) or pulled.
    omnigate_sdk::push::run_from_env(handler, 4).await?;
    Ok(())
}
