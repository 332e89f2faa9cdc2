//! Writes the deliveries `scripts/bench.sh` sends with `wrk`: distinct, signed as each
//! provider signs, with fresh times, so that every one is new to the gateway (no duplicate
//! answered from its dedupe mark) and none is refused as stale. It connects the sources it
//! needs on the gateway first (admin API), with secrets it makes up.
//!
//! Profiles:
//! * `shopify`: Shopify `orders/create` of the 8 KB fixture order, a new order id each.
//! * `mixed`: order stories of Shopify (create, paid, fulfilled), WooCommerce (created,
//!   processing, completed), Stripe, Saleor (created, paid; JWS-signed) and Standard
//!   Webhooks, in about the proportions a shop sees, each story's deliveries one after
//!   another as they arrive.
//!
//! One line per delivery: `path TAB header-count TAB (name TAB value)* TAB body`, the body
//! compact JSON (no raw tabs or newlines). `scripts/bench/wrk.lua` reads it.

use chrono::Utc;
use clap::{Parser, ValueEnum};
use omnigate::samples::{SAMPLES, Sample};
use omnigate::sign::{ProviderWebhook, saleor_jwks, sign};
use omnigate_schemas::api::{KeyEncoding, Provider};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHOPIFY_ORDER: &str =
    include_str!("../../../tests/fixtures/payloads/shopify/orders-create.json");

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    Shopify,
    Mixed,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "shopify")]
    profile: Profile,
    /// How many deliveries to write.
    #[arg(long, default_value_t = 40_000)]
    count: usize,
    /// The gateway whose admin API gets the sources.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    #[arg(long, env = "OMNIGATE_ADMIN_TOKEN")]
    admin_token: String,
    #[arg(long, default_value = "bench-shop")]
    tenant: String,
    #[arg(long)]
    out: std::path::PathBuf,
}

/// A connected source: where its webhooks go and what signs them.
struct Source {
    path: String,
    secret: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let providers: &[Provider] = match args.profile {
        Profile::Shopify => &[Provider::Shopify],
        Profile::Mixed => &[
            Provider::Shopify,
            Provider::Woocommerce,
            Provider::Stripe,
            Provider::Saleor,
            Provider::StandardWebhooks,
        ],
    };
    let mut sources = HashMap::new();
    for &p in providers {
        sources.insert(p, connect(&args, p).await?);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    let mut written = 0;
    let mut bytes = 0;
    let mut story = 0u64;
    while written < args.count {
        story += 1;
        for (provider, topic, body) in next_story(args.profile, story)? {
            if written == args.count {
                break;
            }
            let source = &sources[&provider];
            let delivery_id = format!("bench-{story}-{written}");
            let headers = sign(&ProviderWebhook {
                provider,
                secret: &source.secret,
                key_encoding: KeyEncoding::Base64,
                topic,
                body: &body,
                now: Utc::now().timestamp(),
                delivery_id: &delivery_id,
            })?;
            write!(out, "{}\t{}", source.path, headers.len())?;
            for (name, value) in &headers {
                write!(out, "\t{name}\t{value}")?;
            }
            out.write_all(b"\t")?;
            out.write_all(&body)?;
            out.write_all(b"\n")?;
            written += 1;
            bytes += body.len();
        }
    }
    out.flush()?;
    eprintln!(
        "wrote {written} deliveries ({} bytes of body on average) to {}",
        bytes / written.max(1),
        args.out.display()
    );
    Ok(())
}

/// Connects a source for `provider` with a made-up secret (Saleor: the test key's JWKS).
async fn connect(args: &Args, provider: Provider) -> Result<Source, Box<dyn std::error::Error>> {
    let (secret, request) = match provider {
        Provider::Saleor => (
            omnigate::samples::SALEOR_TEST_KEY.to_string(),
            json!({"options": {"jwks": saleor_jwks(omnigate::samples::SALEOR_TEST_KEY)?}}),
        ),
        Provider::StandardWebhooks => {
            let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
            (secret.clone(), json!({"secret": secret}))
        }
        _ => {
            let secret = format!("bench-secret-{}-0123456789abcdef", provider.as_str());
            (secret.clone(), json!({"secret": secret}))
        }
    };
    let mut request = request;
    request["tenant"] = json!(args.tenant);
    request["provider"] = json!(provider.as_str());
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/sources", args.gateway))
        .bearer_auth(&args.admin_token)
        .json(&request)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["id"].as_str().ok_or("no source id in the answer")?;
    Ok(Source {
        path: omnigate::sign::webhook_path(provider, id, &secret),
        secret,
    })
}

fn sample(provider: Provider, topic: &str, nth: usize) -> &'static Sample {
    SAMPLES
        .iter()
        .filter(|s| s.provider == provider && s.topic == topic)
        .nth(nth)
        .unwrap_or_else(|| panic!("no sample {provider} {topic} #{nth}"))
}

/// A delivery before it is signed: its provider, topic and body.
type Unsigned = (Provider, &'static str, Vec<u8>);

/// The deliveries of story `n`: one order's webhooks, in the order they arrive.
fn next_story(profile: Profile, n: u64) -> Result<Vec<Unsigned>, Box<dyn std::error::Error>> {
    if profile == Profile::Shopify {
        return Ok(vec![(
            Provider::Shopify,
            "orders/create",
            shopify_order(n)?,
        )]);
    }
    // Out of 20 stories: 9 Shopify, 5 WooCommerce, 2 Stripe, 2 Saleor, 2 Standard Webhooks.
    let steps: &[(Provider, &str, usize)] = match n % 20 {
        0..=8 => &[
            (Provider::Shopify, "orders/create", 0),
            (Provider::Shopify, "orders/paid", 0),
            (Provider::Shopify, "fulfillments/create", 0),
        ],
        9..=13 => &[
            (Provider::Woocommerce, "order.created", 0),
            (Provider::Woocommerce, "order.updated", 0),
            (Provider::Woocommerce, "order.updated", 1),
        ],
        14 | 15 => &[(Provider::Stripe, "payment_intent.succeeded", 0)],
        16 | 17 => &[
            (Provider::Saleor, "ORDER_CREATED", 0),
            (Provider::Saleor, "ORDER_FULLY_PAID", 0),
        ],
        _ => &[(Provider::StandardWebhooks, "delivery.created", 0)],
    };
    // A millisecond apart per story: bodies that carry no id of their own still differ.
    let now = Utc::now() + chrono::Duration::milliseconds(n as i64);
    steps
        .iter()
        .map(|&(provider, topic, nth)| {
            let s = sample(provider, topic, nth);
            let fresh = String::from_utf8(omnigate::samples::fresh(s, now))?;
            Ok((provider, s.topic, vary(&fresh, n).into_bytes()))
        })
        .collect()
}

/// The fixture order under a new id, placed and updated now.
fn shopify_order(n: u64) -> Result<Vec<u8>, serde_json::Error> {
    let mut order: Value = serde_json::from_str(SHOPIFY_ORDER)?;
    let id = 7_000_000_000_000 + n;
    let now = Utc::now().to_rfc3339();
    order["id"] = json!(id);
    order["admin_graphql_api_id"] = json!(format!("gid://shopify/Order/{id}"));
    order["order_number"] = json!(100_000 + n);
    order["name"] = json!(format!("#{}", 100_000 + n));
    for field in ["created_at", "updated_at", "processed_at"] {
        order[field] = json!(now);
    }
    serde_json::to_vec(&order)
}

/// `body` with its ids made unique to story `n`. Every id (the value of `id`, `*_id` or
/// `*Id`, and the number ending a `gid://` reference) is changed by the same rule in every
/// delivery of a story, so a story keeps its links (a fulfilment's `order_id` is its
/// order's `id`) while no two stories share an order.
fn vary(body: &str, n: u64) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(mut value) => {
            vary_ids(&mut value, n);
            value.to_string()
        }
        Err(_) => body.to_string(),
    }
}

fn vary_ids(v: &mut Value, n: u64) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let id_key = k == "id" || k.ends_with("_id") || k.ends_with("Id");
                match v {
                    Value::Number(number) if id_key => {
                        if let Some(old) = number.as_u64() {
                            *v = json!(old + n * 10_000_000);
                        }
                    }
                    Value::String(s) if id_key && !s.is_empty() => {
                        *v = match s.parse::<u64>() {
                            Ok(old) => json!((old + n * 10_000_000).to_string()),
                            Err(_) => json!(format!("{s}-{n}")),
                        };
                    }
                    Value::String(s) if s.starts_with("gid://") => {
                        if let Some((head, old)) = s.rsplit_once('/')
                            && let Ok(old) = old.parse::<u64>()
                        {
                            *v = json!(format!("{head}/{}", old + n * 10_000_000));
                        }
                    }
                    _ => vary_ids(v, n),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| vary_ids(i, n)),
        _ => {}
    }
}
