//! The loyalty programme's rules as plain functions over the shop's loyalty book: points
//! for paid orders, clawed back on refunds and cancellations, tiers, and NPS.

use omnigate_sdk::Money;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// The programme's settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Points per whole unit of money, per currency; `default_rate` for the others.
    pub rates: HashMap<String, Decimal>,
    pub default_rate: Decimal,
    /// Tier names by the balance that reaches them, lowest first.
    pub tiers: Vec<(String, i64)>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rates: HashMap::new(),
            default_rate: Decimal::ONE,
            tiers: vec![
                ("bronze".into(), 0),
                ("silver".into(), 500),
                ("gold".into(), 2000),
            ],
        }
    }
}

impl Policy {
    /// Whole points for `amount` (rounded down: a customer is never given a fraction).
    pub fn points(&self, amount: &Money) -> i64 {
        let rate = self
            .rates
            .get(&amount.currency)
            .unwrap_or(&self.default_rate);
        Decimal::from_str(&amount.amount)
            .ok()
            .and_then(|a| a.checked_mul(*rate))
            .map(|p| p.floor().to_i64().unwrap_or(0).max(0))
            .unwrap_or(0)
    }

    /// The highest tier `balance` reaches.
    pub fn tier(&self, balance: i64) -> String {
        self.tiers
            .iter()
            .rev()
            .find(|(_, at)| balance >= *at)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    }
}

/// What the book knows about an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntry {
    pub customer_id: Option<String>,
    /// Points awarded and not yet clawed back.
    pub points: i64,
    pub cancelled: bool,
}

/// NPS answers of one shop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nps {
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
}

impl Nps {
    /// Net Promoter Score: % promoters (9–10) minus % detractors (0–6), -100..100.
    pub fn score(&self) -> Option<i64> {
        let total = self.promoters + self.passives + self.detractors;
        (total > 0).then(|| {
            let diff = self.promoters as f64 - self.detractors as f64;
            (100.0 * diff / total as f64).round() as i64
        })
    }

    pub fn answer(&mut self, score: u8) {
        match score {
            9..=10 => self.promoters += 1,
            7..=8 => self.passives += 1,
            _ => self.detractors += 1,
        }
    }
}

/// One shop's loyalty book.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub balances: BTreeMap<String, i64>,
    pub orders: BTreeMap<String, OrderEntry>,
    pub nps: Nps,
}

/// A balance that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub customer_id: String,
    pub order_id: String,
    pub delta: i64,
    pub balance: i64,
    pub tier: String,
    pub reason: &'static str,
}

impl Book {
    pub fn remember_order(&mut self, order_id: &str, customer_id: Option<String>) {
        let entry = self.orders.entry(order_id.to_string()).or_default();
        if entry.customer_id.is_none() {
            entry.customer_id = customer_id;
        }
    }

    fn moved(
        &mut self,
        policy: &Policy,
        customer_id: String,
        order_id: &str,
        delta: i64,
        reason: &'static str,
    ) -> Change {
        let balance = self.balances.entry(customer_id.clone()).or_default();
        *balance += delta;
        let balance = *balance;
        Change {
            tier: policy.tier(balance),
            customer_id,
            order_id: order_id.to_string(),
            delta,
            balance,
            reason,
        }
    }

    /// Points for a paid order; none for an unknown customer or a cancelled order.
    pub fn paid(&mut self, policy: &Policy, order_id: &str, amount: &Money) -> Option<Change> {
        let entry = self.orders.get_mut(order_id)?;
        if entry.cancelled {
            return None;
        }
        let customer = entry.customer_id.clone()?;
        let points = policy.points(amount);
        if points == 0 {
            return None;
        }
        entry.points += points;
        Some(self.moved(policy, customer, order_id, points, "order_paid"))
    }

    /// Takes back the points a refund's amount earned, at most what the order still holds.
    pub fn refunded(&mut self, policy: &Policy, order_id: &str, amount: &Money) -> Option<Change> {
        let entry = self.orders.get_mut(order_id)?;
        let take = policy.points(amount).min(entry.points);
        if take <= 0 {
            return None;
        }
        entry.points -= take;
        let customer = entry.customer_id.clone()?;
        Some(self.moved(policy, customer, order_id, -take, "refund"))
    }

    /// Takes back everything the order still holds.
    pub fn cancelled(&mut self, policy: &Policy, order_id: &str) -> Option<Change> {
        let entry = self.orders.entry(order_id.to_string()).or_default();
        entry.cancelled = true;
        let take = entry.points;
        if take <= 0 {
            return None;
        }
        entry.points = 0;
        let customer = entry.customer_id.clone()?;
        Some(self.moved(policy, customer, order_id, -take, "order_cancelled"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(a: &str, c: &str) -> Money {
        Money {
            amount: a.into(),
            currency: c.into(),
        }
    }

    #[test]
    fn points_round_down_and_follow_the_currency_rate() {
        let mut p = Policy::default();
        assert_eq!(p.points(&m("229.97", "EUR")), 229);
        p.rates
            .insert("UAH".into(), Decimal::from_str("0.1").unwrap());
        assert_eq!(p.points(&m("2300.00", "UAH")), 230);
        assert_eq!(p.points(&m("-5.00", "EUR")), 0);
    }

    #[test]
    fn tiers_by_balance() {
        let p = Policy::default();
        assert_eq!(p.tier(0), "bronze");
        assert_eq!(p.tier(499), "bronze");
        assert_eq!(p.tier(500), "silver");
        assert_eq!(p.tier(5000), "gold");
    }

    #[test]
    fn paid_refunded_and_cancelled() {
        let p = Policy::default();
        let mut b = Book::default();
        b.remember_order("o1", Some("c1".into()));
        let c = b.paid(&p, "o1", &m("600.00", "EUR")).unwrap();
        assert_eq!((c.delta, c.balance, c.tier.as_str()), (600, 600, "silver"));
        let c = b.refunded(&p, "o1", &m("100.00", "EUR")).unwrap();
        assert_eq!((c.delta, c.balance), (-100, 500));
        let c = b.cancelled(&p, "o1").unwrap();
        assert_eq!((c.delta, c.balance, c.tier.as_str()), (-500, 0, "bronze"));
        assert!(
            b.refunded(&p, "o1", &m("100.00", "EUR")).is_none(),
            "nothing left to take"
        );
        assert!(
            b.paid(&p, "o1", &m("1.00", "EUR")).is_none(),
            "a cancelled order earns nothing"
        );
        assert!(b.paid(&p, "unknown", &m("1.00", "EUR")).is_none());
    }

    #[test]
    fn nps_is_promoters_minus_detractors() {
        let mut n = Nps::default();
        assert_eq!(n.score(), None);
        for s in [10, 9, 8, 7, 6, 0, 10] {
            n.answer(s);
        }
        // 3 promoters, 2 passives, 2 detractors of 7: (3 - 2) / 7 = 14 %.
        assert_eq!(n.score(), Some(14));
    }
}
