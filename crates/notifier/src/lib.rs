//! The dialin notifier service: records every email a change warrants, decides
//! (alone) whether it may leave, and sends it.

pub mod config;
mod email;
mod entity;
pub mod error;
mod gate;
mod intake;
mod mail;
mod migration;
mod policy;
pub mod preview;
mod relay;
mod retry;
mod schedule;
mod service;
pub mod startup;
mod supersede;
mod worker;
