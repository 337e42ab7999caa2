//! Stale secrets never leave: a pending PIN (or conference-ID) email that a
//! newer one for the same user replaces is marked SUPERSEDED, at intake and
//! again just before sending. "Newer" is by when the change happened in
//! settings (`occurred_at`), not by arrival, so a late event cannot win.
//!
//! Both checks work on a user's history of automatic emails, read for a whole
//! batch of users with one query (`history_of`), so that their cost does not
//! grow with the number of emails.

use std::collections::{HashMap, HashSet};

use dialin_proto::notifier::v1::{DeliveryStatus, EmailKind, Trigger};
use dialin_store::sql::{placeholder, values_rows};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

/// Which email this is, for supersession.
pub struct EmailIdentity<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub kind: EmailKind,
    pub trigger: Trigger,
    pub occurred_at: i64,
}

/// An automatic email already recorded (or being recorded) for a user.
#[derive(Debug)]
pub struct PriorEmail {
    pub delivery_id: String,
    pub kind: EmailKind,
    pub status: DeliveryStatus,
    pub occurred_at: i64,
    /// A sender holds it until then.
    pub lease_until: i64,
}

/// A user's automatic emails, keyed by (tenant, user).
pub type History = HashMap<(String, String), Vec<PriorEmail>>;

/// The pending emails a newer email of `kind` makes stale. A PIN email replaces
/// an older PIN email (the old PIN no longer works); a details email replaces an
/// older details email; DISABLED replaces all three (nothing in them works any more).
fn replaces(kind: EmailKind) -> &'static [EmailKind] {
    match kind {
        EmailKind::Welcome | EmailKind::PinReset => &[EmailKind::Welcome, EmailKind::PinReset],
        EmailKind::SettingsChanged => &[EmailKind::SettingsChanged],
        EmailKind::Disabled => &[EmailKind::Welcome, EmailKind::PinReset, EmailKind::SettingsChanged],
        EmailKind::ConferenceInfo | EmailKind::Unspecified => &[],
    }
}

/// Reads, with one query, the recorded automatic emails that can matter to
/// `emails` (automatic emails about to be decided, as (tenant, user, when it
/// occurred)): their users' pending emails (which they may replace) and those
/// that occurred after the oldest of them (which may replace them). A user
/// reset a hundred times has a hundred emails; reading them all for every new
/// one made the cost grow with the history.
///
/// The pairs are joined as a `VALUES` list ([`values_rows`]): asked as
/// `tenant_id IN (…) AND user_id IN (…)`, PostgreSQL reads the onboarding
/// tenant's every delivery per call (BENCHMARKS.md has the figures).
pub async fn history_of(conn: &impl ConnectionTrait, emails: &[(&str, &str, i64)]) -> Result<History, DbErr> {
    let mut history = History::new();
    let asked: HashSet<(&str, &str)> = emails
        .iter()
        .map(|&(tenant_id, user_id, _)| (tenant_id, user_id))
        .collect();
    let Some(since) = emails.iter().map(|&(_, _, occurred_at)| occurred_at).min() else {
        return Ok(history);
    };
    let backend = conn.get_database_backend();
    let listed = asked.len() * 2;
    let (trigger, pending, since_param) = (
        placeholder(backend, listed + 1),
        placeholder(backend, listed + 2),
        placeholder(backend, listed + 3),
    );
    let asked_rows = values_rows(backend, asked.len(), 2);
    let columns = "d.tenant_id, d.user_id, d.delivery_id, d.kind, d.status, d.occurred_at, d.lease_until";
    let sql = if backend == DatabaseBackend::Postgres {
        // One index lookup per pair, whatever the statistics say: the LATERAL
        // subquery (kept whole by OFFSET 0) cannot become a hash join over the
        // whole table, which is what PostgreSQL chooses for the plain join
        // under load (a sequential scan per call).
        format!(
            "SELECT {columns} FROM (VALUES {asked_rows}) AS asked CROSS JOIN LATERAL (
                 SELECT * FROM deliveries
                 WHERE deliveries.tenant_id = asked.column1 AND deliveries.user_id = asked.column2
                   AND deliveries.trigger = {trigger} AND (deliveries.status = {pending} OR deliveries.occurred_at > {since_param})
                 OFFSET 0) AS d"
        )
    } else {
        format!(
            "SELECT {columns} FROM deliveries AS d
             JOIN (VALUES {asked_rows}) AS asked ON d.tenant_id = asked.column1 AND d.user_id = asked.column2
             WHERE d.trigger = {trigger} AND (d.status = {pending} OR d.occurred_at > {since_param})"
        )
    };
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(listed + 3);
    for (tenant_id, user_id) in &asked {
        values.push((*tenant_id).into());
        values.push((*user_id).into());
    }
    values.extend([
        Trigger::Automatic.as_str_name().into(),
        DeliveryStatus::Pending.as_str_name().into(),
        since.into(),
    ]);
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        let tenant_id: String = row.try_get("", "tenant_id")?;
        let user_id: String = row.try_get("", "user_id")?;
        let kind: String = row.try_get("", "kind")?;
        let status: String = row.try_get("", "status")?;
        history.entry((tenant_id, user_id)).or_default().push(PriorEmail {
            delivery_id: row.try_get("", "delivery_id")?,
            kind: EmailKind::from_str_name(&kind).unwrap_or_default(),
            status: DeliveryStatus::from_str_name(&status).unwrap_or_default(),
            occurred_at: row.try_get("", "occurred_at")?,
            lease_until: row.try_get("", "lease_until")?,
        });
    }
    Ok(history)
}

/// If an email that replaces `email` is already recorded (in any state: a newer
/// PIN that was suppressed still makes the old PIN stale), why `email` must not go.
pub fn newer_replacement(history: &History, email: &EmailIdentity<'_>) -> Option<String> {
    if email.trigger != Trigger::Automatic {
        return None;
    }
    user_history(history, email)?
        .iter()
        .find(|newer| newer.occurred_at > email.occurred_at && replaces(newer.kind).contains(&email.kind))
        .map(|newer| {
            format!(
                "superseded by the newer {} email {}",
                newer.kind.as_str_name(),
                newer.delivery_id
            )
        })
}

/// The pending emails in the history that `email` (recorded as `delivery_id`)
/// makes stale, marked SUPERSEDED there; the caller writes them. One a sender
/// holds right now is left to it: it may already be with the SMTP server, and
/// its record must say what really happened (the sender checks again before it
/// sends, and this newer email follows it).
pub fn older_than<'h>(
    history: &'h mut History,
    email: &EmailIdentity<'_>,
    delivery_id: &str,
    now: i64,
) -> Vec<&'h PriorEmail> {
    if email.trigger != Trigger::Automatic {
        return Vec::new();
    }
    let key = (email.tenant_id.to_owned(), email.user_id.to_owned());
    let Some(emails) = history.get_mut(&key) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for older in emails.iter_mut() {
        if older.status == DeliveryStatus::Pending
            && older.delivery_id != delivery_id
            && older.occurred_at <= email.occurred_at
            && older.lease_until <= now
            && replaces(email.kind).contains(&older.kind)
        {
            older.status = DeliveryStatus::Superseded;
            stale.push(&*older);
        }
    }
    stale
}

/// Adds a newly recorded email to the history.
pub fn remember(history: &mut History, email: &EmailIdentity<'_>, recorded: PriorEmail) {
    if email.trigger == Trigger::Automatic {
        history
            .entry((email.tenant_id.to_owned(), email.user_id.to_owned()))
            .or_default()
            .push(recorded);
    }
}

fn user_history<'h>(history: &'h History, email: &EmailIdentity<'_>) -> Option<&'h Vec<PriorEmail>> {
    history.get(&(email.tenant_id.to_owned(), email.user_id.to_owned()))
}

/// How many pending emails of each kind newer ones superseded.
#[derive(Debug, Default)]
pub struct Superseded(HashMap<EmailKind, u64>);

impl Superseded {
    pub fn add(&mut self, kind: EmailKind, count: u64) {
        *self.0.entry(kind).or_default() += count;
    }

    /// Counts them in `dialin_emails_total`, once their transaction has committed.
    pub fn count(&self) {
        for (kind, count) in &self.0 {
            metrics::counter!("dialin_emails_total", "kind" => kind.as_str_name(), "outcome" => DeliveryStatus::Superseded.as_str_name())
                .increment(*count);
        }
    }
}
