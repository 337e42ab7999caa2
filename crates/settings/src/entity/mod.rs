//! Tables of the settings database (created by `crate::migration`).

pub mod outbox;
pub mod pin_attempt;
pub mod service_number;
pub mod tenant_settings;
pub mod user;
