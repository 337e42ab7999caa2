//! Settings spreads its calls over every notifier behind one name, and keeps
//! delivering when one of them dies.

use std::time::Duration;

use dialin_proto::{notifier::v1::DeliveryStatus, settings::v1::NumberType};
use dialin_tests::{Cluster, ClusterOptions};

use crate::user_ids;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_notifier_and_survive_losing_one() {
    let mut cluster = Cluster::start(ClusterOptions {
        notifier_replicas: 2,
        notifiers_behind_one_name: true,
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    // One license at a time, each recorded before the next: the outbox hands
    // events over in batches, and events queued together would share a call.
    for (licensed, user_id) in user_ids("b", 60).iter().enumerate() {
        clients.license("t", user_id).await;
        clients.settled_tenant("t", licensed + 1, Duration::from_secs(60)).await;
    }
    let recorded: Vec<usize> = cluster
        .notifiers
        .iter()
        .map(|notifier| notifier.log().matches("delivery recorded").count())
        .collect();
    assert!(
        recorded.iter().all(|count| *count > 0),
        "every replica takes calls: {recorded:?}"
    );

    cluster.notifiers[1].kill().await;
    let more = user_ids("c", 20);
    assert!(
        clients
            .license_all("t", &more, 4)
            .await
            .iter()
            .all(|(_, outcome)| outcome.is_ok())
    );
    let deliveries = clients.settled_tenant("t", 80, Duration::from_secs(120)).await;
    assert!(deliveries.iter().all(|d| d.status() == DeliveryStatus::Sent));
    assert_eq!(cluster.smtp.received().len(), 80);
    println!(
        "balancing: Notify calls per notifier replica {recorded:?}; after one was killed, 20 more delivered (80 in all)"
    );
}
