//! The notifier schema. The same migrations run on SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(AddDeliveryLanguage),
            Box::new(AddScheduling),
            Box::new(AddConnectionLeases),
        ]
    }
}

struct CreateTables;

impl MigrationName for CreateTables {
    fn name(&self) -> &str {
        "m0001_create_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tenant_policies")
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(boolean("automatically_send_emails_to_users"))
                    .col(boolean("send_email_from_override"))
                    .col(string("send_email_from_address"))
                    .col(string("send_email_from_display_name"))
                    .col(string("default_locale"))
                    .primary_key(Index::create().col("tenant_id").col("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("deliveries")
                    .col(string("delivery_id").primary_key())
                    .col(string_uniq("event_id"))
                    .col(string("tenant_id"))
                    .col(string("user_id"))
                    .col(string("kind"))
                    .col(string("trigger"))
                    .col(string("to_address"))
                    .col(string("recipient_name"))
                    .col(string("locale"))
                    .col(big_integer("policy_version"))
                    .col(string("status"))
                    .col(text("reason"))
                    .col(integer("attempts"))
                    .col(big_integer("occurred_at"))
                    .col(big_integer("created_at"))
                    .col(big_integer("queued_at"))
                    .col(big_integer_null("sent_at"))
                    .col(big_integer("next_attempt_at"))
                    .col(big_integer("lease_until"))
                    .col(blob_null("payload"))
                    .to_owned(),
            )
            .await?;
        // The worker's claim: pending deliveries that are due.
        manager
            .create_index(
                Index::create()
                    .name("deliveries_due")
                    .table("deliveries")
                    .col("status")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await?;
        // ListDeliveries (newest first, per tenant or user) and supersession.
        manager
            .create_index(
                Index::create()
                    .name("deliveries_tenant_user_created")
                    .table("deliveries")
                    .col("tenant_id")
                    .col("user_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_tenant_created")
                    .table("deliveries")
                    .col("tenant_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }
}

/// The language each email is written in, recorded with the delivery.
struct AddDeliveryLanguage;

impl MigrationName for AddDeliveryLanguage {
    fn name(&self) -> &str {
        "m0002_add_delivery_language"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddDeliveryLanguage {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Empty for rows recorded before: the worker chooses their language when it sends them.
        manager
            .alter_table(
                Table::alter()
                    .table("deliveries")
                    .add_column(string("language").default(""))
                    .to_owned(),
            )
            .await
    }
}

/// The scheduler: each delivery's priority, lane and turn (interactive before
/// bulk; within a lane, tenants take turns), the turns handed out, and the
/// relay's budget that every replica shares.
struct AddScheduling;

impl MigrationName for AddScheduling {
    fn name(&self) -> &str {
        "m0003_add_scheduling"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddScheduling {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rows recorded before: no priority known, in the interactive lane at
        // turn 0, so they go first, as they would have.
        manager
            .alter_table(
                Table::alter()
                    .table("deliveries")
                    .add_column(string("priority").default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("deliveries")
                    .add_column(integer("lane").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("deliveries")
                    .add_column(big_integer("turn").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name("deliveries_due").table("deliveries").to_owned())
            .await?;
        // The claim: pending deliveries of a lane in turn order.
        manager
            .create_index(
                Index::create()
                    .name("deliveries_due_by_turn")
                    .table("deliveries")
                    .col("status")
                    .col("lane")
                    .col("turn")
                    .to_owned(),
            )
            .await?;
        // The next turn of each tenant in each lane.
        manager
            .create_table(
                Table::create()
                    .table("tenant_turns")
                    .col(string("tenant_id"))
                    .col(integer("lane"))
                    .col(big_integer("next_turn"))
                    .primary_key(Index::create().col("tenant_id").col("lane"))
                    .to_owned(),
            )
            .await?;
        // The turn each lane's claims have reached: a tenant that becomes
        // active starts there, not behind the others' backlog.
        manager
            .create_table(
                Table::create()
                    .table("lane_clocks")
                    .col(integer("lane").primary_key())
                    .col(big_integer("turn"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO lane_clocks (lane, turn) VALUES (0, 0), (1, 0)")
            .await?;
        // The relay as the whole deployment sees it: one row.
        manager
            .create_table(
                Table::create()
                    .table("relay")
                    .col(string("name").primary_key())
                    .col(double("throttled_rate"))
                    .col(big_integer("throttled_at"))
                    .col(double("ceiling"))
                    .col(big_integer("next_slot_us"))
                    .col(big_integer("paused_until"))
                    .col(text("paused_reason"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO relay (name, throttled_rate, throttled_at, ceiling, next_slot_us, paused_until, paused_reason)
                 VALUES ('smtp', 0, 0, 0, 0, 0, '')",
            )
            .await?;
        // The replicas sending now, and what each sent lately.
        manager
            .create_table(
                Table::create()
                    .table("senders")
                    .col(string("instance").primary_key())
                    .col(big_integer("seen_at"))
                    .col(double("sent_per_second"))
                    .to_owned(),
            )
            .await
    }
}

/// A lease per SMTP connection of the deployment: a replica sends only on the
/// connections it holds, so replicas joining or leaving never open more than
/// `DIALIN_SMTP_CONNECTIONS` between them. The rows are made by the replicas
/// (as many as they are configured with).
struct AddConnectionLeases;

impl MigrationName for AddConnectionLeases {
    fn name(&self) -> &str {
        "m0004_add_connection_leases"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddConnectionLeases {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("connection_leases")
                    .col(integer("slot").primary_key())
                    .col(string("holder"))
                    .col(big_integer("held_until"))
                    .to_owned(),
            )
            .await
    }
}
