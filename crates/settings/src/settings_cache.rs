//! `GetTenantSettings` from memory. Callers read a tenant's settings far more
//! often than an admin changes them, and a database round trip per read costs
//! several times what the call itself does.
//!
//! A change made here drops the entry when it commits. A change made by
//! another replica reaches us on PostgreSQL as a `NOTIFY` sent by the
//! changing transaction (delivered when it commits); while this replica is not
//! listening (starting, or its listening connection lost) nothing is cached,
//! and on reconnecting everything is dropped, as notifications may have been
//! missed. SQLite has no such channel: there, entries live for one second,
//! which bounds how stale another process's change can look (SQLite is the
//! single-process laptop setup; replicas share PostgreSQL). Nothing but
//! `GetTenantSettings` reads from here: every change reads the row in its own
//! transaction.

use dialin_store::Store;
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use dialin_proto::settings::v1 as pb;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DbErr, Statement,
    sqlx::{self, postgres::PgListener},
};
use tokio::sync::watch;

/// The PostgreSQL channel a change of tenant settings is announced on; the
/// payload is the tenant id.
const CHANNEL: &str = "dialin_tenant_settings";
/// Longest an entry is served: a safety net behind the notifications on
/// PostgreSQL, the only bound on SQLite.
const TTL_POSTGRES: Duration = Duration::from_secs(30);
const TTL_SQLITE: Duration = Duration::from_secs(1);
/// Tenants held at most; past it the cache starts over (it refills on demand).
const CAPACITY: usize = 10_000;
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct TenantSettingsCache(Arc<RwLock<Inner>>);

struct Inner {
    entries: HashMap<String, (pb::TenantSettings, Instant)>,
    ttl: Duration,
    /// False while changes made elsewhere could go unnoticed.
    enabled: bool,
    /// Bumped by every invalidation, so a read that began before one cannot
    /// store what it read after it.
    generation: u64,
}

/// Where a read from the database began, for [`TenantSettingsCache::store`].
pub struct ReadStart(u64);

impl TenantSettingsCache {
    /// Enabled at once on SQLite; on PostgreSQL once [`listen`] is listening.
    pub fn new(backend: DatabaseBackend) -> Self {
        let postgres = backend == DatabaseBackend::Postgres;
        Self(Arc::new(RwLock::new(Inner {
            entries: HashMap::new(),
            ttl: if postgres { TTL_POSTGRES } else { TTL_SQLITE },
            enabled: !postgres,
            generation: 0,
        })))
    }

    pub fn get(&self, tenant_id: &str) -> Option<pb::TenantSettings> {
        let inner = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (settings, stored) = inner.entries.get(tenant_id)?;
        (inner.enabled && stored.elapsed() < inner.ttl).then(|| settings.clone())
    }

    /// Call before reading the database; pass the result to [`Self::store`].
    pub fn read_start(&self) -> ReadStart {
        ReadStart(
            self.0
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .generation,
        )
    }

    pub fn store(&self, start: ReadStart, settings: &pb::TenantSettings) {
        let mut inner = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !inner.enabled || inner.generation != start.0 {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.clear();
        }
        inner
            .entries
            .insert(settings.tenant_id.clone(), (settings.clone(), Instant::now()));
    }

    /// Drops the tenant's entry: its settings changed.
    pub fn invalidate(&self, tenant_id: &str) {
        let mut inner = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.generation += 1;
        inner.entries.remove(tenant_id);
    }

    /// Drops everything and turns caching on or off.
    fn reset(&self, enabled: bool) {
        let mut inner = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.generation += 1;
        inner.entries.clear();
        inner.enabled = enabled;
    }
}

/// Tells the other replicas, in the changing transaction, that the tenant's
/// settings changed (PostgreSQL delivers it on commit; nothing on SQLite).
pub async fn announce_change(conn: &impl ConnectionTrait, tenant_id: &str) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), tenant_id.into()],
    ))
    .await
    .map(drop)
}

/// On PostgreSQL, keeps a connection listening for other replicas' changes
/// and the cache in step with it, until shutdown.
pub async fn listen(db: Store, cache: TenantSettingsCache, mut shutdown: watch::Receiver<bool>) {
    if db.backend() != DatabaseBackend::Postgres {
        return;
    }
    loop {
        let error = tokio::select! {
            error = follow_changes(&db, &cache) => error,
            _ = shutdown.changed() => return,
        };
        cache.reset(false);
        tracing::warn!(%error, "tenant settings cache: not listening for changes, reading the database meanwhile");
        tokio::select! {
            () = tokio::time::sleep(RELISTEN_PAUSE) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Listens and applies what it hears until the connection fails for good.
async fn follow_changes(db: &Store, cache: &TenantSettingsCache) -> sqlx::Error {
    let mut listener = match PgListener::connect_with(db.reader().get_postgres_connection_pool()).await {
        Ok(listener) => listener,
        Err(error) => return error,
    };
    if let Err(error) = listener.listen(CHANNEL).await {
        return error;
    }
    cache.reset(true);
    tracing::debug!("tenant settings cache: listening for changes");
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => cache.invalidate(notification.payload()),
            // Reconnected: what was announced meanwhile is lost.
            Ok(None) => cache.reset(true),
            Err(error) => return error,
        }
    }
}
