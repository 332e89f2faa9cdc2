//! The end-to-end tests: one binary (linked once) with a module per story, each against a
//! real `redis-server` (`OMNIGATE_TEST_REDIS_URL`, set by scripts/test.sh) or processes of
//! its own.

mod admin_api;
mod allegro_poller;
mod console;
mod enrichment;
mod exhaustion;
mod inbox_correctness;
mod ingest_story;
mod openapi;
mod pii;
mod plugin_delivery;
mod plugins;
mod prom_poller;
mod push_delivery;
mod push_sdk;
mod redis_cluster;
mod redis_outage;
mod router_retry;
mod rozetka_poller;
mod samples;
mod sdk_runtime;
mod sdk_state;
mod secrets_at_rest;
mod security;
mod spool;
mod store_conformance;
mod tour;
mod trigger;
mod unsigned_sources;
