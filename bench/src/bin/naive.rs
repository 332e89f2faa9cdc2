//! The second reference `scripts/bench.sh` measures beside the gateway: the naive pipeline
//! issue #10 names as reaching 65–70 % of the bare handler on the same stack — verify the
//! Shopify HMAC, parse the body to a `serde_json::Value`, check it against the Shopify order
//! schema, map it to an `order.created` event and `XADD` that. No dedupe, no identity, no
//! snapshot, no quarantine, no event schema, no router, no metrics or tracing: what is left
//! between this and `omnigate serve` is what the gateway's guarantees cost, and what is
//! left between this and the bare handler is what any pipeline of that shape costs here.
//! Shopify deliveries only (the `shopify` profile).

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use clap::Parser;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8091")]
    bind: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// The Shopify source's secret (`omnigate-presign` makes it up the same way every time).
    #[arg(long, default_value = "bench-secret-shopify-0123456789abcdef")]
    secret: String,
    /// HTTP workers (default: one per core, as `omnigate serve`).
    #[arg(long)]
    workers: Option<usize>,
}

struct Pipeline {
    redis: redis::aio::ConnectionManager,
    secret: Vec<u8>,
    schema: jsonschema::Validator,
}

fn verified(secret: &[u8], req: &HttpRequest, body: &[u8]) -> bool {
    let Some(given) = req.headers().get("x-shopify-hmac-sha256").and_then(|v| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_bytes())
            .ok()
    }) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize().into_bytes().as_slice().ct_eq(&given).into()
}

/// The mapping a first version would write: the order's identity, money and lines.
fn order_created(order: &Value) -> Value {
    let lines: Vec<Value> = order["line_items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|l| {
                    json!({
                        "sku": l["sku"],
                        "title": l["title"],
                        "quantity": l["quantity"],
                        "unit_price": {"amount": l["price"], "currency": order["currency"]},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "type": "order.created",
        "subject": format!("order:{}", order["id"]),
        "occurred_at": order["created_at"],
        "data": {
            "order_id": order["id"].to_string(),
            "number": order["name"],
            "email": order["email"],
            "total": {"amount": order["total_price"], "currency": order["currency"]},
            "lines": lines,
        },
    })
}

async fn receive(
    pipeline: web::Data<Pipeline>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if !verified(&pipeline.secret, &req, &body) {
        return HttpResponse::Unauthorized().finish();
    }
    let order: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    if !pipeline.schema.is_valid(&order) {
        return HttpResponse::UnprocessableEntity().finish();
    }
    let event = order_created(&order).to_string();
    let mut conn = pipeline.redis.clone();
    let added: redis::RedisResult<String> = redis::cmd("XADD")
        .arg("naive:log")
        .arg("MAXLEN")
        .arg("~")
        .arg(1_000_000)
        .arg("*")
        .arg("event")
        .arg(event)
        .query_async(&mut conn)
        .await;
    match added {
        Ok(id) => HttpResponse::Accepted().json(json!({ "id": id })),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let schema = omnigate_schemas::catalog::PROVIDER_SCHEMAS
        .iter()
        .find(|s| s.provider == "shopify" && s.resource == "order")
        .expect("the Shopify order schema is embedded");
    let schema: Value = serde_json::from_str(schema.schema.text)?;
    let schema = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let client = redis::Client::open(args.redis_url.as_str()).map_err(std::io::Error::other)?;
    let redis = redis::aio::ConnectionManager::new(client)
        .await
        .map_err(std::io::Error::other)?;
    let pipeline = web::Data::new(Pipeline {
        redis,
        secret: args.secret.into_bytes(),
        schema,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(pipeline.clone())
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .route("/v1/webhooks/{source}", web::post().to(receive))
    });
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    println!("naive pipeline listening on {}", args.bind);
    server.bind(&args.bind)?.run().await
}
