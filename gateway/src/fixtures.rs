//! The signed sample payloads the tests use: the repository's own set in `tests/fixtures`
//! (bodies signed by `tests/fixtures/make.py` from the providers' documented formats), and,
//! when a `shared/fixtures` directory sits beside the repository, that set as an extra
//! conformance run (feature `testing`).

use crate::headers::Headers;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `OMNIGATE_FIXTURES`, else the repository's `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OMNIGATE_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    assert!(
        dir.join("signatures.json").exists(),
        "fixtures not found at {}; set OMNIGATE_FIXTURES",
        dir.display()
    );
    dir
}

/// `shared/fixtures` beside the repository, when it is there: run as an extra set.
pub fn shared_fixtures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    dir.join("signatures.json").exists().then_some(dir)
}

/// The repository's fixture set and, when present, the shared one.
pub fn fixture_sets() -> Vec<PathBuf> {
    let mut sets = vec![fixtures_dir()];
    sets.extend(shared_fixtures_dir());
    sets
}

/// One signed sample payload.
pub struct PayloadFixture {
    /// `<provider>/<topic>`.
    pub name: String,
    pub scheme: String,
    pub secret: String,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub verify_at_unix: Option<i64>,
}

#[derive(Deserialize)]
struct Meta {
    headers: std::collections::BTreeMap<String, String>,
    secret: String,
    scheme: String,
    verify_at_unix: Option<i64>,
}

/// The repository's signed payloads.
pub fn load_payload_fixtures() -> Vec<PayloadFixture> {
    load_payload_fixtures_from(&fixtures_dir())
}

/// The signed payloads of the fixture set at `dir`.
pub fn load_payload_fixtures_from(dir: &Path) -> Vec<PayloadFixture> {
    let root = dir.join("payloads");
    let mut out = Vec::new();
    let mut providers: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
    providers.sort_by_key(|e| e.file_name());
    for provider in providers {
        let mut files: Vec<_> = std::fs::read_dir(provider.path())
            .unwrap()
            .flatten()
            .collect();
        files.sort_by_key(|e| e.file_name());
        for file in files {
            let name = file.file_name().to_string_lossy().to_string();
            let Some(topic) = name.strip_suffix(".headers.json") else {
                continue;
            };
            let meta: Meta = serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
            let body = std::fs::read(provider.path().join(format!("{topic}.json"))).unwrap();
            out.push(PayloadFixture {
                name: format!("{}/{topic}", provider.file_name().to_string_lossy()),
                scheme: meta.scheme,
                secret: meta.secret,
                headers: meta.headers.iter().collect(),
                body,
                verify_at_unix: meta.verify_at_unix,
            });
        }
    }
    out
}

/// The fixture `<provider>/<topic>`.
pub fn payload_fixture(name: &str) -> PayloadFixture {
    load_payload_fixtures()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}
