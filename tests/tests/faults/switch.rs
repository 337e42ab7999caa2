//! Racing the switch: PIN resets keep coming while an admin turns automatic
//! emails off. Nothing made after the switch-off leaves, and nothing at all
//! leaves after the call that turned it off returned.

use std::{sync::Arc, time::Duration};

use dialin_domain::time::now_millis;
use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Cluster, ClusterOptions, wait_until};
use tokio::sync::Mutex;

use crate::user_ids;

/// One completed reset: its PIN and when its call returned (Unix ms).
struct Reset {
    pin: String,
    returned_at: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_racing_a_switch_off_are_emailed_only_if_made_before_it() {
    let cluster = Cluster::start(ClusterOptions::default()).await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    let users = user_ids("r", 40);
    assert!(
        clients
            .license_all("t", &users, 8)
            .await
            .iter()
            .all(|(_, outcome)| outcome.is_ok())
    );
    clients.settled_tenant("t", 40, Duration::from_secs(60)).await;

    let resets = Arc::new(Mutex::new(Vec::<Reset>::new()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..6 {
        let mut settings = clients.settings.clone();
        let resets = Arc::clone(&resets);
        let stop = Arc::clone(&stop);
        let users = users.clone();
        racers.spawn(async move {
            for round in 0.. {
                let user_id = users[(racer * 7 + round) % users.len()].clone();
                let call = settings.reset_pin(settings::ResetPinRequest {
                    tenant_id: "t".into(),
                    user_id,
                    self_service: false,
                });
                tokio::select! {
                    () = stop.notified() => return,
                    response = call => {
                        let pin = response.expect("ResetPin").into_inner().pin;
                        resets.lock().await.push(Reset { pin, returned_at: now_millis() });
                    }
                }
            }
        });
    }
    wait_until("resets under way", Duration::from_secs(30), || async {
        (resets.lock().await.len() >= 60).then_some(())
    })
    .await;
    let flip_started = now_millis();
    clients.set_switch("t", false).await;
    let flip_returned = now_millis();
    wait_until("resets after the switch-off", Duration::from_secs(30), || async {
        resets
            .lock()
            .await
            .iter()
            .filter(|reset| reset.returned_at > flip_returned)
            .nth(30)
            .map(drop)
    })
    .await;
    stop.notify_waiters();
    racers.abort_all();
    while racers.join_next().await.is_some() {}

    let resets = resets.lock().await;
    let deliveries = clients
        .settled_tenant("t", 40 + resets.len(), Duration::from_secs(120))
        .await;
    let pin_resets: Vec<_> = deliveries.iter().filter(|d| d.kind() == EmailKind::PinReset).collect();
    assert!(pin_resets.len() >= resets.len(), "a delivery for every completed reset");
    let received = cluster.smtp.received();
    let reset_emails: Vec<_> = received.iter().filter(|email| email.subject.contains("PIN")).collect();
    for email in &reset_emails {
        let reset = resets
            .iter()
            .find(|reset| email.text.contains(&reset.pin))
            .unwrap_or_else(|| panic!("an email with a PIN no completed reset issued: {}", email.text));
        assert!(
            reset.returned_at <= flip_returned,
            "a reset that returned {} ms after the switch-off was emailed",
            reset.returned_at - flip_returned
        );
        assert!(
            email.received_at <= flip_returned,
            "an email reached SMTP {} ms after the switch-off call returned",
            email.received_at - flip_returned
        );
    }
    let after = resets.iter().filter(|reset| reset.returned_at > flip_returned).count();
    let suppressed = pin_resets
        .iter()
        .filter(|d| d.status() == DeliveryStatus::Suppressed)
        .count();
    assert!(suppressed >= after, "every reset after the switch-off is suppressed");
    println!(
        "switch race: {} resets ({} before the switch-off started, {after} after it returned), {} PIN emails received, {suppressed} suppressed, switch-off took {} ms",
        resets.len(),
        resets.iter().filter(|reset| reset.returned_at < flip_started).count(),
        reset_emails.len(),
        flip_returned - flip_started
    );
}
