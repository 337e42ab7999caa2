//! The PIN is found nowhere but in the RPC response and the email: not in any
//! log line (every level at trace), not in either database.

use std::time::Duration;

use dialin_proto::settings::v1::{self as settings, NumberType};
use dialin_tests::{Cluster, ClusterOptions};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_appears_only_in_the_response_and_the_email() {
    let cluster = Cluster::start(ClusterOptions {
        log_level: "trace",
        ..ClusterOptions::default()
    })
    .await;
    let mut clients = cluster.clients(0, 0);
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.long_pins("t").await;

    let (user, welcome_pin) = clients.license("t", "sam").await;
    let reset_pin = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "sam".into(),
            self_service: false,
        })
        .await
        .unwrap()
        .into_inner()
        .pin;
    clients
        .settings
        .send_conference_info_email(settings::SendConferenceInfoEmailRequest {
            tenant_id: "t".into(),
            user_id: "sam".into(),
            to_address: None,
        })
        .await
        .unwrap();
    // Let the PIN_RESET go out before the switch-off (which would otherwise stop it).
    dialin_tests::wait_until("the PIN_RESET email", Duration::from_secs(60), || async {
        cluster
            .smtp
            .received()
            .iter()
            .any(|email| email.text.contains(&reset_pin))
            .then_some(())
    })
    .await;
    for pin in [&reset_pin, &welcome_pin] {
        clients
            .settings
            .verify_pin(settings::VerifyPinRequest {
                tenant_id: "t".into(),
                conference_id: user.conference_id.clone(),
                pin: pin.clone(),
            })
            .await
            .unwrap();
    }
    clients.set_switch("t", false).await;
    let suppressed_pin = clients
        .settings
        .reset_pin(settings::ResetPinRequest {
            tenant_id: "t".into(),
            user_id: "sam".into(),
            self_service: false,
        })
        .await
        .unwrap()
        .into_inner()
        .pin;
    clients.settled_tenant("t", 4, Duration::from_secs(60)).await;

    let logs: Vec<u8> = [cluster.settings[0].log(), cluster.notifiers[0].log()]
        .concat()
        .into_bytes();
    assert!(logs.len() > 10_000, "trace logging produced only {} bytes", logs.len());
    let stored = [
        cluster.settings_db.everything_stored().await,
        cluster.notifier_db.everything_stored().await,
    ]
    .concat();
    // The scan reads both databases: the user's row and the delivery rows are there.
    assert!(
        contains(&stored, "sam@example.com") && contains(&stored, "PIN_RESET"),
        "the scan missed a database"
    );
    for pin in [&welcome_pin, &reset_pin, &suppressed_pin] {
        assert!(!contains(&logs, pin), "a PIN in the logs (in {})", cluster.logs());
        assert!(!contains(&stored, pin), "a PIN in a database");
    }
    println!(
        "secrecy: 3 PINs issued, {} bytes of trace logs and {} bytes of stored data scanned, no PIN found",
        logs.len(),
        stored.len()
    );
}
