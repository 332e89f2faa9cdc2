//! One behaviour suite, two stores: the embedded memory store and Redis over TCP. One test
//! per case and store (`store_conformance::redis::inbox_delivers_in_order_until_acknowledged`).

mod memory {
    omnigate::store_conformance!(|r| async move {
        std::sync::Arc::new(omnigate::store::MemoryStore::new(r))
            as std::sync::Arc<dyn omnigate::store::Store>
    });
}

mod redis {
    omnigate::store_conformance!(omnigate_tests::redis_store);
}
