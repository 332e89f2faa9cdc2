//! `redis+cluster://`: the same store on a three-node Redis Cluster. Every multi-key step
//! must stay inside one hash slot, or the cluster refuses it (CROSSSLOT).

use omnigate::store::Retention;
use omnigate::store::conformance::run_all;
use omnigate_tests::{Gateway, RedisProcess, fixture_time, payload_fixture, redis_store_at};
use reqwest::StatusCode;
use std::process::Command;
use std::time::Duration;

fn start_cluster() -> (Vec<RedisProcess>, String) {
    let nodes: Vec<RedisProcess> = (0..3)
        .map(|_| {
            RedisProcess::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ])
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let status = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli (installed with redis-server)");
    assert!(status.success(), "cluster create failed");
    for port in nodes.iter().map(|n| n.port) {
        let mut ok = false;
        for _ in 0..100 {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ok, "node {port} did not reach cluster_state:ok");
    }
    (nodes, format!("redis+cluster://{}", addrs.join(",")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_on_a_redis_cluster() {
    let (_nodes, url) = start_cluster();
    run_all(|r| {
        let url = url.clone();
        async move { redis_store_at(&url, r).await }
    })
    .await;

    // And a webhook goes through a gateway on the cluster.
    let f = payload_fixture("shopify/orders-create");
    let gw = Gateway::start(
        redis_store_at(&url, Retention::default()).await,
        fixture_time(&f),
    )
    .await;
    let source = gw.source_for(&f, "cluster-shop").await;
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        gw.deliver_fixture(&source.id, &f).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.tenant_events("cluster-shop", None).await.len(), 1);
}
