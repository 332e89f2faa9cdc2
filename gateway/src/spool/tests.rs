use super::*;
use omnigate_schemas::api::Provider;
use std::collections::BTreeMap;

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("og-spool-{}", uuid::Uuid::new_v4().simple()))
}

fn options(dir: &Path) -> SpoolOptions {
    SpoolOptions {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 30,
        segment_bytes: 64 << 20,
    }
}

fn delivery(n: u32) -> SpooledDelivery {
    SpooledDelivery {
        source_id: "src_0123456789abcdef".into(),
        tenant: "acme".into(),
        provider: Provider::Shopify,
        received_at: DateTime::from_timestamp(1_764_000_000 + i64::from(n), 0).unwrap(),
        headers: BTreeMap::from([("x-shopify-topic".into(), "orders/create".into())]),
        body: format!("{{\"id\":{n}}}").into_bytes(),
    }
}

/// Drains everything, handing each delivery's number to the caller in order.
fn drain(spool: &Spool) -> Vec<u32> {
    let mut seen = Vec::new();
    while let Some(next) = spool.next().unwrap() {
        let d = next.delivery.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        seen.push(body["id"].as_u64().unwrap() as u32);
        spool.done(next.next).unwrap();
    }
    seen
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .ok()
                .and_then(|e| e.file_name().to_str().and_then(segment::id_of))
                .is_some()
        })
        .count()
}

#[tokio::test]
async fn deliveries_come_back_in_arrival_order_across_segments_and_drained_files_go() {
    let dir = temp_dir();
    let spool = Spool::open(&SpoolOptions {
        segment_bytes: 200,
        ..options(&dir)
    })
    .unwrap();
    for n in 0..20 {
        spool.append(&delivery(n)).await.unwrap();
    }
    let stats = spool.stats();
    assert_eq!(stats.records, 20);
    assert_eq!(stats.oldest, Some(delivery(0).received_at));
    assert!(segment_files(&dir) > 3, "small segments rotate");

    assert_eq!(drain(&spool), (0..20).collect::<Vec<_>>());
    assert_eq!(spool.stats().records, 0);
    // The next write finds everything drained and starts over in one fresh segment.
    spool.append(&delivery(20)).await.unwrap();
    assert_eq!(segment_files(&dir), 1);
    assert_eq!(drain(&spool), vec![20]);
}

#[tokio::test]
async fn concurrent_deliveries_are_all_written_and_each_read_once() {
    let dir = temp_dir();
    let spool = Arc::new(Spool::open(&options(&dir)).unwrap());
    let writes = (0..300).map(|n| {
        let spool = spool.clone();
        tokio::spawn(async move { spool.append(&delivery(n)).await })
    });
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let mut seen = drain(&spool);
    seen.sort_unstable();
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_restart_drains_what_was_left_and_nothing_already_drained() {
    let dir = temp_dir();
    {
        let spool = Spool::open(&options(&dir)).unwrap();
        for n in 0..10 {
            spool.append(&delivery(n)).await.unwrap();
        }
        for _ in 0..4 {
            let next = spool.next().unwrap().unwrap();
            spool.done(next.next).unwrap();
        }
        // Closed as a stopping gateway closes it. (Killed, it would drain again what it
        // drained since the cursor was last written: `spool_restart.rs` kills the binary.)
    }
    let spool = Spool::open(&options(&dir)).unwrap();
    assert_eq!(spool.stats().records, 6);
    spool.append(&delivery(10)).await.unwrap();
    assert_eq!(drain(&spool), (4..=10).collect::<Vec<_>>());
    drop(spool);
    let spool = Spool::open(&options(&dir)).unwrap();
    assert_eq!(spool.stats().records, 0);
    assert_eq!(segment_files(&dir), 1, "drained segments are gone");
}

#[tokio::test]
async fn a_write_cut_short_by_a_crash_is_cut_off_and_the_rest_is_kept() {
    let dir = temp_dir();
    {
        let spool = Spool::open(&options(&dir)).unwrap();
        for n in 0..3 {
            spool.append(&delivery(n)).await.unwrap();
        }
    }
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(segment::id_of))
        .max()
        .unwrap();
    let path = segment::path(&dir, newest);
    let mut torn = Vec::new();
    segment::frame(&delivery(3).encode(), &mut torn);
    let mut bytes = std::fs::read(&path).unwrap();
    let whole = bytes.len() as u64;
    bytes.extend_from_slice(&torn[..torn.len() / 2]);
    std::fs::write(&path, &bytes).unwrap();

    let spool = Spool::open(&options(&dir)).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    assert_eq!(drain(&spool), vec![0, 1, 2]);
}

fn damaged_copies(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with("damaged-"))
        .collect()
}

#[tokio::test]
async fn a_record_damaged_after_it_was_acknowledged_is_copied_aside_and_stepped_over() {
    let dir = temp_dir();
    let spool = Spool::open(&options(&dir)).unwrap();
    for n in 0..3 {
        spool.append(&delivery(n)).await.unwrap();
    }
    let first = spool.next().unwrap().unwrap();
    spool.done(first.next).unwrap();
    // The disk flips a bit in the second record's body.
    let path = segment::path(&dir, first.next.segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = first.next.offset as usize + segment::FRAME_HEADER as usize + 2;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    assert_eq!(drain(&spool), vec![2], "the third is still read");
    assert_eq!(spool.stats().unreadable, 1);
    assert_eq!(damaged_copies(&dir).len(), 1);
}

#[tokio::test]
async fn a_damaged_length_in_the_segment_being_written_loses_nothing_written_after_it() {
    let dir = temp_dir();
    let spool = Spool::open(&options(&dir)).unwrap();
    for n in 0..3 {
        spool.append(&delivery(n)).await.unwrap();
    }
    let first = spool.next().unwrap().unwrap();
    spool.done(first.next).unwrap();
    let path = segment::path(&dir, first.next.segment);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[first.next.offset as usize] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    // Where frame 2 ends is not known, so 1 and 2 are set aside together; what is written
    // from now on is read, and no segment with undrained records is removed.
    assert_eq!(drain(&spool), Vec::<u32>::new());
    for n in 3..6 {
        spool.append(&delivery(n)).await.unwrap();
    }
    assert_eq!(drain(&spool), vec![3, 4, 5]);
    assert_eq!(damaged_copies(&dir).len(), 1);
    assert_eq!(spool.stats().records, 0);
}

#[tokio::test]
async fn a_cursor_naming_a_segment_gone_never_lets_new_segments_reuse_its_number() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // Left by a process that drained everything up to segment 7 and died before writing.
    std::fs::write(dir.join("cursor"), "7 0\n").unwrap();
    {
        let spool = Spool::open(&options(&dir)).unwrap();
        spool.append(&delivery(1)).await.unwrap();
    }
    let ids: Vec<u64> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(segment::id_of))
        .collect();
    assert!(ids.iter().all(|id| *id > 7), "{ids:?}");
    let spool = Spool::open(&options(&dir)).unwrap();
    assert_eq!(drain(&spool), vec![1]);
}

#[tokio::test]
async fn a_full_spool_refuses_and_takes_again_once_drained() {
    let dir = temp_dir();
    let one = {
        let mut f = Vec::new();
        segment::frame(&delivery(0).encode(), &mut f);
        f.len() as u64
    };
    let spool = Spool::open(&SpoolOptions {
        max_bytes: one * 2,
        ..options(&dir)
    })
    .unwrap();
    spool.append(&delivery(0)).await.unwrap();
    spool.append(&delivery(1)).await.unwrap();
    let err = spool.append(&delivery(2)).await.unwrap_err();
    assert!(matches!(err, SpoolError::Full { .. }), "{err}");
    assert_eq!(drain(&spool), vec![0, 1]);
    spool.append(&delivery(2)).await.unwrap();
    assert_eq!(drain(&spool), vec![2]);
}

#[test]
fn one_process_owns_a_spool_directory() {
    let dir = temp_dir();
    let _first = Spool::open(&options(&dir)).unwrap();
    let second = Spool::open(&options(&dir));
    assert!(matches!(second, Err(SpoolError::Locked(_))));
}

#[test]
fn a_recent_store_failure_sends_deliveries_straight_to_the_spool_for_a_while() {
    let spool = Spool::open(&options(&temp_dir())).unwrap();
    assert!(!spool.store_known_down());
    spool.note_store_down(Duration::from_secs(60));
    assert!(spool.store_known_down());
    spool.note_store_up();
    assert!(!spool.store_known_down());
    spool.note_store_down(Duration::ZERO);
    assert!(!spool.store_known_down());
}
