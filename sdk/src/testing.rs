//! A real Omnigate gateway inside your test process (embedded memory store, free port), with
//! helpers to connect a shop, send it signed webhooks as the provider would, register and
//! install your plugin, run it until the gateway is idle, and read what it published. Needs
//! the `testing` feature (as a dev-dependency:
//! `omnigate-sdk = { version = "…", features = ["testing"] }`).
//!
//! ```no_run
//! # struct Loyalty;
//! # #[omnigate_sdk::async_trait]
//! # impl omnigate_sdk::Handler for Loyalty {
//! #     async fn handle(&self, _: &omnigate_sdk::Delivery, _: &omnigate_sdk::Client) -> omnigate_sdk::HandlerResult { Ok(()) }
//! # }
//! # async fn t() {
//! use omnigate_sdk::Runtime;
//! use omnigate_sdk::testing::TestGateway;
//! let gw = TestGateway::start().await;
//! let plugin = gw.plugin("Loyalty", &["order.paid"], "shop-a").await;
//! let shop = gw.source("shopify", "shop-a").await;
//! let (status, _) = gw.send_sample(&shop, "orders-paid").await;
//! assert_eq!(status, 202);
//! // Runs the plugin until every event is handled: no sleeps.
//! let stats = gw.run_until_idle(Runtime::new(plugin.client.clone(), Loyalty)).await;
//! assert_eq!(stats.handled, 1);
//! let events = gw.events("shop-a", "loyalty.points.changed").await;
//! # }
//! ```

use omnigate::config::Settings;
use omnigate::providers::Credentials;
use omnigate::startup::{Gateway, Stopper};
use omnigate::store::Store;
use omnigate::verify::Scheme;
use omnigate_schemas::Event;
use omnigate_schemas::api::{
    CreateInstallation, CreatePlugin, EventsPage, Provider, PublishedType, Scope,
};
use serde_json::{Value, json};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Client, PluginEvent};

/// A connected test shop: its id, provider and signing secret.
#[derive(Debug, Clone)]
pub struct TestSource {
    /// The source id (webhooks go to `/v1/webhooks/<id>`).
    pub id: String,
    /// The provider whose signature scheme it uses.
    pub provider: Provider,
    /// What [`TestGateway::send`] signs with.
    pub secret: String,
}

/// A registered and installed plugin, and a client with its key.
#[derive(Debug, Clone)]
pub struct TestPlugin {
    /// The plugin id.
    pub id: String,
    /// A client holding the plugin's API key.
    pub client: Client,
    /// A push plugin's `whsec_…` signing secret ([`PluginSetup::push_to`]).
    pub signing_secret: Option<String>,
}

impl TestPlugin {
    /// A verifier of the requests pushed to this plugin (a push plugin only).
    pub fn verifier(&self) -> crate::push::Verifier {
        crate::push::Verifier::new(&[self
            .signing_secret
            .as_deref()
            .expect("a push plugin (PluginSetup::push_to) has a signing secret")])
        .expect("the gateway's secret is well formed")
    }
}

/// A running in-process gateway; see the module docs.
pub struct TestGateway {
    /// Its base URL (`http://127.0.0.1:<port>`).
    pub url: String,
    /// Its admin token.
    pub admin_token: String,
    http: reqwest::Client,
    server: Stopper,
    store: Arc<dyn Store>,
    partitions: u32,
}

impl TestGateway {
    /// Starts a gateway on 127.0.0.1 with the memory store.
    pub async fn start() -> TestGateway {
        Self::start_with(|_| {}).await
    }

    /// Starts one with adjusted settings (e.g. a short `inbox_visibility_ms`). It is put
    /// together as `omnigate serve` puts a gateway together: with `redis_url` set it runs on
    /// that Redis (which then needs `secret_key`), and `router: false` turns routing off.
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestGateway {
        let mut settings = Settings {
            admin_token: Some("test-admin-token".to_string()),
            workers: Some(1),
            // A push plugin under test listens on 127.0.0.1, over plain http.
            push_allow_private: true,
            ..Settings::default()
        };
        tweak(&mut settings);
        // The same assembly as `omnigate serve`: the memory store unless the tweak named a
        // Redis URL.
        let running = Gateway::build(settings)
            .await
            .expect("gateway")
            .serve(std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .expect("server");
        let url = format!("http://{}", running.addr());
        // The tweak may have set another token (or none, and the gateway made one up).
        let admin_token = running.state().admin_token().to_string();
        let store = running.state().store.clone();
        let partitions = running.state().settings.partitions;
        TestGateway {
            url,
            admin_token,
            http: reqwest::Client::new(),
            server: running.spawn(),
            store,
            partitions,
        }
    }

    /// A client with the admin token.
    pub fn admin(&self) -> Client {
        Client::builder(&self.url, &self.admin_token)
            .build()
            .expect("client")
    }

    /// Connects a shop of `provider` ("shopify", "woocommerce", …) for `tenant`.
    pub async fn source(&self, provider: &str, tenant: &str) -> TestSource {
        // A fresh random secret per source, as a provider generates one; a Saleor source
        // is verified by its public keys and has none.
        let random: [u8; 32] = rand::random();
        let kind: Provider = serde_json::from_value(json!(provider))
            .unwrap_or_else(|_| panic!("{provider:?} is not a provider"));
        let descriptor = omnigate::providers::of(kind);
        let secret = match (descriptor.credentials, descriptor.scheme) {
            (Credentials::PublicKeysOrLegacySecret, _) => None,
            (_, Scheme::StandardWebhooks) => Some(format!(
                "whsec_{}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, random)
            )),
            _ => Some(hex::encode(random)),
        };
        let mut body = json!({"tenant": tenant, "provider": provider});
        match &secret {
            Some(secret) => body["secret"] = json!(secret),
            None => {
                body["options"] = json!({"jwks": omnigate::sign::saleor_jwks(
                    omnigate::samples::SALEOR_TEST_KEY).expect("test key")});
            }
        }
        let res: Value = self
            .http
            .post(format!("{}/v1/sources", self.url))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .expect("gateway reachable")
            .json()
            .await
            .expect("a source");
        TestSource {
            id: res["id"].as_str().expect("source id").to_string(),
            provider: kind,
            secret: secret.unwrap_or_else(|| omnigate::samples::SALEOR_TEST_KEY.to_string()),
        }
    }

    /// Sends `body` to `source` as its provider would sign it; returns the status and
    /// the JSON answer.
    pub async fn send(&self, source: &TestSource, topic: &str, body: &[u8]) -> (u16, Value) {
        let delivery_id = format!("test-{}", rand::random::<u64>());
        let headers = omnigate::sign::sign(&omnigate::sign::ProviderWebhook {
            provider: source.provider,
            secret: &source.secret,
            key_encoding: Default::default(),
            topic,
            body,
            now: chrono_now(),
            delivery_id: &delivery_id,
        })
        .expect("signable");
        let mut req = self
            .http
            .post(format!(
                "{}{}",
                self.url,
                omnigate::sign::webhook_path(source.provider, &source.id, &source.secret)
            ))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.expect("gateway reachable");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Sends a bundled sample of the source's provider, named as `omnigate trigger --list`
    /// names it (`orders-paid`, `order.updated-completed`) or by its topic (`orders/paid`:
    /// the first sample of it), with its times moved to now as a shop would send it.
    pub async fn send_sample(&self, source: &TestSource, name: &str) -> (u16, Value) {
        self.send_sample_with(source, name, &[]).await
    }

    /// [`send_sample`](Self::send_sample) with fields changed first, each `PATH=VALUE` as
    /// `omnigate trigger --set` takes it (a dotted path; the value is JSON, else a string).
    ///
    /// ```no_run
    /// # async fn t(gw: omnigate_sdk::testing::TestGateway, shop: omnigate_sdk::testing::TestSource) {
    /// let (status, _) = gw
    ///     .send_sample_with(&shop, "fulfillments-update", &["shipment_status=delayed"])
    ///     .await;
    /// assert_eq!(status, 202);
    /// # }
    /// ```
    pub async fn send_sample_with(
        &self,
        source: &TestSource,
        name: &str,
        set: &[&str],
    ) -> (u16, Value) {
        let sample = omnigate::samples::find(source.provider, name).unwrap_or_else(|| {
            panic!(
                "no bundled {} sample {name:?} (`omnigate trigger --list` lists them)",
                source.provider
            )
        });
        let mut body = omnigate::samples::fresh_now(sample);
        if !set.is_empty() {
            let mut json: Value = serde_json::from_slice(&body).expect("a JSON sample");
            for assignment in set {
                omnigate::trigger::set(&mut json, assignment)
                    .unwrap_or_else(|e| panic!("{assignment:?}: {e}"));
            }
            body = serde_json::to_vec(&json).expect("JSON");
        }
        self.send(source, sample.topic, &body).await
    }

    /// Registers `registration` and installs it in `tenant` with `scopes`.
    pub async fn install(
        &self,
        registration: &CreatePlugin,
        tenant: &str,
        scopes: &[Scope],
    ) -> TestPlugin {
        let admin = self.admin();
        let created = admin
            .admin()
            .register_plugin(registration)
            .await
            .expect("plugin registered");
        admin
            .admin()
            .install(
                &created.plugin.id,
                &CreateInstallation {
                    tenant: tenant.into(),
                    scopes: scopes.to_vec(),
                    push_url: None,
                },
            )
            .await
            .expect("plugin installed");
        TestPlugin {
            id: created.plugin.id,
            client: Client::builder(&self.url, created.api_key)
                .build()
                .expect("client"),
            signing_secret: created.signing_secret,
        }
    }

    /// `tenant`'s logged events of `event_type`, whole (id, subject, source, `data`, …),
    /// oldest first: every page of them.
    pub async fn events(&self, tenant: &str, event_type: &str) -> Vec<Event> {
        let mut events = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/v1/tenants/{tenant}/events?type={event_type}&limit=1000",
                self.url
            );
            if let Some(a) = &after {
                url.push_str(&format!("&after={a}"));
            }
            let page: EventsPage = self
                .http
                .get(url)
                .bearer_auth(&self.admin_token)
                .send()
                .await
                .expect("gateway reachable")
                .json()
                .await
                .expect("an events page");
            events.extend(page.events);
            if page.done {
                return events;
            }
            after = Some(page.next.expect("a page that is not the last has a next"));
        }
    }

    /// Waits (up to 15 s) until `tenant` has at least `n` events of `event_type`.
    pub async fn wait_for_events(&self, tenant: &str, event_type: &str, n: usize) -> Vec<Event> {
        for _ in 0..150 {
            let got = self.events(tenant, event_type).await;
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{tenant} never had {n} {event_type} events");
    }

    /// Registers a plugin subscribed to `event_types` and installs it in `tenant` with
    /// every scope, once awaited; before that, [`PluginSetup::publishes`] declares the
    /// types it publishes.
    ///
    /// ```no_run
    /// # use omnigate_sdk::PluginEvent;
    /// # #[derive(serde::Serialize, schemars::JsonSchema)]
    /// # struct PointsChanged { balance: i64 }
    /// # impl PluginEvent for PointsChanged { const TYPE: &'static str = "loyalty.points.changed"; }
    /// # async fn t(gw: omnigate_sdk::testing::TestGateway) {
    /// let plugin = gw
    ///     .plugin("Loyalty", &["order.paid"], "shop-a")
    ///     .publishes::<PointsChanged>()
    ///     .await;
    /// # }
    /// ```
    pub fn plugin(&self, name: &str, event_types: &[&str], tenant: &str) -> PluginSetup<'_> {
        PluginSetup {
            gateway: self,
            registration: CreatePlugin {
                name: name.into(),
                event_types: event_types.iter().map(|s| s.to_string()).collect(),
                publishes: Vec::new(),
                delivery: None,
            },
            tenant: tenant.into(),
            scopes: vec![Scope::EventsRead, Scope::EventsPublish, Scope::CustomerPii],
        }
    }

    /// Waits until the gateway is idle: every logged event routed, and the inbox of every
    /// plugin in its store (also those registered by other means than this helper) empty (each delivery handled and acknowledged, or dead-lettered; one handed
    /// back for a retry is waited for). Run your plugins' runtimes meanwhile: a story then
    /// needs no sleeps. Panics after 30 s, naming what is still busy.
    pub async fn wait_idle(&self) {
        self.wait_idle_for(Duration::from_secs(30)).await
    }

    /// [`wait_idle`](Self::wait_idle), panicking after `limit`.
    pub async fn wait_idle_for(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut busy = String::new();
        while tokio::time::Instant::now() < deadline {
            match self.busy().await {
                None => return,
                Some(what) => busy = what,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the gateway was not idle after {limit:?}: {busy}");
    }

    /// What keeps the gateway busy, if anything. Idle means: nothing unrouted, no inbox
    /// holding anything, and no event logged meanwhile (a plugin that published and then
    /// acknowledged between the two readings of the logs is caught by the second).
    async fn busy(&self) -> Option<String> {
        let progress = || async {
            let mut out = Vec::new();
            for p in 0..self.partitions {
                out.push(self.store.route_progress(p).await.expect("store readable"));
            }
            out
        };
        let before = progress().await;
        if let Some((p, r)) = before.iter().enumerate().find(|(_, r)| r.unrouted > 0) {
            return Some(format!(
                "partition {p} has {} event(s) not routed yet",
                r.unrouted
            ));
        }
        for id in self.store.plugin_ids().await.expect("store readable") {
            let depth = self.store.inbox_depth(&id).await.expect("store readable");
            if depth.waiting + depth.in_flight > 0 {
                return Some(format!(
                    "plugin {id} has {} delivery(ies) waiting and {} in flight \
                     (is its runtime running?)",
                    depth.waiting, depth.in_flight
                ));
            }
        }
        (progress().await != before).then(|| "events were logged meanwhile".to_string())
    }

    /// Stops the server (at once: connections still open are closed) and its router.
    pub async fn stop(self) {
        self.server.stop_now().await;
    }

    /// Runs `runtime` until the gateway is idle ([`wait_idle`](Self::wait_idle)), then
    /// stops it; what it did. For several plugins at once, [`Runtime::spawn`] each, then
    /// `wait_idle`, then stop them.
    ///
    /// [`Runtime::spawn`]: crate::Runtime::spawn
    pub async fn run_until_idle<H: crate::Handler>(
        &self,
        runtime: crate::Runtime<H>,
    ) -> crate::RuntimeStats {
        let running = runtime.spawn();
        self.wait_idle().await;
        running.stop().await.expect("the runtime ran")
    }
}

/// A plugin about to be registered and installed ([`TestGateway::plugin`]); `.await` it.
pub struct PluginSetup<'a> {
    gateway: &'a TestGateway,
    registration: CreatePlugin,
    tenant: String,
    scopes: Vec<Scope>,
}

impl PluginSetup<'_> {
    /// Declares that the plugin publishes `T`, with the JSON Schema derived from it.
    pub fn publishes<T: PluginEvent>(self) -> Self {
        self.declares(T::declaration())
    }

    /// Declares a published type with a hand-written schema.
    pub fn declares(mut self, published: PublishedType) -> Self {
        self.registration.publishes.push(published);
        self
    }

    /// Registers it for push delivery to `url` (e.g. `http://127.0.0.1:<port>/` of a
    /// [`push::Server`](crate::push::Server) under test: the test gateway allows private
    /// addresses). The [`TestPlugin`] then holds its signing secret.
    pub fn push_to(mut self, url: &str) -> Self {
        self.registration.delivery = Some(omnigate_schemas::api::Delivery::push(url));
        self
    }

    /// Installs it with these scopes instead of every scope.
    pub fn scopes(mut self, scopes: &[Scope]) -> Self {
        self.scopes = scopes.to_vec();
        self
    }
}

impl<'a> IntoFuture for PluginSetup<'a> {
    type Output = TestPlugin;
    type IntoFuture = Pin<Box<dyn Future<Output = TestPlugin> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.gateway
                .install(&self.registration, &self.tenant, &self.scopes)
                .await
        })
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
