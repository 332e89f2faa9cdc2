//! Contact centre, an Omnigate plugin. See README.md.

use actix_web::{App, HttpServer, web};
use contact_center::{desk, plugin, timeline};
use omnigate_sdk::state::{self, StateStore, Tracked};
use omnigate_sdk::{Client, Runtime};
use std::sync::Arc;
use std::time::Duration;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[actix_web::main]
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
    let bind = env("CONTACT_CENTER_BIND").unwrap_or_else(|| "127.0.0.1:8090".into());
    let minutes: i64 = env("CONTACT_CENTER_CONFIRM_MINUTES").map_or(Ok(10), |m| m.parse())?;
    let books: Arc<dyn StateStore<Tracked<timeline::Book>>> =
        state::from_env("CONTACT_CENTER_REDIS_URL", "contact-center:book").await?;
    let handler = Arc::new(plugin::ContactCenter {
        books: books.clone(),
        confirm_within: chrono::Duration::minutes(minutes),
        regular_orders: 3,
        clock: Arc::new(chrono::Utc::now),
        tenants: Default::default(),
    });

    let data = web::Data::new(books);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(desk::routes))
        .bind(&bind)?
        .run();
    tracing::info!(%bind, "agent desk: GET /customers/{{tenant}}/{{email-or-id}}");
    tokio::spawn(server);

    let sweeper = {
        let (handler, client) = (handler.clone(), client.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                if let Err(e) = handler.sweep(&client).await {
                    tracing::warn!(error = %e, "sweep failed");
                }
            }
        })
    };
    Runtime::new(client, handler).concurrency(4).run().await?;
    sweeper.abort();
    Ok(())
}
