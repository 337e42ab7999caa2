//! Request errors: the shared type, so both services answer alike.

pub use dialin_common::error::{Error, Reason, Result, check, delivery_not_found, internal};
