//! Request headers as the pipeline sees them: names folded to lower case (HTTP/2 sends them
//! that way, HTTP/1.1 senders use any case), values as received.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header; a repeated name keeps the first value, as the verifiers expect one.
    pub fn insert(&mut self, name: &str, value: &str) {
        self.0
            .entry(name.to_ascii_lowercase())
            .or_insert_with(|| value.to_string());
    }

    /// The value of `name` (any case), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
        } else {
            self.0.get(name).map(String::as_str)
        }
    }

    /// The first present, non-empty value among `names`.
    pub fn first(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .filter_map(|n| self.get(n))
            .find(|v| !v.is_empty())
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The headers minus credentials a sender might attach (kept payloads must not hold
    /// them).
    pub fn without_credentials(&self) -> BTreeMap<String, String> {
        let mut map = self.0.clone();
        for name in ["authorization", "proxy-authorization", "cookie"] {
            map.remove(name);
        }
        map
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (k, v) in iter {
            h.insert(k.as_ref(), v.as_ref());
        }
        h
    }
}

impl From<&actix_web::http::header::HeaderMap> for Headers {
    /// Non-UTF-8 header values cannot carry a signature and are skipped.
    fn from(map: &actix_web::http::header::HeaderMap) -> Self {
        map.iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case() {
        let h: Headers = [("X-Shopify-Topic", "orders/create")].into_iter().collect();
        assert_eq!(h.get("x-shopify-topic"), Some("orders/create"));
        assert_eq!(h.get("X-SHOPIFY-TOPIC"), Some("orders/create"));
        assert_eq!(h.get("shopify-topic"), None);
    }

    #[test]
    fn first_skips_empty_values() {
        let h: Headers = [("a", ""), ("b", "2")].into_iter().collect();
        assert_eq!(h.first(&["a", "b"]), Some("2"));
    }
}
