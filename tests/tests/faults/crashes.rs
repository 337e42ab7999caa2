//! kill -9 in the middle of a burst: nothing lost, nothing sent twice except
//! in the window promise 2 allows, and then under the same Message-ID.

use std::{collections::HashSet, time::Duration};

use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Cluster, ClusterOptions, wait_until};

use crate::{by_message_id, user_ids};

const BURST: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_killed_mid_burst_loses_nothing_and_repeats_only_the_in_flight() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let users = user_ids("u", BURST);
    let burst = {
        let clients = clients.clone();
        let users = users.clone();
        tokio::spawn(async move { clients.license_all("t", &users, 16).await })
    };
    // Kill it while it is sending.
    wait_until("the first emails", Duration::from_secs(120), || async {
        (cluster.smtp.received().len() >= 100).then_some(())
    })
    .await;
    cluster.notifiers[0].kill().await;
    let received_before_kill = cluster.smtp.received().len();
    let outcomes = burst.await.expect("the burst");
    assert!(
        outcomes.iter().all(|(_, outcome)| outcome.is_ok()),
        "settings does not need the notifier to answer"
    );
    cluster.notifiers[0].restart().await;

    let deliveries = clients.settled_tenant("t", BURST, Duration::from_secs(180)).await;
    assert_eq!(deliveries.len(), BURST, "exactly one delivery per license");
    assert!(
        deliveries
            .iter()
            .all(|d| d.status() == DeliveryStatus::Sent && d.kind() == EmailKind::Welcome)
    );
    let received = cluster.smtp.received();
    let groups = by_message_id(&received);
    let expected: HashSet<String> = deliveries
        .iter()
        .map(|d| format!("<{}@dialin.notifier>", d.delivery_id))
        .collect();
    let got: HashSet<String> = groups.keys().cloned().collect();
    assert_eq!(got, expected, "every email arrived (logs in {})", cluster.logs());
    // A repeat is only the crash window: the same Message-ID, the same recipient.
    let duplicates: Vec<_> = groups.values().filter(|copies| copies.len() > 1).collect();
    for copies in &duplicates {
        assert!(copies.iter().all(|copy| copy.envelope_to == copies[0].envelope_to));
    }
    let recipients: HashSet<_> = received.iter().map(|email| email.envelope_to.clone()).collect();
    assert_eq!(
        recipients.len(),
        BURST,
        "a repeat always shares its Message-ID with the first copy"
    );
    assert!(
        duplicates.len() <= 16,
        "more repeats than emails in flight: {}",
        duplicates.len()
    );
    println!(
        "notifier kill -9: {BURST} deliveries, {received_before_kill} received before the kill, {} received in all, {} unique Message-IDs, {} repeated",
        received.len(),
        groups.len(),
        duplicates.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_killed_mid_burst_emails_exactly_the_committed_changes() {
    let mut cluster = Cluster::start(ClusterOptions {
        metrics: true,
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let users = user_ids("s", 400);
    let burst = {
        let clients = clients.clone();
        let users = users.clone();
        tokio::spawn(async move { clients.license_all("t", &users, 8).await })
    };
    // Counted by settings as it answers, not by the emails, which lag behind
    // the calls by however busy the machine is: on a loaded one all 400 calls
    // had answered before the 50th email arrived, and the kill interrupted nothing.
    let settings_metrics = cluster.settings_metrics[0];
    let licensed = r#"dialin_rpc_requests_total{method="/dialin.settings.v1.SettingsService/AssignLicense",code="Ok"}"#;
    wait_until("the first committed licenses", Duration::from_secs(60), || async {
        (Cluster::sample(&Cluster::scrape(settings_metrics).await, licensed) >= 50.0).then_some(())
    })
    .await;
    cluster.settings[0].kill().await;
    let outcomes = burst.await.expect("the burst");
    cluster.settings[0].restart().await;
    let mut clients = cluster.clients(0, 0);

    // What really committed: the calls that answered OK, and any whose answer
    // was lost to the kill but whose transaction made it.
    let mut committed = HashSet::new();
    for (user_id, outcome) in &outcomes {
        let stored = clients
            .settings
            .get_user(settings::GetUserRequest {
                tenant_id: "t".into(),
                user_id: user_id.clone(),
                ..Default::default()
            })
            .await;
        match (outcome, stored) {
            (Ok(_), Ok(user)) => assert!(user.into_inner().licensed),
            (Ok(_), Err(status)) => panic!("{user_id} was licensed (OK) but is gone: {status:?}"),
            (Err(_), Ok(user)) => assert!(user.into_inner().licensed),
            (Err(_), Err(status)) => {
                assert_eq!(status.code(), tonic::Code::NotFound);
                continue;
            }
        }
        committed.insert(format!("{user_id}@example.com"));
    }
    let answered_ok = outcomes.iter().filter(|(_, outcome)| outcome.is_ok()).count();
    assert!(
        answered_ok < outcomes.len(),
        "the kill came too late to interrupt anything"
    );

    let deliveries = clients
        .settled_tenant("t", committed.len(), Duration::from_secs(120))
        .await;
    assert_eq!(
        deliveries.len(),
        committed.len(),
        "one delivery per committed change, none for the rest"
    );
    let received = cluster.smtp.received();
    let recipients: HashSet<String> = received.iter().flat_map(|email| email.envelope_to.clone()).collect();
    assert_eq!(
        recipients,
        committed,
        "emails for exactly the committed changes (logs in {})",
        cluster.logs()
    );
    assert_eq!(received.len(), committed.len(), "each once");
    println!(
        "settings kill -9: {} calls, {answered_ok} answered OK, {} committed, {} emails received",
        outcomes.len(),
        committed.len(),
        received.len()
    );
}
