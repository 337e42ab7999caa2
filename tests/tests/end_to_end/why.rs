//! "Why did Alice get no email?" through the settings service, with a tenant's
//! token and nothing else: settings answers from the notifier over its own
//! mutual-TLS channel, and a token sees only its own tenant's emails.

use dialin_proto::{
    errors::v1::ErrorReason,
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{TestApp, wait_until};
use tonic::Code;
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_token_asks_settings_why_and_sees_only_its_own_tenants_emails() {
    let app = TestApp::builder()
        .tls()
        .tokens(&[
            ("contoso-token", "tenant:contoso"),
            ("fabrikam-token", "tenant:fabrikam"),
        ])
        .start()
        .await;
    let mut contoso = app.settings_with_token("contoso-token");
    let mut fabrikam = app.settings_with_token("fabrikam-token");
    for (client, tenant_id) in [(&mut contoso, "contoso"), (&mut fabrikam, "fabrikam")] {
        client
            .add_service_number(settings::AddServiceNumberRequest {
                tenant_id: tenant_id.into(),
                number: "+14255550100".into(),
                r#type: NumberType::Toll.into(),
                country: Some("US".into()),
            })
            .await
            .unwrap();
        client
            .assign_license(settings::AssignLicenseRequest {
                tenant_id: tenant_id.into(),
                user_id: "alice".into(),
                email: "Alice@Contoso.com".into(),
                display_name: "Alice".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    // Her WELCOME leaves before the switch goes off (a pending one would be
    // suppressed at the second gate).
    wait_until("Alice's WELCOME sent", dialin_tests::DEADLINE, || {
        let mut contoso = contoso.clone();
        async move {
            let listed = contoso
                .list_deliveries(settings::ListDeliveriesRequest {
                    tenant_id: "contoso".into(),
                    user_id: Some("alice".into()),
                    status: DeliveryStatus::Sent.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .deliveries;
            (!listed.is_empty()).then_some(())
        }
    })
    .await;
    contoso
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "contoso".into(),
            automatically_send_emails_to_users: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    contoso
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "contoso".into(),
            user_id: "alice".into(),
            self_service: false,
        })
        .await
        .unwrap();

    let alices = |status: DeliveryStatus| settings::ListDeliveriesRequest {
        tenant_id: "contoso".into(),
        email: Some("alice@contoso.com".into()),
        status: status.into(),
        ..Default::default()
    };
    let deliveries = wait_until("Alice's two emails recorded", dialin_tests::DEADLINE, || {
        let mut contoso = contoso.clone();
        async move {
            let listed = contoso
                .list_deliveries(alices(DeliveryStatus::Unspecified))
                .await
                .unwrap()
                .into_inner()
                .deliveries;
            (listed.len() == 2).then_some(listed)
        }
    })
    .await;
    // Newest first: the PIN reset, suppressed by the switch, and why.
    assert_eq!(deliveries[0].kind(), EmailKind::PinReset);
    assert_eq!(deliveries[0].status(), DeliveryStatus::Suppressed);
    assert!(deliveries[0].reason.contains("switch"), "{:?}", deliveries[0].reason);
    assert_eq!(deliveries[1].kind(), EmailKind::Welcome);
    assert!(deliveries.iter().all(|delivery| delivery.tenant_id == "contoso"));
    let suppressed = contoso
        .list_deliveries(alices(DeliveryStatus::Suppressed))
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(suppressed.len(), 1);

    let nobody = contoso
        .list_deliveries(settings::ListDeliveriesRequest {
            tenant_id: "contoso".into(),
            user_id: Some("nobody".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (nobody.code(), reason(&nobody)),
        (Code::NotFound, "USER_NOT_FOUND".to_owned())
    );

    let own = contoso
        .get_delivery(settings::GetDeliveryRequest {
            tenant_id: "contoso".into(),
            delivery_id: deliveries[0].delivery_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.delivery_id, deliveries[0].delivery_id);

    // Fabrikam's Alice: her emails exist, but not for Contoso's token.
    let theirs = fabrikam
        .list_deliveries(settings::ListDeliveriesRequest {
            tenant_id: "fabrikam".into(),
            user_id: Some("alice".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    assert_eq!(theirs.len(), 1);
    let asked_as_own = contoso
        .get_delivery(settings::GetDeliveryRequest {
            tenant_id: "contoso".into(),
            delivery_id: theirs[0].delivery_id.clone(),
        })
        .await
        .unwrap_err();
    let unknown = contoso
        .get_delivery(settings::GetDeliveryRequest {
            tenant_id: "contoso".into(),
            delivery_id: "d-nonesuch".into(),
        })
        .await
        .unwrap_err();
    // Exactly as if there were none: nothing says another tenant has it.
    assert_eq!(
        (asked_as_own.code(), reason(&asked_as_own)),
        (Code::NotFound, "DELIVERY_NOT_FOUND".to_owned())
    );
    assert_eq!(
        asked_as_own.message().replace(&theirs[0].delivery_id, "ID"),
        unknown.message().replace("d-nonesuch", "ID")
    );
    let retried = contoso
        .retry_delivery(settings::RetryDeliveryRequest {
            tenant_id: "contoso".into(),
            delivery_id: theirs[0].delivery_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(retried.code(), Code::NotFound);
    for denied in [
        contoso
            .list_deliveries(settings::ListDeliveriesRequest {
                tenant_id: "fabrikam".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        contoso
            .get_delivery(settings::GetDeliveryRequest {
                tenant_id: "fabrikam".into(),
                delivery_id: theirs[0].delivery_id.clone(),
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            (denied.code(), reason(&denied)),
            (
                Code::PermissionDenied,
                ErrorReason::TenantNotAllowed.as_str_name().to_owned()
            )
        );
    }

    let preview = contoso
        .preview_email(settings::PreviewEmailRequest {
            tenant_id: "contoso".into(),
            kind: EmailKind::PinReset.into(),
            locale: "fr-FR".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.language, "fr");
    app.stop().await;
}
