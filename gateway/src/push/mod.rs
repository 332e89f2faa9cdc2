//! Push delivery's parts: where pushes may go ([`target`]), how they are signed
//! ([`signature`]), when a failed one is tried again ([`schedule`]) and how endpoints are
//! doing ([`health`]), and one push itself ([`send`]). The pushers themselves, which need the inboxes, are
//! [`crate::pusher`].

pub mod health;
pub mod schedule;
pub mod send;
pub mod signature;
pub mod target;
