//! The schema at start-up: migrate (the default, for a laptop), or only check
//! that it is current (Kubernetes, where a Job runs `<binary> migrate` first).
//! Either way a schema that is *ahead* of this binary — a newer version has
//! migrated it — is refused: this binary would misread it.

use sea_orm::DbErr;

use crate::Store;
use sea_orm_migration::{MigrationStatus, MigratorTrait};

/// What a binary is asked to do besides serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Migrate the database schema to this version, then exit (safe to run
    /// twice, and while an older version serves: migrations only add).
    Migrate,
}

/// Runs every pending migration.
pub async fn migrate<M: MigratorTrait>(store: &Store) -> Result<(), SchemaError> {
    M::up(store.reader(), None).await.map_err(SchemaError::Migrate)
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the database schema is ahead of this binary (a newer version migrated it): {0}; deploy the newer version")]
    Ahead(String),
    #[error("the database schema is behind this binary; run `{binary} migrate` first (pending: {pending})")]
    Behind { binary: &'static str, pending: String },
    #[error("cannot migrate the database: {0}")]
    Migrate(DbErr),
}

/// Brings the schema up to date (`migrate`) or checks that it is.
pub async fn prepare<M: MigratorTrait>(store: &Store, binary: &'static str, migrate: bool) -> Result<(), SchemaError> {
    let statuses = match M::get_migration_with_status_read_only(store.reader()).await {
        Ok(statuses) => statuses,
        // sea-orm-migration reports applied migrations it has no file for.
        Err(error) if error.to_string().contains("is missing") => return Err(SchemaError::Ahead(error.to_string())),
        Err(error) => return Err(SchemaError::Migrate(error)),
    };
    let pending: Vec<String> = statuses
        .iter()
        .filter(|migration| migration.status() == MigrationStatus::Pending)
        .map(|migration| migration.name().to_owned())
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    if !migrate {
        return Err(SchemaError::Behind {
            binary,
            pending: pending.join(", "),
        });
    }
    M::up(store.reader(), None).await.map_err(SchemaError::Migrate)?;
    tracing::info!(applied = pending.join(", "), "database schema migrated");
    Ok(())
}
