//! Contact centre for Omnigate shops: a per-customer timeline across sources and channels
//! (orders, payments, shipments, returns, refunds, messages) served to an agent desk, and
//! `service.alert` events when an order is not confirmed in time, a shipment is delayed, or
//! a regular customer opens a return. Built only on `omnigate-sdk`.

pub mod desk;
pub mod plugin;
pub mod timeline;
