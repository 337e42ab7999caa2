//! SQL that differs between the two databases, written once here: statements
//! are written for PostgreSQL and [`dialect`] turns them into SQLite's.

use sea_orm::DatabaseBackend;

/// Row locks that replicas skip instead of queueing on (PostgreSQL); SQLite
/// has one writer at a time, so the statement alone holds its rows.
pub const SKIP_LOCKED: &str = "FOR UPDATE SKIP LOCKED";

/// `sql`, written for PostgreSQL, as `backend` takes it: on SQLite each
/// numbered parameter `$n` becomes `?n` and [`SKIP_LOCKED`] goes.
pub fn dialect(backend: DatabaseBackend, sql: &str) -> String {
    if backend == DatabaseBackend::Postgres {
        return sql.to_owned();
    }
    let sql = sql.replace(SKIP_LOCKED, "");
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
        out.push(if numbered { '?' } else { c });
    }
    out
}

/// Bind parameter `n` (from 1) as the backend writes it.
pub fn placeholder(backend: DatabaseBackend, n: usize) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

/// `rows` rows of `columns` bind parameters, for joining against a list:
/// `JOIN (VALUES ($1), ($2)) AS list ON t.c = list.column1`. Both databases
/// answer such a join with one index lookup per row. An `IN (…)` list of the
/// same values PostgreSQL may answer by reading every row of the tenant, when
/// its statistics predate the tenant's growth (a tenant onboarding 100,000
/// users outruns autoanalyze).
///
/// The list is the statement's first parameters, and must come first in its
/// text: number any other parameter from `rows * columns + 1`. On SQLite the
/// list's parameters are anonymous (`?`): SQLite finds a numbered parameter's
/// name by walking a list of all of them, and sqlx asks for every parameter's
/// name, so a list of 2,000 numbered parameters cost millions of steps a
/// statement (the notifier's top symbol in a profile).
pub fn values_rows(backend: DatabaseBackend, rows: usize, columns: usize) -> String {
    let row = |row: usize| -> String {
        let cells: Vec<String> = (0..columns)
            .map(|column| match backend {
                DatabaseBackend::Postgres => placeholder(backend, 1 + row * columns + column),
                _ => "?".to_owned(),
            })
            .collect();
        format!("({})", cells.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_question_marks_and_no_row_locks() {
        let sql = "SELECT id FROM t WHERE a = $1 AND b = $12 AND c = '$' LIMIT $3 FOR UPDATE SKIP LOCKED";
        assert_eq!(
            dialect(DatabaseBackend::Sqlite, sql),
            "SELECT id FROM t WHERE a = ?1 AND b = ?12 AND c = '$' LIMIT ?3 "
        );
        assert_eq!(dialect(DatabaseBackend::Postgres, sql), sql);
    }

    #[test]
    fn a_values_list_is_numbered_on_postgres_and_anonymous_on_sqlite() {
        assert_eq!(values_rows(DatabaseBackend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_rows(DatabaseBackend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(placeholder(DatabaseBackend::Sqlite, 5), "?5");
    }
}
