//! `AssignLicenses`: many users in one call, each entry with its own result.

use std::{collections::HashSet, time::Duration};

use dialin_proto::{
    notifier::v1::{DeliveryStatus, EmailKind},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::TestApp;
use tonic::Code;

const TOLL: &str = "+14255550100";

fn entry(user_id: &str, email: &str) -> settings::UserToLicense {
    settings::UserToLicense {
        user_id: user_id.into(),
        email: email.into(),
        display_name: format!("User {user_id}"),
        ..Default::default()
    }
}

fn batch(tenant_id: &str, users: Vec<settings::UserToLicense>) -> settings::AssignLicensesRequest {
    settings::AssignLicensesRequest {
        tenant_id: tenant_id.into(),
        users,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_entry_has_its_own_result_and_one_bad_entry_fails_only_itself() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    clients.license("t", "already").await;

    let response = clients
        .settings
        .assign_licenses(batch(
            "t",
            vec![
                entry("a1", "a1@example.com"),
                entry("bad", "not-an-address"),
                entry("a2", "a2@example.com"),
                entry("a1", "again@example.com"),
                entry("already", "already@example.com"),
                settings::UserToLicense {
                    toll_number: Some("+19995550100".into()),
                    ..entry("a3", "a3@example.com")
                },
                entry("a4", "a4@example.com"),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<Option<Code>> = response
        .results
        .iter()
        .map(|result| result.error.as_ref().map(|error| Code::from(error.code)))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(Code::InvalidArgument),
            None,
            Some(Code::InvalidArgument),
            Some(Code::FailedPrecondition),
            Some(Code::FailedPrecondition),
            None
        ]
    );
    let message = |index: usize| response.results[index].error.as_ref().unwrap().message.clone();
    assert!(message(1).starts_with("users[1]: email"), "{}", message(1));
    assert!(message(3).contains("more than once"), "{}", message(3));
    assert!(message(4).contains("already holds a license"), "{}", message(4));
    assert!(message(5).contains("AddServiceNumber"), "{}", message(5));

    let licensed: Vec<_> = response
        .results
        .iter()
        .filter(|result| result.error.is_none())
        .collect();
    let conference_ids: HashSet<_> = licensed
        .iter()
        .map(|result| result.user.as_ref().unwrap().conference_id.clone())
        .collect();
    assert_eq!(conference_ids.len(), 3, "distinct conference IDs");
    for result in &licensed {
        let user = result.user.as_ref().unwrap();
        assert!(user.licensed && result.pin.len() == 5, "{result:?}");
        let deliveries = clients.settled_deliveries("t", &user.user_id, 1).await;
        assert_eq!(
            (deliveries[0].kind(), deliveries[0].status()),
            (EmailKind::Welcome, DeliveryStatus::Sent)
        );
        let email = app.smtp.wait_for(&deliveries[0].delivery_id).await;
        assert!(email.shows(&result.pin) && email.shows(&user.conference_id));
    }
    // A refused entry left nothing behind.
    for user_id in ["bad", "a3"] {
        let status = clients
            .settings
            .get_user(settings::GetUserRequest {
                tenant_id: "t".into(),
                user_id: user_id.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{user_id}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_holds_one_to_a_thousand_users() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    for size in [0, 1001] {
        let users = (0..size)
            .map(|i| entry(&format!("u{i}"), &format!("u{i}@example.com")))
            .collect();
        let status = clients.settings.assign_licenses(batch("t", users)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{size}");
        assert!(status.message().contains("1 to 1000"), "{}", status.message());
    }
    // The switch off: a thousand events reach the notifier, no SMTP needed.
    clients.set_switch("t", false).await;
    let users = (0..1000)
        .map(|i| entry(&format!("u{i}"), &format!("u{i}@example.com")))
        .collect();
    let response = clients
        .settings
        .assign_licenses(batch("t", users))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.results.len(), 1000);
    assert!(response.results.iter().all(|result| result.error.is_none()));
    let deliveries = clients.settled_tenant("t", 1000, Duration::from_secs(120)).await;
    assert_eq!(deliveries.len(), 1000);
    assert!(
        deliveries
            .iter()
            .all(|delivery| delivery.status() == DeliveryStatus::Suppressed)
    );
    app.stop().await;
}

/// Concurrent calls for one tenant draw conference IDs from the same space; on
/// PostgreSQL (where they run in parallel) each draw must see the others', or
/// two calls pick the same ID and one fails on the unique index. Six calls of a
/// thousand from 9,000,000 IDs collide somewhere about four runs in five
/// without that. The tenant never changed its settings, so no settings row
/// lock orders the calls either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_for_one_tenant_never_draw_the_same_conference_id() {
    // No notifier: the events wait in the outbox, this test is about settings.
    let app = TestApp::builder().notifier_starts_later().start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", TOLL, NumberType::Toll, "US").await;
    let mut calls = tokio::task::JoinSet::new();
    for call in 0..6 {
        let mut settings = clients.settings.clone();
        let users = (0..1000)
            .map(|i| entry(&format!("c{call}-{i}"), &format!("c{call}-{i}@example.com")))
            .collect();
        calls.spawn(async move { settings.assign_licenses(batch("t", users)).await });
    }
    let mut conference_ids = HashSet::new();
    for response in calls.join_all().await {
        let results = response.expect("every call succeeds").into_inner().results;
        for result in results {
            assert!(result.error.is_none(), "{:?}", result.error);
            let user = result.user.expect("a licensed user");
            assert!(
                conference_ids.insert(user.conference_id.clone()),
                "{} drawn twice",
                user.conference_id
            );
        }
    }
    assert_eq!(conference_ids.len(), 6000);
    app.stop().await;
}
