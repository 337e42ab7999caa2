//! The mail relay goes away and comes back.

use std::time::Duration;

use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Cluster, ClusterOptions, DEADLINE, wait_until};

use crate::{by_message_id, user_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_queued_while_smtp_is_down_is_delivered_once_when_it_returns() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    cluster.smtp.stop().await;
    let users = user_ids("q", 30);
    assert!(
        clients
            .license_all("t", &users, 4)
            .await
            .iter()
            .all(|(_, outcome)| outcome.is_ok())
    );
    // Every email has been tried and failed at least once.
    let tried = wait_until("failed attempts on every email", DEADLINE, || {
        let mut clients = clients.clone();
        async move {
            let deliveries = clients.tenant_deliveries("t").await;
            (deliveries.len() == 30
                && deliveries
                    .iter()
                    .all(|d| d.attempts >= 1 && d.status() == DeliveryStatus::Pending))
            .then_some(deliveries)
        }
    })
    .await;
    assert!(
        tried[0].reason.contains("SMTP"),
        "the reason says why: {}",
        tried[0].reason
    );
    cluster.smtp.restart().await;

    let deliveries = clients.settled_tenant("t", 30, Duration::from_secs(60)).await;
    assert!(deliveries.iter().all(|d| d.status() == DeliveryStatus::Sent));
    let received = cluster.smtp.received();
    let groups = by_message_id(&received);
    assert_eq!((received.len(), groups.len()), (30, 30), "each email once");
    let attempts: u32 = deliveries.iter().map(|d| d.attempts).sum();
    println!(
        "SMTP outage: 30 emails queued, {attempts} attempts in all, {} received, each once",
        received.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_pin_resets_while_smtp_is_down_only_the_newer_pin_arrives() {
    let mut cluster = Cluster::start(ClusterOptions::default()).await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    clients.license("t", "pat").await;
    clients.settled_deliveries("t", "pat", 1).await;
    cluster.smtp.stop().await;
    let reset = |clients: &mut dialin_tests::Clients| {
        let mut settings = clients.settings.clone();
        async move {
            settings
                .reset_pin(settings::ResetPinRequest {
                    tenant_id: "t".into(),
                    user_id: "pat".into(),
                    self_service: false,
                })
                .await
                .expect("ResetPin")
                .into_inner()
                .pin
        }
    };
    let older = reset(&mut clients).await;
    // Let the older one fail against the dead relay at least once.
    wait_until("a failed attempt", DEADLINE, || {
        let mut clients = clients.clone();
        async move {
            let deliveries = clients.deliveries("t", "pat").await;
            deliveries
                .iter()
                .any(|d| d.kind() == EmailKind::PinReset && d.attempts >= 1)
                .then_some(())
        }
    })
    .await;
    let newer = reset(&mut clients).await;
    cluster.smtp.restart().await;

    let deliveries = clients.settled_deliveries("t", "pat", 3).await;
    assert_eq!(
        deliveries[1].status(),
        DeliveryStatus::Superseded,
        "{:?}",
        deliveries[1]
    );
    assert_eq!(deliveries[2].status(), DeliveryStatus::Sent);
    let received = cluster.smtp.received();
    assert!(
        received.iter().any(|email| email.text.contains(&newer)),
        "the newer PIN arrives"
    );
    assert!(
        received.iter().all(|email| !email.mentions(&older)),
        "the older PIN never does"
    );
    println!(
        "two resets while SMTP was down: {} emails received, older PIN in none",
        received.len()
    );
}
