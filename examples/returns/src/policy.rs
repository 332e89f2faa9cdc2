//! The return policy and the shop's returns book, as plain functions.

use chrono::{DateTime, Duration, Utc};
use omnigate_sdk::Money;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Policy {
    /// Days after delivery within which a return is accepted.
    pub window_days: i64,
    /// SKUs that are never taken back (hygiene, made to order).
    pub excluded_skus: HashSet<String>,
    /// Returns worth more than this (in the order's currency) go to a person.
    pub max_auto_value: Decimal,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window_days: 30,
            excluded_skus: HashSet::new(),
            max_auto_value: Decimal::from(500),
        }
    }
}

/// What the policy decided, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    NeedsReview,
    Declined,
}

impl Decision {
    /// The event type published for it.
    pub fn event_type(self) -> &'static str {
        match self {
            Decision::Approved => "returns.approved",
            Decision::NeedsReview => "returns.needs_review",
            Decision::Declined => "returns.declined",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub sku: Option<String>,
    pub unit_price: Option<Money>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub lines: BTreeMap<String, Line>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A returned line: which order line, how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    pub line_id: String,
    pub quantity: u64,
}

/// The rule that decided (`excluded_sku`, `not_delivered`, `outside_window`,
/// `unknown_line`, `over_auto_limit`, `within_policy`) and the return's value when known.
pub fn decide(
    policy: &Policy,
    order: Option<&Order>,
    lines: &[Returned],
    requested_at: DateTime<Utc>,
) -> (Decision, &'static str, Option<Money>) {
    let Some(order) = order else {
        return (Decision::NeedsReview, "unknown_order", None);
    };
    let known: Vec<(&Line, u64)> = lines
        .iter()
        .filter_map(|r| order.lines.get(&r.line_id).map(|l| (l, r.quantity)))
        .collect();
    if known.iter().any(|(l, _)| {
        l.sku
            .as_ref()
            .is_some_and(|s| policy.excluded_skus.contains(s))
    }) {
        return (Decision::Declined, "excluded_sku", None);
    }
    let Some(delivered) = order.delivered_at else {
        return (Decision::NeedsReview, "not_delivered", None);
    };
    if requested_at > delivered + Duration::days(policy.window_days) {
        return (Decision::Declined, "outside_window", None);
    }
    if known.len() < lines.len() {
        return (Decision::NeedsReview, "unknown_line", None);
    }
    let mut total = Decimal::ZERO;
    let mut currency = None;
    for (l, qty) in &known {
        let Some(price) = &l.unit_price else {
            return (Decision::NeedsReview, "unknown_price", None);
        };
        let unit = Decimal::from_str(&price.amount).unwrap_or_default();
        total += unit * Decimal::from(*qty);
        currency = Some(price.currency.clone());
    }
    let value = currency.map(|c| Money {
        amount: total.round_dp(4).normalize().to_string(),
        currency: c,
    });
    if total > policy.max_auto_value {
        return (Decision::NeedsReview, "over_auto_limit", value);
    }
    (Decision::Approved, "within_policy", value)
}

/// Where a return stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Return {
    pub order_id: String,
    pub decision: Option<Decision>,
    pub status: Option<String>,
    pub refunded: bool,
    pub closed: bool,
}

impl Return {
    /// Closed when the shop closes it, or once the goods are back and the money refunded.
    pub fn settle(&mut self) -> bool {
        let done = self.status.as_deref() == Some("closed")
            || (self.refunded && self.status.as_deref() == Some("received"))
            || (self.refunded && self.decision == Some(Decision::Approved));
        if done && !self.closed {
            self.closed = true;
            return true;
        }
        false
    }
}

/// One shop's returns book.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub orders: BTreeMap<String, Order>,
    pub returns: BTreeMap<String, Return>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn order(delivered: Option<DateTime<Utc>>) -> Order {
        let mut o = Order {
            delivered_at: delivered,
            ..Order::default()
        };
        o.lines.insert(
            "l1".into(),
            Line {
                sku: Some("MUG-BLUE".into()),
                unit_price: Some(Money {
                    amount: "385.00".into(),
                    currency: "UAH".into(),
                }),
            },
        );
        o
    }

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, 12, 0, 0).unwrap()
    }

    fn one(qty: u64) -> Vec<Returned> {
        vec![Returned {
            line_id: "l1".into(),
            quantity: qty,
        }]
    }

    #[test]
    fn within_the_window_and_the_limit_is_approved() {
        let (d, rule, value) = decide(
            &Policy::default(),
            Some(&order(Some(t(17)))),
            &one(1),
            t(20),
        );
        assert_eq!((d, rule), (Decision::Approved, "within_policy"));
        assert_eq!(value.unwrap().amount, "385");
    }

    #[test]
    fn outside_the_window_is_declined() {
        let policy = Policy {
            window_days: 2,
            ..Policy::default()
        };
        let (d, rule, _) = decide(&policy, Some(&order(Some(t(17)))), &one(1), t(20));
        assert_eq!((d, rule), (Decision::Declined, "outside_window"));
    }

    #[test]
    fn excluded_skus_are_declined_whatever_else() {
        let mut policy = Policy::default();
        policy.excluded_skus.insert("MUG-BLUE".into());
        let (d, rule, _) = decide(&policy, Some(&order(Some(t(17)))), &one(1), t(18));
        assert_eq!((d, rule), (Decision::Declined, "excluded_sku"));
    }

    #[test]
    fn expensive_unknown_or_undelivered_go_to_a_person() {
        let p = Policy::default();
        let (d, rule, _) = decide(&p, Some(&order(Some(t(17)))), &one(2), t(18));
        assert_eq!((d, rule), (Decision::NeedsReview, "over_auto_limit"));
        let (d, rule, _) = decide(&p, Some(&order(None)), &one(1), t(18));
        assert_eq!((d, rule), (Decision::NeedsReview, "not_delivered"));
        let (d, rule, _) = decide(&p, None, &one(1), t(18));
        assert_eq!((d, rule), (Decision::NeedsReview, "unknown_order"));
        let other = vec![Returned {
            line_id: "nope".into(),
            quantity: 1,
        }];
        let (d, rule, _) = decide(&p, Some(&order(Some(t(17)))), &other, t(18));
        assert_eq!((d, rule), (Decision::NeedsReview, "unknown_line"));
    }

    #[test]
    fn a_return_closes_once() {
        let mut r = Return {
            decision: Some(Decision::Approved),
            ..Return::default()
        };
        assert!(!r.settle());
        r.refunded = true;
        assert!(r.settle());
        assert!(!r.settle(), "closed once");
    }
}
