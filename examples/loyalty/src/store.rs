//! Where each shop's loyalty book is kept: in memory (tests) or in Redis. Writes are
//! compare-and-set on a version, so two runtimes never lose each other's updates.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::rules::Book;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored book is corrupt: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait BookStore: Send + Sync + 'static {
    /// The shop's book and its version (0 when new).
    async fn load(&self, tenant: &str) -> Result<(Book, u64), StoreError>;
    /// Saves unless someone saved since `version` was loaded; false means load again.
    async fn save(&self, tenant: &str, book: &Book, version: u64) -> Result<bool, StoreError>;
}

#[derive(Default)]
pub struct MemoryBooks(Mutex<HashMap<String, (u64, Book)>>);

#[async_trait]
impl BookStore for MemoryBooks {
    async fn load(&self, tenant: &str) -> Result<(Book, u64), StoreError> {
        let books = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(books
            .get(tenant)
            .map(|(v, b)| (b.clone(), *v))
            .unwrap_or_default())
    }

    async fn save(&self, tenant: &str, book: &Book, version: u64) -> Result<bool, StoreError> {
        let mut books = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let current = books.get(tenant).map_or(0, |(v, _)| *v);
        if current != version {
            return Ok(false);
        }
        books.insert(tenant.to_string(), (version + 1, book.clone()));
        Ok(true)
    }
}

/// `loyalty:book:<tenant>` holds `<version>|<json>`.
pub struct RedisBooks {
    conn: redis::aio::ConnectionManager,
}

const SAVE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
local version = 0
if cur then version = tonumber(string.match(cur, '^(%d+)|')) end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], (version + 1) .. '|' .. ARGV[2])
return 1
"#;

impl RedisBooks {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        Ok(RedisBooks {
            conn: client.get_connection_manager().await?,
        })
    }

    fn key(tenant: &str) -> String {
        format!("loyalty:book:{tenant}")
    }
}

#[async_trait]
impl BookStore for RedisBooks {
    async fn load(&self, tenant: &str) -> Result<(Book, u64), StoreError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(Self::key(tenant))
            .query_async(&mut conn)
            .await?;
        let Some(raw) = raw else {
            return Ok((Book::default(), 0));
        };
        let (version, json) = raw
            .split_once('|')
            .ok_or_else(|| StoreError::Corrupt("no version".into()))?;
        let version = version
            .parse()
            .map_err(|_| StoreError::Corrupt("bad version".into()))?;
        let book = serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((book, version))
    }

    async fn save(&self, tenant: &str, book: &Book, version: u64) -> Result<bool, StoreError> {
        let json = serde_json::to_string(book).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let saved: i64 = redis::Script::new(SAVE_LUA)
            .key(Self::key(tenant))
            .arg(version)
            .arg(json)
            .invoke_async(&mut conn)
            .await?;
        Ok(saved == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saves_are_compare_and_set() {
        let store = MemoryBooks::default();
        let (mut book, v) = store.load("shop").await.unwrap();
        assert_eq!(v, 0);
        book.remember_order("o1", Some("c1".into()));
        assert!(store.save("shop", &book, 0).await.unwrap());
        assert!(
            !store.save("shop", &book, 0).await.unwrap(),
            "a stale version loses"
        );
        let (loaded, v) = store.load("shop").await.unwrap();
        assert_eq!((loaded, v), (book, 1));
    }
}
