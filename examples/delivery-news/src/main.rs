//! Runs the delivery-news plugin against a gateway: `OMNIGATE_URL`, `OMNIGATE_API_KEY`, and
//! `DELIVERY_NEWS_REDIS_URL` for its state (memory when unset).
//! `delivery-news registration` prints what to `POST /v1/plugins`.

use std::sync::Arc;

use delivery_news::{DeliveryNews, OrderNews, registration};
use omnigate_sdk::state::{self, Tracked};
use omnigate_sdk::{Client, Runtime};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    if std::env::args().nth(1).as_deref() == Some("registration") {
        println!("{}", serde_json::to_string_pretty(&registration())?);
        return Ok(());
    }
    let store: Arc<_> =
        state::from_env::<Tracked<OrderNews>>("DELIVERY_NEWS_REDIS_URL", "delivery-news").await?;
    let client = Client::from_env()?;
    let stats = Runtime::new(client, DeliveryNews::new(store))
        .concurrency(8)
        .run()
        .await?;
    eprintln!(
        "delivery-news stopped: {} handled, {} failed",
        stats.handled, stats.failed
    );
    Ok(())
}
