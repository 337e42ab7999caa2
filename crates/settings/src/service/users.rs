//! The users repository: reading users (one, by id or email, or many with one
//! statement whatever the tenant's size), locking them for a change, writing
//! a changed user with its email, who holds which email, and drawing
//! conference IDs free in the tenant.

use std::collections::{HashMap, HashSet, hash_map::Entry};

use dialin_domain::validate;
use dialin_proto::notifier::v1::{EmailKind, Priority, Trigger};
use dialin_store::sql::values_rows;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, EntityTrait, IdenStatic,
    IntoActiveModel, Iterable, QueryFilter, QuerySelect, Statement,
    sea_query::{Expr, ExprTrait, Func},
};
use secrecy::SecretString;

use super::{SettingsApi, convert::EmailEvent, tenant};
use crate::{
    entity::{tenant_settings, user},
    error::{Error, Reason, Result, check},
    outbox::Outbox,
};

/// What a change to one user decided, having changed the user in place.
pub(super) enum Edit {
    /// Nothing changed: nothing is written and no email queued.
    Unchanged,
    /// Write the user, and queue the automatic email `email` if any, with the PIN it carries.
    Write {
        email: Option<EmailKind>,
        pin: Option<SecretString>,
    },
}

/// Changes an existing user (NOT_FOUND if there is none) in one write
/// transaction: reads the tenant's settings and the user (on PostgreSQL
/// locking both), lets `edit` change the user, then writes it and queues its
/// email as `edit` decided. Returns the user as stored and the new PIN, if any.
pub(super) async fn change_user(
    api: &SettingsApi,
    tenant_id: &str,
    user_id: &str,
    edit: impl AsyncFnOnce(&DatabaseTransaction, &tenant_settings::Model, &mut user::Model) -> Result<Edit>,
) -> Result<(user::Model, Option<SecretString>)> {
    check(validate::id("tenant_id", tenant_id))?;
    check(validate::id("user_id", user_id))?;
    let (user, email, pin) = api
        .db
        .write(async |txn| {
            let settings = tenant::load_for_update(txn, tenant_id).await?;
            let mut user = load_for_update(txn, tenant_id, user_id).await?;
            match edit(txn, &settings, &mut user).await? {
                Edit::Unchanged => Ok::<_, Error>((user, None, None)),
                Edit::Write { email, pin } => {
                    let email = email.map(|kind| (kind, Priority::Interactive));
                    let saved = write(&api.outbox, txn, &settings, &user, email, pin.as_ref()).await?;
                    Ok((saved, email, pin))
                }
            }
        })
        .await?;
    if email.is_some() {
        api.outbox.wake();
    }
    Ok((user, pin))
}

pub(super) fn not_found(tenant_id: &str, user_id: &str) -> Error {
    Error::not_found(
        Reason::UserNotFound,
        format!("no user {user_id} in tenant {tenant_id}; license them with AssignLicense first"),
    )
    .about("tenant_id", tenant_id)
    .about("user_id", user_id)
}

/// The tenant's user named by `user_id` or by `email` (exactly one of them
/// not empty): NOT_FOUND when there is none, INVALID_ARGUMENT for both or neither.
pub(super) async fn find_user(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    user_id: &str,
    email: &str,
) -> Result<user::Model> {
    match (user_id.is_empty(), email.is_empty()) {
        (false, true) => {
            check(validate::id("user_id", user_id))?;
            user::Entity::find_by_id((tenant_id.to_owned(), user_id.to_owned()))
                .one(conn)
                .await?
                .ok_or_else(|| not_found(tenant_id, user_id))
        }
        (true, false) => find_by_email(conn, tenant_id, email).await,
        (true, true) => Err(Error::invalid("user_id", "user_id (or email) is required")),
        (false, false) => Err(Error::invalid("email", "give user_id or email, not both")),
    }
}

/// The tenant's user with `email`, in any case.
async fn find_by_email(conn: &impl ConnectionTrait, tenant_id: &str, email: &str) -> Result<user::Model> {
    check(validate::email("email", email))?;
    user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant_id))
        .filter(lowered_email().eq(email.to_ascii_lowercase()))
        .one(conn)
        .await?
        .ok_or_else(|| {
            Error::not_found(
                Reason::UserNotFound,
                format!("no user with email {email} in tenant {tenant_id}"),
            )
            .about("tenant_id", tenant_id)
        })
}

/// `lower(email)`: what the unique index on a tenant's emails holds (emails
/// are ASCII, so SQL's `lower` and Rust's `to_ascii_lowercase` agree).
pub(super) fn lowered_email() -> Expr {
    Func::lower(Expr::col(user::Column::Email)).into()
}

/// Who holds each email of a tenant, as licensing checks it: one user per
/// email within a tenant, whatever its case.
pub(super) struct EmailHolders(HashMap<String, String>);

impl EmailHolders {
    /// The tenant's users holding any of `emails`.
    pub(super) async fn read<'a>(
        conn: &impl ConnectionTrait,
        tenant_id: &str,
        emails: impl Iterator<Item = &'a str>,
    ) -> Result<Self> {
        let lowered: HashSet<String> = emails.map(str::to_ascii_lowercase).collect();
        let holders: Vec<(String, String)> = user::Entity::find()
            .select_only()
            .column(user::Column::UserId)
            .column(user::Column::Email)
            .filter(user::Column::TenantId.eq(tenant_id))
            .filter(lowered_email().is_in(lowered))
            .into_tuple()
            .all(conn)
            .await?;
        Ok(Self(
            holders
                .into_iter()
                .map(|(user_id, email)| (email.to_ascii_lowercase(), user_id))
                .collect(),
        ))
    }

    /// Gives `email` to `user_id` of `tenant_id`, unless another user holds it
    /// (ALREADY_EXISTS).
    pub(super) fn claim(&mut self, tenant_id: &str, user_id: &str, email: &str) -> Result<()> {
        match self.0.entry(email.to_ascii_lowercase()) {
            Entry::Occupied(holder) if holder.get() != user_id => Err(Error::already_exists(
                Reason::EmailTaken,
                format!(
                    "user {} of tenant {tenant_id} already has the email {email}; each user needs an email of their own",
                    holder.get()
                ),
            )
            .about("tenant_id", tenant_id)
            .about("held_by", holder.get())),
            Entry::Occupied(_) => Ok(()),
            Entry::Vacant(free) => {
                free.insert(user_id.to_owned());
                Ok(())
            }
        }
    }
}

async fn find_for_update(conn: &impl ConnectionTrait, tenant_id: &str, user_id: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id((tenant_id.to_owned(), user_id.to_owned()))
        .lock_exclusive()
        .one(conn)
        .await?)
}

/// The user, locked for the rest of the transaction on PostgreSQL; NOT_FOUND if absent.
pub(super) async fn load_for_update(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    user_id: &str,
) -> Result<user::Model> {
    find_for_update(conn, tenant_id, user_id)
        .await?
        .ok_or_else(|| not_found(tenant_id, user_id))
}

/// Writes `user` (bumping its version) and, in the same transaction, queues the
/// automatic email `kind` if any, at `priority`. Returns the user as stored.
pub(super) async fn write(
    outbox: &Outbox,
    txn: &DatabaseTransaction,
    settings: &tenant_settings::Model,
    user: &user::Model,
    email: Option<(EmailKind, Priority)>,
    pin: Option<&SecretString>,
) -> Result<user::Model> {
    let mut saved = user.clone();
    saved.version += 1;
    saved
        .clone()
        .into_active_model()
        .reset_all()
        .update(txn)
        .await
        .map_err(conflict)?;
    if let Some((kind, priority)) = email {
        let event = EmailEvent {
            settings,
            user: &saved,
            kind,
            trigger: Trigger::Automatic,
            pin,
            to_address: None,
            priority,
        };
        outbox.enqueue_notify(txn, &event.into_request()).await?;
    }
    Ok(saved)
}

/// A unique index refused the write: a concurrent change won.
pub(super) fn conflict(error: sea_orm::DbErr) -> Error {
    if dialin_store::is_unique_violation(&error) {
        Error::aborted(
            Reason::ConcurrentChange,
            "a concurrent change to this tenant's users won; retry",
        )
    } else {
        Error::Database(error)
    }
}

/// The tenant's users among `user_ids`, locked for the rest of the transaction
/// on PostgreSQL ([`users_listed`]).
pub(super) async fn users_for_update(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    user_ids: &[String],
) -> Result<HashMap<String, user::Model>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = conn.get_database_backend();
    let columns: Vec<String> = user::Column::iter()
        .map(|column| format!("users.{}", column.as_str()))
        .collect();
    let sql = users_listed(backend, &columns.join(", "), "user_id", user_ids.len(), Lock::ForUpdate);
    let values = user_ids.iter().flat_map(|id| [tenant_id.into(), id.as_str().into()]);
    Ok(user::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(conn)
        .await?
        .into_iter()
        .map(|user| (user.user_id.clone(), user))
        .collect())
}

/// Which of `candidates` the tenant's users already hold.
async fn taken_conference_ids(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    candidates: &HashSet<String>,
) -> Result<HashSet<String>> {
    let backend = conn.get_database_backend();
    let sql = users_listed(
        backend,
        "users.conference_id",
        "conference_id",
        candidates.len(),
        Lock::None,
    );
    let values = candidates.iter().flat_map(|id| [tenant_id.into(), id.as_str().into()]);
    let mut taken = HashSet::new();
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        taken.insert(row.try_get::<String>("", "conference_id")?);
    }
    Ok(taken)
}

#[derive(PartialEq)]
enum Lock {
    None,
    ForUpdate,
}

/// `SELECT {columns} FROM users` for the users whose (tenant_id, `key`) is one
/// of `rows` pairs bound as the statement's parameters ([`values_rows`]): one
/// index lookup per pair, whatever the tenant's size. On PostgreSQL each pair
/// is a `LATERAL` lookup, with the tenant taken from the list rather than a
/// constant: a tenant that grew since the last ANALYZE (one onboarding 100,000
/// users outruns autoanalyze) is estimated at a row or two, and for a constant
/// tenant PostgreSQL then reads all of its users into a hash (slower with
/// every user added) or looks each one up through the wrong index.
fn users_listed(backend: DatabaseBackend, columns: &str, key: &str, rows: usize, lock: Lock) -> String {
    let asked = values_rows(backend, rows, 2);
    if backend == DatabaseBackend::Postgres {
        // FOR UPDATE, or else OFFSET 0, keeps the subquery from being flattened into a join.
        let tail = if lock == Lock::ForUpdate {
            "FOR UPDATE"
        } else {
            "OFFSET 0"
        };
        format!(
            "SELECT {columns} FROM (VALUES {asked}) AS asked CROSS JOIN LATERAL (
                 SELECT {columns} FROM users WHERE users.tenant_id = asked.column1 AND users.{key} = asked.column2 {tail}
             ) AS users"
        )
    } else {
        format!(
            "SELECT {columns} FROM users JOIN (VALUES {asked}) AS asked \
             ON users.tenant_id = asked.column1 AND users.{key} = asked.column2"
        )
    }
}

/// A random seven-digit ID not used in the tenant (other than `previous`,
/// which a reset must not hand back).
pub(super) async fn allocate_conference_id(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    previous: Option<&str>,
) -> Result<String> {
    draw_conference_ids(conn, tenant_id, 1, previous)
        .await?
        .pop()
        .ok_or_else(no_free_conference_id)
}

/// No free conference ID was drawn (the tenant's are nearly all taken, or
/// concurrent draws took them): worth a retry.
pub(super) fn no_free_conference_id() -> Error {
    Error::aborted(Reason::ConcurrentChange, "could not find a free conference ID; retry")
}

/// `count` random seven-digit IDs, distinct and unused in the tenant, for a
/// bulk license (fewer when not enough could be found); concurrent bulk draws
/// take turns ([`lock_conference_ids`]).
pub(super) async fn allocate_conference_ids(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    count: usize,
) -> Result<Vec<String>> {
    lock_conference_ids(conn, tenant_id).await?;
    draw_conference_ids(conn, tenant_id, count, None).await
}

/// Draws candidates together and checks them with one query per round, 32
/// rounds at most.
async fn draw_conference_ids(
    conn: &impl ConnectionTrait,
    tenant_id: &str,
    count: usize,
    previous: Option<&str>,
) -> Result<Vec<String>> {
    let mut chosen = HashSet::with_capacity(count);
    for _ in 0..32 {
        if chosen.len() == count {
            break;
        }
        let mut candidates = HashSet::new();
        while candidates.len() < count - chosen.len() {
            let candidate = rand::rng().random_range(1_000_000..=9_999_999u32).to_string();
            if !chosen.contains(&candidate) && previous != Some(candidate.as_str()) {
                candidates.insert(candidate);
            }
        }
        let taken = taken_conference_ids(conn, tenant_id, &candidates).await?;
        chosen.extend(candidates.into_iter().filter(|candidate| !taken.contains(candidate)));
    }
    Ok(chosen.into_iter().collect())
}

/// Makes concurrent bulk draws of conference IDs for the tenant take turns
/// until they commit, so each sees the IDs the others drew. SQLite writers take
/// turns anyway; on PostgreSQL two draws of a thousand would otherwise check
/// their candidates against the same committed state and pick the same ID in
/// about one pair of calls in nine, failing one of them on the unique index.
/// Single draws do not take it: one ID against a concurrent thousand collides
/// about once in 9,000 overlaps (answered ABORTED, "retry"), and taking it
/// made every AssignLicense of a tenant wait for the one before to commit.
/// Taken where the draw begins, after the rows the call locks and before the
/// rows it inserts, so no two transactions can wait on each other.
async fn lock_conference_ids(conn: &impl ConnectionTrait, tenant_id: &str) -> Result<()> {
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        conn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            [format!("dialin conference ids {tenant_id}").into()],
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_belongs_to_one_user_of_a_tenant_whatever_its_case() {
        let mut holders = EmailHolders(HashMap::from([("ann@contoso.com".to_owned(), "ann".to_owned())]));
        // Ann keeps hers, whatever the case she gives it in.
        assert!(holders.claim("t", "ann", "Ann@Contoso.com").is_ok());
        let taken = holders.claim("t", "bob", "ANN@contoso.com").unwrap_err();
        assert_eq!(
            (taken.code(), taken.reason()),
            (tonic::Code::AlreadyExists, Reason::EmailTaken)
        );
        // A free one is claimed by the first entry that asks, then taken for the rest.
        assert!(holders.claim("t", "bob", "bob@contoso.com").is_ok());
        assert!(holders.claim("t", "cy", "bob@contoso.com").is_err());
    }
}
