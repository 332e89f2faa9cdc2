//! The one way a gateway is put together, for the `omnigate serve` binary, the end-to-end
//! tests and the SDK's `TestGateway` alike: pick the store from the settings (or take one),
//! build the shared state, start the router, serve HTTP on a listener.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = omnigate::config::Settings::default();
//! let gateway = omnigate::startup::Gateway::build(settings).await?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let running = gateway.serve(listener)?;
//! println!("listening on {}", running.addr());
//! running.run().await?;
//! # Ok(())
//! # }
//! ```

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::enricher::EnricherHandle;
use crate::error::{Error, Result};
use crate::ingest::drain::DrainHandle;
use crate::poller::PollersHandle;
use crate::pusher::PushersHandle;
use crate::router::RouterHandle;
use crate::state::AppState;
use crate::store::{MemoryStore, RedisStore, Retention, Store, redis_options};
use crate::tally::TallyHandle;

/// A gateway ready to serve.
pub struct Gateway {
    state: web::Data<AppState>,
    generated_admin_token: Option<String>,
}

impl Gateway {
    /// The store the settings ask for: Redis when `redis_url` is set (an admin token and a
    /// secret key are required, the server must answer within a few seconds, and its
    /// eviction policy is checked), else the embedded memory store, with an admin token
    /// generated when none was given.
    pub async fn build(mut settings: Settings) -> Result<Gateway> {
        let mut generated_admin_token = None;
        let store: Arc<dyn Store> = match &settings.redis_url {
            Some(url) => {
                if settings.admin_token.as_deref().is_none_or(str::is_empty) {
                    return Err(Error::Config(
                        "OMNIGATE_ADMIN_TOKEN (or --admin-token) is required with Redis".into(),
                    ));
                }
                // Refuses to start without OMNIGATE_SECRET_KEY unless plaintext was asked for.
                let store = RedisStore::connect(url, redis_options(&settings)?).await?;
                wait_for_store(&store).await?;
                // XAUTOCLAIM and XTRIM MINID came with 6.2.
                match store.server_version().await {
                    Ok((major, minor)) if (major, minor) < (6, 2) => {
                        return Err(Error::Config(format!(
                            "Redis {major}.{minor} is too old: Omnigate needs Redis 6.2 or later"
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read the Redis version (INFO refused?): Omnigate needs 6.2 or later")
                    }
                }
                store.check_eviction_policy().await;
                store.check_persistence().await;
                store.check_replicas().await?;
                match store.index_installations().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(installations = n, "indexed installations by plugin"),
                    // Listing a plugin's installations may miss older ones until it runs.
                    Err(e) => {
                        tracing::warn!(error = %e, "could not index installations by plugin; retried at the next start")
                    }
                }
                tracing::info!(partitions = settings.partitions, "using Redis store");
                if settings.spool_dir.is_none() {
                    tracing::warn!(
                        "no OMNIGATE_SPOOL_DIR: while Redis is unreachable webhooks are answered \
                         503, and senders that do not retry (WooCommerce) lose them"
                    );
                }
                Arc::new(store)
            }
            None => {
                if settings.spool_dir.is_some() {
                    return Err(Error::Config(
                        "OMNIGATE_SPOOL_DIR is for the Redis store: the memory store never \
                         becomes unavailable, so it needs no spool"
                            .into(),
                    ));
                }
                tracing::warn!(
                    "running on the embedded in-memory store: NOTHING SURVIVES A RESTART. \
                     Set OMNIGATE_REDIS_URL for production."
                );
                if settings.admin_token.as_deref().is_none_or(str::is_empty) {
                    let token = crate::admin::generate_token();
                    settings.admin_token = Some(token.clone());
                    generated_admin_token = Some(token);
                }
                Arc::new(MemoryStore::new(Retention::from_settings(&settings)))
            }
        };
        let mut gateway = Gateway::with_store(settings, store, Arc::new(SystemClock))?;
        gateway.generated_admin_token = generated_admin_token;
        Ok(gateway)
    }

    /// A gateway on a store and clock of the caller's (tests: a Redis store under a fresh
    /// prefix, a fixed clock). `settings.admin_token` must be set.
    pub fn with_store(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway> {
        Ok(Gateway {
            state: web::Data::new(AppState::new(settings, store, clock)?),
            generated_admin_token: None,
        })
    }

    /// The admin token made up for a memory store started without one: shown once by the
    /// caller (the binary prints it on stdout), never logged.
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    /// Starts the router (unless the settings turn it off) and the HTTP server on
    /// `listener`. Nothing runs until the returned server is awaited or spawned.
    pub fn serve(self, listener: TcpListener) -> Result<Running> {
        let settings = &self.state.settings;
        let (workers, route, push, poll, enrich) = (
            settings.workers,
            settings.router,
            settings.push,
            settings.poll,
            settings.enrich,
        );
        let http = crate::http::serve(self.state.clone(), listener, workers)
            .map_err(|e| Error::Config(format!("cannot serve: {e}")))?;
        let router = route.then(|| crate::router::spawn(self.state.clone().into_inner()));
        let drain = crate::ingest::drain::spawn(self.state.clone().into_inner());
        let pushers = push.then(|| crate::pusher::spawn(self.state.clone().into_inner()));
        let pollers = poll.then(|| crate::poller::spawn(self.state.clone().into_inner()));
        let enricher = enrich.then(|| crate::enricher::spawn(self.state.clone().into_inner()));
        let tally = crate::tally::spawn(
            self.state.tally.clone(),
            self.state.store.clone(),
            self.state.clock.clone(),
            Duration::from_millis(self.state.settings.tally_report_ms),
        );
        Ok(Running {
            addr: http.addr,
            handle: http.handle,
            server: http.server,
            router,
            drain,
            pushers,
            pollers,
            enricher,
            tally,
            state: self.state,
        })
    }
}

/// A serving gateway.
pub struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    server: Server,
    router: Option<RouterHandle>,
    drain: Option<DrainHandle>,
    pushers: Option<PushersHandle>,
    pollers: Option<PollersHandle>,
    enricher: Option<EnricherHandle>,
    tally: TallyHandle,
    state: web::Data<AppState>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    /// Serves until the server stops (SIGINT or SIGTERM drain it); then lets the router
    /// finish its batch, the spool drainer its delivery and the pushers their pushes.
    pub async fn run(self) -> Result<()> {
        let served = self.server.await;
        let workers = Workers {
            router: self.router,
            drain: self.drain,
            pushers: self.pushers,
            pollers: self.pollers,
            enricher: self.enricher,
            tally: self.tally,
        };
        workers.stop().await;
        served.map_err(|e| Error::Internal(e.to_string()))
    }

    /// Runs the server on the current runtime in the background; the returned [`Stopper`]
    /// stops it (tests).
    pub fn spawn(self) -> Stopper {
        let handle = self.handle.clone();
        let Running {
            server,
            router,
            drain,
            pushers,
            pollers,
            enricher,
            tally,
            ..
        } = self;
        tokio::spawn(server);
        Stopper {
            handle,
            workers: Workers {
                router,
                drain,
                pushers,
                pollers,
                enricher,
                tally,
            },
        }
    }
}

/// The background work of a gateway process.
struct Workers {
    router: Option<RouterHandle>,
    drain: Option<DrainHandle>,
    pushers: Option<PushersHandle>,
    pollers: Option<PollersHandle>,
    enricher: Option<EnricherHandle>,
    tally: TallyHandle,
}

impl Workers {
    async fn stop(self) {
        if let Some(router) = self.router {
            router.stop().await;
        }
        if let Some(drain) = self.drain {
            drain.stop().await;
        }
        if let Some(pollers) = self.pollers {
            pollers.stop().await;
        }
        if let Some(enricher) = self.enricher {
            enricher.stop().await;
        }
        if let Some(pushers) = self.pushers {
            pushers.stop().await;
        }
        // Last: what the others' final work counted goes into the report.
        self.tally.stop().await;
    }
}

/// Stops a gateway started with [`Running::spawn`].
pub struct Stopper {
    handle: ServerHandle,
    workers: Workers,
}

impl Stopper {
    /// Drains requests in flight, then stops the router and the spool drainer.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.stop_workers().await;
    }

    /// Stops at once: connections are closed without waiting for them (idle keep-alive
    /// connections would hold a graceful stop for its whole timeout), then the router and
    /// the spool drainer stop. For tests and tools, not for a gateway taking traffic.
    pub async fn stop_now(self) {
        self.handle.stop(false).await;
        self.stop_workers().await;
    }

    /// Stops as a killed process would: connections are dropped and the pollers are
    /// aborted without giving their leases back (another process takes their sources over
    /// once the leases lapse); the other workers stop as usual. For tests of a takeover.
    pub async fn crash(mut self) {
        self.handle.stop(false).await;
        if let Some(pollers) = self.workers.pollers.take() {
            pollers.abort().await;
        }
        self.stop_workers().await;
    }

    async fn stop_workers(self) {
        self.workers.stop().await;
    }
}

/// A wrong URL should fail at start-up, not on the first webhook.
async fn wait_for_store(store: &RedisStore) -> Result<()> {
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
    Err(Error::Config(format!(
        "redis is not reachable: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}
