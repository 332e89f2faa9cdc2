//! One behaviour suite, two stores: the embedded memory store and Redis over TCP.

use omnigate::store::conformance::run_all;
use omnigate::store::{MemoryStore, Store};
use omnigate_tests::redis_store;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_passes_the_conformance_suite() {
    run_all(|r| async move { Arc::new(MemoryStore::new(r)) as Arc<dyn Store> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_passes_the_conformance_suite() {
    run_all(redis_store).await;
}
