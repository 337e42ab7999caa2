//! Callers are authenticated and scoped to their tenant; VerifyPin locks out guessing.

use std::time::Duration;

use dialin_proto::settings::v1::{self as settings, NumberType};
use dialin_tests::{TestApp, wait_until, write_tokens};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

fn get_user(tenant_id: &str, user_id: &str) -> settings::GetUserRequest {
    settings::GetUserRequest {
        tenant_id: tenant_id.into(),
        user_id: user_id.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_authenticate_scope_and_can_be_revoked_by_editing_the_file() {
    let app = TestApp::builder()
        .tokens(&[("operator-secret", "*"), ("contoso-secret", "tenant:contoso")])
        .start()
        .await;
    let mut operator = app.settings_with_token("operator-secret");
    let mut contoso = app.settings_with_token("contoso-secret");
    for tenant in ["contoso", "fabrikam"] {
        operator
            .add_service_number(settings::AddServiceNumberRequest {
                tenant_id: tenant.into(),
                number: "+14255550100".into(),
                r#type: NumberType::Toll.into(),
                country: None,
            })
            .await
            .expect("an operator acts for every tenant");
        operator
            .assign_license(settings::AssignLicenseRequest {
                tenant_id: tenant.into(),
                user_id: "kai".into(),
                email: "kai@example.com".into(),
                display_name: "Kai".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    contoso
        .get_user(get_user("contoso", "kai"))
        .await
        .expect("a tenant token reads its own tenant");

    // Cross-tenant reads and writes are refused alike, whether or not the user exists.
    let existing = contoso.get_user(get_user("fabrikam", "kai")).await.unwrap_err();
    let missing = contoso.get_user(get_user("fabrikam", "nobody")).await.unwrap_err();
    assert_eq!(
        (existing.code(), missing.code()),
        (Code::PermissionDenied, Code::PermissionDenied)
    );
    assert_eq!(
        existing.message(),
        missing.message(),
        "nothing tells an existing user from a missing one"
    );
    let write = contoso
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "fabrikam".into(),
            user_id: "kai".into(),
            self_service: false,
        })
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::PermissionDenied);

    let mut anonymous = app.clients().await.settings;
    assert_eq!(
        anonymous.get_user(get_user("contoso", "kai")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut wrong = app.settings_with_token("guess");
    assert_eq!(
        wrong.get_user(get_user("contoso", "kai")).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Health needs no token.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.settings_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("health is open");

    // Revoking: the edited file takes effect without a restart.
    write_tokens(&app.tokens_file, &[("operator-secret".into(), "*".into())]);
    wait_until("the revoked token to be refused", Duration::from_secs(10), || {
        let mut contoso = contoso.clone();
        async move {
            let result = contoso.get_user(get_user("contoso", "kai")).await;
            matches!(result, Err(status) if status.code() == Code::Unauthenticated).then_some(())
        }
    })
    .await;
    operator
        .get_user(get_user("contoso", "kai"))
        .await
        .expect("the remaining token still works");
    app.stop().await;
}

fn verify(conference_id: &str, pin: &str) -> settings::VerifyPinRequest {
    settings::VerifyPinRequest {
        tenant_id: "t".into(),
        conference_id: conference_id.into(),
        pin: pin.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_pin_checks_and_locks_out_guessing() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    let (user, pin) = clients.license("t", "lee").await;
    let s = &mut clients.settings;
    let wrong = if pin == "00000" { "11111" } else { "00000" };

    assert!(
        s.verify_pin(verify(&user.conference_id, &pin))
            .await
            .unwrap()
            .into_inner()
            .valid
    );
    assert!(
        !s.verify_pin(verify("0000001", &pin)).await.unwrap().into_inner().valid,
        "unknown conference ID"
    );
    for _ in 0..5 {
        assert!(
            !s.verify_pin(verify(&user.conference_id, wrong))
                .await
                .unwrap()
                .into_inner()
                .valid
        );
    }
    let locked = s.verify_pin(verify(&user.conference_id, &pin)).await.unwrap_err();
    assert_eq!(
        locked.code(),
        Code::ResourceExhausted,
        "even the right PIN waits out the lockout"
    );
    assert!(locked.message().contains("minute"), "{}", locked.message());

    let bad = s.verify_pin(verify(&user.conference_id, "12ab")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(!bad.message().contains("12ab"), "the PIN is never echoed");
    assert_eq!(
        s.verify_pin(verify("123", &pin)).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // An admin's reset issues a new PIN and lifts the lockout.
    let reset = s
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "lee".into(),
            self_service: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        s.verify_pin(verify(&user.conference_id, &reset.pin))
            .await
            .unwrap()
            .into_inner()
            .valid
    );
    if reset.pin != pin {
        assert!(
            !s.verify_pin(verify(&user.conference_id, &pin))
                .await
                .unwrap()
                .into_inner()
                .valid,
            "the old PIN is dead"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_trusts_only_the_settings_service() {
    use dialin_proto::notifier::v1::{ListDeliveriesRequest, notifier_service_client::NotifierServiceClient};
    use dialin_tests::{channel, client_tls};

    let app = TestApp::builder().tls().start().await;
    let certs = app.certs.clone().expect("certificates");
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.license("t", "max").await;
    let deliveries = clients.settled_deliveries("t", "max", 1).await;
    app.smtp.wait_for(&deliveries[0].delivery_id).await;

    let list = || ListDeliveriesRequest {
        tenant_id: "t".into(),
        user_id: None,
        page_size: 10,
        page_token: String::new(),
        ..Default::default()
    };
    let no_certificate = NotifierServiceClient::new(channel(app.notifier_addr(), Some(client_tls(&certs.ca, None))))
        .list_deliveries(list())
        .await;
    assert!(no_certificate.is_err(), "a client without a certificate is refused");
    let stranger = NotifierServiceClient::new(channel(
        app.notifier_addr(),
        Some(client_tls(&certs.ca, Some(&certs.stranger))),
    ))
    .list_deliveries(list())
    .await;
    assert!(stranger.is_err(), "a certificate from another CA is refused");
    let plaintext = NotifierServiceClient::new(channel(app.notifier_addr(), None))
        .list_deliveries(list())
        .await;
    assert!(plaintext.is_err(), "plaintext is refused");

    // Kubernetes probes reach health on a plaintext port of its own.
    let health = channel(app.notifier_health_addr.expect("a health port"), None);
    HealthClient::new(health)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("health over plaintext");
    app.stop().await;
}
