//! Two replicas of each service on one database: each email exactly once.

use std::{collections::HashSet, time::Duration};

use dialin_proto::{
    notifier::v1::DeliveryStatus,
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Cluster, ClusterOptions, DEADLINE, wait_until};

use crate::{by_message_id, user_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_each_service_send_each_email_once() {
    let cluster = Cluster::start(ClusterOptions {
        settings_replicas: 2,
        notifier_replicas: 2,
        ..ClusterOptions::default()
    })
    .await;
    let mut first = cluster.clients(0, 0);
    let second = cluster.clients(1, 1);
    first.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let users = user_ids("m", 400);
    let (half_a, half_b) = users.split_at(200);
    let (a, b) = tokio::join!(first.license_all("t", half_a, 8), second.license_all("t", half_b, 8));
    assert!(a.iter().chain(&b).all(|(_, outcome)| outcome.is_ok()));

    let deliveries = first.settled_tenant("t", 400, Duration::from_secs(120)).await;
    assert_eq!(deliveries.len(), 400);
    assert!(deliveries.iter().all(|d| d.status() == DeliveryStatus::Sent));
    let received = cluster.smtp.received();
    let groups = by_message_id(&received);
    let recipients: HashSet<_> = received.iter().map(|email| email.envelope_to.clone()).collect();
    assert_eq!(
        (received.len(), groups.len(), recipients.len()),
        (400, 400, 400),
        "each email exactly once"
    );
    let sent_by: Vec<usize> = cluster
        .notifiers
        .iter()
        .map(|notifier| notifier.log().matches("\"SENT\"").count())
        .collect();
    println!(
        "two replicas each: 400 licenses, {} emails received, each once; sent per notifier replica: {sent_by:?}",
        received.len()
    );
}

/// Each settings replica serves GetTenantSettings from memory; a change made on
/// one is read at once on it and, soon after, on the other (announced over
/// PostgreSQL NOTIFY; on SQLite, cached entries expire within a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_settings_replica_is_read_on_the_other() {
    let cluster = Cluster::start(ClusterOptions {
        settings_replicas: 2,
        ..ClusterOptions::default()
    })
    .await;
    let mut first = cluster.clients(0, 0);
    let second = cluster.clients(1, 0);
    let get = |mut clients: dialin_tests::Clients| async move {
        clients
            .settings
            .get_tenant_settings(settings::GetTenantSettingsRequest { tenant_id: "t".into() })
            .await
            .unwrap()
            .into_inner()
    };
    // Both replicas have read (and cached) the defaults.
    assert_eq!(get(first.clone()).await.pin_length, 5);
    assert_eq!(get(second.clone()).await.pin_length, 5);
    for (version, pin_length) in [(1, 8), (2, 10)] {
        let updated = first
            .settings
            .update_tenant_settings(settings::UpdateTenantSettingsRequest {
                tenant_id: "t".into(),
                pin_length: Some(pin_length),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(updated.version, version);
        let here = get(first.clone()).await;
        assert_eq!(
            (here.version, here.pin_length),
            (version, pin_length),
            "read on the replica that changed it"
        );
        let there = wait_until("the other replica to read the change", DEADLINE, || {
            let second = second.clone();
            async move { Some(get(second).await).filter(|there| there.version == version) }
        })
        .await;
        assert_eq!(there.pin_length, pin_length);
    }
}
