//! /metrics after a small flow: the counters moved by the right amounts.

use std::time::Duration;

use dialin_proto::{
    notifier::v1::{self as notifier, EmailKind, Trigger},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Clients, Cluster, ClusterOptions, wait_until};

/// A cluster serving /metrics, and tenant "t" with a toll number.
async fn metered_cluster() -> (Cluster, Clients) {
    let cluster = Cluster::start(ClusterOptions {
        metrics: true,
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    (cluster, clients)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_emails_calls_and_the_backlog() {
    let (cluster, mut clients) = metered_cluster().await;
    for user in ["a", "b", "c"] {
        clients.license("t", user).await;
    }
    clients
        .settings
        .send_conference_info_email(settings::SendConferenceInfoEmailRequest {
            tenant_id: "t".into(),
            user_id: "a".into(),
            to_address: None,
        })
        .await
        .unwrap();
    let refused = clients
        .settings
        .get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            user_id: String::new(),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err());
    clients.settled_tenant("t", 4, Duration::from_secs(30)).await;

    let notifier = cluster.notifier_metrics[0];
    let emails = wait_until(
        "the email counters and the backlog gauge",
        Duration::from_secs(30),
        || async move {
            let metrics = Cluster::scrape(notifier).await;
            let welcome = Cluster::sample(&metrics, r#"dialin_emails_total{kind="WELCOME",outcome="SENT"}"#);
            let info = Cluster::sample(
                &metrics,
                r#"dialin_emails_total{kind="CONFERENCE_INFO",outcome="SENT"}"#,
            );
            (welcome == 3.0 && info == 1.0 && metrics.contains("dialin_deliveries_pending 0")).then_some(metrics)
        },
    )
    .await;
    assert!(emails.contains("dialin_oldest_pending_delivery_age_seconds"));
    assert!(
        emails.contains("dialin_rpc_duration_seconds_bucket"),
        "latency is a histogram"
    );

    let settings = Cluster::scrape(cluster.settings_metrics[0]).await;
    let assign = r#"dialin_rpc_requests_total{method="/dialin.settings.v1.SettingsService/AssignLicense",code="Ok"}"#;
    let bad =
        r#"dialin_rpc_requests_total{method="/dialin.settings.v1.SettingsService/GetUser",code="InvalidArgument"}"#;
    assert_eq!(Cluster::sample(&settings, assign), 3.0, "{settings}");
    assert_eq!(Cluster::sample(&settings, bad), 1.0, "{settings}");
    assert!(settings.contains("dialin_outbox_pending"), "{settings}");
    println!("metrics: 3 WELCOME + 1 CONFERENCE_INFO counted SENT, 3 AssignLicense OK, 1 GetUser InvalidArgument");
}

/// The outbox dispatcher writes one run's outcomes while it hands over the
/// next: still no event reaches the notifier twice. The notifier answers a
/// repeated event as it first recorded it, so only its counter can tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_onboarding_hands_each_event_over_once() {
    const USERS: usize = 6_000;
    let (cluster, mut clients) = metered_cluster().await;
    clients.set_switch("t", false).await;
    // Six `NotifyBatch` runs of 1,000, quick ones: every WELCOME is suppressed.
    for call in 0..USERS / 1000 {
        let users = (call * 1000..(call + 1) * 1000)
            .map(|i| settings::UserToLicense {
                user_id: format!("u{i}"),
                email: format!("u{i}@example.com"),
                display_name: format!("User {i}"),
                ..Default::default()
            })
            .collect();
        let results = clients
            .settings
            .assign_licenses(settings::AssignLicensesRequest {
                tenant_id: "t".into(),
                users,
            })
            .await
            .expect("AssignLicenses")
            .into_inner()
            .results;
        assert!(results.iter().all(|result| result.error.is_none()), "{results:?}");
    }

    let notifier = cluster.notifier_metrics[0];
    let suppressed = r#"dialin_emails_total{kind="WELCOME",outcome="SUPPRESSED"}"#;
    let metrics = wait_until(
        "every WELCOME recorded SUPPRESSED",
        Duration::from_secs(60),
        || async move {
            let metrics = Cluster::scrape(notifier).await;
            (Cluster::sample(&metrics, suppressed) == USERS as f64).then_some(metrics)
        },
    )
    .await;
    let repeated = "dialin_events_repeated_total";
    assert!(metrics.contains(repeated), "{metrics}");
    assert_eq!(Cluster::sample(&metrics, repeated), 0.0, "{metrics}");

    // The counter does count: the same event handed over twice counts once.
    let event = notifier::NotifyRequest {
        event_id: "by-hand".into(),
        tenant_id: "t".into(),
        policy_version: 0,
        kind: EmailKind::Welcome.into(),
        trigger: Trigger::Automatic.into(),
        recipient: Some(notifier::Recipient {
            user_id: "u0".into(),
            email: "u0@example.com".into(),
            display_name: "User 0".into(),
            locale: String::new(),
        }),
        conference: Some(notifier::Conference {
            conference_id: "7654321".into(),
            toll_number: "+14255550100".into(),
            toll_free_number: String::new(),
            pin: "12345".into(),
        }),
        occurred_at: None,
        ..Default::default()
    };
    for _ in 0..2 {
        clients.notifier.notify(event.clone()).await.expect("Notify");
    }
    let metrics = Cluster::scrape(notifier).await;
    assert_eq!(Cluster::sample(&metrics, repeated), 1.0, "{metrics}");
    println!("{USERS} events recorded, none handed over twice; a repeat by hand counted once");
}
