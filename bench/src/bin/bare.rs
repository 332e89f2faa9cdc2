//! The baseline `scripts/bench.sh` measures the gateway against: actix-web answering each
//! POST by appending its body to one Redis stream (`XADD`), and nothing else — no
//! verification, parsing, schema check, mapping or dedupe. Same runtime, allocator, worker
//! count and Redis client as `omnigate serve`, so the ratio between the two is the cost of
//! the gateway's own work.

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8090")]
    bind: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// HTTP workers (default: one per core, as `omnigate serve`).
    #[arg(long)]
    workers: Option<usize>,
}

async fn receive(
    conn: web::Data<redis::aio::ConnectionManager>,
    source: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let mut conn = conn.get_ref().clone();
    let added: redis::RedisResult<String> = redis::cmd("XADD")
        .arg("bare:log")
        .arg("MAXLEN")
        .arg("~")
        .arg(1_000_000)
        .arg("*")
        .arg("source")
        .arg(source.as_str())
        .arg("body")
        .arg(body.as_ref())
        .query_async(&mut conn)
        .await;
    match added {
        Ok(id) => HttpResponse::Accepted().json(serde_json::json!({ "id": id })),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let client = redis::Client::open(args.redis_url.as_str()).map_err(std::io::Error::other)?;
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .map_err(std::io::Error::other)?;
    let conn = web::Data::new(conn);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(conn.clone())
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .route("/v1/webhooks/{source}", web::post().to(receive))
    });
    if let Some(n) = args.workers {
        server = server.workers(n);
    }
    println!("bare baseline listening on {}", args.bind);
    server.bind(&args.bind)?.run().await
}
