//! Bad input gets the contract's status code and a message that says what to fix.

use dialin_proto::settings::v1::{self as settings, NumberType, Provider};
use dialin_tests::TestApp;
use tonic::Code;

const TOLL: &str = "+14255550100";

fn license(user_id: &str, email: &str, display_name: &str) -> settings::AssignLicenseRequest {
    settings::AssignLicenseRequest {
        tenant_id: "t".into(),
        user_id: user_id.into(),
        email: email.into(),
        display_name: display_name.into(),
        ..Default::default()
    }
}

fn assert_status<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, words: &str) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(words),
        "message {:?} should mention {words:?}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_invalid_argument() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    let s = &mut clients.settings;

    // A tenant with no toll number cannot license users, and is told what to do.
    assert_status(
        s.assign_license(license("u", "u@example.com", "U")).await,
        Code::FailedPrecondition,
        "AddServiceNumber",
    );
    s.add_service_number(settings::AddServiceNumberRequest {
        tenant_id: "t".into(),
        number: TOLL.into(),
        r#type: NumberType::Toll.into(),
        country: Some("US".into()),
    })
    .await
    .unwrap();

    assert_status(
        s.assign_license(license("u", "not-an-email", "U")).await,
        Code::InvalidArgument,
        "email",
    );
    assert_status(
        s.assign_license(license("u", "u@example.com", "Eve\r\nBcc: all@example.com"))
            .await,
        Code::InvalidArgument,
        "line breaks",
    );
    assert_status(
        s.assign_license(license("", "u@example.com", "U")).await,
        Code::InvalidArgument,
        "user_id",
    );
    assert_status(
        s.assign_license(license(&"x".repeat(129), "u@example.com", "U")).await,
        Code::InvalidArgument,
        "user_id",
    );
    let mut empty_tenant = license("u", "u@example.com", "U");
    empty_tenant.tenant_id = String::new();
    assert_status(s.assign_license(empty_tenant).await, Code::InvalidArgument, "tenant_id");
    let mut bad_locale = license("u", "u@example.com", "U");
    bad_locale.locale = Some("fr_FR".into());
    assert_status(s.assign_license(bad_locale).await, Code::InvalidArgument, "locale");

    for number in ["4255550100", "+1 425 555 0100", "+0123456789", "+12"] {
        let result = s
            .add_service_number(settings::AddServiceNumberRequest {
                tenant_id: "t".into(),
                number: number.into(),
                r#type: NumberType::Toll.into(),
                country: None,
            })
            .await;
        assert_status(result, Code::InvalidArgument, "E.164");
    }
    let unspecified_type = s
        .add_service_number(settings::AddServiceNumberRequest {
            tenant_id: "t".into(),
            number: "+14255550177".into(),
            r#type: NumberType::Unspecified.into(),
            country: None,
        })
        .await;
    assert_status(unspecified_type, Code::InvalidArgument, "TOLL");

    for length in [3, 13] {
        let result = s
            .update_tenant_settings(settings::UpdateTenantSettingsRequest {
                tenant_id: "t".into(),
                pin_length: Some(length),
                ..Default::default()
            })
            .await;
        assert_status(result, Code::InvalidArgument, "4 to 12");
    }
    for length in [4, 12] {
        let accepted = s
            .update_tenant_settings(settings::UpdateTenantSettingsRequest {
                tenant_id: "t".into(),
                pin_length: Some(length),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.pin_length, length);
    }
    let override_without_sender = s
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            send_email_from_override: Some(true),
            ..Default::default()
        })
        .await;
    assert_status(
        override_without_sender,
        Code::InvalidArgument,
        "send_email_from_address",
    );
    let stale = s
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            automatically_send_emails_to_users: Some(false),
            expected_version: Some(1),
            ..Default::default()
        })
        .await;
    assert_status(stale, Code::Aborted, "version 2");
    let current = s
        .get_tenant_settings(settings::GetTenantSettingsRequest { tenant_id: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        current.automatically_send_emails_to_users,
        "the refused update changed nothing"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_and_foreign_numbers() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.license("t", "ida").await;
    let s = &mut clients.settings;

    let unknown = s
        .get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            user_id: "nobody".into(),
            ..Default::default()
        })
        .await;
    assert_status(unknown, Code::NotFound, "nobody");
    let reset_unknown = s
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "nobody".into(),
            self_service: false,
        })
        .await;
    assert_status(reset_unknown, Code::NotFound, "nobody");

    let not_on_bridge = s
        .set_default_numbers(settings::SetDefaultNumbersRequest {
            tenant_id: "t".into(),
            user_id: "ida".into(),
            toll_number: Some("+14255550199".into()),
            toll_free_number: None,
        })
        .await;
    assert_status(not_on_bridge, Code::FailedPrecondition, "not a TOLL service number");
    let wrong_type = s
        .set_default_numbers(settings::SetDefaultNumbersRequest {
            tenant_id: "t".into(),
            user_id: "ida".into(),
            toll_number: None,
            toll_free_number: Some(TOLL.into()),
        })
        .await;
    assert_status(wrong_type, Code::FailedPrecondition, "TOLL_FREE");
    let mut requested = license("jo", "jo@example.com", "Jo");
    requested.toll_number = Some("+33170000000".into());
    assert_status(
        s.assign_license(requested).await,
        Code::FailedPrecondition,
        "+33170000000",
    );

    let already = s.assign_license(license("ida", "ida@example.com", "Ida")).await;
    assert_status(already, Code::FailedPrecondition, "already holds a license");
    let third_party_without_name = s
        .set_provider(settings::SetProviderRequest {
            tenant_id: "t".into(),
            user_id: "ida".into(),
            provider: Provider::ThirdParty.into(),
            provider_name: String::new(),
        })
        .await;
    assert_status(third_party_without_name, Code::InvalidArgument, "provider_name");
    s.remove_license(settings::RemoveLicenseRequest {
        tenant_id: "t".into(),
        user_id: "ida".into(),
    })
    .await
    .unwrap();
    let reset_unlicensed = s
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "ida".into(),
            self_service: false,
        })
        .await;
    assert_status(reset_unlicensed, Code::FailedPrecondition, "AssignLicense");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_unicode_is_handled_or_refused_never_a_panic() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    let accepted = [
        ("rtl", "\u{202E}evilname\u{202C} Ahmed"),
        ("zwj", "👩\u{200D}💻 Dev Team"),
        ("combining", "Zoe\u{0301} Ñandú 李小龍"),
        ("long", &"é".repeat(256)),
    ];
    for (user_id, name) in accepted {
        clients
            .settings
            .assign_license(license(user_id, &format!("{user_id}@example.com"), name))
            .await
            .unwrap_or_else(|status| panic!("{user_id}: {status:?}"));
        let deliveries = clients.settled_deliveries("t", user_id, 1).await;
        let email = app.smtp.wait_for(&deliveries[0].delivery_id).await;
        assert!(
            email.text.contains(name),
            "{user_id}: the name reaches the email intact"
        );
    }
    for (name, words) in [
        ("Nul\u{0}byte", "control"),
        ("Bell\u{7}", "control"),
        (&"x".repeat(257) as &str, "longer than"),
        ("Tab\there", "control"),
    ] {
        assert_status(
            s_assign(&mut clients.settings, name).await,
            Code::InvalidArgument,
            words,
        );
    }
    let mut bad_locale = license("loc", "loc@example.com", "Loc");
    bad_locale.locale = Some("fr-\u{0301}FR".into());
    assert_status(
        clients.settings.assign_license(bad_locale).await,
        Code::InvalidArgument,
        "BCP 47",
    );
    app.stop().await;
}

async fn s_assign(
    settings: &mut dialin_proto::settings::v1::settings_service_client::SettingsServiceClient<
        tonic::transport::Channel,
    >,
    name: &str,
) -> Result<tonic::Response<settings::AssignLicenseResponse>, tonic::Status> {
    settings.assign_license(license("odd", "odd@example.com", name)).await
}
