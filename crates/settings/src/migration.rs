//! The settings schema. The same migrations run on SQLite and PostgreSQL.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateTables),
            Box::new(CreatePinAttempts),
            Box::new(AddOutboxLanes),
            Box::new(UniqueEmails),
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
                    .table("tenant_settings")
                    .col(string("tenant_id").primary_key())
                    .col(boolean("automatically_send_emails_to_users"))
                    .col(integer("pin_length"))
                    .col(boolean("send_email_from_override"))
                    .col(string("send_email_from_address"))
                    .col(string("send_email_from_display_name"))
                    .col(string("default_locale"))
                    .col(big_integer("version"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("service_numbers")
                    .col(big_pk_auto("id"))
                    .col(string("tenant_id"))
                    .col(string("number"))
                    .col(string("number_type"))
                    .col(string("country"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("service_numbers_tenant_number")
                    .table("service_numbers")
                    .col("tenant_id")
                    .col("number")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(string("tenant_id"))
                    .col(string("user_id"))
                    .col(string("email"))
                    .col(string("display_name"))
                    .col(string("locale"))
                    .col(string("usage_location"))
                    .col(boolean("licensed"))
                    .col(string("provider"))
                    .col(string("provider_name"))
                    .col(string_null("conference_id"))
                    .col(string("toll_number"))
                    .col(string("toll_free_number"))
                    .col(string_null("pin_hash"))
                    .col(big_integer("version"))
                    .primary_key(Index::create().col("tenant_id").col("user_id"))
                    .to_owned(),
            )
            .await?;
        // NULLs never collide, so users off the hosted bridge need no ID.
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_conference_id")
                    .table("users")
                    .col("tenant_id")
                    .col("conference_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("users_tenant_toll_number")
                    .table("users")
                    .col("tenant_id")
                    .col("toll_number")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .col(big_pk_auto("id"))
                    .col(string("tenant_id"))
                    .col(string("topic"))
                    .col(blob("payload"))
                    .col(big_integer("created_at"))
                    .col(integer("attempts"))
                    .col(big_integer("next_attempt_at"))
                    .col(boolean("dead"))
                    .col(text("last_error"))
                    .to_owned(),
            )
            .await?;
        // Who may dispatch: one replica at a time, so events leave in order.
        manager
            .create_table(
                Table::create()
                    .table("outbox_dispatcher")
                    .col(string("name").primary_key())
                    .col(string("holder"))
                    .col(big_integer("lease_until"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_due")
                    .table("outbox")
                    .col("dead")
                    .col("id")
                    .to_owned(),
            )
            .await
    }
}

/// Wrong PINs per conference ID, for VerifyPin's lockout (shared by replicas).
struct CreatePinAttempts;

impl MigrationName for CreatePinAttempts {
    fn name(&self) -> &str {
        "m0002_create_pin_attempts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePinAttempts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("pin_attempts")
                    .col(string("tenant_id"))
                    .col(string("conference_id"))
                    .col(integer("failures"))
                    .col(big_integer("locked_until"))
                    .primary_key(Index::create().col("tenant_id").col("conference_id"))
                    .to_owned(),
            )
            .await
    }
}

/// Interactive events go before bulk ones (`lane` 0, then 1), and a user's
/// older bulk events go with their newer interactive one (`user_id`).
struct AddOutboxLanes;

impl MigrationName for AddOutboxLanes {
    fn name(&self) -> &str {
        "m0003_add_outbox_lanes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddOutboxLanes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rows queued before: the interactive lane, in id order, as they would have gone.
        manager
            .alter_table(
                Table::alter()
                    .table("outbox")
                    .add_column(string("user_id").default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("outbox")
                    .add_column(integer("lane").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name("outbox_due").table("outbox").to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_due_by_lane")
                    .table("outbox")
                    .col("dead")
                    .col("lane")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        // Finds a user's bulk events when an interactive one joins them.
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX outbox_user_bulk ON outbox (tenant_id, user_id) WHERE lane = 1")
            .await
            .map(drop)
    }
}

/// One user per email within a tenant, whatever its case: `GetUser` finds a
/// user by email, and licensing refuses a second user with the same one.
struct UniqueEmails;

impl MigrationName for UniqueEmails {
    fn name(&self) -> &str {
        "m0004_unique_emails"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UniqueEmails {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Users licensed before may share an email: say which, rather than
        // fail on the index with a bare constraint error.
        let shared = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT tenant_id, lower(email), COUNT(*) FROM users GROUP BY tenant_id, lower(email) HAVING COUNT(*) > 1",
            ))
            .await?;
        if !shared.is_empty() {
            let examples: Vec<String> = shared
                .iter()
                .take(5)
                .filter_map(|row| {
                    let tenant_id: String = row.try_get_by_index(0).ok()?;
                    let email: String = row.try_get_by_index(1).ok()?;
                    Some(format!("{email} in tenant {tenant_id}"))
                })
                .collect();
            return Err(DbErr::Migration(format!(
                "{} emails are shared by more than one user of a tenant (e.g. {}); change or remove the duplicates in the settings database's users table, then start again",
                shared.len(),
                examples.join(", ")
            )));
        }
        db.execute_unprepared("CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email))")
            .await
            .map(drop)
    }
}
