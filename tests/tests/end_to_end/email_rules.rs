//! Every row of the contract's email table, read back from what the SMTP server received.

use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind, Trigger},
    settings::v1::{self as settings, NumberType, Provider},
};
use dialin_tests::{DEADLINE, TestApp, wait_until};

const TOLL: &str = "+14255550100";
const TOLL_FR: &str = "+33170000000";
const TOLL_FREE: &str = "+18005550199";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_carries_conference_id_numbers_and_pin() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.add_number("t", TOLL_FR, NumberType::Toll, "FR").await;
    clients.add_number("t", TOLL_FREE, NumberType::TollFree, "US").await;

    let response = clients
        .settings
        .assign_license(settings::AssignLicenseRequest {
            tenant_id: "t".into(),
            user_id: "marie".into(),
            email: "marie@example.fr".into(),
            display_name: "Marie Curie".into(),
            usage_location: Some("FR".into()),
            toll_free_number: Some(TOLL_FREE.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let user = response.user.unwrap();
    // No toll number asked for: the first toll number in the user's country.
    assert_eq!(user.toll_number, TOLL_FR);
    assert_eq!(user.toll_free_number, TOLL_FREE);
    assert_eq!(user.conference_id.len(), 7);
    assert!(user.conference_id.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(response.pin.len(), 5, "the default pin_length is 5");

    let deliveries = clients.settled_deliveries("t", "marie", 1).await;
    assert_eq!(deliveries[0].kind(), EmailKind::Welcome);
    assert_eq!(deliveries[0].trigger(), Trigger::Automatic);
    assert_eq!(deliveries[0].status(), DeliveryStatus::Sent);
    let email = app.smtp.wait_for(&deliveries[0].delivery_id).await;
    assert_eq!(email.envelope_to, vec!["marie@example.fr"]);
    assert_eq!(
        email.headers.get("Auto-Submitted").map(String::as_str),
        Some("auto-generated")
    );
    assert_eq!(email.headers.get("Content-Language").map(String::as_str), Some("en"));
    assert!(email.to.contains("Marie Curie"), "{}", email.to);
    for value in [&user.conference_id, TOLL_FR, TOLL_FREE, &response.pin] {
        assert!(email.shows(value), "missing {value} in {}", email.text);
    }
    // Written for reading and dialling.
    let grouped_id = format!("{} {}", &user.conference_id[..3], &user.conference_id[3..]);
    assert!(email.text.contains(&grouped_id) && email.html.contains(&grouped_id));
    assert!(email.text.contains("+33 1 70 00 00 00") && email.html.contains("href=\"tel:+33170000000\""));
    // Nothing in the API gives the PIN back.
    let read = clients
        .settings
        .get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            user_id: "marie".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{read:?}").contains(&response.pin));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_reset_conference_id_reset_and_number_changes() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    clients.add_number("t", TOLL_FR, NumberType::Toll, "FR").await;
    clients.add_number("t", TOLL_FREE, NumberType::TollFree, "").await;
    let (user, first_pin) = clients.license("t", "ann").await;
    assert_eq!(user.toll_number, TOLL, "no usage location: the first toll number");

    let reset = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "ann".into(),
            self_service: false,
        })
        .await
        .unwrap()
        .into_inner();
    let new_pin = reset.pin;
    let reset_id = clients
        .settings
        .reset_conference_id(settings::ResetConferenceIdRequest {
            tenant_id: "t".into(),
            user_id: "ann".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(reset_id.conference_id, user.conference_id, "the old ID stops working");
    let renumbered = clients
        .settings
        .set_default_numbers(settings::SetDefaultNumbersRequest {
            tenant_id: "t".into(),
            user_id: "ann".into(),
            toll_number: Some(TOLL_FR.into()),
            toll_free_number: Some(TOLL_FREE.into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (renumbered.toll_number.as_str(), renumbered.toll_free_number.as_str()),
        (TOLL_FR, TOLL_FREE)
    );

    let deliveries = clients.settled_deliveries("t", "ann", 4).await;
    let kinds: Vec<_> = deliveries.iter().map(|d| d.kind()).collect();
    assert_eq!(
        kinds,
        [
            EmailKind::Welcome,
            EmailKind::PinReset,
            EmailKind::SettingsChanged,
            EmailKind::SettingsChanged
        ]
    );
    // The conference-ID email was still pending when the number email replaced
    // it, or it was sent: either way the user never gets a stale ID after the new one.
    let pin_reset = app.smtp.wait_for(&deliveries[1].delivery_id).await;
    for value in [&new_pin, &user.conference_id, TOLL] {
        assert!(pin_reset.shows(value), "PIN_RESET lacks {value}: {}", pin_reset.text);
    }
    assert!(!pin_reset.mentions(&first_pin), "the old PIN in PIN_RESET");
    let numbers = app.smtp.wait_for(&deliveries[3].delivery_id).await;
    for value in [&reset_id.conference_id, TOLL_FR, TOLL_FREE] {
        assert!(numbers.shows(value), "SETTINGS_CHANGED lacks {value}");
    }
    for settings_email in app
        .smtp
        .received()
        .iter()
        .filter(|e| deliveries[2..].iter().any(|d| d.delivery_id == e.delivery_id()))
    {
        assert!(
            !settings_email.mentions(&first_pin) && !settings_email.mentions(&new_pin),
            "a PIN in SETTINGS_CHANGED"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn license_provider_changes_and_removal_walk_through_the_kinds_in_order() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    let (_, first_pin) = clients.license("t", "bo").await;
    let set_provider = |provider: Provider, name: &str| settings::SetProviderRequest {
        tenant_id: "t".into(),
        user_id: "bo".into(),
        provider: provider.into(),
        provider_name: name.into(),
    };
    let away = clients
        .settings
        .set_provider(set_provider(Provider::ThirdParty, "Acme Audio"))
        .await
        .unwrap()
        .into_inner();
    assert!(away.pin.is_empty());
    assert_eq!(
        away.user.as_ref().unwrap().conference_id,
        "",
        "off the bridge, no conference ID"
    );
    let back = clients
        .settings
        .set_provider(set_provider(Provider::Hosted, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(back.pin.len(), 12, "moving to HOSTED issues a PIN");
    let same = clients
        .settings
        .set_provider(set_provider(Provider::Hosted, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(same.pin.is_empty(), "already hosted: no change, no PIN");
    clients
        .settings
        .set_provider(set_provider(Provider::None, ""))
        .await
        .unwrap();
    clients
        .settings
        .set_provider(set_provider(Provider::Hosted, ""))
        .await
        .unwrap();
    let removed = clients
        .settings
        .remove_license(settings::RemoveLicenseRequest {
            tenant_id: "t".into(),
            user_id: "bo".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!removed.licensed);

    let deliveries = clients.settled_deliveries("t", "bo", 6).await;
    let kinds: Vec<_> = deliveries.iter().map(|d| d.kind()).collect();
    assert_eq!(
        kinds,
        [
            EmailKind::Welcome,
            EmailKind::Disabled,
            EmailKind::Welcome,
            EmailKind::Disabled,
            EmailKind::Welcome,
            EmailKind::Disabled
        ]
    );
    // Changes this quick may overtake a pending WELCOME (its conference ID and
    // PIN no longer work): it is then superseded, never sent late.
    for delivery in &deliveries {
        let received = app.smtp.received_for(&delivery.delivery_id);
        match delivery.status() {
            DeliveryStatus::Sent => assert_eq!(received.len(), 1, "{delivery:?}"),
            DeliveryStatus::Superseded if delivery.kind() == EmailKind::Welcome => {
                assert!(received.is_empty(), "{delivery:?}")
            }
            other => panic!("unexpected {other:?}: {delivery:?}"),
        }
        if let Some(email) = received.first().filter(|_| delivery.kind() == EmailKind::Disabled) {
            assert!(
                !email.mentions(&first_pin) && !email.mentions(&back.pin),
                "a PIN in DISABLED"
            );
            assert!(email.text.contains("turned off"), "{}", email.text);
        }
    }
    assert_eq!(
        deliveries[5].status(),
        DeliveryStatus::Sent,
        "the last word reaches the user"
    );
    if let Some(second_welcome) = app.smtp.received_for(&deliveries[2].delivery_id).first() {
        assert!(second_welcome.text.contains(&back.pin));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_number_replacement_emails_each_affected_user() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.add_number("t", TOLL_FR, NumberType::Toll, "FR").await;
    for user in ["u1", "u2", "u3"] {
        clients.license("t", user).await;
    }
    // u3 already uses the new number: it is not affected.
    clients
        .settings
        .set_default_numbers(settings::SetDefaultNumbersRequest {
            tenant_id: "t".into(),
            user_id: "u3".into(),
            toll_number: Some(TOLL_FR.into()),
            toll_free_number: None,
        })
        .await
        .unwrap();
    let replaced = clients
        .settings
        .replace_default_number(settings::ReplaceDefaultNumberRequest {
            tenant_id: "t".into(),
            from_number: TOLL.into(),
            to_number: TOLL_FR.into(),
            number_type: NumberType::Toll.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replaced.users_updated, 2);
    for user in ["u1", "u2"] {
        let deliveries = clients.settled_deliveries("t", user, 2).await;
        assert_eq!(deliveries[1].kind(), EmailKind::SettingsChanged);
        let email = app.smtp.wait_for(&deliveries[1].delivery_id).await;
        assert!(email.shows(TOLL_FR) && !email.mentions(TOLL), "{}", email.text);
    }
    assert_eq!(
        clients.settled_deliveries("t", "u3", 2).await.len(),
        2,
        "u3: WELCOME and its own change only"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_conference_info_goes_without_pin_to_the_chosen_address() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    clients.add_number("t", TOLL_FREE, NumberType::TollFree, "US").await;
    let (user, pin) = clients.license("t", "cy").await;
    let sent = clients
        .settings
        .send_conference_info_email(settings::SendConferenceInfoEmailRequest {
            tenant_id: "t".into(),
            user_id: "cy".into(),
            to_address: Some("assistant@example.com".into()),
        })
        .await
        .unwrap()
        .into_inner();
    let email = app.smtp.wait_for(&sent.delivery_id).await;
    assert_eq!(email.envelope_to, vec!["assistant@example.com"]);
    assert!(email.shows(&user.conference_id) && email.shows(TOLL));
    assert!(!email.mentions(&pin), "CONFERENCE_INFO must never carry the PIN");
    // The outcome is written a few milliseconds after the server took the email.
    let delivery = wait_until("the email recorded as sent", DEADLINE, || {
        let mut notifier = clients.notifier.clone();
        let delivery_id = sent.delivery_id.clone();
        async move {
            let delivery = notifier
                .get_delivery(dialin_proto::notifier::v1::GetDeliveryRequest { delivery_id })
                .await
                .ok()?
                .into_inner();
            (delivery.status() != DeliveryStatus::Pending).then_some(delivery)
        }
    })
    .await;
    assert_eq!(
        (delivery.kind(), delivery.trigger(), delivery.status()),
        (EmailKind::ConferenceInfo, Trigger::Manual, DeliveryStatus::Sent)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_override_and_pin_length() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    let updated = clients
        .settings
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            send_email_from_override: Some(true),
            send_email_from_address: Some("conferencing@contoso.example".into()),
            send_email_from_display_name: Some("Contoso Meetings".into()),
            pin_length: Some(12),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.version, 1);
    let (_, pin) = clients.license("t", "dee").await;
    assert_eq!(pin.len(), 12);
    let deliveries = clients.settled_deliveries("t", "dee", 1).await;
    let email = app.smtp.wait_for(&deliveries[0].delivery_id).await;
    assert!(
        email.from.contains("Contoso Meetings") && email.from.contains("conferencing@contoso.example"),
        "{}",
        email.from
    );

    clients
        .settings
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            send_email_from_override: Some(false),
            pin_length: Some(4),
            ..Default::default()
        })
        .await
        .unwrap();
    let reset = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "dee".into(),
            self_service: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.pin.len(), 4, "a new length applies to PINs generated afterwards");
    let deliveries = clients.settled_deliveries("t", "dee", 2).await;
    let email = app.smtp.wait_for(&deliveries[1].delivery_id).await;
    assert!(
        email.from.contains("no-reply@dialin.test"),
        "override off: the service's sender, got {}",
        email.from
    );
    app.stop().await;
}
