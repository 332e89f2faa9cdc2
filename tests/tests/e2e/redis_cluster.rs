//! `redis+cluster://`: the same store on a three-node Redis Cluster. Every multi-key step
//! must stay inside one hash slot, or the cluster refuses it (CROSSSLOT). And a failover:
//! the primary holding a shop's partition killed under load, its replica promoted.

use crate::spool::{
    all_accepted, assert_each_order_once, load_with_fault, metric, spool_dir, until_drained,
};
use omnigate::clock::Clock;
use omnigate::store::conformance::run_all;
use omnigate::store::{RedisOptions, RedisStore, Retention, partition_of};
use omnigate_tests::{
    Gateway, RedisProcess, fixture_time, payload_fixture, redis_store_at, test_sealer,
    unique_prefix,
};
use reqwest::StatusCode;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Three primaries, each with `replicas` replicas, all in sync.
fn start_cluster(replicas: usize) -> (Vec<RedisProcess>, String) {
    let nodes: Vec<RedisProcess> = (0..3 * (1 + replicas))
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
        .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli (installed with redis-server)");
    assert!(status.success(), "cluster create failed");
    for port in nodes.iter().map(|n| n.port) {
        let ready = || {
            redis_cli(port, &["cluster", "info"]).contains("cluster_state:ok") && {
                let role = redis_cli(port, &["info", "replication"]);
                role.contains("role:master") || role.contains("master_link_status:up")
            }
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "node {port} did not reach cluster_state:ok in sync"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (nodes, format!("redis+cluster://{}", addrs.join(",")))
}

/// The port of the primary that serves `key`, as node `ask` sees the cluster.
fn primary_of(ask: u16, key: &str) -> Option<u16> {
    let slot: u16 = redis_cli(ask, &["cluster", "keyslot", key])
        .trim()
        .parse()
        .ok()?;
    redis_cli(ask, &["cluster", "nodes"])
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = fields[8..].iter().any(|range| {
                let mut ends = range.splitn(2, '-').map(|n| n.parse::<u16>().ok());
                match (ends.next().flatten(), ends.next()) {
                    (Some(lo), Some(Some(hi))) => (lo..=hi).contains(&slot),
                    (Some(lo), None) => lo == slot,
                    _ => false,
                }
            });
            let port = fields[1].split(['@', ':']).nth(1)?.parse().ok()?;
            serves.then_some(port)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_on_a_redis_cluster() {
    let (_nodes, url) = start_cluster(0);
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

/// A store on `url` whose deliveries wait for `wait_replicas` replicas, with its own prefix
/// (or `prefix`, to share one between gateways) and a short timeout.
async fn replicated_store(
    url: &str,
    wait_replicas: u32,
    timeout: Duration,
    prefix: Option<&str>,
) -> Arc<dyn omnigate::store::Store> {
    let store = RedisStore::connect(
        url,
        RedisOptions {
            prefix: prefix.map_or_else(unique_prefix, str::to_string),
            sealer: Some(test_sealer()),
            timeout,
            wait_replicas,
            ..RedisOptions::default()
        },
    )
    .await
    .expect("connect to redis");
    Arc::new(store)
}

/// The port of the replica of the primary on `primary`, as node `ask` sees the cluster.
fn replica_of(ask: u16, primary: u16) -> Option<u16> {
    let nodes = redis_cli(ask, &["cluster", "nodes"]);
    let port = |addr: &str| addr.split(['@', ':']).nth(1)?.parse::<u16>().ok();
    let rows: Vec<Vec<&str>> = nodes
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let id = rows.iter().find(|r| port(r[1]) == Some(primary))?[0];
    rows.iter()
        .find(|r| r[2].contains("slave") && r[3] == id)
        .and_then(|r| port(r[1]))
}

/// Deliveries a primary acknowledged while its replica was cut off, then the primary
/// killed and the replica promoted: without `WAIT` they are gone (the promoted replica never
/// had them, and the old primary resynchronizes from it); with `wait_replicas = 1` they were
/// never acknowledged as written, only spooled, and are all in the log once drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_no_replica_had_are_lost_in_a_failover_unless_the_gateway_waits_for_one() {
    for wait_replicas in [0, 1] {
        let (mut nodes, url) = start_cluster(1);
        let store = replicated_store(&url, wait_replicas, Duration::from_secs(1), None).await;
        let dir = spool_dir();
        let (gw, source) = crate::spool::start_on(store, &dir).await;
        let tag = format!("x{{{}}}", partition_of("drill-shop", 16));
        let primary = primary_of(nodes[0].port, &tag).unwrap();
        let replica = replica_of(nodes[0].port, primary).expect("the primary has a replica");
        let at = |port: u16| nodes.iter().position(|n| n.port == port).unwrap();
        let (p, r) = (at(primary), at(replica));
        let mut answers = Vec::new();
        let mut deliver = async |n: u64| {
            let (h, b) = crate::spool::order(n, gw.clock.now());
            let res = gw.deliver(&source, &h, &b).await;
            let status = res.status();
            answers.push((n, status, res.json::<serde_json::Value>().await.unwrap()));
        };
        for n in 0..5 {
            deliver(n).await;
        }
        // The replica stopped, and its link closed by the primary: what the primary takes
        // now cannot reach it (stopped alone, it would read the socket's buffer on waking).
        nodes[r].signal("STOP");
        redis_cli(primary, &["client", "kill", "type", "replica"]);
        for n in 5..15 {
            deliver(n).await;
        }
        nodes[p].kill();
        nodes[r].signal("CONT");
        let taken = redis_cli(replica, &["cluster", "failover", "takeover"]);
        assert!(taken.contains("OK"), "takeover: {taken}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while primary_of(replica, &tag) != Some(replica) {
            assert!(Instant::now() < deadline, "the replica was not promoted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Back as the new primary's replica (its own unreplicated writes discarded).
        nodes[p].restart();
        for n in 15..20 {
            deliver(n).await;
        }

        let spooled = all_accepted(&answers);
        until_drained(&gw).await;
        let seen = crate::spool::orders_in_log(&gw).await;
        let lost: Vec<u64> = (0..20).filter(|n| !seen.contains_key(n)).collect();
        if wait_replicas == 0 {
            assert!(
                !lost.is_empty() && lost.iter().all(|n| (5..15).contains(n)),
                "without WAIT the deliveries the stopped replica missed are lost: {lost:?}"
            );
        } else {
            assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
            assert!(seen.values().all(|c| *c == 1), "written twice: {seen:?}");
            assert!(spooled >= 10, "{answers:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Drill (d): under a steady load of signed deliveries, the primary holding the shop's
/// partition is killed (SIGKILL) and its replica promoted; the old primary comes back as a
/// replica. With `wait_replicas = 1` (every 2xx confirmed by a replica) and a spool, no
/// sender hears a 5xx and every delivery answered 2xx is in the log once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_loses_no_acknowledged_delivery() {
    let (mut nodes, url) = start_cluster(1);
    let store = replicated_store(&url, 1, Duration::from_secs(1), None).await;
    let dir = spool_dir();
    let (gw, source) = crate::spool::start_on(store, &dir).await;
    let gw = Arc::new(gw);
    // The partition's hash tag is all that decides its slot.
    let tag = format!("x{{{}}}", partition_of("drill-shop", 16));
    let first = nodes[0].port;
    let primary = primary_of(first, &tag).expect("a primary serves the partition");
    let victim = nodes.iter().position(|n| n.port == primary).unwrap();
    let other = nodes.iter().find(|n| n.port != primary).unwrap().port;

    const TOTAL: u64 = 600;
    let nodes_ref = &mut nodes;
    let answers = load_with_fault(gw.clone(), &source, TOTAL, |_| {
        nodes_ref[victim].kill();
        async move {
            // Promoted once the others agree the primary failed (node timeout: 1 s).
            let deadline = Instant::now() + Duration::from_secs(30);
            while primary_of(other, &tag).is_none_or(|p| p == primary) {
                assert!(Instant::now() < deadline, "no replica was promoted");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The old primary rejoins as the new one's replica, so writes can be confirmed.
            nodes_ref[victim].restart();
        }
    })
    .await;
    let spooled = all_accepted(&answers);
    assert!(spooled > 0, "the failover took no time at all?");

    until_drained(&gw).await;
    assert_each_order_once(&gw, TOTAL).await;
    assert_eq!(
        metric(&gw.metrics().await, "omnigate_spool_drained_total"),
        spooled as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write no replica confirms is not acknowledged as written: with a spool it is spooled
/// (and the drainer keeps it, however many times it tries, rather than giving up on it as a
/// refused record); without one it is a 503. It drains once a replica is attached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_no_replica_confirmed_waits_in_the_spool_until_one_does() {
    let primary = RedisProcess::start();
    let store = |url: String| async move {
        replicated_store(&url, 1, Duration::from_millis(300), Some("replicated")).await
    };
    let dir = spool_dir();
    let (gw, source) = crate::spool::start_on(store(primary.url()).await, &dir).await;
    let (h, b) = crate::spool::order(1, gw.clock.now());
    let res = gw.deliver(&source, &h, &b).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["spooled"],
        true
    );

    // Without a spool the same is a 503: the write is on the primary only.
    let bare = Gateway::start(store(primary.url()).await, gw.clock.now()).await;
    let plain = bare
        .create_source(serde_json::json!({"tenant": "bare-shop", "provider": "shopify", "secret": crate::spool::SECRET}))
        .await;
    let (h2, b2) = crate::spool::order(2, gw.clock.now());
    let refused = bare.deliver(&plain.id, &h2, &b2).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));

    // Longer than the drainer's five tries of a refused record would take (pauses of 0.1 +
    // 0.2 + 0.4 + 0.8 s, plus each try's 150 ms WAIT): still spooled, nothing quarantined.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let ready = gw.readyz().await;
    assert_eq!(ready["spool"]["records"], 1, "{ready}");
    let quarantined = gw.admin_json("/v1/quarantine").await;
    assert_eq!(
        quarantined["entries"],
        serde_json::json!([]),
        "{quarantined}"
    );

    let _replica =
        RedisProcess::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    until_drained(&gw).await;
    assert_eq!(
        crate::spool::orders_in_log(&gw).await,
        std::collections::BTreeMap::from([(1, 1)])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
