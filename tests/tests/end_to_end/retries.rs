//! Retries that end, RetryDelivery, and PINs erased from what is stored.

use dialin_proto::{
    notifier::v1::{self as notifier, DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{DEADLINE, TestApp, wait_until};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_stop_at_the_horizon() {
    let mut app = TestApp::builder().retry_horizon("1s").start().await;
    app.smtp.stop().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.license("t", "hal").await;
    let deliveries = clients.settled_deliveries("t", "hal", 1).await;
    assert_eq!(deliveries[0].status(), DeliveryStatus::Failed);
    assert!(
        deliveries[0].reason.starts_with("gave up after"),
        "{}",
        deliveries[0].reason
    );
    assert!(
        deliveries[0].reason.contains("cannot reach the SMTP server"),
        "{}",
        deliveries[0].reason
    );
    assert!(
        deliveries[0].attempts >= 2,
        "retried before giving up: {}",
        deliveries[0].attempts
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_delivery_requeues_a_failed_email_and_refuses_the_rest() {
    let mut app = TestApp::builder().smtp_reply("550 5.7.1 relaying denied").start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.license("t", "ivy").await;
    let info = clients
        .settings
        .send_conference_info_email(settings::SendConferenceInfoEmailRequest {
            tenant_id: "t".into(),
            user_id: "ivy".into(),
            to_address: None,
        })
        .await
        .unwrap()
        .into_inner();
    let failed = clients.settled_deliveries("t", "ivy", 2).await;
    assert!(
        failed
            .iter()
            .all(|d| d.status() == DeliveryStatus::Failed && d.reason.contains("relaying denied"))
    );

    let retry = |delivery_id: &str| notifier::RetryDeliveryRequest {
        delivery_id: delivery_id.into(),
    };
    let welcome = failed.iter().find(|d| d.kind() == EmailKind::Welcome).unwrap();
    let refused = clients
        .notifier
        .retry_delivery(retry(&welcome.delivery_id))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("ResetPin"), "{}", refused.message());
    let unknown = clients
        .notifier
        .retry_delivery(retry("no-such-delivery"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    app.smtp.restart_with_reply(None).await;
    let requeued = clients
        .notifier
        .retry_delivery(retry(&info.delivery_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(requeued.status(), DeliveryStatus::Pending);
    let email = app.smtp.wait_for(&info.delivery_id).await;
    assert!(email.subject.contains("information"));
    let sent = wait_until("the retried email recorded as sent", DEADLINE, || {
        let mut notifier = clients.notifier.clone();
        let delivery_id = info.delivery_id.clone();
        async move {
            let delivery = notifier
                .get_delivery(notifier::GetDeliveryRequest { delivery_id })
                .await
                .ok()?
                .into_inner();
            (delivery.status() == DeliveryStatus::Sent).then_some(delivery)
        }
    })
    .await;
    assert_eq!(sent.attempts, 2);
    let again = clients
        .notifier
        .retry_delivery(retry(&info.delivery_id))
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::FailedPrecondition,
        "only a FAILED delivery can be retried"
    );
    app.stop().await;
}

/// Whether any stored blob holds `needle`.
async fn stored_anywhere(db: &sea_orm::DatabaseConnection, query: &str, needle: &str) -> bool {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), query.to_owned()))
        .await
        .expect("read the stored payloads");
    rows.iter().any(|row| {
        let payload: Option<Vec<u8>> = row.try_get_by_index(0).expect("a blob column");
        payload.is_some_and(|bytes| bytes.windows(needle.len()).any(|window| window == needle.as_bytes()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_is_erased_from_stored_payloads_once_decided() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    let (_, welcome_pin) = clients.license("t", "joy").await;
    clients.set_switch("t", false).await;
    let suppressed_pin = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "joy".into(),
            self_service: false,
        })
        .await
        .unwrap()
        .into_inner()
        .pin;
    clients.settled_deliveries("t", "joy", 2).await;
    let settings_db = app.settings_database().await;
    wait_until("the outbox to drain", DEADLINE, || {
        let db = settings_db.clone();
        async move {
            let left = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) FROM outbox",
                ))
                .await
                .ok()??;
            (left.try_get_by_index::<i64>(0).ok()? == 0).then_some(())
        }
    })
    .await;
    let notifier_db = app.notifier_database().await;
    for pin in [&welcome_pin, &suppressed_pin] {
        assert!(
            !stored_anywhere(&notifier_db, "SELECT payload FROM deliveries", pin).await,
            "a decided delivery keeps its PIN"
        );
    }
    app.stop().await;
}
