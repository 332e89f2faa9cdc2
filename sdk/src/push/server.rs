//! A plugin's [`Handler`] behind an HTTP server the gateway pushes events to.

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use omnigate_schemas::Event;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

use super::{PushError, Verifier};
use crate::client::{Client, Error};
use crate::runtime::{Delivery, Handler, HandlerError, RuntimeStats, is_permanent};

/// The answer header that tells the gateway no retry can fix a delivery:
/// `omnigate-dead-letter: true` on a 4xx (other than 401, 404, 408, 409 and 429) moves the
/// delivery to the plugin's dead letters at once, with the answer's excerpt as the reason.
/// [`Server`] sets it for a handler's [`Permanent`](crate::Permanent) error; a receiver in
/// another language may set it too.
pub use omnigate_schemas::api::DEAD_LETTER_HEADER;

/// Runs a [`Handler`] for the events a gateway pushes (a plugin registered with
/// `delivery: {"mode": "push", "url": …}`), the way [`Runtime`](crate::Runtime) runs it
/// for pulled ones, so one plugin code base can run either way.
///
/// Every `POST` (to any path: the registered URL decides) is checked with the
/// [`Verifier`] over its raw body (401 when the signature fails, 400 when a signature
/// header is missing or malformed), parsed as an [`Event`] and handed to
/// the handler as a [`Delivery`] whose `receipt` is the event id and whose `attempt` is the
/// gateway's `omnigate-attempt`. The handler's `Ok` answers 204 (acknowledged); an error
/// answers 500 with the error as the problem's detail, and the gateway pushes the event
/// again on its retry schedule; a [`Permanent`](crate::Permanent) error (or a permanent
/// refusal from the gateway, as in the runtime) answers 422 with [`DEAD_LETTER_HEADER`],
/// and the gateway dead-letters it at once. The gateway keeps order per subject, so the
/// handler sees an order's events one after another.
///
/// ```no_run
/// use omnigate_sdk::push::Server;
/// use omnigate_sdk::{Client, Delivery, Handler, HandlerResult};
///
/// struct Loyalty;
///
/// #[omnigate_sdk::async_trait]
/// impl Handler for Loyalty {
///     async fn handle(&self, delivery: &Delivery, _client: &Client) -> HandlerResult {
///         println!("{} {}", delivery.event.event_type, delivery.event.id);
///         Ok(())
///     }
/// }
///
/// # async fn run() -> Result<(), omnigate_sdk::Error> {
/// // OMNIGATE_URL, OMNIGATE_API_KEY, OMNIGATE_SIGNING_SECRET (and OMNIGATE_LISTEN).
/// Server::from_env(Loyalty)?.run().await?; // until SIGINT/SIGTERM
/// # Ok(())
/// # }
/// ```
pub struct Server<H> {
    client: Client,
    verifier: Verifier,
    handler: Arc<H>,
    listen: String,
    concurrency: usize,
    max_body: usize,
    workers: usize,
}

impl<H> std::fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("verifier", &self.verifier)
            .field("listen", &self.listen)
            .field("concurrency", &self.concurrency)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// A [`Server`] answering in the background ([`Server::serve`]).
#[must_use = "dropping it leaves the server running until the process ends; call stop()"]
pub struct Serving {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stats: Arc<Counters>,
    permits: Arc<Semaphore>,
    concurrency: usize,
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RuntimeStats {
        RuntimeStats {
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            held: 0,
        }
    }
}

impl Serving {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it did so far.
    pub fn stats(&self) -> RuntimeStats {
        self.stats.snapshot()
    }

    /// Stops accepting, lets the requests under way finish (and the handlers of requests
    /// the gateway gave up on), and says what it did.
    pub async fn stop(self) -> RuntimeStats {
        self.handle.stop(true).await;
        match self.task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the push server stopped with an error"),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            _ => {}
        }
        // Every handler holds a turn until it ends.
        if let Ok(all) = self.permits.acquire_many(self.concurrency as u32).await {
            all.forget();
        }
        self.permits.close();
        self.stats.snapshot()
    }
}

/// What every request of one server shares.
struct Shared<H> {
    client: Client,
    verifier: Verifier,
    handler: Arc<H>,
    permits: Arc<Semaphore>,
    stats: Arc<Counters>,
    /// The program's runtime: handlers run there, as under [`Runtime`](crate::Runtime),
    /// not on the HTTP workers' own single-threaded ones.
    runtime: tokio::runtime::Handle,
}

impl<H: Handler> Server<H> {
    /// A server running `handler` for requests signed with one of `verifier`'s secrets;
    /// `client` (with the plugin's key) is what the handler gets to publish with.
    pub fn new(client: Client, verifier: Verifier, handler: H) -> Self {
        Server {
            client,
            verifier,
            handler: Arc::new(handler),
            listen: "127.0.0.1:3000".into(),
            concurrency: 16,
            max_body: 4 << 20,
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(4),
        }
    }

    /// A server configured from the environment: the client from `OMNIGATE_URL` and
    /// `OMNIGATE_API_KEY` ([`Client::from_env`]), the secrets from
    /// `OMNIGATE_SIGNING_SECRET` (`whsec_…`; during a rotation both, separated by a comma
    /// or a space), and the address from `OMNIGATE_LISTEN` (default `127.0.0.1:3000`).
    pub fn from_env(handler: H) -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let secrets = var("OMNIGATE_SIGNING_SECRET").ok_or_else(|| {
            Error::Config(
                "OMNIGATE_SIGNING_SECRET (the plugin's whsec_… signing secret) is required".into(),
            )
        })?;
        let secrets: Vec<&str> = secrets
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .collect();
        let verifier = Verifier::new(&secrets)
            .map_err(|e| Error::Config(format!("OMNIGATE_SIGNING_SECRET: {e}")))?;
        let mut server = Server::new(Client::from_env()?, verifier, handler);
        if let Some(listen) = var("OMNIGATE_LISTEN") {
            server.listen = listen;
        }
        Ok(server)
    }

    /// The address [`run`](Self::run) listens on (default `127.0.0.1:3000`; behind a TLS
    /// proxy, since push URLs are `https`).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// Handlers running at once (default 16); more requests wait for a turn. The gateway
    /// sends at most the plugin's `max_in_flight` per gateway process.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The largest body accepted (default 4 MiB); a larger one answers 413, and the
    /// gateway tries it again later.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Listens on the configured address until SIGINT or SIGTERM, then lets the requests
    /// under way finish; what it did.
    /// An address that cannot be listened on is [`Error::Config`].
    pub async fn run(self) -> Result<RuntimeStats, Error> {
        let listener = std::net::TcpListener::bind(&self.listen)
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", self.listen)))?;
        let serving = self.serve(listener)?;
        tracing::info!(addr = %serving.addr(), "push server listening");
        crate::runtime::shutdown_signal().await;
        let stats = serving.stop().await;
        tracing::info!(
            handled = stats.handled,
            failed = stats.failed,
            "push server stopped"
        );
        Ok(stats)
    }

    /// Answers on `listener` in the background until [`Serving::stop`]: for tests, and
    /// for programs that do more than this.
    pub fn serve(self, listener: std::net::TcpListener) -> Result<Serving, Error> {
        let unusable = |e: std::io::Error| Error::Config(format!("cannot serve pushes: {e}"));
        let addr = listener.local_addr().map_err(unusable)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("push::Server::serve must be called inside a Tokio runtime".into())
        })?;
        let stats = Arc::new(Counters::default());
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let shared = web::Data::new(Shared {
            client: self.client,
            verifier: self.verifier,
            handler: self.handler,
            permits: permits.clone(),
            stats: stats.clone(),
            runtime,
        });
        let max_body = self.max_body;
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .default_service(web::to(receive::<H>))
        })
        .workers(self.workers)
        // Longer than the gateway keeps an idle connection (60 s): it never sends on one
        // this side has just closed.
        .keep_alive(std::time::Duration::from_secs(75))
        .max_connections(1024)
        .shutdown_timeout(30)
        .disable_signals()
        .listen(listener)
        .map_err(unusable)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Serving {
            addr,
            handle,
            task,
            stats,
            permits,
            concurrency: self.concurrency,
        })
    }
}

/// One pushed request.
async fn receive<H: Handler>(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared<H>>,
) -> HttpResponse {
    if req.method() != Method::POST {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "events are POSTed");
    }
    let header = |name: &'static str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = shared.verifier.verify_with(header, &body) {
        tracing::warn!(error = %e, "refused a pushed request");
        let status = match e {
            PushError::Missing(_) | PushError::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        return problem(status, &e.to_string());
    }
    let event: Event = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            // Signed by the gateway yet unreadable: this SDK is older than the gateway.
            tracing::error!(error = %e, "a pushed event could not be read; upgrade omnigate-sdk");
            return problem(StatusCode::BAD_REQUEST, &format!("not an event: {e}"));
        }
    };
    let attempt = header("omnigate-attempt")
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let delivery = Delivery {
        receipt: event.id.clone(),
        attempt,
        event,
    };
    let Ok(turn) = shared.permits.clone().acquire_owned().await else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "stopping");
    };
    let (client, handler) = (shared.client.clone(), shared.handler.clone());
    // Its own task, holding its turn: a handler runs to its end even if the gateway hangs
    // up (its timeout), still counted against `concurrency`; a panic becomes a 500
    // instead of a dropped connection.
    let outcome = shared
        .runtime
        .spawn(async move {
            let _turn = turn;
            let outcome = handler.handle(&delivery, &client).await;
            (delivery, outcome)
        })
        .await;
    let (delivery, outcome) = match outcome {
        Ok(done) => done,
        Err(e) => {
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "a handler panicked");
            return problem(StatusCode::INTERNAL_SERVER_ERROR, "the handler panicked");
        }
    };
    let event = &delivery.event;
    match outcome {
        Ok(()) => {
            shared.stats.handled.fetch_add(1, Ordering::Relaxed);
            HttpResponse::NoContent().finish()
        }
        Err(e) if is_permanent(&e) => {
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event_id = %event.id, attempt = delivery.attempt, error = %e, "handler failed for good; the gateway dead-letters it");
            let mut answer = problem(StatusCode::UNPROCESSABLE_ENTITY, &detail(&e));
            answer.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static(DEAD_LETTER_HEADER),
                actix_web::http::header::HeaderValue::from_static("true"),
            );
            answer
        }
        Err(e) => {
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event_id = %event.id, attempt = delivery.attempt, error = %e, "handler failed; the gateway pushes it again later");
            problem(StatusCode::INTERNAL_SERVER_ERROR, &detail(&e))
        }
    }
}

/// The error, cut short: the gateway keeps only an excerpt of an answer.
fn detail(e: &HandlerError) -> String {
    e.to_string().chars().take(500).collect()
}

/// An RFC 9457 problem.
fn problem(status: StatusCode, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(serde_json::json!({
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        }))
}

/// Runs `handler` as the plugin is registered: behind a push [`Server`] when
/// `OMNIGATE_SIGNING_SECRET` is set (a push registration; see [`Server::from_env`]),
/// otherwise pulled by a [`Runtime`](crate::Runtime) ([`Client::from_env`]). One binary
/// then serves either registration; `concurrency` is handlers at once either way. Until
/// SIGINT or SIGTERM.
pub async fn run_from_env<H: Handler>(
    handler: H,
    concurrency: usize,
) -> Result<RuntimeStats, Error> {
    let pushed = std::env::var("OMNIGATE_SIGNING_SECRET").is_ok_and(|v| !v.trim().is_empty());
    if pushed {
        Server::from_env(handler)?
            .concurrency(concurrency)
            .run()
            .await
    } else {
        crate::Runtime::new(Client::from_env()?, handler)
            .concurrency(concurrency)
            .run()
            .await
    }
}
