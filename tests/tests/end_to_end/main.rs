//! End-to-end: both services over real gRPC, a real database (SQLite, or
//! PostgreSQL with DIALIN_TEST_DB=postgres) and a real SMTP server.

mod bad_input;
mod bulk;
mod email_rules;
mod errors;
mod gate;
mod languages;
mod listing;
mod notifier_down;
mod pin_resets;
mod retries;
mod scheduling;
mod security;
mod startup;
mod why;
