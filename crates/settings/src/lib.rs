//! The dialin settings service: tenant settings, the bridge's service numbers
//! and every user's conferencing state, with a transactional outbox to the notifier.

pub mod auth;
pub mod config;
mod entity;
pub mod error;
mod migration;
mod notifier_channel;
mod outbox;
mod pin;
mod service;
mod settings_cache;
pub mod startup;
