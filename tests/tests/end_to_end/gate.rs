//! The tenant switch, enforced by the notifier: suppression with a reason,
//! manual sends that still go, no resend later, and nothing for no-op changes.

use dialin_proto::{
    notifier::v1::{self as notifier, DeliveryStatus, EmailKind, Trigger},
    settings::v1::{self as settings, NumberType, Provider},
};
use dialin_tests::TestApp;

const TOLL: &str = "+14255550100";
const TOLL_2: &str = "+14255550111";

fn user_ref(user_id: &str) -> (String, String) {
    ("t".to_owned(), user_id.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_off_suppresses_every_automatic_kind_but_not_the_manual_send() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.add_number("t", TOLL_2, NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    let off = clients.set_switch("t", false).await;
    assert!(!off.automatically_send_emails_to_users);

    let (tenant_id, user_id) = user_ref("eve");
    let (_, welcome_pin) = clients.license(&tenant_id, &user_id).await;
    let reset = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
            self_service: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reset.pin.len(),
        12,
        "with the switch off the admin still sees the PIN once"
    );
    clients
        .settings
        .reset_conference_id(settings::ResetConferenceIdRequest {
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
        })
        .await
        .unwrap();
    let manual = clients
        .settings
        .send_conference_info_email(settings::SendConferenceInfoEmailRequest {
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
            to_address: None,
        })
        .await
        .unwrap()
        .into_inner();
    clients
        .settings
        .set_provider(settings::SetProviderRequest {
            tenant_id: tenant_id.clone(),
            user_id: user_id.clone(),
            provider: Provider::None.into(),
            provider_name: String::new(),
        })
        .await
        .unwrap();

    let deliveries = clients.settled_deliveries(&tenant_id, &user_id, 5).await;
    let kinds: Vec<_> = deliveries.iter().map(|d| d.kind()).collect();
    assert_eq!(
        kinds,
        [
            EmailKind::Welcome,
            EmailKind::PinReset,
            EmailKind::SettingsChanged,
            EmailKind::ConferenceInfo,
            EmailKind::Disabled
        ]
    );
    for delivery in &deliveries {
        if delivery.kind() == EmailKind::ConferenceInfo {
            assert_eq!(delivery.status(), DeliveryStatus::Sent);
            assert_eq!(delivery.delivery_id, manual.delivery_id);
        } else {
            assert_eq!(delivery.status(), DeliveryStatus::Suppressed, "{delivery:?}");
            assert!(
                delivery.reason.contains("switched off"),
                "reason: {:?}",
                delivery.reason
            );
        }
    }
    let received = app.smtp.received();
    assert_eq!(received.len(), 1, "only the manual send leaves: {received:#?}");
    assert_eq!(received[0].delivery_id(), manual.delivery_id);
    assert!(!received[0].mentions(&welcome_pin) && !received[0].mentions(&reset.pin));

    // Turning the switch back on sends nothing that was suppressed.
    clients.set_switch("t", true).await;
    clients.set_switch("t", true).await;
    let (_, bob_pin) = clients.license("t", "bob").await;
    let bob = clients.settled_deliveries("t", "bob", 1).await;
    let bob_email = app.smtp.wait_for(&bob[0].delivery_id).await;
    assert!(bob_email.text.contains(&bob_pin));
    let eve_after = clients.deliveries(&tenant_id, &user_id).await;
    assert!(
        eve_after
            .iter()
            .all(|d| d.kind() == EmailKind::ConferenceInfo || d.status() == DeliveryStatus::Suppressed)
    );
    assert_eq!(
        app.smtp.received().len(),
        2,
        "the manual send and bob's WELCOME, nothing resent"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_service_reset_and_no_op_changes_send_nothing() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    let (user, _) = clients.license("t", "fay").await;
    let own = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "fay".into(),
            self_service: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.pin.len(), 5, "the user sees the new PIN on screen");
    let unchanged = clients
        .settings
        .set_default_numbers(settings::SetDefaultNumbersRequest {
            tenant_id: "t".into(),
            user_id: "fay".into(),
            toll_number: Some(TOLL.into()),
            toll_free_number: Some(String::new()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unchanged.version,
        own.user.as_ref().unwrap().version,
        "a no-op is not a change"
    );
    clients
        .settings
        .set_provider(settings::SetProviderRequest {
            tenant_id: "t".into(),
            user_id: "fay".into(),
            provider: Provider::Hosted.into(),
            provider_name: String::new(),
        })
        .await
        .unwrap();
    // A later email proves every earlier event has been through the notifier.
    let marker = clients
        .settings
        .send_conference_info_email(settings::SendConferenceInfoEmailRequest {
            tenant_id: "t".into(),
            user_id: "fay".into(),
            to_address: None,
        })
        .await
        .unwrap()
        .into_inner();
    app.smtp.wait_for(&marker.delivery_id).await;
    let deliveries = clients.settled_deliveries("t", "fay", 2).await;
    let kinds: Vec<_> = deliveries.iter().map(|d| d.kind()).collect();
    assert_eq!(kinds, [EmailKind::Welcome, EmailKind::ConferenceInfo]);
    assert_eq!(user.version, 1);
    app.stop().await;
}

fn direct_event(event_id: &str, kind: EmailKind, trigger: Trigger, pin: &str) -> notifier::NotifyRequest {
    notifier::NotifyRequest {
        event_id: event_id.into(),
        tenant_id: "direct".into(),
        policy_version: 0,
        kind: kind.into(),
        trigger: trigger.into(),
        recipient: Some(notifier::Recipient {
            user_id: "gus".into(),
            email: "gus@example.com".into(),
            display_name: "Gus".into(),
            locale: String::new(),
        }),
        conference: Some(notifier::Conference {
            conference_id: "7654321".into(),
            toll_number: TOLL.into(),
            toll_free_number: String::new(),
            pin: pin.into(),
        }),
        occurred_at: None,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_gates_whoever_calls_it_and_sends_each_event_once() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;

    // A repeated event_id answers as the first time and sends once.
    let first = clients
        .notifier
        .notify(direct_event("e-1", EmailKind::PinReset, Trigger::Automatic, "24680"))
        .await
        .unwrap()
        .into_inner();
    let again = clients
        .notifier
        .notify(direct_event("e-1", EmailKind::PinReset, Trigger::Automatic, "24680"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.delivery_id, again.delivery_id);
    let email = app.smtp.wait_for(&first.delivery_id).await;
    assert!(email.text.contains("24680"));

    // The policy says off: a caller asking the notifier directly is suppressed.
    let policy = clients
        .notifier
        .put_tenant_policy(notifier::PutTenantPolicyRequest {
            tenant_id: "direct".into(),
            automatically_send_emails_to_users: false,
            default_locale: "en-US".into(),
            version: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(policy.version, 3);
    let stale = clients
        .notifier
        .put_tenant_policy(notifier::PutTenantPolicyRequest {
            tenant_id: "direct".into(),
            automatically_send_emails_to_users: true,
            version: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !stale.automatically_send_emails_to_users && stale.version == 3,
        "a stale policy is ignored"
    );
    let mut event = direct_event("e-2", EmailKind::PinReset, Trigger::Automatic, "13579");
    event.policy_version = 3;
    let suppressed = clients.notifier.notify(event).await.unwrap().into_inner();
    assert_eq!(suppressed.status(), DeliveryStatus::Suppressed);
    assert!(suppressed.reason.contains("switched off"));

    // An event made under a newer policy than the notifier holds is refused until the policy arrives.
    let mut ahead = direct_event("e-3", EmailKind::PinReset, Trigger::Automatic, "13579");
    ahead.policy_version = 9;
    let refused = clients.notifier.notify(ahead).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");

    // A manual send is not gated.
    let manual = clients
        .notifier
        .notify(direct_event("e-4", EmailKind::ConferenceInfo, Trigger::Manual, ""))
        .await
        .unwrap()
        .into_inner();
    app.smtp.wait_for(&manual.delivery_id).await;
    let deliveries = clients.settled_deliveries("direct", "gus", 3).await;
    assert_eq!(
        deliveries.iter().filter(|d| d.status() == DeliveryStatus::Sent).count(),
        2
    );
    assert_eq!(
        app.smtp.received_for(&first.delivery_id).len(),
        1,
        "the repeated event was sent once"
    );
    assert_eq!(app.smtp.received().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_refuses_a_pin_where_none_may_be() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    let cases = [
        (EmailKind::ConferenceInfo, Trigger::Manual, "12345"),
        (EmailKind::SettingsChanged, Trigger::Automatic, "12345"),
        (EmailKind::Disabled, Trigger::Automatic, "12345"),
        (EmailKind::PinReset, Trigger::Manual, "12345"),
        (EmailKind::Welcome, Trigger::Automatic, ""),
        (EmailKind::Unspecified, Trigger::Automatic, ""),
        (EmailKind::Welcome, Trigger::Unspecified, "12345"),
    ];
    for (index, (kind, trigger, pin)) in cases.into_iter().enumerate() {
        let status = clients
            .notifier
            .notify(direct_event(&format!("bad-{index}"), kind, trigger, pin))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{kind:?} {trigger:?}: {status:?}"
        );
        assert!(
            !status.message().contains("12345"),
            "the PIN echoed in an error: {}",
            status.message()
        );
    }
    assert!(
        clients.deliveries("direct", "gus").await.is_empty(),
        "nothing half-written"
    );
    app.stop().await;
}

/// An event for `user_id` of tenant "direct", the change made `second` seconds
/// after the epoch (only their order matters).
fn batch_event(
    event_id: &str,
    user_id: &str,
    kind: EmailKind,
    trigger: Trigger,
    pin: &str,
    second: i64,
) -> notifier::NotifyRequest {
    let mut event = direct_event(event_id, kind, trigger, pin);
    if let Some(recipient) = event.recipient.as_mut() {
        recipient.user_id = user_id.into();
        recipient.email = format!("{user_id}@example.com");
    }
    event.occurred_at = Some(prost_types::Timestamp {
        seconds: second,
        nanos: 0,
    });
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_batch_answers_each_event_as_notify_would_in_one_call() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    let mut ahead = batch_event("b-4", "ida", EmailKind::Welcome, Trigger::Automatic, "33333", 100);
    ahead.policy_version = 9;
    let events = vec![
        batch_event("b-0", "gus", EmailKind::Welcome, Trigger::Automatic, "11111", 100),
        // A newer PIN for the same user in the same batch: the welcome's PIN is stale.
        batch_event("b-1", "gus", EmailKind::PinReset, Trigger::Automatic, "22222", 200),
        batch_event("b-2", "gus", EmailKind::ConferenceInfo, Trigger::Manual, "12345", 300),
        // The same event twice answers as the first time.
        batch_event("b-1", "gus", EmailKind::PinReset, Trigger::Automatic, "22222", 200),
        ahead,
        batch_event("b-5", "ida", EmailKind::Welcome, Trigger::Automatic, "44444", 100),
        batch_event("b-6", "hal", EmailKind::PinReset, Trigger::Automatic, "55555", 50),
        // Arrives after the reset it predates: never sent.
        batch_event("b-7", "hal", EmailKind::Welcome, Trigger::Automatic, "66666", 40),
    ];
    let results = clients
        .notifier
        .notify_batch(notifier::NotifyBatchRequest { events: events.clone() })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), events.len(), "{results:#?}");
    let recorded = |index: usize| {
        results[index]
            .recorded
            .clone()
            .unwrap_or_else(|| panic!("events[{index}] was refused: {:?}", results[index].error))
    };
    let refused = |index: usize| {
        results[index]
            .error
            .clone()
            .unwrap_or_else(|| panic!("events[{index}] was recorded: {:?}", results[index].recorded))
    };
    let pin_reset = recorded(1);
    assert_eq!(pin_reset.status(), DeliveryStatus::Pending);
    assert_eq!(recorded(0).status(), DeliveryStatus::Superseded);
    assert!(recorded(0).reason.contains(&pin_reset.delivery_id), "{:?}", recorded(0));
    assert_eq!(refused(2).code, tonic::Code::InvalidArgument as i32);
    assert!(refused(2).message.starts_with("events[2]: "), "{:?}", refused(2));
    assert!(!refused(2).message.contains("12345"));
    assert_eq!(recorded(3).delivery_id, pin_reset.delivery_id);
    assert_eq!(
        refused(4).code,
        tonic::Code::FailedPrecondition as i32,
        "{:?}",
        refused(4)
    );
    assert_eq!(recorded(5).status(), DeliveryStatus::Pending);
    assert_eq!(recorded(6).status(), DeliveryStatus::Pending);
    assert_eq!(recorded(7).status(), DeliveryStatus::Superseded);

    for (index, pin) in [(1, "22222"), (5, "44444"), (6, "55555")] {
        let email = app.smtp.wait_for(&recorded(index).delivery_id).await;
        assert!(email.text.contains(pin), "events[{index}]: {}", email.text);
    }
    // The same batch again records nothing new and sends nothing more.
    let again = clients
        .notifier
        .notify_batch(notifier::NotifyBatchRequest { events })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        again[1].recorded.as_ref().map(|r| &r.delivery_id),
        Some(&pin_reset.delivery_id)
    );
    assert_eq!(clients.settled_deliveries("direct", "gus", 2).await.len(), 2);
    assert_eq!(clients.settled_deliveries("direct", "hal", 2).await.len(), 2);
    let texts: Vec<String> = app.smtp.received().into_iter().map(|email| email.text).collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(
        !texts
            .iter()
            .any(|text| text.contains("11111") || text.contains("66666"))
    );

    for size in [0, 1001] {
        let event = batch_event("b-x", "gus", EmailKind::Welcome, Trigger::Automatic, "11111", 1);
        let status = clients
            .notifier
            .notify_batch(notifier::NotifyBatchRequest {
                events: vec![event; size],
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{size} events: {status:?}");
        assert!(status.message().contains("1 to 1000"), "{status:?}");
    }
    app.stop().await;
}
