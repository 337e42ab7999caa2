//! The scheduler against a relay with limits: interactive emails overtake a
//! bulk backlog, throttles and quotas fail nothing, a cap holds.

use std::time::Duration;

use dialin_proto::{
    notifier::v1::{self as notifier, DeliveryStatus, Priority},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Clients, RelayLimit, SmtpServer, TestApp, busiest_window, wait_until};

const TOLL: &str = "+14255550100";

/// Licenses `count` users of `tenant_id` in one `AssignLicenses` call (bulk).
async fn onboard(clients: &mut Clients, tenant_id: &str, count: usize) {
    let users = (0..count)
        .map(|at| settings::UserToLicense {
            user_id: format!("{tenant_id}-u{at}"),
            email: format!("{tenant_id}-u{at}@example.com"),
            display_name: format!("User {at}"),
            ..Default::default()
        })
        .collect();
    let response = clients
        .settings
        .assign_licenses(settings::AssignLicensesRequest {
            tenant_id: tenant_id.into(),
            users,
        })
        .await
        .expect("AssignLicenses")
        .into_inner();
    assert!(response.results.iter().all(|result| result.error.is_none()));
}

/// Waits until the relay has accepted `count` emails; returns them in the order accepted.
async fn accepted(smtp: &SmtpServer, count: usize, timeout: Duration) -> Vec<dialin_tests::ReceivedEmail> {
    let mut received = wait_until(&format!("{count} emails accepted"), timeout, || async {
        let received = smtp.received();
        (received.len() >= count).then_some(received)
    })
    .await;
    received.sort_by_key(|email| email.received_at);
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_email_overtakes_a_bulk_backlog_its_own_tenants_and_anothers() {
    let app = TestApp::builder().relay_limit(RelayLimit::Slow(20)).start().await;
    let mut clients = app.clients().await;
    for tenant_id in ["big", "small"] {
        clients.add_number(tenant_id, TOLL, NumberType::Toll, "US").await;
    }
    let (small, _) = clients.license("small", "ann").await;
    let (big, _) = clients.license("big", "bob").await;
    accepted(&app.smtp, 2, Duration::from_secs(30)).await;
    // 200 welcome emails: ten seconds at the relay's pace.
    onboard(&mut clients, "big", 200).await;
    for (tenant_id, user_id) in [("small", &small.user_id), ("big", &big.user_id)] {
        clients
            .settings
            .reset_pin(settings::ResetPinRequest {
                tenant_id: tenant_id.into(),
                user_id: user_id.clone(),
                ..Default::default()
            })
            .await
            .expect("ResetPin");
    }
    let received = accepted(&app.smtp, 204, Duration::from_secs(60)).await;
    let position = |user_id: &str| {
        received
            .iter()
            .skip(2)
            .position(|email| email.envelope_to.iter().any(|to| to.starts_with(user_id)))
            .unwrap_or_else(|| panic!("no PIN email for {user_id}"))
    };
    // What was claimed or in flight when the reset came may go first; not the backlog.
    for user_id in [&small.user_id, &big.user_id] {
        assert!(
            position(user_id) < 40,
            "{user_id}'s PIN email was number {} of 202",
            position(user_id)
        );
    }
    let deliveries = clients.settled_tenant("big", 202, Duration::from_secs(30)).await;
    let priority_of = |kind: notifier::EmailKind| -> Vec<Priority> {
        let mut priorities: Vec<Priority> = deliveries
            .iter()
            .filter(|delivery| delivery.kind() == kind)
            .map(|delivery| delivery.priority())
            .collect();
        priorities.dedup();
        priorities
    };
    assert_eq!(priority_of(notifier::EmailKind::PinReset), [Priority::Interactive]);
    assert!(priority_of(notifier::EmailKind::Welcome).contains(&Priority::Bulk));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_relay_slows_the_deployment_down_and_fails_nothing() {
    let app = TestApp::builder().relay_limit(RelayLimit::Refuse(20)).start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    onboard(&mut clients, "t", 150).await;
    let deliveries = clients.settled_tenant("t", 150, Duration::from_secs(90)).await;
    let failed: Vec<_> = deliveries
        .iter()
        .filter(|delivery| delivery.status() != DeliveryStatus::Sent)
        .collect();
    assert!(failed.is_empty(), "not sent: {failed:#?}");
    // A throttle is the relay's, not the message's: no email counted an attempt for it.
    assert!(
        deliveries.iter().all(|delivery| delivery.attempts == 1),
        "{deliveries:#?}"
    );
    let received = app.smtp.received();
    assert_eq!(received.len(), 150, "each email exactly once");
    let refusals = app.smtp.refusals();
    println!(
        "throttling relay at 20/s: {} refusals for {} accepted",
        refusals.len(),
        received.len()
    );
    assert!(
        !refusals.is_empty(),
        "the relay never throttled: the test proves nothing"
    );
    assert!(
        refusals.len() * 2 < received.len(),
        "{} refusals for {} accepted: the deployment kept hammering",
        refusals.len(),
        received.len()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_pauses_the_relay_visibly_and_sending_resumes_after_it() {
    let mut app = TestApp::builder()
        .smtp_reply("554 5.2.0 Message rejected: Sending QuotaExceeded: Daily message quota exceeded.")
        .notifier_flags(&["--smtp-quota-pause", "2s"])
        .start()
        .await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    onboard(&mut clients, "t", 5).await;
    let paused = wait_until("the relay paused", Duration::from_secs(30), || {
        let mut clients = clients.clone();
        async move {
            let queue = clients
                .notifier
                .describe_queue(notifier::DescribeQueueRequest::default())
                .await
                .expect("DescribeQueue")
                .into_inner();
            queue
                .relay
                .filter(|relay| relay.paused)
                .map(|relay| (relay, queue.queues))
        }
    })
    .await;
    assert!(paused.0.paused_reason.contains("QuotaExceeded"), "{:?}", paused.0);
    let queue = paused.1.iter().find(|queue| queue.tenant_id == "t").expect("t's queue");
    assert_eq!((queue.priority(), queue.pending), (Priority::Bulk, 5));
    // Health says so under the relay's own name; the service itself stays SERVING.
    let notifier_addr = app.notifier_addr();
    let health = |service: &str| {
        let channel = dialin_tests::channel(notifier_addr, None);
        let service = service.to_owned();
        async move {
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest { service })
                .await
                .expect("Health/Check")
                .into_inner()
                .status()
        }
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    wait_until("the relay's health NOT_SERVING", Duration::from_secs(5), || async {
        (health("dialin.notifier.v1.Relay").await == ServingStatus::NotServing).then_some(())
    })
    .await;
    assert_eq!(health("").await, ServingStatus::Serving);
    // Nothing failed for the quota while it held.
    let deliveries = clients.tenant_deliveries("t").await;
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.status() == DeliveryStatus::Pending),
        "{deliveries:#?}"
    );
    app.smtp.restart_with_reply(None).await;
    let deliveries = clients.settled_tenant("t", 5, Duration::from_secs(60)).await;
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.status() == DeliveryStatus::Sent),
        "{deliveries:#?}"
    );
    assert_eq!(app.smtp.received().len(), 5);
    wait_until(
        "the relay's health back to SERVING",
        Duration::from_secs(10),
        || async { (health("dialin.notifier.v1.Relay").await == ServingStatus::Serving).then_some(()) },
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_in_every_second() {
    let app = TestApp::builder()
        .notifier_flags(&["--smtp-max-rate", "10/s"])
        .start()
        .await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    onboard(&mut clients, "t", 40).await;
    let received = accepted(&app.smtp, 40, Duration::from_secs(60)).await;
    let times: Vec<i64> = received.iter().map(|email| email.received_at).collect();
    let busiest = busiest_window(&received, 3_000);
    // Dialin starts at most 10 a second; the relay's own processing time varies
    // (one message late, the next on time), so over three seconds its clock
    // sees at most one more at either end.
    assert!(
        busiest <= 32,
        "{busiest} emails in three seconds under a cap of 10/s: {times:?}"
    );
    let span = times.last().unwrap_or(&0) - times.first().unwrap_or(&0);
    assert!(span >= 3_000, "40 emails at 10/s took {span} ms");
    clients.settled_tenant("t", 40, Duration::from_secs(30)).await;
    let list = clients
        .notifier
        .list_deliveries(notifier::ListDeliveriesRequest {
            tenant_id: "t".into(),
            status: DeliveryStatus::Sent.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("ListDeliveries")
        .into_inner();
    assert_eq!(list.deliveries.len(), 40);
    let pending = clients
        .notifier
        .list_deliveries(notifier::ListDeliveriesRequest {
            tenant_id: "t".into(),
            status: DeliveryStatus::Pending.into(),
            ..Default::default()
        })
        .await
        .expect("ListDeliveries")
        .into_inner();
    assert!(pending.deliveries.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_hands_an_interactive_event_over_before_a_bulk_backlog() {
    let mut app = TestApp::builder().notifier_starts_later().start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    let (ann, _) = clients.license("t", "ann").await;
    // Three NotifyBatch calls' worth of bulk events queue up while the notifier is down.
    let users: Vec<settings::UserToLicense> = (0..2200)
        .map(|at| settings::UserToLicense {
            user_id: format!("u{at}"),
            email: format!("u{at}@example.com"),
            display_name: format!("User {at}"),
            ..Default::default()
        })
        .collect();
    for chunk in users.chunks(1000) {
        clients
            .settings
            .assign_licenses(settings::AssignLicensesRequest {
                tenant_id: "t".into(),
                users: chunk.to_vec(),
            })
            .await
            .expect("AssignLicenses");
    }
    clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: ann.user_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ResetPin");
    app.start_notifier().await;
    let deliveries = clients.settled_tenant("t", 2202, Duration::from_secs(120)).await;
    let reset = deliveries
        .iter()
        .find(|delivery| delivery.kind() == notifier::EmailKind::PinReset)
        .expect("the PIN reset's delivery");
    let created = |delivery: &notifier::Delivery| delivery.created_at.as_ref().map(|at| (at.seconds, at.nanos));
    let last_bulk = deliveries
        .iter()
        .filter(|delivery| delivery.priority() == Priority::Bulk)
        .filter_map(created)
        .max()
        .expect("bulk deliveries");
    assert!(
        created(reset) < Some(last_bulk),
        "the PIN reset, queued last, reached the notifier with the last bulk batch"
    );
    app.stop().await;
}
