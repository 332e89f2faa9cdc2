//! The shop's customer timelines and the alert rules, as plain functions.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One thing that happened with a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: String,
    /// The event type (`order.created`, `message.received`, …).
    pub kind: String,
    pub order_id: Option<String>,
    /// The channel for contacts (`marketplace_chat`, `email`, …), else the provider.
    pub channel: String,
    pub summary: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub email: Option<String>,
    pub entries: Vec<Entry>,
}

/// An order waiting to be confirmed (paid or moved on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub customer_id: String,
    pub placed_at: DateTime<Utc>,
    pub alerted: bool,
}

/// One shop's book.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// By customer id.
    pub customers: BTreeMap<String, Customer>,
    /// Order → customer, to file events that name only the order.
    pub order_customer: BTreeMap<String, String>,
    pub unconfirmed: BTreeMap<String, Pending>,
    /// Orders already paid or moved on (a late `order.created` must not reopen them).
    pub confirmed: std::collections::BTreeSet<String>,
}

/// What the desk shows for a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub customer_id: String,
    pub email: Option<String>,
    pub counts: BTreeMap<String, usize>,
    pub last_contact: Option<Entry>,
    pub preferred_channel: Option<String>,
    pub entries: Vec<Entry>,
}

const CONTACTS: &[&str] = &["message.received"];

impl Book {
    /// The order was paid or moved on.
    pub fn confirm(&mut self, order_id: &str) {
        self.unconfirmed.remove(order_id);
        self.confirmed.insert(order_id.to_string());
    }

    /// Files `entry` for the customer (by id, or through the order).
    pub fn file(
        &mut self,
        customer_id: Option<&str>,
        email: Option<&str>,
        entry: Entry,
    ) -> Option<String> {
        let id = customer_id.map(str::to_string).or_else(|| {
            entry
                .order_id
                .as_ref()
                .and_then(|o| self.order_customer.get(o).cloned())
        })?;
        if let Some(order) = &entry.order_id {
            self.order_customer.insert(order.clone(), id.clone());
        }
        let c = self.customers.entry(id.clone()).or_default();
        if email.is_some() {
            c.email = email.map(str::to_string);
        }
        c.entries.push(entry);
        c.entries.sort_by(|a, b| a.at.cmp(&b.at));
        Some(id)
    }

    pub fn orders_of(&self, customer_id: &str) -> usize {
        self.customers.get(customer_id).map_or(0, |c| {
            c.entries
                .iter()
                .filter(|e| e.kind == "order.created")
                .count()
        })
    }

    /// Orders placed more than `limit` ago and still unconfirmed, each alerted once.
    pub fn overdue(&mut self, now: DateTime<Utc>, limit: Duration) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (order, p) in self.unconfirmed.iter_mut() {
            if !p.alerted && now - p.placed_at >= limit {
                p.alerted = true;
                out.push((order.clone(), p.customer_id.clone()));
            }
        }
        out
    }

    /// The desk's view, by customer id or e-mail (`with_pii` false: by id only, no e-mail).
    pub fn timeline(&self, key: &str, with_pii: bool) -> Option<Timeline> {
        let (id, c) = self.customers.get_key_value(key).or_else(|| {
            with_pii
                .then(|| {
                    self.customers
                        .iter()
                        .find(|(_, c)| c.email.as_deref() == Some(key))
                })
                .flatten()
        })?;
        let mut counts = BTreeMap::new();
        for e in &c.entries {
            *counts.entry(e.kind.clone()).or_insert(0) += 1;
        }
        let contacts: Vec<&Entry> = c
            .entries
            .iter()
            .filter(|e| CONTACTS.contains(&e.kind.as_str()))
            .collect();
        let mut by_channel: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &contacts {
            *by_channel.entry(e.channel.as_str()).or_insert(0) += 1;
        }
        Some(Timeline {
            customer_id: id.clone(),
            email: if with_pii { c.email.clone() } else { None },
            counts,
            last_contact: contacts.last().map(|e| (*e).clone()),
            preferred_channel: by_channel
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(ch, _)| ch.to_string()),
            entries: c.entries.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn e(at: &str, kind: &str, order: Option<&str>, channel: &str) -> Entry {
        Entry {
            at: at.into(),
            kind: kind.into(),
            order_id: order.map(str::to_string),
            channel: channel.into(),
            summary: String::new(),
        }
    }

    #[test]
    fn events_naming_only_the_order_reach_its_customer() {
        let mut b = Book::default();
        b.file(
            Some("c1"),
            Some("a@example.com"),
            e(
                "2025-01-01T00:00:00Z",
                "order.created",
                Some("o1"),
                "shopify",
            ),
        );
        let who = b.file(
            None,
            None,
            e(
                "2025-01-02T00:00:00Z",
                "shipment.updated",
                Some("o1"),
                "shopify",
            ),
        );
        assert_eq!(who.as_deref(), Some("c1"));
        assert!(
            b.file(
                None,
                None,
                e("2025-01-02T00:00:00Z", "x", Some("o9"), "shopify")
            )
            .is_none()
        );
    }

    #[test]
    fn the_timeline_counts_and_prefers_the_most_used_channel() {
        let mut b = Book::default();
        b.file(
            Some("c1"),
            Some("a@example.com"),
            e(
                "2025-01-01T00:00:00Z",
                "order.created",
                Some("o1"),
                "shopify",
            ),
        );
        b.file(
            Some("c1"),
            None,
            e("2025-01-03T00:00:00Z", "message.received", None, "email"),
        );
        b.file(
            Some("c1"),
            None,
            e(
                "2025-01-02T00:00:00Z",
                "message.received",
                None,
                "marketplace_chat",
            ),
        );
        b.file(
            Some("c1"),
            None,
            e("2025-01-04T00:00:00Z", "message.received", None, "email"),
        );
        let t = b.timeline("a@example.com", true).unwrap();
        assert_eq!(t.counts["message.received"], 3);
        assert_eq!(t.preferred_channel.as_deref(), Some("email"));
        assert_eq!(t.last_contact.unwrap().at, "2025-01-04T00:00:00Z");
        assert!(
            b.timeline("a@example.com", false).is_none(),
            "no e-mail lookups without PII"
        );
        assert!(b.timeline("c1", false).unwrap().email.is_none());
    }

    #[test]
    fn overdue_orders_alert_once() {
        let mut b = Book::default();
        let placed = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
        b.unconfirmed.insert(
            "o1".into(),
            Pending {
                customer_id: "c1".into(),
                placed_at: placed,
                alerted: false,
            },
        );
        let limit = Duration::minutes(10);
        assert!(b.overdue(placed + Duration::minutes(9), limit).is_empty());
        assert_eq!(
            b.overdue(placed + Duration::minutes(10), limit),
            [("o1".to_string(), "c1".to_string())]
        );
        assert!(
            b.overdue(placed + Duration::minutes(30), limit).is_empty(),
            "once"
        );
    }
}
