//! The signed sample payloads of `../shared/fixtures`, for tests (feature `testing`).

use crate::headers::Headers;
use serde::Deserialize;
use std::path::PathBuf;

/// `OMNIGATE_FIXTURES`, else `shared/fixtures` beside the repository.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OMNIGATE_FIXTURES") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    assert!(
        dir.join("signatures.json").exists(),
        "fixtures not found at {}; set OMNIGATE_FIXTURES",
        dir.display()
    );
    dir
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

pub fn load_payload_fixtures() -> Vec<PayloadFixture> {
    let root = fixtures_dir().join("payloads");
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
