//! Returns for Omnigate shops: a return policy (window from delivery, excluded SKUs, a value
//! limit for automatic approval) applied to every `return.requested`, with the rule that
//! decided, and each return tracked through `return.updated` and `refund.created` to closed.
//! Built only on `omnigate-sdk`.

pub mod plugin;
pub mod policy;
