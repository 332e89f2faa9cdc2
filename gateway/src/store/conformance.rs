//! The one behaviour suite every [`Store`] must pass, each case on a fresh, empty store
//! from a factory (for Redis: a new key prefix). [`store_conformance!`](crate::store_conformance)
//! makes one test per case, so a failure names its case; [`run_all`] runs them in order
//! where a store is costly to start (a Redis Cluster).
//!
//! Enabled in tests and with the `testing` feature.

use chrono::{TimeZone, Utc};
use omnigate_schemas::api::{Provider, SourceOptions};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::*;

const TTL: Duration = Duration::from_secs(3600);

fn record(tenant: &str, n: usize) -> LogRecord {
    LogRecord {
        event_id: format!("evt_{tenant}_{n}"),
        tenant: tenant.to_string(),
        event_type: "order.created".into(),
        json: format!(r#"{{"n":{n},"text":"żółć ✓"}}"#),
    }
}

fn events(partition: u32, key: &str, records: Vec<LogRecord>) -> Append {
    Append {
        partition,
        dedupe_key: key.to_string(),
        dedupe_ttl: TTL,
        write: Write::Events(records),
        snapshot: None,
    }
}

fn quarantine(tenant: &str, reason: &str) -> QuarantineRecord {
    let mut headers = BTreeMap::new();
    headers.insert("x-shopify-topic".to_string(), "carts/update".to_string());
    QuarantineRecord {
        tenant: tenant.into(),
        source_id: "src_1".into(),
        provider: "shopify".into(),
        topic: Some("carts/update".into()),
        reason: reason.into(),
        received_at: Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 55).unwrap(),
        headers,
        // Not UTF-8 on purpose: quarantine keeps bytes, not text.
        body: vec![b'{', 0xff, 0x00, b'}'],
        dedupe_key: "src_1:evt-1".into(),
    }
}

fn written(a: Appended) -> Vec<StreamId> {
    match a {
        Appended::Written { ids, .. } => ids,
        Appended::Duplicate => panic!("expected a write, got a duplicate"),
        Appended::Conflict(_) => panic!("expected a write, got a snapshot conflict"),
    }
}

pub async fn sources_round_trip(store: Arc<dyn Store>) {
    assert_eq!(store.get_source("src_x").await.unwrap(), None);
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let source = SourceRecord {
        id: "src_x".into(),
        tenant: "shop-a".into(),
        provider: Provider::StandardWebhooks,
        name: Some("Bridge".into()),
        options: SourceOptions {
            key_encoding: Some(omnigate_schemas::api::KeyEncoding::Raw),
            tolerance_s: Some(60),
            ..Default::default()
        },
        secrets: vec![StoredSecret {
            value: SecretValue::new("s3cret&<>"),
            created_at: now,
            expires_at: None,
        }],
        api_credentials: Some(SecretValue::new(r#"{"token":"api&<>"}"#)),
        created_at: now,
        updated_at: now,
    };
    store.put_source(&source).await.unwrap();
    assert_eq!(
        store.get_source("src_x").await.unwrap(),
        Some(source.clone())
    );
    let mut changed = source.clone();
    changed.name = None;
    store.put_source(&changed).await.unwrap();
    assert_eq!(store.get_source("src_x").await.unwrap(), Some(changed));
    assert_eq!(store.source_ids().await.unwrap(), ["src_x"]);
    assert!(store.delete_source("src_x").await.unwrap());
    assert!(store.source_ids().await.unwrap().is_empty());
    assert!(!store.delete_source("src_x").await.unwrap());
    assert_eq!(store.get_source("src_x").await.unwrap(), None);
}

pub async fn append_is_deduplicated(store: Arc<dyn Store>) {
    let ids = written(
        store
            .append(events(3, "src:d1", vec![record("a", 1), record("a", 2)]))
            .await
            .unwrap(),
    );
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
    let again = store
        .append(events(3, "src:d1", vec![record("a", 9)]))
        .await
        .unwrap();
    assert_eq!(again, Appended::Duplicate);
    let log = store.read_log(3, None, 100).await.unwrap();
    let got: Vec<_> = log.iter().map(|e| e.record.event_id.as_str()).collect();
    assert_eq!(got, ["evt_a_1", "evt_a_2"], "a duplicate writes nothing");
    assert_eq!(log[0].record, record("a", 1), "records round-trip exactly");
    // The same key in another partition is another delivery.
    written(
        store
            .append(events(4, "src:d1", vec![record("b", 1)]))
            .await
            .unwrap(),
    );
}

pub async fn each_event_id_is_written_once(store: Arc<dyn Store>) {
    written(
        store
            .append(events(2, "src:d1", vec![record("a", 1)]))
            .await
            .unwrap(),
    );
    // Another delivery proving the same fact and a new one: only the new one is written,
    // and the known one is named.
    let second = store
        .append(events(2, "src:d2", vec![record("a", 1), record("a", 2)]))
        .await
        .unwrap();
    let Appended::Written { ids, known, .. } = second else {
        panic!("expected a write, got {second:?}");
    };
    assert_eq!(ids.len(), 1);
    assert_eq!(known, ["evt_a_1"]);
    // Every fact already known: nothing written, the delivery is still marked.
    let third = store
        .append(events(2, "src:d3", vec![record("a", 2), record("a", 1)]))
        .await
        .unwrap();
    let Appended::Written { ids, known, .. } = third else {
        panic!("expected a write, got {third:?}");
    };
    assert!(ids.is_empty());
    assert_eq!(known, ["evt_a_2", "evt_a_1"]);
    assert_eq!(
        store
            .append(events(2, "src:d3", vec![record("a", 3)]))
            .await
            .unwrap(),
        Appended::Duplicate
    );
    let log = store.read_log(2, None, 100).await.unwrap();
    let got: Vec<_> = log.iter().map(|e| e.record.event_id.as_str()).collect();
    assert_eq!(got, ["evt_a_1", "evt_a_2"]);
}

pub async fn dedupe_marks_expire(store: Arc<dyn Store>) {
    let mut a = events(0, "src:short", vec![record("a", 1)]);
    a.dedupe_ttl = Duration::from_millis(50);
    written(store.append(a.clone()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    written(store.append(a).await.unwrap());
    assert_eq!(store.read_log(0, None, 10).await.unwrap().len(), 2);
}

pub async fn empty_deliveries_are_still_marked(store: Arc<dyn Store>) {
    let ids = written(store.append(events(1, "src:none", vec![])).await.unwrap());
    assert!(ids.is_empty());
    assert_eq!(
        store.append(events(1, "src:none", vec![])).await.unwrap(),
        Appended::Duplicate
    );
    assert!(store.read_log(1, None, 10).await.unwrap().is_empty());
}

pub async fn log_reads_page_in_order(store: Arc<dyn Store>) {
    for n in 0..25 {
        written(
            store
                .append(events(7, &format!("src:{n}"), vec![record("t", n)]))
                .await
                .unwrap(),
        );
    }
    let first = store.read_log(7, None, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    let second = store.read_log(7, Some(first[9].cursor), 10).await.unwrap();
    let rest = store.read_log(7, Some(second[9].cursor), 10).await.unwrap();
    assert_eq!(rest.len(), 5);
    let all: Vec<String> = first
        .iter()
        .chain(&second)
        .chain(&rest)
        .map(|e| e.record.event_id.clone())
        .collect();
    let expected: Vec<String> = (0..25).map(|n| format!("evt_t_{n}")).collect();
    assert_eq!(all, expected);
    assert!(
        store
            .read_log(7, Some(rest[4].cursor), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_log(8, None, 10).await.unwrap().is_empty());

    // Newest first, the same entries backwards, paged by `before`.
    let newest = store.read_log_back(7, None, 10).await.unwrap();
    let older = store
        .read_log_back(7, Some(newest[9].cursor), 10)
        .await
        .unwrap();
    let oldest = store
        .read_log_back(7, Some(older[9].cursor), 10)
        .await
        .unwrap();
    assert_eq!(oldest.len(), 5);
    let back: Vec<String> = newest
        .iter()
        .chain(&older)
        .chain(&oldest)
        .map(|e| e.record.event_id.clone())
        .collect();
    let reversed: Vec<String> = expected.into_iter().rev().collect();
    assert_eq!(back, reversed);
    assert!(
        store
            .read_log_back(7, Some(oldest[4].cursor), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.read_log_back(8, None, 10).await.unwrap().is_empty());
}

pub async fn retention_trims_only_what_the_router_took(store: Arc<dyn Store>) {
    // The store under test was made with log_maxlen 10.
    let append_range = |range: std::ops::Range<usize>| {
        let store = store.clone();
        async move {
            let (mut trimmed, mut held) = (0, false);
            for n in range {
                if let Appended::Written {
                    trimmed: t,
                    held: h,
                    ..
                } = store
                    .append(events(2, &format!("src:r{n}"), vec![record("r", n)]))
                    .await
                    .unwrap()
                {
                    trimmed += t;
                    held |= h;
                }
            }
            (trimmed, held)
        }
    };
    // No router has taken anything yet: nothing undelivered goes, and it is said.
    let (trimmed, held) = append_range(0..300).await;
    assert_eq!(trimmed, 0, "undelivered entries are never trimmed");
    assert!(held, "the held cap is reported");
    assert_eq!(store.read_log(2, None, 1000).await.unwrap().len(), 300);

    // The router takes and acknowledges 250, then takes 20 more it has not acknowledged.
    let stale = Duration::from_secs(60);
    let routed = store
        .route_pull(2, 250, stale, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(routed.len(), 250);
    let cursors: Vec<StreamId> = routed.iter().map(|e| e.cursor).collect();
    store.route_ack(2, &cursors).await.unwrap();
    let in_flight = store
        .route_pull(2, 20, stale, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(in_flight.len(), 20);

    let (trimmed, held) = append_range(300..600).await;
    let kept = store.read_log(2, None, 1000).await.unwrap();
    assert!(held);
    assert_eq!(
        trimmed, 250,
        "exactly what the router took and acknowledged"
    );
    assert_eq!(
        kept.len() as u64 + trimmed,
        600,
        "every trimmed entry is counted"
    );
    assert_eq!(
        kept.first().unwrap().record.event_id,
        "evt_r_250",
        "the oldest one in flight is kept"
    );
    assert_eq!(kept.last().unwrap().record.event_id, "evt_r_599");
}

pub async fn quarantine_refuses_at_its_cap_and_shrinks_only_by_discard(store: Arc<dyn Store>) {
    // The store under test was made with quarantine_maxlen 10.
    let put = |n: usize| {
        let store = store.clone();
        async move {
            let mut q = quarantine("shop-q", "unknown topic");
            q.body = format!("{{\"n\":{n}}}").into_bytes();
            store
                .append(Append {
                    partition: 6,
                    dedupe_key: format!("src_1:q{n}"),
                    dedupe_ttl: TTL,
                    write: Write::Quarantine(q),
                    snapshot: None,
                })
                .await
        }
    };
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.extend(written(put(n).await.unwrap()));
    }
    // Full: refused, nothing evicted, and not marked (the sender's retry is not a duplicate).
    for _ in 0..2 {
        assert!(matches!(put(10).await, Err(StoreError::QuarantineFull(_))));
    }
    let listed = store.list_quarantine(&[6], None, 100).await.unwrap();
    assert_eq!(listed.len(), 10, "nothing was evicted");
    let first = QuarantineId {
        partition: 6,
        entry: ids[0],
    };
    store.mark_replayed(first, &["evt_x".into()]).await.unwrap();
    assert!(store.discard_quarantine(first).await.unwrap());
    assert!(!store.discard_quarantine(first).await.unwrap(), "gone");
    assert!(store.get_quarantine(first).await.unwrap().is_none());
    assert_eq!(written(put(10).await.unwrap()).len(), 1, "room again");
    assert!(matches!(put(11).await, Err(StoreError::QuarantineFull(_))));
}

pub async fn quarantine_refuses_past_its_byte_budget(store: Arc<dyn Store>) {
    // The store under test was made with quarantine_max_bytes 300 (and no entry cap).
    let record = |n: usize| {
        let mut q = quarantine("shop-q", "unknown topic");
        q.body = format!("{{\"n\":{n}}}").into_bytes();
        q
    };
    let fits = 300 / record(0).stored_bytes() as usize;
    let mut kept = 0;
    for n in 0..fits + 1 {
        let appended = store
            .append(Append {
                partition: 7,
                dedupe_key: format!("src_1:b{n}"),
                dedupe_ttl: TTL,
                write: Write::Quarantine(record(n)),
                snapshot: None,
            })
            .await;
        match appended {
            Ok(Appended::Written { .. }) => kept += 1,
            Err(StoreError::QuarantineFull(why)) => assert!(why.contains("bytes"), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kept, fits, "exactly what the budget holds");
    let listed = store.list_quarantine(&[7], None, 100).await.unwrap();
    assert_eq!(listed.len(), fits);
    assert!(store.discard_quarantine(listed[0].id).await.unwrap());
    let again = store
        .append(Append {
            partition: 7,
            dedupe_key: format!("src_1:b{fits}"),
            dedupe_ttl: TTL,
            write: Write::Quarantine(record(fits)),
            snapshot: None,
        })
        .await;
    assert!(matches!(again, Ok(Appended::Written { .. })), "{again:?}");
}

pub async fn quarantine_keeps_bytes_and_replay_marks(store: Arc<dyn Store>) {
    let q = quarantine("shop-q", "unknown topic");
    let ids = written(
        store
            .append(Append {
                partition: 5,
                dedupe_key: "src_1:evt-1".into(),
                dedupe_ttl: TTL,
                write: Write::Quarantine(q.clone()),
                snapshot: None,
            })
            .await
            .unwrap(),
    );
    let id = QuarantineId {
        partition: 5,
        entry: ids[0],
    };
    let got = store.get_quarantine(id).await.unwrap().unwrap();
    assert_eq!(got.record, q);
    assert_eq!(got.replayed, None);
    // A redelivery of a quarantined payload is a duplicate too.
    let dup = store
        .append(Append {
            partition: 5,
            dedupe_key: "src_1:evt-1".into(),
            dedupe_ttl: TTL,
            write: Write::Quarantine(q.clone()),
            snapshot: None,
        })
        .await
        .unwrap();
    assert_eq!(dup, Appended::Duplicate);

    // Stream ids have millisecond resolution; make "later" unambiguous across partitions.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = quarantine("shop-other", "schema");
    let later_ids = written(
        store
            .append(Append {
                partition: 6,
                dedupe_key: "src_1:evt-2".into(),
                dedupe_ttl: TTL,
                write: Write::Quarantine(later),
                snapshot: None,
            })
            .await
            .unwrap(),
    );
    let listed = store.list_quarantine(&[5, 6, 9], None, 10).await.unwrap();
    let listed_ids: Vec<_> = listed.iter().map(|q| q.id).collect();
    assert_eq!(
        listed_ids,
        [
            QuarantineId {
                partition: 6,
                entry: later_ids[0]
            },
            id
        ],
        "newest first"
    );
    assert_eq!(listed[1].body_bytes, 4, "the body's length, not the body");
    // Older than the newest: a page on.
    let older = store
        .list_quarantine(&[5, 6, 9], Some(listed_ids[0]), 10)
        .await
        .unwrap();
    assert_eq!(older.iter().map(|q| q.id).collect::<Vec<_>>(), [id]);
    assert!(
        store
            .list_quarantine(&[5, 6, 9], Some(id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_quarantine(&[5, 6], None, 1).await.unwrap().len(),
        1
    );
    assert_eq!(
        store.list_quarantine(&[5], None, 10).await.unwrap().len(),
        1
    );

    store
        .mark_replayed(id, &["evt_1".to_string(), "evt_2".to_string()])
        .await
        .unwrap();
    let got = store.get_quarantine(id).await.unwrap().unwrap();
    assert_eq!(got.replayed, Some(vec!["evt_1".into(), "evt_2".into()]));
    assert_eq!(
        store.list_quarantine(&[5], None, 10).await.unwrap()[0].replayed,
        got.replayed
    );
    let missing = QuarantineId {
        partition: 5,
        entry: StreamId { ms: 1, seq: 0 },
    };
    assert_eq!(store.get_quarantine(missing).await.unwrap(), None);
}

pub async fn concurrent_duplicates_write_once(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(events(9, "src:race", vec![record("c", 1)]))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut writes = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Appended::Written { .. }) {
            writes += 1;
        }
    }
    assert_eq!(writes, 1);
    assert_eq!(store.read_log(9, None, 100).await.unwrap().len(), 1);
}

pub async fn snapshots_move_only_from_the_version_read(store: Arc<dyn Store>) {
    assert_eq!(store.get_snapshot(4, "src:order:1").await.unwrap(), None);
    let with_snapshot = |key: &str, expected: u64, fields: &[(&'static str, &[u8])]| {
        let mut a = events(4, key, vec![record("s", expected as usize)]);
        a.snapshot = Some(SnapshotWrite {
            key: "src:order:1".into(),
            expected_version: expected,
            fields: fields.iter().map(|(k, v)| (*k, v.to_vec())).collect(),
            ttl: TTL,
        });
        a
    };
    let sorted = |s: StoredSnapshot| {
        let mut fields = s.fields;
        fields.sort();
        (s.version, fields)
    };
    let pending: &[(&'static str, &[u8])] = &[("s", b"pending"), ("f", b"\x00\x01|\xff")];
    written(
        store
            .append(with_snapshot("src:s1", 0, pending))
            .await
            .unwrap(),
    );
    let v1 = store.get_snapshot(4, "src:order:1").await.unwrap().unwrap();
    assert_eq!(
        sorted(v1.clone()),
        (
            1,
            vec![
                ("f".into(), b"\x00\x01|\xff".to_vec()),
                ("s".into(), b"pending".to_vec())
            ]
        ),
        "bytes come back as they were written"
    );

    // A second writer that expected "absent" loses, writes nothing at all, and is told
    // what the snapshot is now.
    match store
        .append(with_snapshot("src:s2", 0, &[("s", b"x")]))
        .await
        .unwrap()
    {
        Appended::Conflict(Some(now)) => assert_eq!(sorted(now), sorted(v1)),
        other => panic!("expected a conflict with the current snapshot, got {other:?}"),
    }
    assert_eq!(store.read_log(4, None, 10).await.unwrap().len(), 1);
    // A duplicate is a duplicate whatever the snapshot says.
    assert_eq!(
        store.append(with_snapshot("src:s1", 7, &[])).await.unwrap(),
        Appended::Duplicate
    );
    // Retrying from the version it was told succeeds; the conflict left no dedupe mark.
    // Fields left out of a write are not kept.
    written(
        store
            .append(with_snapshot("src:s2", 1, &[("s", b"paid|ok")]))
            .await
            .unwrap(),
    );
    let v2 = store.get_snapshot(4, "src:order:1").await.unwrap().unwrap();
    assert_eq!(sorted(v2), (2, vec![("s".into(), b"paid|ok".to_vec())]));
    // Expecting a version of a snapshot that is absent is a conflict that says so.
    let mut elsewhere = with_snapshot("src:s3", 3, &[]);
    elsewhere.snapshot.as_mut().unwrap().key = "src:order:2".into();
    assert_eq!(
        store.append(elsewhere).await.unwrap(),
        Appended::Conflict(None)
    );
    assert_eq!(store.read_log(4, None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.get_snapshot(5, "src:order:1").await.unwrap(),
        None,
        "per partition"
    );
}

pub async fn plugins_keys_and_installations(store: Arc<dyn Store>) {
    use omnigate_schemas::api::{PublishedType, Scope};
    let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let plugin = PluginRecord {
        id: "plg_1".into(),
        name: "Loyalty".into(),
        event_types: vec!["order.*".into()],
        publishes: vec![PublishedType {
            event_type: "loyalty.points.changed".into(),
            schema: serde_json::json!({"type": "object"}),
        }],
        keys: vec![StoredKey {
            id: "key_1".into(),
            hash: "ab".repeat(32),
            created_at: now,
            expires_at: None,
        }],
        created_at: now,
        // A push plugin: its signing secret round-trips (sealed at rest in Redis).
        push: Some(PushRecord {
            url: "https://loyalty.example.com/hooks".into(),
            max_in_flight: 10,
            secrets: vec![SigningSecret {
                id: "whs_1".into(),
                value: SecretValue::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                created_at: now,
                expires_at: None,
            }],
            paused_at: None,
        }),
    };
    assert_eq!(store.get_plugin("plg_1").await.unwrap(), None);
    assert!(store.plugin_ids().await.unwrap().is_empty());
    store.put_plugin(&plugin).await.unwrap();
    assert_eq!(
        store.get_plugin("plg_1").await.unwrap(),
        Some(plugin.clone())
    );
    store
        .put_plugin(&PluginRecord {
            id: "plg_0".into(),
            ..plugin.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.plugin_ids().await.unwrap(), ["plg_0", "plg_1"]);
    // Compare-and-set: only over the record as it is.
    let renamed = PluginRecord {
        name: "Loyalty+".into(),
        ..plugin.clone()
    };
    assert!(store.replace_plugin(&plugin, &renamed).await.unwrap());
    let stale = PluginRecord {
        name: "Loyalty (stale)".into(),
        ..plugin.clone()
    };
    assert!(!store.replace_plugin(&plugin, &stale).await.unwrap());
    assert_eq!(
        store.get_plugin("plg_1").await.unwrap(),
        Some(renamed.clone())
    );
    let gone = PluginRecord {
        id: "plg_gone".into(),
        ..plugin.clone()
    };
    assert!(!store.replace_plugin(&gone, &gone).await.unwrap());
    assert!(store.replace_plugin(&renamed, &plugin).await.unwrap());

    assert_eq!(store.plugin_for_key(&"ab".repeat(32)).await.unwrap(), None);
    store.put_key(&"ab".repeat(32), "plg_1").await.unwrap();
    assert_eq!(
        store
            .plugin_for_key(&"ab".repeat(32))
            .await
            .unwrap()
            .as_deref(),
        Some("plg_1")
    );
    store.delete_key(&"ab".repeat(32)).await.unwrap();
    assert_eq!(store.plugin_for_key(&"ab".repeat(32)).await.unwrap(), None);

    assert!(store.installations("shop-a").await.unwrap().is_empty());
    let install = |plugin_id: &str, tenant: &str| InstallationRecord {
        plugin_id: plugin_id.into(),
        tenant: tenant.into(),
        scopes: vec![Scope::EventsRead],
        installed_at: now,
        push_url: None,
    };
    store
        .put_installation(&install("plg_2", "shop-a"))
        .await
        .unwrap();
    store
        .put_installation(&install("plg_1", "shop-a"))
        .await
        .unwrap();
    store
        .put_installation(&install("plg_1", "shop-b"))
        .await
        .unwrap();
    let mut changed = install("plg_1", "shop-a");
    changed.scopes.push(Scope::CustomerPii);
    store.put_installation(&changed).await.unwrap();
    assert_eq!(
        store.installations("shop-a").await.unwrap(),
        vec![changed.clone(), install("plg_2", "shop-a")],
        "one per plugin, sorted by plugin id"
    );
    assert_eq!(
        store.plugin_installations("plg_1").await.unwrap(),
        vec![changed.clone(), install("plg_1", "shop-b")],
        "a plugin's installations, by tenant"
    );
    assert!(store.delete_installation("plg_2", "shop-a").await.unwrap());
    assert!(!store.delete_installation("plg_2", "shop-a").await.unwrap());
    assert_eq!(
        store.installations("shop-a").await.unwrap(),
        vec![changed.clone()]
    );
    assert_eq!(store.installations("shop-b").await.unwrap().len(), 1);
    assert!(
        store
            .plugin_installations("plg_2")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_installation("plg_1", "shop-b").await.unwrap());
    assert_eq!(
        store.plugin_installations("plg_1").await.unwrap(),
        vec![changed]
    );
}

fn inbox_entry(n: usize) -> InboxEntry {
    InboxEntry {
        event_id: format!("evt_{n}"),
        tenant: "shop-a".into(),
        event_type: "order.paid".into(),
        json: format!(r#"{{"id":"evt_{n}"}}"#),
    }
}

fn pull(max: usize, visibility_ms: u64, max_attempts: u64) -> PullOptions {
    PullOptions {
        max,
        wait: Duration::ZERO,
        visibility: Duration::from_millis(visibility_ms),
        max_attempts,
    }
}

pub async fn inbox_delivers_in_order_until_acknowledged(store: Arc<dyn Store>) {
    store
        .inbox_push("plg_a", &[inbox_entry(1), inbox_entry(2), inbox_entry(3)])
        .await
        .unwrap();
    let depth = |waiting, in_flight| InboxDepth {
        waiting,
        in_flight,
        dead: 0,
    };
    assert_eq!(store.inbox_depth("plg_a").await.unwrap(), depth(3, 0));
    let first = store.inbox_pull("plg_a", pull(2, 60_000, 8)).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|d| d.entry.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_1", "evt_2"]);
    assert_eq!(store.inbox_depth("plg_a").await.unwrap(), depth(1, 2));
    assert!(first.iter().all(|d| d.attempt == 1));
    assert_eq!(first[0].entry, inbox_entry(1));
    let second = store
        .inbox_pull("plg_a", pull(10, 60_000, 8))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].entry.event_id, "evt_3");
    assert!(
        store
            .inbox_pull("plg_a", pull(10, 60_000, 8))
            .await
            .unwrap()
            .is_empty()
    );
    let receipts: Vec<StreamId> = first.iter().map(|d| d.receipt).collect();
    assert_eq!(store.inbox_ack("plg_a", &receipts).await.unwrap(), 2);
    assert_eq!(
        store.inbox_ack("plg_a", &receipts).await.unwrap(),
        0,
        "acked once"
    );
    assert_eq!(store.inbox_depth("plg_a").await.unwrap(), depth(0, 1));
    assert_eq!(
        store.inbox_depth("plg_none").await.unwrap(),
        InboxDepth::default()
    );
    // Another plugin's inbox is another stream.
    assert!(
        store
            .inbox_pull("plg_b", pull(10, 60_000, 8))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .inbox_ack("plg_b", &[second[0].receipt])
            .await
            .unwrap(),
        0
    );
    // An ack naming an entry not handed out yet settles nothing and leaves it.
    let pushed = store.inbox_push("plg_a", &[inbox_entry(4)]).await.unwrap();
    assert_eq!(store.inbox_ack("plg_a", &pushed.ids).await.unwrap(), 0);
    let later = store
        .inbox_pull("plg_a", pull(10, 60_000, 8))
        .await
        .unwrap();
    let ids: Vec<&str> = later.iter().map(|d| d.entry.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_4"]);
}

pub async fn unacknowledged_deliveries_come_back_with_a_higher_attempt(store: Arc<dyn Store>) {
    store.inbox_push("plg_v", &[inbox_entry(1)]).await.unwrap();
    let first = store.inbox_pull("plg_v", pull(10, 100, 8)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .inbox_pull("plg_v", pull(10, 100, 8))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = store.inbox_pull("plg_v", pull(10, 100, 8)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receipt, first[0].receipt);
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].entry, inbox_entry(1));
}

pub async fn nacked_deliveries_return_then_die_and_replay(store: Arc<dyn Store>) {
    store.inbox_push("plg_n", &[inbox_entry(7)]).await.unwrap();
    let long = 60_000;
    let d1 = store.inbox_pull("plg_n", pull(1, long, 2)).await.unwrap();
    assert_eq!(d1[0].attempt, 1);
    let visibility = Duration::from_millis(long);
    assert_eq!(
        store
            .inbox_nack(
                "plg_n",
                &[d1[0].receipt],
                &failed(visibility, "crm answered 503")
            )
            .await
            .unwrap(),
        1
    );
    let d2 = store.inbox_pull("plg_n", pull(1, long, 2)).await.unwrap();
    assert_eq!(d2.len(), 1, "a nack makes it due at once");
    assert_eq!(d2[0].attempt, 2);
    store
        .inbox_nack(
            "plg_n",
            &[d2[0].receipt],
            &failed(visibility, "crm still down"),
        )
        .await
        .unwrap();
    // A third attempt would pass max_attempts 2: it moves to the dead letters instead.
    assert!(
        store
            .inbox_pull("plg_n", pull(1, long, 2))
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store.dead_letters("plg_n", None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].entry, inbox_entry(7));
    let reasons: Vec<(u64, &str)> = dead[0]
        .failures
        .iter()
        .map(|f| (f.attempt, f.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [(1, "crm answered 503"), (2, "crm still down")],
        "each attempt's reason, kept with the dead letter"
    );
    assert!(
        store
            .dead_letters("plg_other", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.replay_dead("plg_n", None).await.unwrap().ids.len(), 1);
    assert!(
        store
            .dead_letters("plg_n", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let back = store.inbox_pull("plg_n", pull(1, long, 2)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].attempt, 1, "a replay starts over");
    assert_eq!(back[0].entry, inbox_entry(7));
}

pub async fn a_nack_may_postpone_past_the_visibility_timeout(store: Arc<dyn Store>) {
    // Push delivery backs off for hours while the visibility timeout stays short (it is
    // how soon a crashed pusher's deliveries come back).
    store.inbox_push("plg_l", &[inbox_entry(1)]).await.unwrap();
    let o = pull(10, 100, 8);
    let d1 = store.inbox_pull("plg_l", o).await.unwrap();
    assert_eq!(d1.len(), 1);
    let later = Nack {
        retry_after: Duration::from_millis(700),
        ..failed(o.visibility, "endpoint answered 500")
    };
    store
        .inbox_nack("plg_l", &[d1[0].receipt], &later)
        .await
        .unwrap();
    // Several visibility periods pass: it is not handed out, and not counted.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            store.inbox_pull("plg_l", o).await.unwrap().is_empty(),
            "handed out before it was due"
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d2 = store.inbox_pull("plg_l", o).await.unwrap();
    assert_eq!(d2.len(), 1, "due after its delay");
    assert_eq!(d2[0].receipt, d1[0].receipt);
    assert_eq!(d2[0].attempt, 2, "waiting counted no attempt");
    store.inbox_ack("plg_l", &[d2[0].receipt]).await.unwrap();
    assert_eq!(
        store.inbox_depth("plg_l").await.unwrap(),
        InboxDepth::default()
    );
}

pub async fn subjects_are_held_by_one_delivery_at_a_time(store: Arc<dyn Store>) {
    let entries: Vec<InboxEntry> = (1..=3).map(inbox_entry).collect();
    store.inbox_push("plg_h", &entries).await.unwrap();
    let o = pull(10, 60_000, 8);
    let d = store.inbox_pull("plg_h", o).await.unwrap();
    let (a, b, c) = (d[0].receipt, d[1].receipt, d[2].receipt);
    let order = |id: StreamId| ("shop-a\0order/1".to_string(), id);
    let other = ("shop-a\0order/2".to_string(), c);
    // The first takes the subject; the second waits (its holder is out: zero); another
    // subject is free; taking it again is idempotent.
    let got = store
        .hold_subjects("plg_h", &[order(a), order(b), other.clone()])
        .await
        .unwrap();
    assert_eq!(got, [None, Some(Duration::ZERO), None]);
    assert_eq!(
        store.hold_subjects("plg_h", &[order(a)]).await.unwrap(),
        [None]
    );
    // The holder fails and is due in a minute: the second is told how long to wait.
    let later = Nack {
        retry_after: Duration::from_secs(60),
        ..failed(o.visibility, "endpoint answered 500")
    };
    store.inbox_nack("plg_h", &[a], &later).await.unwrap();
    let wait = store.hold_subjects("plg_h", &[order(b)]).await.unwrap()[0].expect("still held");
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // Releasing for another delivery frees nothing; the holder's release frees it.
    store.release_subjects("plg_h", &[order(b)]).await.unwrap();
    assert!(store.hold_subjects("plg_h", &[order(b)]).await.unwrap()[0].is_some());
    store.release_subjects("plg_h", &[order(a)]).await.unwrap();
    assert_eq!(
        store.hold_subjects("plg_h", &[order(b)]).await.unwrap(),
        [None]
    );
    // A holder that left the inbox (acknowledged here) holds nothing any more.
    store.inbox_ack("plg_h", &[b]).await.unwrap();
    assert_eq!(
        store.hold_subjects("plg_h", &[order(a)]).await.unwrap(),
        [None]
    );

    // Behind a holder being retried, the earliest refused delivery goes next, whichever
    // comes back first.
    let more: Vec<InboxEntry> = (4..=6).map(inbox_entry).collect();
    store.inbox_push("plg_h", &more).await.unwrap();
    let d = store.inbox_pull("plg_h", o).await.unwrap();
    let (e4, e5, e6) = (d[0].receipt, d[1].receipt, d[2].receipt);
    let s = |id: StreamId| ("shop-a\0order/9".to_string(), id);
    assert_eq!(
        store.hold_subjects("plg_h", &[s(e4)]).await.unwrap(),
        [None]
    );
    store.inbox_nack("plg_h", &[e4], &later).await.unwrap();
    assert!(store.hold_subjects("plg_h", &[s(e6)]).await.unwrap()[0].is_some());
    assert!(store.hold_subjects("plg_h", &[s(e5)]).await.unwrap()[0].is_some());
    assert_eq!(
        store.hold_subjects("plg_h", &[s(e4)]).await.unwrap(),
        [None],
        "the holder back from its retry keeps the subject, whoever waits"
    );
    store.inbox_ack("plg_h", &[e4]).await.unwrap();
    assert!(
        store.hold_subjects("plg_h", &[s(e6)]).await.unwrap()[0].is_some(),
        "e5 was refused first: e6 waits for it"
    );
    assert_eq!(
        store.hold_subjects("plg_h", &[s(e5)]).await.unwrap(),
        [None]
    );
    assert!(store.hold_subjects("plg_h", &[s(e6)]).await.unwrap()[0].is_some());
    store.inbox_ack("plg_h", &[e5]).await.unwrap();
    assert_eq!(
        store.hold_subjects("plg_h", &[s(e6)]).await.unwrap(),
        [None]
    );

    // A touched delivery stays handed out for another visibility period.
    let short = pull(10, 200, 8);
    store.inbox_push("plg_t", &[inbox_entry(7)]).await.unwrap();
    let d7 = store.inbox_pull("plg_t", short).await.unwrap();
    assert_eq!(d7.len(), 1);
    tokio::time::sleep(Duration::from_millis(120)).await;
    store
        .inbox_touch("plg_t", &[d7[0].receipt], short.visibility)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        store.inbox_pull("plg_t", short).await.unwrap().is_empty(),
        "touched: not handed out again yet"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = store.inbox_pull("plg_t", short).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2, "touching counted no attempt");

    let health = EndpointHealth {
        consecutive_failures: 3,
        last_error: Some("HTTP 503: busy".into()),
        failing_since: Some(Utc.with_ymd_and_hms(2025, 3, 14, 9, 0, 0).unwrap()),
        ..EndpointHealth::default()
    };
    assert!(store.push_health("plg_h").await.unwrap().is_empty());
    store
        .put_push_health("plg_h", "https://crm.example/hooks", &health)
        .await
        .unwrap();
    assert_eq!(
        store.push_health("plg_h").await.unwrap(),
        [("https://crm.example/hooks".to_string(), health)]
    );
    assert!(store.push_health("plg_other").await.unwrap().is_empty());
}

/// A nack that hands deliveries back to come again at once, without a reason.
fn retry_now(visibility: Duration) -> Nack {
    Nack {
        retry_after: Duration::ZERO,
        visibility,
        reason: None,
        at: "2025-03-14T09:00:00Z".into(),
        dead: false,
        defer: false,
    }
}

fn failed(visibility: Duration, reason: &str) -> Nack {
    Nack {
        reason: Some(reason.into()),
        ..retry_now(visibility)
    }
}

pub async fn a_delivery_given_up_on_is_a_dead_letter_at_once(store: Arc<dyn Store>) {
    // Deferred (not tried, waiting behind another delivery) as often as it takes, a
    // delivery keeps its attempt count and never dies of it.
    store.inbox_push("plg_d", &[inbox_entry(9)]).await.unwrap();
    let defer = Nack {
        defer: true,
        ..failed(Duration::from_millis(60_000), "not kept")
    };
    for _ in 0..4 {
        let got = store.inbox_pull("plg_d", pull(1, 60_000, 2)).await.unwrap();
        assert_eq!(got.len(), 1, "deferred, not dead");
        assert_eq!(got[0].attempt, 1, "a deferral is no attempt");
        store
            .inbox_nack("plg_d", &[got[0].receipt], &defer)
            .await
            .unwrap();
    }
    assert!(
        store
            .dead_letters("plg_d", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let long = 60_000;
    store
        .inbox_push("plg_g", &[inbox_entry(1), inbox_entry(2)])
        .await
        .unwrap();
    let got = store.inbox_pull("plg_g", pull(2, long, 8)).await.unwrap();
    let give_up = Nack {
        dead: true,
        ..failed(
            Duration::from_millis(long),
            "order 1 has no customer: cannot be fixed",
        )
    };
    assert_eq!(
        store
            .inbox_nack("plg_g", &[got[0].receipt], &give_up)
            .await
            .unwrap(),
        1
    );
    let dead = store.dead_letters("plg_g", None, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "dead at its first attempt, not its eighth");
    assert_eq!(
        store.inbox_depth("plg_g").await.unwrap(),
        InboxDepth {
            waiting: 0,
            in_flight: 1,
            dead: 1
        }
    );
    assert_eq!(dead[0].entry, inbox_entry(1));
    assert_eq!(dead[0].attempts, 1);
    assert_eq!(dead[0].failures.len(), 1);
    assert_eq!(
        dead[0].failures[0].reason,
        "order 1 has no customer: cannot be fixed"
    );
    assert_eq!(
        store.inbox_ack("plg_g", &[got[0].receipt]).await.unwrap(),
        0,
        "no longer pending"
    );
    // The other delivery is untouched, and a second give-up of the first finds nothing.
    assert_eq!(
        store.inbox_ack("plg_g", &[got[1].receipt]).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .inbox_nack("plg_g", &[got[0].receipt], &give_up)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.dead_letters("plg_g", None, 10).await.unwrap().len(),
        1
    );
}

pub async fn dead_letters_replay_by_id_leaves_the_others(store: Arc<dyn Store>) {
    let long = 60_000;
    let visibility = Duration::from_millis(long);
    store
        .inbox_push("plg_r", &[inbox_entry(1), inbox_entry(2), inbox_entry(3)])
        .await
        .unwrap();
    let first = store.inbox_pull("plg_r", pull(3, long, 1)).await.unwrap();
    let receipts: Vec<StreamId> = first.iter().map(|d| d.receipt).collect();
    store
        .inbox_nack("plg_r", &receipts, &retry_now(visibility))
        .await
        .unwrap();
    // Past max_attempts 1: all three move to the dead letters.
    assert!(
        store
            .inbox_pull("plg_r", pull(3, long, 1))
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store.dead_letters("plg_r", None, 10).await.unwrap();
    assert_eq!(dead.len(), 3);
    let after_first = store
        .dead_letters("plg_r", Some(dead[0].id), 10)
        .await
        .unwrap();
    assert_eq!(
        after_first.iter().map(|d| d.id).collect::<Vec<_>>(),
        [dead[1].id, dead[2].id],
        "the letters after a cursor, oldest first"
    );
    assert_eq!(
        store
            .dead_letters("plg_r", Some(dead[0].id), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let nothing = store.replay_dead("plg_r", Some(&[])).await.unwrap();
    assert!(nothing.ids.is_empty(), "an empty list names no letter");
    assert_eq!(
        store.dead_letters("plg_r", None, 10).await.unwrap().len(),
        3
    );

    let unknown = StreamId { ms: 1, seq: 0 };
    let pushed = store
        .replay_dead("plg_r", Some(&[dead[1].id, unknown]))
        .await
        .unwrap();
    assert_eq!(pushed.ids.len(), 1, "an unknown id moves nothing");
    let left: Vec<InboxEntry> = store
        .dead_letters("plg_r", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.entry)
        .collect();
    assert_eq!(left, [inbox_entry(1), inbox_entry(3)]);
    let back = store.inbox_pull("plg_r", pull(3, long, 1)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].attempt, &back[0].entry), (1, &inbox_entry(2)));
    assert_eq!(back[0].receipt, pushed.ids[0]);
}

pub async fn replaying_many_dead_letters_moves_every_one(store: Arc<dyn Store>) {
    // More than one batch of the Redis store's replay script.
    let n = 1_234;
    let entries: Vec<InboxEntry> = (0..n).map(inbox_entry).collect();
    store.inbox_push("plg_many", &entries).await.unwrap();
    assert_eq!(
        store
            .inbox_pull("plg_many", pull(n, 0, 1))
            .await
            .unwrap()
            .len(),
        n
    );
    // Handed out once already: past max_attempts 1, every one is buried.
    assert!(
        store
            .inbox_pull("plg_many", pull(n, 0, 1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .dead_letters("plg_many", None, 2 * n)
            .await
            .unwrap()
            .len(),
        n
    );

    let pushed = store.replay_dead("plg_many", None).await.unwrap();
    assert_eq!(pushed.ids.len(), n);
    assert!(
        store
            .dead_letters("plg_many", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let back = store
        .inbox_pull("plg_many", pull(n, 60_000, 1))
        .await
        .unwrap();
    let ids: Vec<String> = back.into_iter().map(|d| d.entry.event_id).collect();
    let expected: Vec<String> = entries.into_iter().map(|e| e.event_id).collect();
    assert_eq!(ids, expected, "every letter is back, in order");
}

pub async fn namespaces_belong_to_their_first_plugin(store: Arc<dyn Store>) {
    let ns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(
        store
            .claim_namespaces("plg_a", &ns(&["loyalty", "nps"]))
            .await
            .unwrap()
            .is_empty()
    );
    // Claiming again is a no-op for the owner.
    assert!(
        store
            .claim_namespaces("plg_a", &ns(&["loyalty"]))
            .await
            .unwrap()
            .is_empty()
    );
    // A rival gets the owner named, and nothing: not even the free namespace it asked for.
    let taken = store
        .claim_namespaces("plg_b", &ns(&["returns", "loyalty"]))
        .await
        .unwrap();
    assert_eq!(taken, [("loyalty".to_string(), "plg_a".to_string())]);
    assert!(
        store
            .claim_namespaces("plg_c", &ns(&["returns"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.namespace_owner("loyalty").await.unwrap().as_deref(),
        Some("plg_a")
    );
    assert_eq!(
        store.namespace_owner("returns").await.unwrap().as_deref(),
        Some("plg_c")
    );
    assert_eq!(store.namespace_owner("nobody").await.unwrap(), None);
    // Released: only what the plugin holds.
    store
        .release_namespaces("plg_c", &ns(&["returns", "loyalty"]))
        .await
        .unwrap();
    assert_eq!(store.namespace_owner("returns").await.unwrap(), None);
    assert_eq!(
        store.namespace_owner("loyalty").await.unwrap().as_deref(),
        Some("plg_a")
    );
}

/// With inbox_maxlen 5 and dead_maxlen 3: the oldest go first, and the count says so.
pub async fn inboxes_and_dead_letters_are_capped(store: Arc<dyn Store>) {
    let entries: Vec<InboxEntry> = (1..=8).map(inbox_entry).collect();
    let pushed = store.inbox_push("plg_cap", &entries).await.unwrap();
    assert_eq!(pushed.ids.len(), 8);
    assert_eq!(pushed.trimmed, 3);
    let got = store
        .inbox_pull("plg_cap", pull(100, 60_000, 1))
        .await
        .unwrap();
    let ids: Vec<&str> = got.iter().map(|d| d.entry.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_4", "evt_5", "evt_6", "evt_7", "evt_8"]);
    // Every one fails: with max_attempts 1 the next pull moves them to the dead letters,
    // which keep the newest three.
    let receipts: Vec<StreamId> = got.iter().map(|d| d.receipt).collect();
    store
        .inbox_nack("plg_cap", &receipts, &retry_now(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        store
            .inbox_pull("plg_cap", pull(100, 60_000, 1))
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store.dead_letters("plg_cap", None, 100).await.unwrap();
    let ids: Vec<&str> = dead.iter().map(|d| d.entry.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_6", "evt_7", "evt_8"]);
    // A replay goes through the same cap.
    let replayed = store.replay_dead("plg_cap", None).await.unwrap();
    assert_eq!((replayed.ids.len(), replayed.trimmed), (3, 0));
}

pub async fn a_waiting_pull_returns_when_an_entry_arrives(store: Arc<dyn Store>) {
    // Creates the inbox (and its group) before anyone waits on it.
    assert!(
        store
            .inbox_pull("plg_w", pull(1, 60_000, 8))
            .await
            .unwrap()
            .is_empty()
    );
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            let o = PullOptions {
                wait: Duration::from_secs(10),
                ..pull(5, 60_000, 8)
            };
            store.inbox_pull("plg_w", o).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.inbox_push("plg_w", &[inbox_entry(9)]).await.unwrap();
    let got = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].entry.event_id, "evt_9");
}

pub async fn a_poison_log_entry_is_set_aside_with_its_reason(store: Arc<dyn Store>) {
    for n in 0..2 {
        written(
            store
                .append(events(12, &format!("src:poison{n}"), vec![record("p", n)]))
                .await
                .unwrap(),
        );
    }
    let stale = Duration::from_millis(150);
    let taken = store
        .route_pull(12, 10, stale, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(taken.len(), 2);
    store
        .route_bury(12, &taken[0], "plg_x", "WRONGTYPE inbox")
        .await
        .unwrap();
    let dead = store.route_dead_letters(12, None, 10).await.unwrap();
    assert_eq!(
        dead,
        vec![RouterDeadLetter {
            id: dead[0].id,
            entry: taken[0].clone(),
            plugin_id: "plg_x".into(),
            reason: "WRONGTYPE inbox".into(),
        }]
    );
    assert!(
        store
            .route_dead_letters(12, Some(dead[0].id), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing after the last one"
    );
    assert_eq!(store.route_dead_remove(12, &[dead[0].id]).await.unwrap(), 1);
    assert!(
        store
            .route_dead_letters(12, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.route_dead_remove(12, &[dead[0].id]).await.unwrap(), 0);
    // Set aside, then acknowledged with its batch: once stale, only the other comes back.
    store.route_ack(12, &[taken[0].cursor]).await.unwrap();
    tokio::time::sleep(stale * 2).await;
    let again = store
        .route_pull(12, 10, stale, Duration::ZERO)
        .await
        .unwrap();
    let ids: Vec<&str> = again.iter().map(|e| e.record.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_p_1"]);
}

pub async fn routers_take_each_log_entry_until_acknowledged(store: Arc<dyn Store>) {
    assert_eq!(
        store.route_progress(11).await.unwrap(),
        RouteProgress::default()
    );
    for n in 0..3 {
        written(
            store
                .append(events(11, &format!("src:route{n}"), vec![record("r", n)]))
                .await
                .unwrap(),
        );
    }
    let progress = store.route_progress(11).await.unwrap();
    assert_eq!(progress.unrouted, 3);
    let stale = Duration::from_millis(150);
    let first = store
        .route_pull(11, 2, stale, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        store.route_progress(11).await.unwrap().unrouted,
        3,
        "taken is not routed until acknowledged"
    );
    let ids: Vec<&str> = first.iter().map(|e| e.record.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_r_0", "evt_r_1"]);
    let second = store
        .route_pull(11, 10, stale, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert!(
        store
            .route_pull(11, 10, stale, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .route_ack(11, &[first[0].cursor, second[0].cursor])
        .await
        .unwrap();
    assert_eq!(store.route_progress(11).await.unwrap().unrouted, 1);
    assert_eq!(
        store.route_progress(11).await.unwrap().last,
        Some(second[0].cursor),
        "the last entry written"
    );
    // The unacknowledged one (a router that died mid-way) is taken again once stale.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = store
        .route_pull(11, 10, stale, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].record.event_id, "evt_r_1");
    store.route_ack(11, &[again[0].cursor]).await.unwrap();
    assert_eq!(
        store.route_progress(11).await.unwrap(),
        RouteProgress {
            last: Some(second[0].cursor),
            unrouted: 0
        }
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        store
            .route_pull(11, 10, stale, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    // Routing leaves the log as it was.
    assert_eq!(store.read_log(11, None, 10).await.unwrap().len(), 3);
}

/// The retention most cases run with.
pub fn default() -> Retention {
    Retention::default()
}

/// A small retention, for the cases about caps and trimming.
/// A quarantine budget of 300 bytes, no entry cap.
pub fn byte_budget() -> Retention {
    Retention {
        quarantine_maxlen: 0,
        quarantine_max_bytes: 300,
        ..Retention::default()
    }
}

pub fn small() -> Retention {
    Retention {
        log_maxlen: 10,
        quarantine_maxlen: 10,
        quarantine_max_bytes: 0,
        inbox_maxlen: 5,
        dead_maxlen: 3,
    }
}

/// Two processes report what they counted; the counts add up per source and outcome, a
/// span of minutes narrows them, minutes past the hour are dropped, and the last delivery
/// only moves forward.
pub async fn delivery_tallies_add_up_and_keep_the_last_hour(store: Arc<dyn Store>) {
    use super::{SourceTally, TALLY_MINUTES};
    let now = 29_000_000;
    let tally = |source: &str, counts: Vec<(u64, &'static str, u64)>, last_ms: u64| SourceTally {
        source_id: source.into(),
        counts,
        last_ms,
    };
    store
        .add_tallies(
            now,
            &[
                tally(
                    "src_a",
                    vec![(now - 70, "accepted", 4), (now - 5, "accepted", 2)],
                    1_000,
                ),
                tally("src_b", vec![(now, "invalid_signature", 1)], 3_000),
            ],
        )
        .await
        .unwrap();
    store
        .add_tallies(
            now,
            &[tally(
                "src_a",
                vec![(now, "accepted", 3), (now, "duplicate", 1)],
                500,
            )],
        )
        .await
        .unwrap();
    let ids = [
        "src_a".to_string(),
        "src_b".to_string(),
        "src_none".to_string(),
    ];
    let hour = store.tallies(&ids, now - TALLY_MINUTES + 1).await.unwrap();
    let count = |i: usize, outcome: &str| hour[i].outcomes.get(outcome).copied();
    assert_eq!(
        count(0, "accepted"),
        Some(5),
        "two processes' counts add up"
    );
    assert_eq!(count(0, "duplicate"), Some(1));
    assert_eq!(
        hour[0].last_ms,
        Some(1_000),
        "the last delivery never moves back"
    );
    assert_eq!(count(1, "invalid_signature"), Some(1));
    assert_eq!(hour[1].last_ms, Some(3_000));
    assert!(hour[2].outcomes.is_empty() && hour[2].last_ms.is_none());
    let minute = store.tallies(&ids[..1], now).await.unwrap();
    assert_eq!(
        minute[0].outcomes.get("accepted"),
        Some(&3),
        "a span narrows them"
    );
    // The minute 70 ago was dropped, not only left out of the span.
    let all = store.tallies(&ids[..1], 0).await.unwrap();
    assert_eq!(all[0].outcomes.get("accepted"), Some(&5));
    // A source's counts go with it.
    store.delete_source("src_b").await.unwrap();
    let after = store.tallies(&ids[1..2], 0).await.unwrap();
    assert_eq!(after[0], super::Tally::default());
}

/// One process polls a source at a time: the lease is taken while free, renewed by its
/// holder, refused to others until it lapses, and only its holder writes the poll state
/// (tokens included, which come back as they were written).
pub async fn a_poll_lease_has_one_holder_who_alone_writes_the_state(store: Arc<dyn Store>) {
    let short = Duration::from_millis(300);
    assert!(store.poll_lease("src_p", "a", short).await.unwrap());
    assert!(
        store.poll_lease("src_p", "a", short).await.unwrap(),
        "renewed"
    );
    assert!(
        !store.poll_lease("src_p", "b", short).await.unwrap(),
        "held by a"
    );
    assert!(store.poll_state("src_p").await.unwrap().is_none());
    let state = PollState {
        cursor: Some("MTEzMjQzODU3NjkzMzQ1".into()),
        changes: 3,
        access_token: Some(SecretValue::new("access-token-1")),
        refresh_token: Some(SecretValue::new("refresh-token-1")),
        ..PollState::default()
    };
    assert!(store.put_poll_state("src_p", "a", &state).await.unwrap());
    assert!(
        !store
            .put_poll_state("src_p", "b", &PollState::default())
            .await
            .unwrap(),
        "only the holder writes"
    );
    assert_eq!(
        store.poll_state("src_p").await.unwrap(),
        Some(state.clone())
    );
    // The holder stops renewing (it died): another takes over after the TTL.
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert!(
        !store
            .put_poll_state("src_p", "a", &PollState::default())
            .await
            .unwrap(),
        "a lapsed lease writes nothing"
    );
    assert!(
        store.poll_lease("src_p", "b", short).await.unwrap(),
        "taken over"
    );
    assert!(!store.poll_lease("src_p", "a", short).await.unwrap());
    // A release by someone else changes nothing; by the holder, frees it at once.
    store.release_poll_lease("src_p", "a").await.unwrap();
    assert!(!store.poll_lease("src_p", "c", short).await.unwrap());
    store.release_poll_lease("src_p", "b").await.unwrap();
    assert!(store.poll_lease("src_p", "c", short).await.unwrap());
    assert_eq!(store.poll_state("src_p").await.unwrap(), Some(state));
    // Leases are per source.
    assert!(store.poll_lease("src_q", "a", short).await.unwrap());
    // Deleting a source takes its poll state (its tokens) and its lease with it.
    store.delete_source("src_p").await.unwrap();
    assert_eq!(store.poll_state("src_p").await.unwrap(), None);
    assert!(
        !store
            .put_poll_state("src_p", "c", &PollState::default())
            .await
            .unwrap(),
        "a poller still running cannot write it back"
    );
}

/// One `#[tokio::test]` per conformance case, in the module where it is invoked, each on a
/// fresh store from `$make` (a `Fn(Retention) -> impl Future<Output = Arc<dyn Store>>`):
///
/// ```ignore
/// mod memory {
///     omnigate::store_conformance!(|r| async move {
///         std::sync::Arc::new(omnigate::store::MemoryStore::new(r)) as std::sync::Arc<dyn omnigate::store::Store>
///     });
/// }
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            sources_round_trip: default,
            append_is_deduplicated: default,
            each_event_id_is_written_once: default,
            dedupe_marks_expire: default,
            empty_deliveries_are_still_marked: default,
            log_reads_page_in_order: default,
            retention_trims_only_what_the_router_took: small,
            inboxes_and_dead_letters_are_capped: small,
            namespaces_belong_to_their_first_plugin: default,
            quarantine_refuses_at_its_cap_and_shrinks_only_by_discard: small,
            quarantine_refuses_past_its_byte_budget: byte_budget,
            quarantine_keeps_bytes_and_replay_marks: default,
            concurrent_duplicates_write_once: default,
            snapshots_move_only_from_the_version_read: default,
            plugins_keys_and_installations: default,
            inbox_delivers_in_order_until_acknowledged: default,
            unacknowledged_deliveries_come_back_with_a_higher_attempt: default,
            nacked_deliveries_return_then_die_and_replay: default,
            a_delivery_given_up_on_is_a_dead_letter_at_once: default,
            a_nack_may_postpone_past_the_visibility_timeout: default,
            subjects_are_held_by_one_delivery_at_a_time: default,
            dead_letters_replay_by_id_leaves_the_others: default,
            replaying_many_dead_letters_moves_every_one: default,
            a_waiting_pull_returns_when_an_entry_arrives: default,
            routers_take_each_log_entry_until_acknowledged: default,
            a_poison_log_entry_is_set_aside_with_its_reason: default,
            a_poll_lease_has_one_holder_who_alone_writes_the_state: default,
            delivery_tallies_add_up_and_keep_the_last_hour: default,
        );
    };
    (@cases $make:expr; $($case:ident: $retention:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                let store = make($crate::store::conformance::$retention()).await;
                $crate::store::conformance::$case(store).await;
            }
        )*

        /// The cases [`run_all`] runs are the ones this macro makes tests of.
        #[test]
        fn every_case_has_its_test() {
            let listed = [$(stringify!($case)),*];
            let cases: Vec<&str> = $crate::store::conformance::CASES
                .iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(listed.as_slice(), cases.as_slice());
        }
    };
}

/// A case running on a store.
pub type CaseRun = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// One case: its name, the retention its store needs, and the case itself.
pub struct Case {
    pub name: &'static str,
    pub retention: fn() -> Retention,
    pub run: fn(Arc<dyn Store>) -> CaseRun,
}

/// Every case, in the order [`run_all`] runs them.
pub const CASES: &[Case] = &[
    Case {
        name: "sources_round_trip",
        retention: default,
        run: |store| Box::pin(sources_round_trip(store)),
    },
    Case {
        name: "append_is_deduplicated",
        retention: default,
        run: |store| Box::pin(append_is_deduplicated(store)),
    },
    Case {
        name: "each_event_id_is_written_once",
        retention: default,
        run: |store| Box::pin(each_event_id_is_written_once(store)),
    },
    Case {
        name: "dedupe_marks_expire",
        retention: default,
        run: |store| Box::pin(dedupe_marks_expire(store)),
    },
    Case {
        name: "empty_deliveries_are_still_marked",
        retention: default,
        run: |store| Box::pin(empty_deliveries_are_still_marked(store)),
    },
    Case {
        name: "log_reads_page_in_order",
        retention: default,
        run: |store| Box::pin(log_reads_page_in_order(store)),
    },
    Case {
        name: "retention_trims_only_what_the_router_took",
        retention: small,
        run: |store| Box::pin(retention_trims_only_what_the_router_took(store)),
    },
    Case {
        name: "inboxes_and_dead_letters_are_capped",
        retention: small,
        run: |store| Box::pin(inboxes_and_dead_letters_are_capped(store)),
    },
    Case {
        name: "namespaces_belong_to_their_first_plugin",
        retention: default,
        run: |store| Box::pin(namespaces_belong_to_their_first_plugin(store)),
    },
    Case {
        name: "quarantine_refuses_at_its_cap_and_shrinks_only_by_discard",
        retention: small,
        run: |store| {
            Box::pin(quarantine_refuses_at_its_cap_and_shrinks_only_by_discard(
                store,
            ))
        },
    },
    Case {
        name: "quarantine_refuses_past_its_byte_budget",
        retention: byte_budget,
        run: |store| Box::pin(quarantine_refuses_past_its_byte_budget(store)),
    },
    Case {
        name: "quarantine_keeps_bytes_and_replay_marks",
        retention: default,
        run: |store| Box::pin(quarantine_keeps_bytes_and_replay_marks(store)),
    },
    Case {
        name: "concurrent_duplicates_write_once",
        retention: default,
        run: |store| Box::pin(concurrent_duplicates_write_once(store)),
    },
    Case {
        name: "snapshots_move_only_from_the_version_read",
        retention: default,
        run: |store| Box::pin(snapshots_move_only_from_the_version_read(store)),
    },
    Case {
        name: "plugins_keys_and_installations",
        retention: default,
        run: |store| Box::pin(plugins_keys_and_installations(store)),
    },
    Case {
        name: "inbox_delivers_in_order_until_acknowledged",
        retention: default,
        run: |store| Box::pin(inbox_delivers_in_order_until_acknowledged(store)),
    },
    Case {
        name: "unacknowledged_deliveries_come_back_with_a_higher_attempt",
        retention: default,
        run: |store| {
            Box::pin(unacknowledged_deliveries_come_back_with_a_higher_attempt(
                store,
            ))
        },
    },
    Case {
        name: "nacked_deliveries_return_then_die_and_replay",
        retention: default,
        run: |store| Box::pin(nacked_deliveries_return_then_die_and_replay(store)),
    },
    Case {
        name: "a_delivery_given_up_on_is_a_dead_letter_at_once",
        retention: default,
        run: |store| Box::pin(a_delivery_given_up_on_is_a_dead_letter_at_once(store)),
    },
    Case {
        name: "a_nack_may_postpone_past_the_visibility_timeout",
        retention: default,
        run: |store| Box::pin(a_nack_may_postpone_past_the_visibility_timeout(store)),
    },
    Case {
        name: "subjects_are_held_by_one_delivery_at_a_time",
        retention: default,
        run: |store| Box::pin(subjects_are_held_by_one_delivery_at_a_time(store)),
    },
    Case {
        name: "dead_letters_replay_by_id_leaves_the_others",
        retention: default,
        run: |store| Box::pin(dead_letters_replay_by_id_leaves_the_others(store)),
    },
    Case {
        name: "replaying_many_dead_letters_moves_every_one",
        retention: default,
        run: |store| Box::pin(replaying_many_dead_letters_moves_every_one(store)),
    },
    Case {
        name: "a_waiting_pull_returns_when_an_entry_arrives",
        retention: default,
        run: |store| Box::pin(a_waiting_pull_returns_when_an_entry_arrives(store)),
    },
    Case {
        name: "routers_take_each_log_entry_until_acknowledged",
        retention: default,
        run: |store| Box::pin(routers_take_each_log_entry_until_acknowledged(store)),
    },
    Case {
        name: "a_poison_log_entry_is_set_aside_with_its_reason",
        retention: default,
        run: |store| Box::pin(a_poison_log_entry_is_set_aside_with_its_reason(store)),
    },
    Case {
        name: "a_poll_lease_has_one_holder_who_alone_writes_the_state",
        retention: default,
        run: |store| {
            Box::pin(a_poll_lease_has_one_holder_who_alone_writes_the_state(
                store,
            ))
        },
    },
    Case {
        name: "delivery_tallies_add_up_and_keep_the_last_hour",
        retention: default,
        run: |store| Box::pin(delivery_tallies_add_up_and_keep_the_last_hour(store)),
    },
];

/// Runs every case in order against fresh stores from `make`, saying which case runs.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(Retention) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for case in CASES {
        eprintln!("store conformance: {}", case.name);
        (case.run)(make((case.retention)()).await).await;
    }
}

#[cfg(test)]
mod memory_store {
    crate::store_conformance!(|r| async move {
        std::sync::Arc::new(crate::store::MemoryStore::new(r))
            as std::sync::Arc<dyn crate::store::Store>
    });
}
