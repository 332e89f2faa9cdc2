//! All settings in one struct. Every setting is a `--flag` and an `OMNIGATE_*` variable;
//! `omnigate serve --help` lists them with their defaults.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "omnigate", version, about = "Webhook gateway for online shops")]
pub struct Cli {
    /// Log output format.
    #[arg(long, env = "OMNIGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info,omnigate=debug`).
    #[arg(long, env = "OMNIGATE_LOG", default_value = "info", global = true)]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(Box<Settings>),
    /// Print the OpenAPI document to stdout.
    Openapi,
    /// Print the provider topics Omnigate maps, as a Markdown table.
    Topics,
    /// Send a bundled sample (or a file) to a gateway, signed exactly as the provider
    /// would, and print the answer. `omnigate trigger --list` shows the samples.
    Trigger(TriggerArgs),
    /// Manage the source secrets stored in Redis.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// For plugin development: pull a (pull) plugin's inbox and forward each delivery to a
    /// local URL, signed exactly as push delivery signs, acknowledging on 2xx; one line per
    /// delivery. Like `stripe listen --forward-to`.
    Forward(ForwardArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// The plugin's API key (`ogk_…`).
    #[arg(long, env = "OMNIGATE_PLUGIN_KEY", hide_env_values = true)]
    pub key: String,
    /// Where to forward (`http://localhost:3000/webhooks`).
    #[arg(long)]
    pub to: String,
    /// The signing secret to sign with (`whsec_…`); without it one is made for this run
    /// and printed, for your receiver to verify with.
    #[arg(long, env = "OMNIGATE_FORWARD_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The gateway.
    #[arg(long, env = "OMNIGATE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// How long one forward may take, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every source's secrets with the current `OMNIGATE_SECRET_KEY`: the step of a
    /// key rotation between adding the new key and dropping the previous one, and the way
    /// to encrypt secrets stored in plaintext. Takes the same settings as `serve`.
    Rewrap(Box<Settings>),
}

#[derive(Debug, Clone, Args)]
pub struct TriggerArgs {
    /// List the bundled samples and exit.
    #[arg(long)]
    pub list: bool,
    /// The provider (`shopify`, `woocommerce`, `stripe`, …).
    #[arg(required_unless_present = "list")]
    pub provider: Option<String>,
    /// A sample name (`orders-create`, `order.updated-refunded`) or a topic (`orders/paid`).
    #[arg(required_unless_present = "list")]
    pub topic: Option<String>,
    /// The source id to send to.
    #[arg(long, required_unless_present_any = ["list", "show"])]
    pub source: Option<String>,
    /// The source's signing secret (for `saleor`: an RSA private key, PEM).
    #[arg(long, required_unless_present_any = ["list", "show"], hide_env_values = true)]
    pub secret: Option<String>,
    /// Print the body that would be sent (after `--set`) and exit, sending nothing.
    #[arg(long)]
    pub show: bool,
    /// Change a field of the body before it is signed: `path=value`, the path dotted for
    /// nested objects (`shipment_status=delayed`, `billing.country=PL`), the value JSON
    /// when it parses as JSON (`total_price="10.00"`, `line_items=[]`), else a string.
    /// Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// The gateway.
    #[arg(long, env = "OMNIGATE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Send this file's bytes instead of the bundled sample (the topic is then the
    /// provider topic, e.g. `orders/create`). The file is sent as it is: a body whose own
    /// signed time is older than the gateway's replay window is refused (401
    /// `stale-delivery`); bundled samples are sent with their times moved to now.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings of `omnigate serve`.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "OMNIGATE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Redis URL (`redis://host:6379/0`, `rediss://…`, or `redis+cluster://h1:6379,h2:6379`).
    /// Without it the gateway runs on the embedded in-memory store, which loses everything
    /// on restart.
    #[arg(long, env = "OMNIGATE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key, so several deployments can share one server.
    #[arg(long, env = "OMNIGATE_REDIS_PREFIX", default_value = "og")]
    pub redis_prefix: String,

    /// Key that encrypts source secrets before they are stored in Redis (XChaCha20-Poly1305),
    /// so a copy of Redis does not hand out the keys to forge webhooks: 32 random bytes,
    /// standard base64 (`head -c 32 /dev/urandom | base64`). Required with Redis unless
    /// `--insecure-plaintext-secrets`; the memory store needs none.
    #[arg(long, env = "OMNIGATE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<KeyText>,

    /// Keys being rotated out, comma-separated: secrets sealed with them still open, new
    /// ones are sealed with `--secret-key`. Drop them after `omnigate secrets rewrap`.
    #[arg(
        long,
        env = "OMNIGATE_SECRET_KEY_PREVIOUS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub secret_key_previous: Vec<KeyText>,

    /// Store source secrets in Redis in plaintext when no `--secret-key` is set, instead of
    /// refusing to start. Insecure: for local development and migrations only.
    #[arg(long, env = "OMNIGATE_INSECURE_PLAINTEXT_SECRETS")]
    pub insecure_plaintext_secrets: bool,

    /// Bearer token for the admin API. Required with Redis; generated and printed once
    /// when running on the memory store without one.
    #[arg(long, env = "OMNIGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Number of log partitions (tenants are hashed onto them). Changing it re-homes tenants.
    #[arg(long, env = "OMNIGATE_PARTITIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,

    /// How long a delivery id is remembered for de-duplication, in seconds.
    #[arg(long, env = "OMNIGATE_DEDUPE_TTL_SECS", default_value_t = 72 * 3600)]
    pub dedupe_ttl_secs: u64,

    /// How long the last snapshot of a provider resource (an order) is kept for diffing
    /// "updated" deliveries, in seconds (and the marks of bodies that state no signed time).
    #[arg(long = "state-ttl-secs", env = "OMNIGATE_STATE_TTL_SECS", default_value_t = 90 * 86_400)]
    pub snapshot_ttl_secs: u64,

    /// An unacknowledged inbox delivery is handed out again after this long, in ms.
    #[arg(long, env = "OMNIGATE_INBOX_VISIBILITY_MS", default_value_t = 30_000)]
    pub inbox_visibility_ms: u64,

    /// Deliveries that fail this many attempts move to the plugin's dead letters.
    #[arg(long, env = "OMNIGATE_INBOX_MAX_ATTEMPTS", default_value_t = 8)]
    pub inbox_max_attempts: u64,

    /// Run the router (log partitions → plugin inboxes) in this process.
    #[arg(long, env = "OMNIGATE_ROUTER", default_value_t = true, action = clap::ArgAction::Set)]
    pub router: bool,

    /// Log entries a router took but did not acknowledge for this long (its process died
    /// mid-batch) are taken over by another router, in milliseconds.
    #[arg(long, env = "OMNIGATE_ROUTER_STALE_MS", default_value_t = 30_000)]
    pub router_stale_ms: u64,

    /// Largest accepted webhook body, in bytes (413 above).
    #[arg(long, env = "OMNIGATE_BODY_LIMIT_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Default replay window for schemes that sign a timestamp, in seconds (a source's
    /// `options.tolerance_s` overrides it).
    #[arg(long, env = "OMNIGATE_SIGNATURE_TOLERANCE_SECS", default_value_t = 300)]
    pub signature_tolerance_secs: u64,

    /// Approximate number of entries kept per log partition (0 = unbounded). Trimming is
    /// counted in `omnigate_log_trimmed_total` and logged.
    #[arg(long, env = "OMNIGATE_LOG_MAXLEN", default_value_t = 1_000_000)]
    pub log_maxlen: u64,

    /// Entries one quarantine partition holds (0 = unbounded). Quarantine is never
    /// trimmed: at the cap a payload that cannot be mapped is answered 503
    /// `quarantine-full` until entries are discarded (`DELETE /v1/quarantine/{id}`).
    #[arg(long, env = "OMNIGATE_QUARANTINE_MAXLEN", default_value_t = 100_000)]
    pub quarantine_maxlen: u64,

    /// Bytes the quarantine holds in all (0 = unbounded), split evenly over the
    /// partitions; past it, as past the entry cap, 503 `quarantine-full`.
    #[arg(long, env = "OMNIGATE_QUARANTINE_MAX_BYTES", default_value_t = 1 << 30)]
    pub quarantine_max_bytes: u64,

    /// How long a request waits for the store before answering 503, in milliseconds.
    #[arg(long, env = "OMNIGATE_STORE_TIMEOUT_MS", default_value_t = 2000)]
    pub store_timeout_ms: u64,

    /// Directory of the local spool (Redis only): a verified delivery the store cannot
    /// take within `--store-timeout-ms` is written and fsynced here and answered
    /// `202 {"spooled": true}`, then drained into the store, in arrival order, once it
    /// answers again. One gateway process per directory. Without it a store outage is
    /// answered 503.
    #[arg(long, env = "OMNIGATE_SPOOL_DIR")]
    pub spool_dir: Option<std::path::PathBuf>,

    /// Most bytes the spool may hold on disk; past it (or on a full disk) a delivery is
    /// answered 503 again, never accepted and lost.
    #[arg(long, env = "OMNIGATE_SPOOL_MAX_BYTES", default_value_t = 1 << 30)]
    pub spool_max_bytes: u64,

    /// How long a source's configuration is cached by this process, in milliseconds.
    /// Changes made through this process apply at once; through another, within this time.
    #[arg(long, env = "OMNIGATE_SOURCE_CACHE_MS", default_value_t = 5000)]
    pub source_cache_ms: u64,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "OMNIGATE_WORKERS")]
    pub workers: Option<usize>,

    /// Accept plain `http://` Saleor `jwks_url`s (local development only: keys fetched
    /// over plain HTTP can be swapped by anyone on the path).
    #[arg(long, env = "OMNIGATE_JWKS_ALLOW_HTTP")]
    pub jwks_allow_http: bool,

    /// Webhooks per second each source may send to this process (0 = no limit); above it
    /// the answer is 429 with `Retry-After`.
    #[arg(long, env = "OMNIGATE_WEBHOOK_RATE", default_value_t = 200)]
    pub webhook_rate: u32,

    /// Webhooks a source may send at once above its rate (a sale's first seconds).
    #[arg(long, env = "OMNIGATE_WEBHOOK_BURST", default_value_t = 1000)]
    pub webhook_burst: u32,

    /// API calls per second each plugin key may make to this process (0 = no limit). A
    /// plugin runtime keeping up with 1,000 webhooks/s makes about 2,000 (a pull per few
    /// events, batched acknowledgements): `scripts/bench.sh` measures it.
    #[arg(long, env = "OMNIGATE_PLUGIN_RATE", default_value_t = 2000)]
    pub plugin_rate: u32,

    /// API calls a plugin may make at once above its rate.
    #[arg(long, env = "OMNIGATE_PLUGIN_BURST", default_value_t = 4000)]
    pub plugin_burst: u32,

    /// Replays (`/v1/inbox/replay`, `/v1/inbox/dead/replay`) per minute per plugin: each
    /// can add thousands of deliveries (0 = no limit).
    #[arg(long, env = "OMNIGATE_REPLAYS_PER_MINUTE", default_value_t = 6)]
    pub replays_per_minute: u32,

    /// Long-polls (`/v1/inbox/pull`) one plugin may hold open at once in this process
    /// (0 = no limit); each holds a Redis connection while it waits.
    #[arg(long, env = "OMNIGATE_PULLS_PER_PLUGIN", default_value_t = 8)]
    pub pulls_per_plugin: usize,

    /// How long a request body may take to arrive, in milliseconds (slow senders are cut
    /// off with 408 instead of holding a worker).
    #[arg(long, env = "OMNIGATE_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// Entries one plugin inbox may hold (0 = unbounded). Beyond it the oldest are
    /// removed, counted in `omnigate_inbox_trimmed_total` and logged: a slow or abandoned
    /// plugin loses its oldest deliveries instead of filling Redis for every tenant.
    #[arg(long, env = "OMNIGATE_INBOX_MAXLEN", default_value_t = 100_000)]
    pub inbox_maxlen: u64,

    /// Dead letters one plugin keeps (0 = unbounded); the oldest go first, logged.
    #[arg(long, env = "OMNIGATE_DEAD_MAXLEN", default_value_t = 10_000)]
    pub dead_maxlen: u64,

    /// Redis connections long-polls may hold at once in this process (each blocking read
    /// needs its own); pulls beyond it answer with what is ready instead of waiting.
    /// Idle ones are closed after a minute.
    #[arg(long, env = "OMNIGATE_REDIS_BLOCKING_POOL", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub redis_blocking_pool: usize,

    /// Replicas that must confirm a delivery's write (Redis `WAIT`, in the same round trip)
    /// before it is answered 2xx. Replication is asynchronous: without this, a primary that
    /// dies right after answering can take acknowledged deliveries with it when a replica is
    /// promoted. Fewer confirmations within `--store-timeout-ms` count as an outage (the
    /// delivery is spooled, or answered 503). 0: the primary's answer is enough.
    #[arg(long, env = "OMNIGATE_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// How long this process remembers that a source id does not exist, in milliseconds,
    /// so unknown ids cost no store round trip each.
    #[arg(long, env = "OMNIGATE_UNKNOWN_SOURCE_CACHE_MS", default_value_t = 2000)]
    pub unknown_source_cache_ms: u64,

    /// Run push delivery (pushers for every push plugin) in this process. Every process
    /// that runs it shares the work through the inboxes' consumer groups.
    #[arg(long, env = "OMNIGATE_PUSH", default_value_t = true, action = clap::ArgAction::Set)]
    pub push: bool,

    /// Let push URLs be `http` and point at loopback, private and link-local addresses
    /// (local development and tests only: it lets whoever registers a plugin make the
    /// gateway send requests inside its own network).
    #[arg(long, env = "OMNIGATE_PUSH_ALLOW_PRIVATE")]
    pub push_allow_private: bool,

    /// How long a push may take to connect, in milliseconds.
    #[arg(
        long,
        env = "OMNIGATE_PUSH_CONNECT_TIMEOUT_MS",
        default_value_t = 5_000
    )]
    pub push_connect_timeout_ms: u64,

    /// How long a push may take in all (connect, send, answer), in milliseconds; past it,
    /// it counts as failed and is retried.
    #[arg(long, env = "OMNIGATE_PUSH_TIMEOUT_MS", default_value_t = 15_000)]
    pub push_timeout_ms: u64,

    /// The waits between push attempts after a failure, comma-separated (`500ms`, `5s`,
    /// `5m`, `2h`); one more attempt than waits, then the delivery is a dead letter. Each
    /// wait is jittered by up to ±10 %. The default spreads 8 attempts over about 27 hours.
    #[arg(
        long,
        env = "OMNIGATE_PUSH_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h"
    )]
    pub push_retry_schedule: RetrySchedule,

    /// An endpoint whose pushes have all failed for this long is marked failing: it gets
    /// one probe at a time, `--push-probe-interval-ms` apart, until one succeeds. In seconds.
    #[arg(long, env = "OMNIGATE_PUSH_BREAKER_AFTER_SECS", default_value_t = 300)]
    pub push_breaker_after_secs: u64,

    /// How often a failing endpoint is probed, in milliseconds.
    #[arg(
        long,
        env = "OMNIGATE_PUSH_PROBE_INTERVAL_MS",
        default_value_t = 30_000
    )]
    pub push_probe_interval_ms: u64,

    /// Proxies in front of the gateway (CIDRs, comma-separated, e.g. `10.0.0.0/8`). A
    /// request from one of them is taken to come from the address it names in
    /// `X-Forwarded-For` (the nearest one not itself trusted); from anywhere else the
    /// header is ignored, so it cannot be forged past a source's `allow_cidrs`.
    #[arg(long, env = "OMNIGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Run the pollers (Allegro, Prom.ua and Rozetka sources) in this process. Processes share them: each
    /// source is polled by one process at a time, which holds its lease.
    #[arg(long, env = "OMNIGATE_POLL", default_value_t = true, action = clap::ArgAction::Set)]
    pub poll: bool,

    /// How long a poll lease lasts without renewal, in milliseconds: the longest a source
    /// waits for another process after its poller's process died.
    #[arg(long, env = "OMNIGATE_POLL_LEASE_MS", default_value_t = 30_000, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(500..=600_000))]
    pub poll_lease_ms: u64,

    /// Let poll sources' `api_base` and `token_url`, and thin sources' `options.api.base_url`,
    /// be `http` (local fakes and tests only).
    #[arg(long, env = "OMNIGATE_POLL_ALLOW_HTTP")]
    pub poll_allow_http: bool,

    /// Run the enricher in this process: it reads back the resources thin events name
    /// (sources with API credentials). Processes share the work.
    #[arg(long, env = "OMNIGATE_ENRICH", default_value_t = true, action = clap::ArgAction::Set)]
    pub enrich: bool,

    /// The enricher's first wait before reading a failed resource again, in milliseconds;
    /// each later wait is three times longer, at most an hour.
    #[arg(long, env = "OMNIGATE_ENRICH_RETRY_MS", default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(10..=3_600_000))]
    pub enrich_retry_ms: u64,

    /// How often this process adds its count of deliveries per source and outcome to the
    /// store (what `GET /v1/sources` shows for the last hour), in milliseconds.
    #[arg(long, env = "OMNIGATE_TALLY_REPORT_MS", default_value_t = 5_000, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(10..=60_000))]
    pub tally_report_ms: u64,

    /// The address shops reach this gateway at (`https://hooks.example.com`), when it is
    /// not the one the admin API is called on (a proxy, a load balancer): sources then show
    /// their full `webhook_url`.
    #[arg(long, env = "OMNIGATE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

/// An http(s) URL with nothing after the path: a base the webhook paths are appended to.
fn parse_public_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} must be an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{text:?} must have no query, fragment or user"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// The waits between push attempts (`5s,5m,30m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl std::str::FromStr for RetrySchedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let waits = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                let split = part
                    .find(|c: char| !c.is_ascii_digit())
                    .ok_or_else(|| format!("{part:?} has no unit (ms, s, m, h)"))?;
                let (n, unit) = part.split_at(split);
                let n: u64 = n
                    .parse()
                    .map_err(|_| format!("{part:?} does not start with a number"))?;
                let ms = match unit {
                    "ms" => n,
                    "s" => n * 1000,
                    "m" => n * 60_000,
                    "h" => n * 3_600_000,
                    _ => return Err(format!("{part:?}: the unit is ms, s, m or h")),
                };
                if ms > 86_400_000 {
                    return Err(format!("{part:?}: a wait is at most a day"));
                }
                Ok(Duration::from_millis(ms))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if waits.len() > 20 {
            return Err("at most 20 waits".into());
        }
        Ok(RetrySchedule(waits))
    }
}

impl std::fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| {
                let ms = d.as_millis();
                match ms {
                    ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
                    ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
                    ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
                    ms => format!("{ms}ms"),
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        "5s,5m,30m,2h,5h,10h,10h"
            .parse()
            .expect("the default schedule parses")
    }
}

impl Settings {
    pub fn dedupe_ttl(&self) -> Duration {
        Duration::from_secs(self.dedupe_ttl_secs)
    }

    pub fn snapshot_ttl(&self) -> Duration {
        Duration::from_secs(self.snapshot_ttl_secs)
    }

    pub fn inbox_visibility(&self) -> Duration {
        Duration::from_millis(self.inbox_visibility_ms)
    }

    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }

    pub fn source_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.source_cache_ms)
    }
}

impl Default for Settings {
    /// The documented defaults, as `omnigate serve` with no flags and no environment.
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            redis_url: None,
            redis_prefix: "og".into(),
            secret_key: None,
            secret_key_previous: Vec::new(),
            insecure_plaintext_secrets: false,
            admin_token: None,
            partitions: 16,
            dedupe_ttl_secs: 72 * 3600,
            snapshot_ttl_secs: 90 * 86_400,
            inbox_visibility_ms: 30_000,
            inbox_max_attempts: 8,
            router: true,
            router_stale_ms: 30_000,
            body_limit_bytes: 2 * 1024 * 1024,
            signature_tolerance_secs: 300,
            log_maxlen: 1_000_000,
            quarantine_maxlen: 100_000,
            quarantine_max_bytes: 1 << 30,
            store_timeout_ms: 2000,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            source_cache_ms: 5000,
            workers: None,
            jwks_allow_http: false,
            webhook_rate: 200,
            webhook_burst: 1000,
            plugin_rate: 2000,
            plugin_burst: 4000,
            replays_per_minute: 6,
            pulls_per_plugin: 8,
            body_timeout_ms: 10_000,
            inbox_maxlen: 100_000,
            dead_maxlen: 10_000,
            redis_blocking_pool: 64,
            redis_wait_replicas: 0,
            unknown_source_cache_ms: 2000,
            push: true,
            push_allow_private: false,
            push_connect_timeout_ms: 5_000,
            push_timeout_ms: 15_000,
            push_retry_schedule: RetrySchedule::default(),
            push_breaker_after_secs: 300,
            push_probe_interval_ms: 30_000,
            trusted_proxies: Vec::new(),
            poll: true,
            poll_lease_ms: 30_000,
            poll_allow_http: false,
            enrich: true,
            enrich_retry_ms: 10_000,
            tally_report_ms: 5_000,
            public_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_cli_defaults() {
        let cli = Cli::try_parse_from(["omnigate", "serve"]).unwrap();
        let Command::Serve(parsed) = cli.command else {
            panic!("expected serve")
        };
        let d = Settings::default();
        // Environment variables may be set on the machine running the tests; compare only
        // what the environment cannot have changed here.
        if std::env::vars().all(|(k, _)| !k.starts_with("OMNIGATE_")) {
            assert_eq!(format!("{parsed:?}"), format!("{d:?}"));
        }
        assert_eq!(d.partitions, 16);
        assert_eq!(d.dedupe_ttl(), Duration::from_secs(259_200));
    }

    #[test]
    fn a_public_url_is_an_http_base_with_a_host() {
        assert_eq!(
            parse_public_url("https://hooks.example.com/").unwrap(),
            "https://hooks.example.com"
        );
        assert_eq!(
            parse_public_url("http://10.0.0.5:8080/gateway").unwrap(),
            "http://10.0.0.5:8080/gateway"
        );
        for bad in [
            "hooks.example.com",
            "ftp://hooks.example.com",
            "https://hooks.example.com/?a=1",
            "https://user@hooks.example.com",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retry_schedules_read_and_print_in_units() {
        let s: RetrySchedule = "500ms, 5s,5m,2h".parse().unwrap();
        assert_eq!(
            s.0,
            [
                Duration::from_millis(500),
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200)
            ]
        );
        assert_eq!(s.to_string(), "500ms,5s,5m,2h");
        let total: Duration = RetrySchedule::default().0.iter().sum();
        assert!(
            total > Duration::from_secs(24 * 3600),
            "about a day: {total:?}"
        );
        for bad in ["5", "5d", "x5s", "25h", ""] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad:?}");
        }
    }
}

/// A key's text as given in the settings: never printed (its `Debug` is redacted), so a
/// logged `Settings` cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyText(String);

impl KeyText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for KeyText {
    fn from(text: String) -> Self {
        KeyText(text)
    }
}

impl From<&str> for KeyText {
    fn from(text: &str) -> Self {
        KeyText(text.to_string())
    }
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(***)")
    }
}
