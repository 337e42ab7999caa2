//! Every error either service returns says why for a program: a
//! google.rpc.ErrorInfo (domain `dialin`, its reason), plus BadRequest on
//! INVALID_ARGUMENT, PreconditionFailure on FAILED_PRECONDITION and RetryInfo
//! on RESOURCE_EXHAUSTED and UNAVAILABLE (docs/errors.md). The walk goes
//! through each reason either service can answer with here.

use std::fmt::Debug;

use dialin_proto::{
    errors::v1::ErrorReason,
    notifier::v1::{self as notifier, EmailKind, Trigger},
    settings::v1::{self as settings, NumberType, Provider},
};
use dialin_tests::TestApp;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

const TOLL: &str = "+14255550100";

/// The failed call's status has `code`, an ErrorInfo with `reason`, and the
/// detail `code` calls for; returns its details.
fn explained<T: Debug>(result: Result<T, Status>, code: Code, reason: ErrorReason) -> ErrorDetails {
    let status = result.expect_err("the call should fail");
    refused(&status, code, reason)
}

fn refused(status: &Status, code: Code, reason: ErrorReason) -> ErrorDetails {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("dialin", reason.as_str_name()),
        "{status:?}"
    );
    match code {
        Code::InvalidArgument => assert!(
            details
                .bad_request()
                .is_some_and(|bad| !bad.field_violations.is_empty()),
            "no BadRequest on {status:?}"
        ),
        Code::FailedPrecondition => assert!(
            details
                .precondition_failure()
                .is_some_and(|failure| failure.violations[0].r#type == reason.as_str_name()),
            "no PreconditionFailure on {status:?}"
        ),
        Code::ResourceExhausted | Code::Unavailable => assert!(
            details.retry_info().and_then(|retry| retry.retry_delay).is_some(),
            "no RetryInfo on {status:?}"
        ),
        _ => {}
    }
    details
}

fn license(user_id: &str, email: &str) -> settings::AssignLicenseRequest {
    settings::AssignLicenseRequest {
        tenant_id: "t".into(),
        user_id: user_id.into(),
        email: email.into(),
        display_name: format!("User {user_id}"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_settings_service_says_why() {
    let app = TestApp::builder()
        .tokens(&[("operator-token", "*"), ("t-token", "tenant:t")])
        .start()
        .await;
    let mut anonymous = app.clients().await.settings;
    explained(
        anonymous
            .get_tenant_settings(settings::GetTenantSettingsRequest { tenant_id: "t".into() })
            .await,
        Code::Unauthenticated,
        ErrorReason::TokenMissing,
    );
    explained(
        app.settings_with_token("not-a-token")
            .get_tenant_settings(settings::GetTenantSettingsRequest { tenant_id: "t".into() })
            .await,
        Code::Unauthenticated,
        ErrorReason::TokenUnknown,
    );
    let mut s = app.settings_with_token("t-token");
    explained(
        s.get_tenant_settings(settings::GetTenantSettingsRequest {
            tenant_id: "other".into(),
        })
        .await,
        Code::PermissionDenied,
        ErrorReason::TenantNotAllowed,
    );

    explained(
        s.assign_license(license("ann", "ann@example.com")).await,
        Code::FailedPrecondition,
        ErrorReason::NoTollNumber,
    );
    let number = |number: &str, number_type: NumberType| settings::AddServiceNumberRequest {
        tenant_id: "t".into(),
        number: number.into(),
        r#type: number_type.into(),
        country: Some("US".into()),
    };
    s.add_service_number(number(TOLL, NumberType::Toll)).await.unwrap();
    let taken = explained(
        s.add_service_number(number(TOLL, NumberType::TollFree)).await,
        Code::AlreadyExists,
        ErrorReason::NumberTaken,
    );
    assert_eq!(taken.error_info().unwrap().metadata["number"], TOLL);
    let invalid = explained(
        s.assign_license(license("ann", "not-an-email")).await,
        Code::InvalidArgument,
        ErrorReason::InvalidField,
    );
    assert_eq!(invalid.bad_request().unwrap().field_violations[0].field, "email");
    let not_on_bridge = explained(
        s.assign_license(settings::AssignLicenseRequest {
            toll_number: Some("+14255550199".into()),
            ..license("ann", "ann@example.com")
        })
        .await,
        Code::FailedPrecondition,
        ErrorReason::NumberNotOnBridge,
    );
    assert_eq!(
        not_on_bridge.precondition_failure().unwrap().violations[0].subject,
        "number:+14255550199"
    );

    s.assign_license(license("ann", "ann@example.com")).await.unwrap();
    explained(
        s.assign_license(license("ann", "ann@example.com")).await,
        Code::FailedPrecondition,
        ErrorReason::UserAlreadyLicensed,
    );
    let email_taken = explained(
        s.assign_license(license("bob", "ANN@example.com")).await,
        Code::AlreadyExists,
        ErrorReason::EmailTaken,
    );
    assert_eq!(email_taken.error_info().unwrap().metadata["held_by"], "ann");
    // A batch's entries say why each was refused, with the same reasons.
    let batch = s
        .assign_licenses(settings::AssignLicensesRequest {
            tenant_id: "t".into(),
            users: [("bob", "bob@example.com"), ("cy", "Ann@Example.com"), ("dan", "dan@")]
                .into_iter()
                .map(|(user_id, email)| settings::UserToLicense {
                    user_id: user_id.into(),
                    email: email.into(),
                    display_name: format!("User {user_id}"),
                    ..Default::default()
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    let reasons: Vec<ErrorReason> = batch
        .results
        .iter()
        .map(|result| {
            result
                .error
                .as_ref()
                .map_or(ErrorReason::Unspecified, |error| error.reason())
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ErrorReason::Unspecified,
            ErrorReason::EmailTaken,
            ErrorReason::InvalidField
        ]
    );

    let not_found = explained(
        s.get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            user_id: "nobody".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        ErrorReason::UserNotFound,
    );
    assert_eq!(not_found.error_info().unwrap().metadata["user_id"], "nobody");
    explained(
        s.get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            email: "nobody@example.com".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        ErrorReason::UserNotFound,
    );

    s.set_provider(settings::SetProviderRequest {
        tenant_id: "t".into(),
        user_id: "bob".into(),
        provider: Provider::ThirdParty.into(),
        provider_name: "Other bridge".into(),
    })
    .await
    .unwrap();
    explained(
        s.reset_conference_id(settings::ResetConferenceIdRequest {
            tenant_id: "t".into(),
            user_id: "bob".into(),
        })
        .await,
        Code::FailedPrecondition,
        ErrorReason::UserNotOnHostedBridge,
    );
    s.remove_license(settings::RemoveLicenseRequest {
        tenant_id: "t".into(),
        user_id: "bob".into(),
    })
    .await
    .unwrap();
    explained(
        s.reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "bob".into(),
            self_service: false,
        })
        .await,
        Code::FailedPrecondition,
        ErrorReason::UserNotLicensed,
    );

    let mismatch = explained(
        s.update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            pin_length: Some(6),
            expected_version: Some(99),
            ..Default::default()
        })
        .await,
        Code::Aborted,
        ErrorReason::VersionMismatch,
    );
    assert_eq!(mismatch.error_info().unwrap().metadata["version"], "0");
    let out_of_range = explained(
        s.update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            pin_length: Some(3),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        ErrorReason::InvalidField,
    );
    assert_eq!(
        out_of_range.bad_request().unwrap().field_violations[0].field,
        "pin_length"
    );

    // Five wrong PINs lock the conference ID out, and RetryInfo says for how long.
    let ann = s
        .get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            user_id: "ann".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let wrong = settings::VerifyPinRequest {
        tenant_id: "t".into(),
        conference_id: ann.conference_id.clone(),
        pin: "0000000000".into(),
    };
    for _ in 0..5 {
        let answer = s.verify_pin(wrong.clone()).await.unwrap().into_inner();
        assert!(!answer.valid);
    }
    let lockout = explained(
        s.verify_pin(wrong).await,
        Code::ResourceExhausted,
        ErrorReason::PinTriesExhausted,
    );
    let wait = lockout.retry_info().unwrap().retry_delay.unwrap();
    assert!(wait.as_secs() > 14 * 60 && wait.as_secs() <= 15 * 60, "{wait:?}");

    // Emails, through settings.
    explained(
        s.get_delivery(settings::GetDeliveryRequest {
            tenant_id: "t".into(),
            delivery_id: "d-nonesuch".into(),
        })
        .await,
        Code::NotFound,
        ErrorReason::DeliveryNotFound,
    );
    let welcome = s
        .list_deliveries(settings::ListDeliveriesRequest {
            tenant_id: "t".into(),
            user_id: Some("ann".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
        .into_iter()
        .find(|delivery| delivery.kind() == EmailKind::Welcome)
        .expect("ann's WELCOME");
    explained(
        s.retry_delivery(settings::RetryDeliveryRequest {
            tenant_id: "t".into(),
            delivery_id: welcome.delivery_id,
        })
        .await,
        Code::FailedPrecondition,
        ErrorReason::DeliveryNotFailed,
    );

    // A method the service does not have: the framework's answer says why too.
    let channel = dialin_tests::channel(app.settings_addr(), None);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("authorization", "Bearer operator-token".parse().unwrap());
    let unknown: Result<tonic::Response<()>, Status> = grpc
        .unary(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static("/dialin.settings.v1.SettingsService/NoSuchMethod"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await;
    explained(unknown, Code::Unimplemented, ErrorReason::MethodNotFound);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_of_the_notifier_says_why() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    let n = &mut clients.notifier;
    explained(
        n.get_delivery(notifier::GetDeliveryRequest {
            delivery_id: "d-nonesuch".into(),
        })
        .await,
        Code::NotFound,
        ErrorReason::DeliveryNotFound,
    );
    let event = notifier::NotifyRequest {
        event_id: "e-1".into(),
        tenant_id: "t".into(),
        kind: EmailKind::ConferenceInfo.into(),
        trigger: Trigger::Manual.into(),
        recipient: Some(notifier::Recipient {
            user_id: "ann".into(),
            email: "ann@example.com".into(),
            display_name: "Ann".into(),
            locale: String::new(),
        }),
        conference: Some(notifier::Conference {
            conference_id: "1234567".into(),
            toll_number: TOLL.into(),
            toll_free_number: String::new(),
            pin: "12345".into(),
        }),
        ..Default::default()
    };
    let with_pin = explained(
        n.notify(event.clone()).await,
        Code::InvalidArgument,
        ErrorReason::InvalidField,
    );
    assert_eq!(
        with_pin.bad_request().unwrap().field_violations[0].field,
        "conference.pin"
    );
    let batch = n
        .notify_batch(notifier::NotifyBatchRequest { events: vec![event] })
        .await
        .unwrap()
        .into_inner();
    let refused_event = batch.results[0].error.as_ref().expect("the event is refused");
    assert_eq!(refused_event.reason(), ErrorReason::InvalidField);
    assert!(refused_event.message.starts_with("events[0]: "), "{refused_event:?}");
    explained(
        n.list_deliveries(notifier::ListDeliveriesRequest {
            tenant_id: "t".into(),
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        ErrorReason::InvalidField,
    );
    explained(
        n.retry_delivery(notifier::RetryDeliveryRequest {
            delivery_id: "d-nonesuch".into(),
        })
        .await,
        Code::NotFound,
        ErrorReason::DeliveryNotFound,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_notifier_down_settings_says_so_and_when_to_retry() {
    let app = TestApp::builder().notifier_starts_later().start().await;
    let mut clients = app.clients().await;
    let status = clients
        .settings
        .list_deliveries(settings::ListDeliveriesRequest {
            tenant_id: "t".into(),
            ..Default::default()
        })
        .await
        .expect_err("the notifier is down");
    refused(&status, Code::Unavailable, ErrorReason::NotifierUnavailable);
    app.stop().await;
}
