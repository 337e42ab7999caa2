//! Paging through users and deliveries, and a permanent SMTP refusal on record.

use std::collections::HashSet;

use dialin_proto::{
    notifier::v1::{self as notifier, DeliveryStatus},
    settings::v1::{self as settings, NumberType},
};
use dialin_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_deliveries_page_without_gaps_or_repeats() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    for index in 0..7 {
        clients.license("t", &format!("user-{index}")).await;
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = clients
            .settings
            .list_users(settings::ListUsersRequest {
                tenant_id: "t".into(),
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.users.len() <= 3);
        seen.extend(page.users.into_iter().map(|user| user.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..7).map(|index| format!("user-{index}")).collect();
    assert_eq!(seen, expected);

    dialin_tests::wait_until("7 deliveries", dialin_tests::DEADLINE, || {
        let mut notifier = clients.notifier.clone();
        async move {
            let all = notifier
                .list_deliveries(notifier::ListDeliveriesRequest {
                    tenant_id: "t".into(),
                    user_id: None,
                    page_size: 0,
                    page_token: String::new(),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            (all.deliveries.len() == 7).then_some(())
        }
    })
    .await;
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = clients
            .notifier
            .list_deliveries(notifier::ListDeliveriesRequest {
                tenant_id: "t".into(),
                user_id: None,
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.extend(page.deliveries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let ids: HashSet<_> = pages.iter().map(|d| d.delivery_id.clone()).collect();
    assert_eq!((pages.len(), ids.len()), (7, 7), "every delivery once");
    let created: Vec<_> = pages
        .iter()
        .map(|d| dialin_domain::time::from_timestamp(d.created_at.as_ref().unwrap()))
        .collect();
    assert!(
        created.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {created:?}"
    );

    let bad_token = clients
        .notifier
        .list_deliveries(notifier::ListDeliveriesRequest {
            tenant_id: "t".into(),
            user_id: None,
            page_size: 2,
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), tonic::Code::InvalidArgument);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_refusal_is_failed_with_the_servers_reply() {
    let app = TestApp::builder()
        .smtp_reply("550 5.1.1 mailbox unavailable")
        .start()
        .await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.license("t", "kim").await;
    let deliveries = clients.settled_deliveries("t", "kim", 1).await;
    assert_eq!(deliveries[0].status(), DeliveryStatus::Failed, "{:?}", deliveries[0]);
    assert!(
        deliveries[0].reason.contains("550") && deliveries[0].reason.contains("mailbox unavailable"),
        "{}",
        deliveries[0].reason
    );
    assert_eq!(deliveries[0].attempts, 1, "a 5xx is not retried");
    assert!(app.smtp.received().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_found_by_email_in_any_case_and_listed_by_filter() {
    let app = TestApp::start().await;
    let mut clients = app.clients().await;
    clients.add_number("t", "+14255550100", NumberType::Toll, "US").await;
    clients.add_number("t", "+14255550111", NumberType::Toll, "US").await;
    let s = &mut clients.settings;
    for (user_id, email, toll) in [
        ("ann", "Ann.Lee@Contoso.com", "+14255550100"),
        ("bob", "bob@contoso.com", "+14255550111"),
        ("cy", "cy_100%@fabrikam.com", "+14255550100"),
    ] {
        s.assign_license(settings::AssignLicenseRequest {
            tenant_id: "t".into(),
            user_id: user_id.into(),
            email: email.into(),
            display_name: user_id.into(),
            toll_number: Some(toll.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    s.remove_license(settings::RemoveLicenseRequest {
        tenant_id: "t".into(),
        user_id: "bob".into(),
    })
    .await
    .unwrap();
    let ann = s
        .get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            email: "ann.lee@CONTOSO.COM".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (ann.user_id.as_str(), ann.email.as_str()),
        ("ann", "Ann.Lee@Contoso.com")
    );
    // Another tenant's user with the same email is another user.
    let elsewhere = s
        .get_user(settings::GetUserRequest {
            tenant_id: "other".into(),
            email: "ann.lee@contoso.com".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), tonic::Code::NotFound);
    let both = s
        .get_user(settings::GetUserRequest {
            tenant_id: "t".into(),
            user_id: "ann".into(),
            email: "ann.lee@contoso.com".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(both.code(), tonic::Code::InvalidArgument);

    let listed = |filter: settings::ListUsersRequest| {
        let mut s = s.clone();
        async move {
            let mut ids: Vec<String> = s
                .list_users(settings::ListUsersRequest {
                    tenant_id: "t".into(),
                    ..filter
                })
                .await
                .unwrap()
                .into_inner()
                .users
                .into_iter()
                .map(|user| user.user_id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        listed(settings::ListUsersRequest {
            licensed: Some(true),
            ..Default::default()
        })
        .await,
        ["ann", "cy"]
    );
    assert_eq!(
        listed(settings::ListUsersRequest {
            licensed: Some(false),
            ..Default::default()
        })
        .await,
        ["bob"]
    );
    assert_eq!(
        listed(settings::ListUsersRequest {
            provider: Some(settings::Provider::Hosted.into()),
            toll_number: Some("+14255550100".into()),
            ..Default::default()
        })
        .await,
        ["ann", "cy"]
    );
    assert_eq!(
        listed(settings::ListUsersRequest {
            email_prefix: Some("ANN.".into()),
            ..Default::default()
        })
        .await,
        ["ann"]
    );
    // `%` and `_` in a prefix match only themselves.
    assert_eq!(
        listed(settings::ListUsersRequest {
            email_prefix: Some("cy_100%".into()),
            ..Default::default()
        })
        .await,
        ["cy"]
    );
    assert!(
        listed(settings::ListUsersRequest {
            email_prefix: Some("c_".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    app.stop().await;
}
