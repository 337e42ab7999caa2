//! Emails in the recipient's language, through the real SMTP server; and the
//! previews an admin looks at.

use dialin_proto::{
    notifier::v1::{self as notifier, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::{Clients, DEADLINE, TestApp, binary, wait_until};
use tonic::Code;

const TOLL: &str = "+33170000000";

async fn license_in(
    clients: &mut Clients,
    user_id: &str,
    locale: Option<&str>,
) -> (settings::ConferencingUser, String) {
    let response = clients
        .settings
        .assign_license(settings::AssignLicenseRequest {
            tenant_id: "t".into(),
            user_id: user_id.into(),
            email: format!("{user_id}@example.com"),
            display_name: format!("Élise {user_id}"),
            locale: locale.map(str::to_owned),
            ..Default::default()
        })
        .await
        .expect("AssignLicense")
        .into_inner();
    (response.user.expect("a user"), response.pin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_french_user_gets_french_mail() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "FR").await;
    let (user, pin) = license_in(&mut clients, "elise", Some("fr-FR")).await;

    let deliveries = clients.settled_deliveries("t", "elise", 1).await;
    assert_eq!(deliveries[0].language, "fr", "the language is recorded on the delivery");
    let email = app.smtp.wait_for(&deliveries[0].delivery_id).await;
    // As the SMTP server decoded it: RFC 2047 subject, quoted-printable parts.
    assert_eq!(
        email.subject,
        "Vous pouvez désormais rejoindre vos réunions par téléphone"
    );
    assert_eq!(email.headers.get("Content-Language").map(String::as_str), Some("fr"));
    assert!(email.text.starts_with("Bonjour Élise elise,"), "{}", email.text);
    assert!(
        email.text.contains("Voici vos informations d'accès\u{a0}:"),
        "{}",
        email.text
    );
    assert!(email.text.contains("ID de conférence\u{a0}: "), "{}", email.text);
    assert!(email.html.contains("<html lang=\"fr\">"));
    assert!(email.html.contains("Ne communiquez votre code PIN à personne."));
    assert!(email.text.contains("+33 1 70 00 00 00") && email.html.contains("href=\"tel:+33170000000\""));
    assert!(email.shows(&user.conference_id) && email.shows(&pin));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_falls_back_to_the_tenant_default_then_english() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "FR").await;
    let tenant = clients
        .settings
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            default_locale: Some("es-ES".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tenant.default_locale, "es-ES");
    let cases = [
        ("quebec", Some("fr-CA"), "fr", "Bonjour"),
        ("unknown", Some("xx"), "es", "Hola,"),
        ("unset", None, "es", "Hola,"),
        ("wien", Some("de-AT"), "de", "Hallo"),
    ];
    for (user_id, locale, _, _) in cases {
        license_in(&mut clients, user_id, locale).await;
    }
    for (user_id, locale, language, greeting) in cases {
        let deliveries = clients.settled_deliveries("t", user_id, 1).await;
        assert_eq!(deliveries[0].language, language, "{user_id} ({locale:?})");
        let email = app.smtp.wait_for(&deliveries[0].delivery_id).await;
        assert!(email.text.starts_with(greeting), "{user_id}: {}", email.text);
        assert_eq!(email.headers.get("Content-Language"), Some(&language.to_owned()));
    }

    // A tenant that never set a default locale has en-US.
    clients.add_number("other", TOLL, NumberType::Toll, "FR").await;
    clients.license("other", "nobody").await;
    let deliveries = clients.settled_deliveries("other", "nobody", 1).await;
    assert_eq!(deliveries[0].language, "en");
    app.stop().await;
}

fn preview(kind: EmailKind, locale: &str, tenant_id: Option<&str>) -> notifier::PreviewEmailRequest {
    notifier::PreviewEmailRequest {
        kind: kind.into(),
        locale: locale.into(),
        tenant_id: tenant_id.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_shows_an_admin_what_a_user_gets() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;

    let welcome = clients
        .notifier
        .preview_email(preview(EmailKind::Welcome, "fr-FR", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(welcome.language, "fr");
    assert_eq!(
        welcome.subject,
        "Vous pouvez désormais rejoindre vos réunions par téléphone"
    );
    assert!(welcome.text.contains("Code PIN") && welcome.html.contains("<html lang=\"fr\">"));
    assert!(
        welcome
            .text
            .contains("Envoyé par le service d'audioconférence de votre organisation.")
    );

    // With a tenant: its sender name and its default locale.
    clients
        .settings
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: "t".into(),
            send_email_from_override: Some(true),
            send_email_from_address: Some("it@contoso.example".into()),
            send_email_from_display_name: Some("Contoso IT".into()),
            default_locale: Some("de-DE".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    // The policy reaches the notifier through the outbox, shortly after the call.
    let notifier = clients.notifier.clone();
    let disabled = wait_until("the tenant's policy at the notifier", DEADLINE, || {
        let mut notifier = notifier.clone();
        async move {
            let preview = notifier
                .preview_email(preview(EmailKind::Disabled, "", Some("t")))
                .await
                .ok()?
                .into_inner();
            (preview.language == "de").then_some(preview)
        }
    })
    .await;
    assert_eq!(disabled.language, "de");
    assert!(disabled.text.contains("Gesendet von Contoso IT."), "{}", disabled.text);
    let english = clients
        .notifier
        .preview_email(preview(EmailKind::ConferenceInfo, "en-GB", Some("t")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(english.language, "en", "the asked locale comes before the tenant's");
    assert!(english.text.contains("Sent by Contoso IT."));

    for (request, field) in [
        (preview(EmailKind::Unspecified, "fr", None), "kind"),
        (preview(EmailKind::Welcome, "fr_FR", None), "locale"),
        (preview(EmailKind::Welcome, "fr", Some("")), "tenant_id"),
    ] {
        let status = clients.notifier.preview_email(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_command_writes_an_eml_and_an_html_file() {
    let dir = std::env::temp_dir().join(format!("dialin-preview-{}", uuid::Uuid::new_v4().simple()));
    let output = tokio::process::Command::new(binary("dialin-notifier"))
        .args(["preview", "--kind", "WELCOME", "--locale", "fr-FR", "--out-dir"])
        .arg(&dir)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let eml = std::fs::read_to_string(dir.join("welcome-fr.eml")).unwrap();
    assert!(eml.contains("Content-Language: fr") && eml.contains("Auto-Submitted: auto-generated"));
    assert!(eml.contains("multipart/alternative"));
    let html = std::fs::read_to_string(dir.join("welcome-fr.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<html lang=\"fr\">"));

    let refused = tokio::process::Command::new(binary("dialin-notifier"))
        .args(["preview", "--kind", "HELLO"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("WELCOME, PIN_RESET"));
    let _ = std::fs::remove_dir_all(&dir);
}
