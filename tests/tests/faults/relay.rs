//! A relay with limits, and the replicas that share it: the cap holds for the
//! deployment, and a crash in the middle of a throttle loses nothing.

use std::{collections::HashSet, time::Duration};

use dialin_proto::{
    notifier::v1::DeliveryStatus,
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Cluster, ClusterOptions, RelayLimit, busiest_window, wait_until};

use crate::{by_message_id, user_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_for_two_notifier_replicas_together() {
    let cluster = Cluster::start(ClusterOptions {
        notifier_replicas: 2,
        notifier_env: &[("DIALIN_SMTP_MAX_RATE", "10/s")],
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let users = user_ids("c", 60);
    let outcomes = clients.license_all("t", &users, 8).await;
    assert!(outcomes.iter().all(|(_, outcome)| outcome.is_ok()));
    let deliveries = clients.settled_tenant("t", 60, Duration::from_secs(120)).await;
    assert!(deliveries.iter().all(|d| d.status() == DeliveryStatus::Sent));
    let received = cluster.smtp.received();
    assert_eq!(
        (received.len(), by_message_id(&received).len()),
        (60, 60),
        "each email once"
    );
    let busiest = busiest_window(&received, 3_000);
    // Dialin starts at most 10 a second, less one slot a replica takes up to
    // half a gap late; the relay, busy on a loaded machine, accepts some late
    // and the next on time: over three seconds its clock sees at most one more
    // at either end. Two replicas that did not share the cap would send 60.
    assert!(
        busiest <= 33,
        "{busiest} emails in three seconds from two replicas under a cap of 10/s"
    );
    // Four connections for the deployment (the default), however the two
    // replicas' views of each other differ while they start.
    let connections = cluster.smtp.most_connections();
    assert!(
        (1..=4).contains(&connections),
        "{connections} connections open at once from two replicas sharing 4"
    );
    let sent_by: Vec<usize> = cluster
        .notifiers
        .iter()
        .map(|notifier| notifier.log().matches("\"SENT\"").count())
        .collect();
    println!(
        "cap 10/s over two notifier replicas: busiest three seconds {busiest}, most connections {connections}, sent per replica {sent_by:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_killed_mid_throttle_loses_nothing_and_fails_nothing() {
    const COUNT: usize = 300;
    let mut cluster = Cluster::start(ClusterOptions {
        relay_limit: Some(RelayLimit::Refuse(30)),
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let users = user_ids("k", COUNT);
    let response = clients
        .settings
        .assign_licenses(settings::AssignLicensesRequest {
            tenant_id: "t".into(),
            users: users
                .iter()
                .map(|user_id| settings::UserToLicense {
                    user_id: user_id.clone(),
                    email: format!("{user_id}@example.com"),
                    display_name: format!("User {user_id}"),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .expect("AssignLicenses")
        .into_inner();
    assert!(response.results.iter().all(|result| result.error.is_none()));
    // Kill it once the relay has throttled it and it is sending at the relay's pace.
    wait_until("a throttle, and emails after it", Duration::from_secs(120), || async {
        let refusals = cluster.smtp.refusals();
        let after = refusals.first().map(|&first| {
            cluster
                .smtp
                .received()
                .iter()
                .filter(|email| email.received_at > first)
                .count()
        });
        after.is_some_and(|after| after >= 30).then_some(())
    })
    .await;
    cluster.notifiers[0].kill().await;
    cluster.notifiers[0].restart().await;

    let deliveries = clients.settled_tenant("t", COUNT, Duration::from_secs(180)).await;
    let not_sent: Vec<_> = deliveries
        .iter()
        .filter(|d| d.status() != DeliveryStatus::Sent)
        .collect();
    assert!(
        not_sent.is_empty(),
        "a throttle or a crash failed emails: {not_sent:#?}"
    );
    let received = cluster.smtp.received();
    let groups = by_message_id(&received);
    let expected: HashSet<String> = deliveries
        .iter()
        .map(|d| format!("<{}@dialin.notifier>", d.delivery_id))
        .collect();
    assert_eq!(
        groups.keys().cloned().collect::<HashSet<_>>(),
        expected,
        "every email arrived"
    );
    // A repeat is only what was in flight at the kill (four connections), under its Message-ID.
    let repeated = groups.values().filter(|copies| copies.len() > 1).count();
    assert!(repeated <= 4, "{repeated} emails arrived twice");
    println!(
        "kill -9 mid-throttle: {COUNT} emails, {} refusals, {} received, {repeated} repeated",
        cluster.smtp.refusals().len(),
        received.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_joining_and_leaving_never_hold_more_connections_than_the_deployment() {
    const COUNT: usize = 360;
    let mut cluster = Cluster::start(ClusterOptions {
        notifier_replicas: 2,
        // A slow relay keeps every connection busy: a replica holds all it may.
        relay_limit: Some(RelayLimit::Slow(60)),
        ..ClusterOptions::default()
    })
    .await;
    // The first replica sends alone, on all four connections.
    cluster.notifiers[1].kill().await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let users = user_ids("j", COUNT);
    let outcomes = clients.license_all("t", &users, 8).await;
    assert!(outcomes.iter().all(|(_, outcome)| outcome.is_ok()));
    let received_at_least = |count: usize| {
        let smtp = &cluster.smtp;
        move || async move { (smtp.received().len() >= count).then_some(()) }
    };
    wait_until(
        "the first replica sending",
        Duration::from_secs(60),
        received_at_least(60),
    )
    .await;
    // The second joins: the first gives up connections as their sends end.
    cluster.notifiers[1].restart().await;
    wait_until("both replicas sending", Duration::from_secs(60), received_at_least(180)).await;
    // The first dies holding its leases; the second takes them once they run out.
    cluster.notifiers[0].kill().await;
    let mut clients = cluster.clients(0, 1);
    let deliveries = clients.settled_tenant("t", COUNT, Duration::from_secs(120)).await;
    assert!(deliveries.iter().all(|d| d.status() == DeliveryStatus::Sent));
    let most = cluster.smtp.most_connections();
    // The four were all in use (an overrun would show), and never more.
    assert_eq!(most, 4, "most connections open at once with 4 for the deployment");
    let sent_by_second = cluster.notifiers[1].log().matches("\"SENT\"").count();
    assert!(sent_by_second > 0, "the replica that joined sent nothing");
    println!("two replicas joining and leaving: most connections {most}, the joiner sent {sent_by_second}");
}
