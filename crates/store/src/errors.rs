//! How a database error is told apart, alike on both databases.

use sea_orm::DbErr;

/// Whether a database error means the database could not be reached (so the
/// caller should hear UNAVAILABLE and may retry) rather than a fault of ours:
/// no connection to be had, a connection that broke, a server shutting down
/// (SQLSTATE class 57) or refusing connections (class 08), or SQLite busy.
pub fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error as SqlxError};
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return matches!(error, DbErr::Conn(_));
    };
    match sqlx.as_ref() {
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::PoolTimedOut
        | SqlxError::PoolClosed
        | SqlxError::WorkerCrashed => true,
        SqlxError::Protocol(_) => true,
        SqlxError::Database(database) => {
            let code = database.code().unwrap_or_default();
            code.starts_with("57") || code.starts_with("08") || database.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Whether a write broke a unique index: another writer stored the same key first.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}
