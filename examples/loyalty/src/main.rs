//! Loyalty and NPS, an Omnigate plugin. See README.md.

use loyalty::{plugin, rules};
use omnigate_sdk::api::Delivery;
use omnigate_sdk::state::{self, StateStore, Tracked};
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn policy() -> Result<rules::Policy, String> {
    let mut p = rules::Policy::default();
    if let Some(rate) = env("LOYALTY_POINTS_PER_UNIT") {
        p.default_rate =
            Decimal::from_str(&rate).map_err(|e| format!("LOYALTY_POINTS_PER_UNIT: {e}"))?;
    }
    // "UAH=0.1,JPY=0.01"
    for pair in env("LOYALTY_RATES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (cur, rate) = pair.split_once('=').ok_or("LOYALTY_RATES: CUR=rate,…")?;
        let rate = Decimal::from_str(rate).map_err(|e| format!("LOYALTY_RATES: {e}"))?;
        p.rates.insert(cur.trim().to_ascii_uppercase(), rate);
    }
    // "bronze=0,silver=500,gold=2000"
    if let Some(tiers) = env("LOYALTY_TIERS") {
        p.tiers = tiers
            .split(',')
            .map(|t| {
                let (name, at) = t.split_once('=').ok_or("LOYALTY_TIERS: name=points,…")?;
                Ok((
                    name.trim().to_string(),
                    at.trim().parse().map_err(|_| "LOYALTY_TIERS: points")?,
                ))
            })
            .collect::<Result<_, &str>>()?;
        p.tiers.sort_by_key(|(_, at)| *at);
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
    let books: Arc<dyn StateStore<Tracked<rules::Book>>> =
        state::from_env("LOYALTY_REDIS_URL", "loyalty:book").await?;
    let handler = plugin::Loyalty {
        policy: policy()?,
        books,
    };
    // Pushed (OMNIGATE_SIGNING_SECRET set: served on OMNIGATE_LISTEN) or pulled.
    omnigate_sdk::push::run_from_env(handler, 4).await?;
    Ok(())
}
