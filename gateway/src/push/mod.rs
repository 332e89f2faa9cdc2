//! Push delivery to plugin endpoints: where pushes may go ([`target`]).

pub mod target;
