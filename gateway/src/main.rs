//! The `omnigate` binary: `serve` runs the gateway, `openapi` prints the spec, `secrets
//! rewrap` re-seals stored source secrets with the current key.

use clap::Parser;
use omnigate::clock::SystemClock;
use omnigate::config::{Cli, Command, SecretsCommand, Settings};
use omnigate::state::AppState;
use omnigate::store::{MemoryStore, RedisStore, Retention, Store, redis_options};
use std::process::ExitCode;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    omnigate::telemetry::init(cli.log_format, &cli.log);
    match cli.command {
        Command::Openapi => {
            let spec = omnigate::http::openapi();
            match spec.to_pretty_json() {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Trigger(args) => {
            if args.list {
                print!("{}", omnigate::trigger::list());
                return ExitCode::SUCCESS;
            }
            match actix_web::rt::System::new().block_on(omnigate::trigger::run(&args)) {
                Ok((status, body)) => {
                    println!("{status} {body}");
                    if (200..300).contains(&status) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Topics => {
            print!("{}", omnigate::normalize::mappings_table());
            ExitCode::SUCCESS
        }
        Command::Secrets(SecretsCommand::Rewrap(settings)) => {
            let rewrapped = actix_web::rt::System::new()
                .block_on(omnigate::store::sealed::rewrap_with_settings(&settings));
            match rewrapped {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(settings) => match actix_web::rt::System::new().block_on(serve(*settings)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(mut settings: Settings) -> Result<(), omnigate::Error> {
    let retention = Retention::from_settings(&settings);
    let store: Arc<dyn Store> = match &settings.redis_url {
        Some(url) => {
            if settings.admin_token.as_deref().is_none_or(str::is_empty) {
                return Err(omnigate::Error::Config(
                    "OMNIGATE_ADMIN_TOKEN (or --admin-token) is required with Redis".into(),
                ));
            }
            // Refuses to start without OMNIGATE_SECRET_KEY unless plaintext was asked for.
            let store = RedisStore::connect(url, redis_options(&settings)?).await?;
            wait_for_store(&store).await?;
            store.check_eviction_policy().await;
            tracing::info!(partitions = settings.partitions, "using Redis store");
            Arc::new(store)
        }
        None => {
            tracing::warn!(
                "running on the embedded in-memory store: NOTHING SURVIVES A RESTART. \
                 Set OMNIGATE_REDIS_URL for production."
            );
            if settings.admin_token.as_deref().is_none_or(str::is_empty) {
                let token = omnigate::admin::generate_token();
                // Printed once, on stdout, so it can be captured; never logged.
                println!("Generated admin token (memory store only): {token}");
                settings.admin_token = Some(token);
            }
            Arc::new(MemoryStore::new(retention))
        }
    };
    let listener = std::net::TcpListener::bind(settings.bind)
        .map_err(|e| omnigate::Error::Config(format!("cannot listen on {}: {e}", settings.bind)))?;
    let workers = settings.workers;
    let route = settings.router;
    let state = actix_web::web::Data::new(AppState::new(settings, store, Arc::new(SystemClock))?);
    let router = route.then(|| omnigate::router::spawn(state.clone().into_inner()));
    let running = omnigate::http::serve(state, listener, workers)
        .map_err(|e| omnigate::Error::Config(e.to_string()))?;
    tracing::info!(addr = %running.addr, "omnigate listening; docs at http://{}/docs/", running.addr);
    let served = running.server.await;
    // The server has drained its requests; let the router finish its batch.
    if let Some(router) = router {
        router.stop().await;
    }
    served.map_err(|e| omnigate::Error::Internal(e.to_string()))
}

/// A wrong URL should fail at start-up, not on the first webhook.
async fn wait_for_store(store: &RedisStore) -> Result<(), omnigate::Error> {
    let mut last = None;
    for attempt in 0..10 {
        match store.ping().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(attempt, error = %e, "redis not reachable yet");
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
    Err(omnigate::Error::Config(format!(
        "redis is not reachable: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}
