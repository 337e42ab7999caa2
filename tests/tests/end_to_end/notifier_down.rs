//! The notifier being down delays emails; it never fails the admin's call.

use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_the_notifier_is_down_are_emailed_once_when_it_starts() {
    let mut app = TestApp::builder().notifier_starts_later().start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    let mut pins = Vec::new();
    for user in ["a", "b", "c"] {
        pins.push(clients.license("t", user).await.1);
    }
    let reset = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "c".into(),
            self_service: false,
        })
        .await
        .expect("the admin's call succeeds while the notifier is down")
        .into_inner();

    app.start_notifier().await;
    for user in ["a", "b"] {
        let deliveries = clients.settled_deliveries("t", user, 1).await;
        assert_eq!(
            (deliveries[0].kind(), deliveries[0].status()),
            (EmailKind::Welcome, DeliveryStatus::Sent)
        );
    }
    // c's WELCOME and PIN_RESET arrive in one go: the WELCOME, still pending
    // with the old PIN, is superseded by the reset, or was sent before it.
    let c = clients.settled_deliveries("t", "c", 2).await;
    assert_eq!(c[1].kind(), EmailKind::PinReset);
    let email = app.smtp.wait_for(&c[1].delivery_id).await;
    assert!(email.text.contains(&reset.pin));

    let received = app.smtp.received();
    let mut ids: Vec<_> = received.iter().map(|e| e.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), received.len(), "an email arrived twice");
    let sent = ["a", "b"].len() + c.iter().filter(|d| d.status() == DeliveryStatus::Sent).count();
    assert_eq!(received.len(), sent);
    app.stop().await;
}
