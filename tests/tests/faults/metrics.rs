//! /metrics after a small flow: the counters moved by the right amounts.

use std::time::Duration;

use dialin_proto::settings::v1::{self as settings, NumberType};
use dialin_tests::{Cluster, ClusterOptions, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_emails_calls_and_the_backlog() {
    let cluster = Cluster::start(ClusterOptions {
        metrics: true,
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
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
