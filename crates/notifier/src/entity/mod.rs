//! Tables of the notifier database (created by `crate::migration`).

pub mod delivery;
pub mod tenant_policy;
