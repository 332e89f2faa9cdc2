//! Loyalty and NPS for Omnigate shops: points for paid orders (per-currency rates), clawed
//! back on refunds and cancellations, tiers, an NPS request after delivery, and the shop's
//! NPS from the answers. Built only on `omnigate-sdk`.

pub mod plugin;
pub mod rules;
