//! The database goes away under load: calls fail fast with UNAVAILABLE, the
//! services recover by themselves when it returns, and nothing is lost.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use dialin_proto::settings::v1::{self as settings, NumberType};
use dialin_tests::{Backend, Cluster, ClusterOptions, wait_until};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use tokio::sync::Mutex;
use tonic::Code;

struct Call {
    user_id: String,
    code: Code,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_then_recovers_without_a_restart() {
    let backend = Backend::from_env();
    let cluster = Cluster::start(ClusterOptions {
        cuttable_database: backend == Backend::Postgres,
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;

    let calls = Arc::new(Mutex::new(Vec::<Call>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let mut settings = clients.settings.clone();
        let calls = Arc::clone(&calls);
        let stop = Arc::clone(&stop);
        load.spawn(async move {
            for index in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let user_id = format!("w{worker}-{index:04}");
                let started = Instant::now();
                let result = settings
                    .assign_license(settings::AssignLicenseRequest {
                        tenant_id: "t".into(),
                        user_id: user_id.clone(),
                        email: format!("{user_id}@example.com"),
                        display_name: "Load".into(),
                        ..Default::default()
                    })
                    .await;
                let code = result.map_or_else(|status| status.code(), |_| Code::Ok);
                calls.lock().await.push(Call {
                    user_id,
                    code,
                    took: started.elapsed(),
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let ok_count = |calls: &Vec<Call>| calls.iter().filter(|call| call.code == Code::Ok).count();
    wait_until(
        "calls succeeding before the outage",
        Duration::from_secs(30),
        || async { (ok_count(&*calls.lock().await) >= 20).then_some(()) },
    )
    .await;

    // The outage: PostgreSQL's link is cut; SQLite's file is locked by another writer.
    let sqlite_lock = match &cluster.database_link {
        Some(link) => {
            link.cut();
            None
        }
        None => {
            let holder = Database::connect(cluster.settings_db.url.clone())
                .await
                .expect("open the SQLite file");
            let txn = holder.begin().await.expect("begin");
            txn.execute_unprepared(
                "INSERT INTO outbox_dispatcher (name, holder, lease_until) VALUES ('outage', 'test', 0)",
            )
            .await
            .expect("take the write lock");
            Some((holder, txn))
        }
    };
    let outage_started = calls.lock().await.len();
    // PostgreSQL unreachable: health says NOT_SERVING, so Kubernetes routes elsewhere.
    if cluster.database_link.is_some() {
        wait_until(
            "health NOT_SERVING during the outage",
            Duration::from_secs(20),
            || async { (serving(cluster.settings[0].addr).await == Some(false)).then_some(()) },
        )
        .await;
    }
    wait_until("UNAVAILABLE during the outage", Duration::from_secs(60), || async {
        let calls = calls.lock().await;
        calls[outage_started..]
            .iter()
            .filter(|call| call.code == Code::Unavailable)
            .nth(3)
            .map(drop)
    })
    .await;
    match sqlite_lock {
        Some((holder, txn)) => {
            txn.rollback().await.expect("release the lock");
            let _ = holder.close().await;
        }
        None => cluster.database_link.as_ref().expect("a link").restore(),
    }
    let outage_ended = calls.lock().await.len();
    wait_until("health SERVING again", Duration::from_secs(20), || async {
        (serving(cluster.settings[0].addr).await == Some(true)).then_some(())
    })
    .await;
    wait_until("calls succeeding again", Duration::from_secs(60), || async {
        let calls = calls.lock().await;
        calls[outage_ended..]
            .iter()
            .filter(|call| call.code == Code::Ok)
            .nth(20)
            .map(drop)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    while load.join_next().await.is_some() {}

    let calls = calls.lock().await;
    let codes: HashSet<Code> = calls.iter().map(|call| call.code).collect();
    assert!(
        codes.iter().all(|code| matches!(code, Code::Ok | Code::Unavailable)),
        "only OK or UNAVAILABLE: {codes:?}"
    );
    let slowest = calls.iter().map(|call| call.took).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(10),
        "a call took {slowest:?}: not failing fast"
    );

    // Nothing lost: every license that committed has its email, and a failed
    // one has none. A call cut off mid-commit may have committed after all:
    // the stored state says.
    let mut licensed = HashSet::new();
    for call in calls.iter() {
        let committed = call.code == Code::Ok
            || clients
                .settings
                .get_user(settings::GetUserRequest {
                    tenant_id: "t".into(),
                    user_id: call.user_id.clone(),
                    ..Default::default()
                })
                .await
                .is_ok();
        if committed {
            licensed.insert(format!("{}@example.com", call.user_id));
        }
    }
    let deliveries = clients
        .settled_tenant("t", licensed.len(), Duration::from_secs(120))
        .await;
    assert_eq!(deliveries.len(), licensed.len(), "a failed call left nothing behind");
    wait_until("every email", Duration::from_secs(60), || async {
        let received: HashSet<String> = cluster
            .smtp
            .received()
            .iter()
            .flat_map(|email| email.envelope_to.clone())
            .collect();
        (received == licensed).then_some(())
    })
    .await;
    println!(
        "database outage ({backend:?}): {} calls, {} OK, {} UNAVAILABLE, slowest {slowest:?}; {} emails, none lost",
        calls.len(),
        licensed.len(),
        calls.iter().filter(|call| call.code == Code::Unavailable).count(),
        licensed.len()
    );
}

/// Whether the service's health says SERVING (`None` if it does not answer).
async fn serving(addr: std::net::SocketAddr) -> Option<bool> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .ok()?;
    Some(response.into_inner().status() == ServingStatus::Serving)
}
