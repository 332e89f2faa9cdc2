//! Listing records kept by id (sources, plugins), a page at a time in id order, with the
//! one pagination shape of every list: the items, `next` (pass it as `after`) and `done`.

use serde::Deserialize;
use std::future::Future;

use crate::error::{Error, Result};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Longest `after` (ids and tenants are shorter).
const MAX_AFTER: usize = 200;
/// Records one page may read and pass over (filtered out) before it answers a short page
/// (not `done`) to be read on from `next`.
const MAX_SCAN: usize = 5_000;

/// `limit` and `after` of a list by id.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// A `next` from an earlier page: the ids after it.
    #[param(max_length = 200)]
    pub after: Option<String>,
}

impl Window {
    /// The page size, once `limit` and `after` are checked against what the spec says.
    pub fn limit(&self) -> Result<usize> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::InvalidQuery(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        if self.after.as_ref().is_some_and(|a| a.len() > MAX_AFTER) {
            return Err(Error::InvalidQuery(format!(
                "after is at most {MAX_AFTER} characters (a `next` from a page)"
            )));
        }
        Ok(limit)
    }
}

/// A page of a list.
#[derive(Debug, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    pub done: bool,
}

/// The page of `ids` (any order) after `after`, in id order: each id is read with `read`,
/// which answers `None` for one that is gone or filtered out.
pub async fn page<T, F, Fut>(
    mut ids: Vec<String>,
    after: Option<&str>,
    limit: usize,
    mut read: F,
) -> Result<Paged<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    ids.sort();
    ids.dedup();
    let start = after.map_or(0, |a| ids.partition_point(|id| id.as_str() <= a));
    let rest = &ids[start..];
    let mut items = Vec::new();
    let mut last = None;
    for (scanned, id) in rest.iter().enumerate() {
        if items.len() == limit || scanned == MAX_SCAN {
            return Ok(Paged {
                items,
                next: last,
                done: false,
            });
        }
        last = Some(id.clone());
        if let Some(item) = read(id.clone()).await? {
            items.push(item);
        }
    }
    Ok(Paged {
        items,
        next: last.or_else(|| after.map(str::to_string)),
        done: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).rev().map(|i| format!("id_{i:04}")).collect()
    }

    async fn even(id: String) -> Result<Option<String>> {
        let n: usize = id[3..].parse().unwrap();
        Ok(n.is_multiple_of(2).then_some(id))
    }

    #[actix_web::test]
    async fn pages_follow_each_other_until_done() {
        let first = page(ids(7), None, 2, even).await.unwrap();
        assert_eq!(first.items, ["id_0000", "id_0002"]);
        assert!(!first.done);
        let second = page(ids(7), first.next.as_deref(), 2, even).await.unwrap();
        assert_eq!(second.items, ["id_0004", "id_0006"]);
        // Every id was read: done, and `next` stays where the list ends.
        assert!(second.done, "{second:?}");
        assert_eq!(second.next.as_deref(), Some("id_0006"));
        let empty = page(ids(7), second.next.as_deref(), 2, even).await.unwrap();
        assert!(empty.items.is_empty() && empty.done);
        assert_eq!(empty.next.as_deref(), Some("id_0006"));
    }

    #[actix_web::test]
    async fn a_page_that_passes_over_too_much_stops_short() {
        let none = |_: String| async { Ok::<Option<String>, Error>(None) };
        let p = page(ids(MAX_SCAN + 10), None, 10, none).await.unwrap();
        assert!(p.items.is_empty() && !p.done);
        let rest = page(ids(MAX_SCAN + 10), p.next.as_deref(), 10, none)
            .await
            .unwrap();
        assert!(rest.done);
    }
}
