//! `ResetPin` calls made at once share transactions (group commit); each is
//! still answered, stored and emailed as if it had been alone.

use std::{collections::HashMap, time::Duration};

use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType, Provider},
};
use dialin_tests::{DEADLINE, TestApp, wait_until};
use tokio::task::JoinSet;
use tonic::Code;

const TWICE: usize = 12;
const SELF_SERVICE: usize = 4;

fn reset(user_id: &str, self_service: bool) -> settings::ResetPinRequest {
    settings::ResetPinRequest {
        tenant_id: "t".into(),
        user_id: user_id.into(),
        self_service,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resets_are_each_answered_and_only_the_last_pin_works() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.long_pins("t").await;
    let twice: Vec<String> = (0..TWICE).map(|i| format!("twice-{i}")).collect();
    let own: Vec<String> = (0..SELF_SERVICE).map(|i| format!("own-{i}")).collect();
    let mut conference_ids = HashMap::new();
    for user_id in twice.iter().chain(&own).chain([&"moved".to_owned()]) {
        let (user, _) = clients.license("t", user_id).await;
        conference_ids.insert(user_id.clone(), user.conference_id);
    }
    clients
        .settings
        .set_provider(settings::SetProviderRequest {
            tenant_id: "t".into(),
            user_id: "moved".into(),
            provider: Provider::ThirdParty.into(),
            provider_name: "Other Bridge".into(),
        })
        .await
        .unwrap();
    let welcomed = twice.len() + own.len() + 2; // and "moved": WELCOME, DISABLED
    clients.settled_tenant("t", welcomed, Duration::from_secs(30)).await;

    // Every call at once: each user in `twice` reset two times, the others once.
    let mut calls = JoinSet::new();
    let requests = twice
        .iter()
        .chain(&twice)
        .map(|user_id| reset(user_id, false))
        .chain(own.iter().map(|user_id| reset(user_id, true)))
        .chain([reset("ghost", false), reset("moved", false)]);
    for request in requests {
        let mut settings = clients.settings.clone();
        calls.spawn(async move {
            let user_id = request.user_id.clone();
            (user_id, settings.reset_pin(request).await.map(|r| r.into_inner()))
        });
    }
    let mut answers: HashMap<String, Vec<settings::ResetPinResponse>> = HashMap::new();
    for (user_id, answer) in calls.join_all().await {
        match user_id.as_str() {
            "ghost" => {
                let status = answer.expect_err("no such user");
                assert_eq!(status.code(), Code::NotFound, "{status:?}");
                assert!(status.message().contains("ghost"), "{}", status.message());
            }
            "moved" => {
                let status = answer.expect_err("not on the hosted bridge");
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(status.message().contains("SetProvider"), "{}", status.message());
            }
            _ => answers
                .entry(user_id)
                .or_default()
                .push(answer.expect("a reset of a hosted user")),
        }
    }

    // Two resets of one user: one after the other (versions in a row), and
    // only the later PIN works.
    let mut winners = HashMap::new();
    for user_id in &twice {
        let mut pair = answers.remove(user_id).expect("both answers");
        assert_eq!(pair.len(), 2);
        pair.sort_by_key(|answer| answer.user.as_ref().unwrap().version);
        let [earlier, later] = [&pair[0], &pair[1]];
        let versions = [earlier, later].map(|answer| answer.user.as_ref().unwrap().version);
        assert_eq!(versions[1], versions[0] + 1, "{user_id}: {versions:?}");
        assert_ne!(earlier.pin, later.pin);
        let conference_id = &conference_ids[user_id];
        assert!(pin_works(&mut clients, conference_id, &later.pin).await, "{user_id}");
        assert!(!pin_works(&mut clients, conference_id, &earlier.pin).await, "{user_id}");
        winners.insert(user_id.clone(), later.pin.clone());
    }
    for user_id in &own {
        let pin = &answers[user_id][0].pin;
        assert!(
            pin_works(&mut clients, &conference_ids[user_id], pin).await,
            "{user_id}"
        );
    }

    // Emails: the later PIN reaches each user; a self-service reset sends none.
    let deliveries = clients
        .settled_tenant("t", welcomed + 2 * twice.len(), Duration::from_secs(30))
        .await;
    for user_id in &twice {
        let resets: Vec<_> = deliveries
            .iter()
            .filter(|d| &d.user_id == user_id && d.kind() == EmailKind::PinReset)
            .collect();
        assert_eq!(resets.len(), 2, "{user_id}: {resets:#?}");
        let sent: Vec<_> = resets.iter().filter(|d| d.status() == DeliveryStatus::Sent).collect();
        wait_until(
            &format!("an email to {user_id} with the PIN that works"),
            DEADLINE,
            || async {
                sent.iter()
                    .flat_map(|d| app.smtp.received_for(&d.delivery_id))
                    .any(|email| email.shows(&winners[user_id]))
                    .then_some(())
            },
        )
        .await;
    }
    for user_id in &own {
        assert!(
            deliveries
                .iter()
                .all(|d| &d.user_id != user_id || d.kind() != EmailKind::PinReset),
            "{user_id} reset their own PIN: no email"
        );
    }
    app.stop().await;
}

async fn pin_works(clients: &mut dialin_tests::Clients, conference_id: &str, pin: &str) -> bool {
    clients
        .settings
        .verify_pin(settings::VerifyPinRequest {
            tenant_id: "t".into(),
            conference_id: conference_id.into(),
            pin: pin.into(),
        })
        .await
        .expect("VerifyPin")
        .into_inner()
        .valid
}
